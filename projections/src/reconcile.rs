//! Reconciliation with the outside world: the bank's third-party custody
//! balances and the depository's holdings, against our read models.
//!
//! The bank holds each customer's whole cash, so its balance must equal
//! `available + frozen` (unsettled sale proceeds are part of available). The
//! depository (CSDC) holds the shares, so its quantity must equal `quantity`.
//! Every difference is a break with its kind; none is ever resolved silently.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Serialize;
use strum::IntoStaticStr;

use crate::{BalanceRow, PositionRow};

/// One line of the bank's custody file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankBalance {
    pub account_id: String,
    pub balance_cny: Decimal,
}

/// One line of the depository's holdings file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub account_id: String,
    pub instrument: String,
    pub quantity: u64,
}

/// Written as snake case both in JSON (serde) and as text ([`BreakKind::as_str`], strum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum BreakKind {
    /// The bank's balance differs from our available + frozen.
    CashDiffers,
    /// We hold cash for an account the bank does not list.
    CashMissingAtBank,
    /// The bank lists an account we do not know.
    CashUnknownToLedger,
    /// The depository's quantity differs from ours.
    PositionDiffers,
    /// We hold shares the depository does not list.
    PositionMissingAtDepository,
    /// The depository lists shares we do not hold.
    PositionUnknownToLedger,
}

impl BreakKind {
    /// The kind's name, e.g. `cash_differs`, the same as its JSON.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Break {
    pub kind: BreakKind,
    pub account_id: String,
    /// Empty for cash breaks.
    pub instrument: String,
    /// Our figure, or empty when we have none.
    pub ours: String,
    /// Their figure, or empty when they have none.
    pub theirs: String,
}

/// Every difference between our read models and the two files, sorted.
pub fn reconcile(
    balances: &[BalanceRow],
    positions: &[PositionRow],
    bank: &[BankBalance],
    depository: &[Holding],
) -> Result<Vec<Break>, String> {
    let mut breaks = Vec::new();
    let mut ours_cash: BTreeMap<&str, Decimal> = BTreeMap::new();
    for row in balances {
        let parse = |text: &str| {
            text.parse::<Decimal>()
                .map_err(|_| format!("balance {text:?} of {}", row.account_id))
        };
        let total = parse(&row.available)? + parse(&row.frozen)?;
        ours_cash.insert(row.account_id.as_str(), total);
    }
    let theirs_cash: BTreeMap<&str, Decimal> = bank.iter().map(|b| (b.account_id.as_str(), b.balance_cny)).collect();
    for (account, ours) in &ours_cash {
        match theirs_cash.get(account) {
            Some(theirs) if theirs == ours => {}
            Some(theirs) => breaks.push(cash_break(BreakKind::CashDiffers, account, Some(*ours), Some(*theirs))),
            // An empty account need not be listed by the bank.
            None if ours.is_zero() => {}
            None => breaks.push(cash_break(BreakKind::CashMissingAtBank, account, Some(*ours), None)),
        }
    }
    for (account, theirs) in &theirs_cash {
        if !ours_cash.contains_key(account) {
            breaks.push(cash_break(BreakKind::CashUnknownToLedger, account, None, Some(*theirs)));
        }
    }
    let ours_shares: BTreeMap<(&str, &str), u64> = positions
        .iter()
        .map(|p| ((p.account_id.as_str(), p.instrument.as_str()), p.quantity))
        .collect();
    let theirs_shares: BTreeMap<(&str, &str), u64> = depository
        .iter()
        .map(|h| ((h.account_id.as_str(), h.instrument.as_str()), h.quantity))
        .collect();
    for (key, ours) in &ours_shares {
        match theirs_shares.get(key) {
            Some(theirs) if theirs == ours => {}
            Some(theirs) => breaks.push(share_break(
                BreakKind::PositionDiffers,
                *key,
                Some(*ours),
                Some(*theirs),
            )),
            None if *ours == 0 => {}
            None => breaks.push(share_break(
                BreakKind::PositionMissingAtDepository,
                *key,
                Some(*ours),
                None,
            )),
        }
    }
    for (key, theirs) in &theirs_shares {
        if !ours_shares.contains_key(key) && *theirs > 0 {
            breaks.push(share_break(
                BreakKind::PositionUnknownToLedger,
                *key,
                None,
                Some(*theirs),
            ));
        }
    }
    breaks.sort();
    Ok(breaks)
}

