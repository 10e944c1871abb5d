//! The breaks the demo plants in the files it writes as the bank's and the
//! depository's: reconciling files made to agree with the ledger can only ever show
//! "0 breaks", which proves nothing. With a known difference of each main kind
//! planted, the demo shows that reconciliation finds exactly those.

use ledger_domain::money::format_cny;
use ledger_projections::reconcile::{BankBalance, Break, BreakKind, Holding};
use rust_decimal::Decimal;

use crate::AppError;

/// An account the demo never opens (it opens at most D1000000), listed by the bank.
pub const UNKNOWN_ACCOUNT: &str = "D9999999";

/// What the bank says the unknown account holds: 1,000.00 CNY.
fn unknown_account_balance_cny() -> Decimal {
    Decimal::new(100_000, 2)
}

/// How much more than the ledger the bank says the first account holds: 100.00 CNY.
fn cash_difference_cny() -> Decimal {
    Decimal::new(10_000, 2)
}

/// The two files with their planted differences, and the breaks they must give, sorted.
pub(super) struct Planted {
    pub(super) bank: Vec<BankBalance>,
    pub(super) depository: Vec<Holding>,
    pub(super) breaks: Vec<Break>,
}

/// Plants, in files that agree with the ledger: a cash difference on the bank's first
/// account, an account unknown to the ledger at the bank, and the depository's first
/// non-empty holding left out. A kind with nothing to plant it on (no account, no
/// holding) is left out, and so is its break.
pub(super) fn plant_breaks(mut bank: Vec<BankBalance>, mut depository: Vec<Holding>) -> Planted {
    let mut breaks = Vec::new();
    if let Some(line) = bank.first_mut() {
        let ours = line.balance_cny;
        line.balance_cny = ours + cash_difference_cny();
        breaks.push(cash_break(
            BreakKind::CashDiffers,
            &line.account_id,
            Some(ours),
            Some(line.balance_cny),
        ));
    }
    let unknown = unknown_account_balance_cny();
    bank.push(BankBalance {
        account_id: UNKNOWN_ACCOUNT.to_owned(),
        balance_cny: unknown,
    });
    breaks.push(cash_break(
        BreakKind::CashUnknownToLedger,
        UNKNOWN_ACCOUNT,
        None,
        Some(unknown),
    ));
    if let Some(index) = depository.iter().position(|h| h.quantity > 0) {
        let left_out = depository.remove(index);
        breaks.push(Break {
            kind: BreakKind::PositionMissingAtDepository,
            account_id: left_out.account_id,
            instrument: left_out.instrument,
            ours: left_out.quantity.to_string(),
            theirs: String::new(),
        });
    }
    breaks.sort();
    Planted {
        bank,
        depository,
        breaks,
    }
}

/// A cash break as reconciliation reports it: amounts with two decimals, empty when absent.
fn cash_break(kind: BreakKind, account: &str, ours: Option<Decimal>, theirs: Option<Decimal>) -> Break {
    Break {
        kind,
        account_id: account.to_owned(),
        instrument: String::new(),
        ours: ours.map(format_cny).unwrap_or_default(),
        theirs: theirs.map(format_cny).unwrap_or_default(),
    }
}

impl Planted {
    /// The bank's file: `account,balance`.
    pub(super) fn bank_csv(&self) -> Result<Vec<u8>, AppError> {
        let lines = self
            .bank
            .iter()
            .map(|b| [b.account_id.clone(), format_cny(b.balance_cny)]);
        to_csv(["account", "balance"], lines)
    }

    /// The depository's file: `account,instrument,quantity`.
    pub(super) fn depository_csv(&self) -> Result<Vec<u8>, AppError> {
        let lines = self
            .depository
            .iter()
            .map(|h| [h.account_id.clone(), h.instrument.clone(), h.quantity.to_string()]);
        to_csv(["account", "instrument", "quantity"], lines)
    }
}

fn to_csv<const N: usize>(header: [&str; N], lines: impl Iterator<Item = [String; N]>) -> Result<Vec<u8>, AppError> {
    let write_error = |e: csv::Error| AppError::Output {
        what: "a reconciliation file",
        cause: e.into(),
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(header).map_err(write_error)?;
    for line in lines {
        writer.write_record(line).map_err(write_error)?;
    }
    writer
        .into_inner()
        .map_err(|e| write_error(csv::Error::from(e.into_error())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_files_get_only_the_unknown_account() {
        let planted = plant_breaks(Vec::new(), Vec::new());
        let kinds: Vec<_> = planted.breaks.iter().map(|b| b.kind).collect();
        assert_eq!(kinds, [BreakKind::CashUnknownToLedger]);
        let bank = String::from_utf8(planted.bank_csv().unwrap()).unwrap();
        assert_eq!(bank, "account,balance\nD9999999,1000.00\n");
    }
}
