//! Reconciliation with the outside world: the bank's third-party custody
//! balances and the depository's holdings, against the ledger's side.
//!
//! The bank holds each customer's whole cash, so its balance must equal
//! `available + frozen` (unsettled sale proceeds are part of available). The
//! depository (CSDC) holds the shares, so its quantity must equal `quantity`.
//! [`LedgerSide`] is that one definition; every difference is a break with its
//! kind, and none is ever resolved silently.

use std::collections::BTreeMap;

use ledger_domain::account::Account;
use rust_decimal::Decimal;
use serde::Serialize;
use strum::{EnumString, IntoStaticStr};

use crate::tables::positions::HeldPosition;
use crate::AccountsView;

/// What the ledger says the bank and the depository should hold, from the accounts' state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerSide {
    /// Every account's whole cash ([`Cash::total_cny`](ledger_domain::account::Cash::total_cny)), by account.
    pub cash_cny: BTreeMap<String, Decimal>,
    /// The quantity of every position held or frozen, by account and instrument.
    pub shares: BTreeMap<(String, String), u64>,
}

impl LedgerSide {
    /// The side of every account the view has folded, as of its checkpoint.
    pub fn of(view: &AccountsView) -> Self {
        let mut side = LedgerSide::default();
        for (account_id, account) in &view.accounts {
            side.add(account_id, account);
        }
        side
    }

    fn add(&mut self, account_id: &str, account: &Account) {
        self.cash_cny.insert(account_id.to_owned(), account.cash().total_cny());
        for held in HeldPosition::all_of(account_id, account) {
            self.shares.insert((held.account_id, held.instrument), held.quantity);
        }
    }

    /// The bank's file as it would be if the bank agreed: every account, by account.
    pub fn agreeing_bank(&self) -> Vec<BankBalance> {
        self.cash_cny
            .iter()
            .map(|(account_id, balance_cny)| BankBalance {
                account_id: account_id.clone(),
                balance_cny: *balance_cny,
            })
            .collect()
    }

    /// The depository's file as it would be if it agreed: every position, by account and instrument.
    pub fn agreeing_depository(&self) -> Vec<Holding> {
        self.shares
            .iter()
            .map(|((account_id, instrument), quantity)| Holding {
                account_id: account_id.clone(),
                instrument: instrument.clone(),
                quantity: *quantity,
            })
            .collect()
    }
}

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, IntoStaticStr, EnumString)]
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

/// Every difference between the ledger's side and the two files, sorted.
pub fn reconcile(ours: &LedgerSide, bank: &[BankBalance], depository: &[Holding]) -> Vec<Break> {
    let mut breaks = Vec::new();
    let theirs_cash: BTreeMap<&str, Decimal> = bank.iter().map(|b| (b.account_id.as_str(), b.balance_cny)).collect();
    for (account, ours) in &ours.cash_cny {
        match theirs_cash.get(account.as_str()) {
            Some(theirs) if theirs == ours => {}
            Some(theirs) => breaks.push(cash_break(BreakKind::CashDiffers, account, Some(*ours), Some(*theirs))),
            // An empty account need not be listed by the bank.
            None if ours.is_zero() => {}
            None => breaks.push(cash_break(BreakKind::CashMissingAtBank, account, Some(*ours), None)),
        }
    }
    for (account, theirs) in &theirs_cash {
        if !ours.cash_cny.contains_key(*account) {
            breaks.push(cash_break(BreakKind::CashUnknownToLedger, account, None, Some(*theirs)));
        }
    }
    let ours_shares: BTreeMap<(&str, &str), u64> = ours
        .shares
        .iter()
        .map(|((account, instrument), quantity)| ((account.as_str(), instrument.as_str()), *quantity))
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
    breaks
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
    use ledger_domain::account::Cash;
    use rust_decimal_macros::dec;

    fn side(cash: &[(&str, Decimal)], shares: &[(&str, &str, u64)]) -> LedgerSide {
        LedgerSide {
            cash_cny: cash.iter().map(|(a, c)| ((*a).to_owned(), *c)).collect(),
            shares: shares
                .iter()
                .map(|(a, i, q)| (((*a).to_owned(), (*i).to_owned()), *q))
                .collect(),
        }
    }

    #[test]
    fn the_bank_holds_available_and_frozen_cash_unsettled_proceeds_included() {
        let cash = Cash {
            available_cny: dec!(100.00),
            frozen_cny: dec!(5.00),
            unsettled_cny: dec!(40.00),
        };
        assert_eq!(cash.total_cny(), dec!(105.00));
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
        let ours = side(
            &[("A1", dec!(105.00)), ("A2", dec!(7.00)), ("A3", dec!(0.00))],
            &[("A1", "600000.SH", 300), ("A2", "600000.SH", 100)],
        );
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
        let kinds: Vec<(BreakKind, &str)> = reconcile(&ours, &bank, &depository)
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
        // A1's cash matches; A3 is empty and need not be listed.
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