fn cash_break(kind: BreakKind, account: &str, ours: Option<Decimal>, theirs: Option<Decimal>) -> Break {
    let text = |amount: Option<Decimal>| amount.map(ledger_domain::money::format_cny).unwrap_or_default();
    Break {
        kind,
        account_id: account.to_owned(),
        instrument: String::new(),
        ours: text(ours),
        theirs: text(theirs),
    }
}

fn share_break(kind: BreakKind, (account, instrument): (&str, &str), ours: Option<u64>, theirs: Option<u64>) -> Break {
    let text = |quantity: Option<u64>| quantity.map(|q| q.to_string()).unwrap_or_default();
    Break {
        kind,
        account_id: account.to_owned(),
        instrument: instrument.to_owned(),
        ours: text(ours),
        theirs: text(theirs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn balance(account: &str, available: &str, frozen: &str) -> BalanceRow {
        BalanceRow {
            account_id: account.into(),
            currency: "CNY".into(),
            available: available.into(),
            frozen: frozen.into(),
            unsettled: "0.00".into(),
            withdrawable: available.into(),
        }
    }

    fn position(account: &str, instrument: &str, quantity: u64) -> PositionRow {
        PositionRow {
            account_id: account.into(),
            instrument: instrument.into(),
            quantity,
            frozen: 0,
            sellable: quantity,
            avg_cost: "1.0000".into(),
        }
    }

    #[test]
    fn each_kind_reads_as_its_snake_case_name_in_text_and_json() {
        let names = [
            (BreakKind::CashDiffers, "cash_differs"),
            (BreakKind::CashMissingAtBank, "cash_missing_at_bank"),
            (BreakKind::CashUnknownToLedger, "cash_unknown_to_ledger"),
            (BreakKind::PositionDiffers, "position_differs"),
            (BreakKind::PositionMissingAtDepository, "position_missing_at_depository"),
            (BreakKind::PositionUnknownToLedger, "position_unknown_to_ledger"),
        ];
        for (kind, name) in names {
            assert_eq!(kind.as_str(), name);
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(name));
        }
    }

    #[test]
    fn every_kind_of_difference_is_a_break() {
        let balances = [
            balance("A1", "100.00", "5.00"),
            balance("A2", "7.00", "0.00"),
            balance("A3", "0.00", "0.00"),
        ];
        let positions = [position("A1", "600000.SH", 300), position("A2", "600000.SH", 100)];
        let bank = [
            BankBalance {
                account_id: "A1".into(),
                balance_cny: dec!(105.00),
            },
            BankBalance {
                account_id: "A9".into(),
                balance_cny: dec!(1.00),
            },
        ];
        let depository = [
            Holding {
                account_id: "A1".into(),
                instrument: "600000.SH".into(),
                quantity: 200,
            },
            Holding {
                account_id: "A9".into(),
                instrument: "000001.SZ".into(),
                quantity: 50,
            },
        ];
        let kinds: Vec<(BreakKind, &str)> = reconcile(&balances, &positions, &bank, &depository)
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b.kind,
                    if b.kind == BreakKind::PositionDiffers {
                        "300 vs 200"
                    } else {
                        ""
                    },
                )
            })
            .collect();
        // A1's cash matches (100.00 + 5.00); A3 is empty and need not be listed.
        assert_eq!(
            kinds,
            vec![
                (BreakKind::CashMissingAtBank, ""),
                (BreakKind::CashUnknownToLedger, ""),
                (BreakKind::PositionDiffers, "300 vs 200"),
                (BreakKind::PositionMissingAtDepository, ""),
                (BreakKind::PositionUnknownToLedger, ""),
            ]
        );
    }
}
