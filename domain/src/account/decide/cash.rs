//! Opening the account and moving cash to and from the bank.

use rust_decimal::Decimal;

use super::super::events::{AccountEvent, CashDirection};
use super::super::state::Account;
use super::overflow;
use crate::error::{reject, RejectCode, Rejection};
use crate::ids::{AccountId, BankRef};
use crate::rules::MarketRules;
use crate::well_formed::{self, cash_amount as check_cash_amount};

impl Account {
    pub(super) fn decide_open(
        &self,
        account_id: AccountId,
        customer_name: String,
        id_number: String,
        risk_level: u8,
    ) -> Result<Vec<AccountEvent>, Rejection> {
        if self.customer.is_some() {
            return reject(
                RejectCode::AccountExists,
                format!("account {account_id} is already open"),
            );
        }
        well_formed::customer(&customer_name, &id_number, risk_level)?;
        Ok(vec![AccountEvent::AccountOpened {
            account_id,
            customer_name,
            id_number,
            risk_level,
        }])
    }

    pub(super) fn decide_deposit(
        &self,
        amount_cny: Decimal,
        bank_ref: BankRef,
        rules: &MarketRules,
    ) -> Result<Vec<AccountEvent>, Rejection> {
        check_cash_amount(amount_cny, rules)?;
        self.check_new_bank_ref(&bank_ref)?;
        self.cash
            .available_cny
            .checked_add(amount_cny)
            .ok_or_else(|| overflow("available cash"))?;
        let mut events = vec![AccountEvent::CashDeposited {
            amount_cny,
            bank_ref: bank_ref.clone(),
        }];
        events.extend(aml_flag(CashDirection::Deposit, amount_cny, bank_ref, rules));
        Ok(events)
    }

    pub(super) fn decide_withdraw(
        &self,
        amount_cny: Decimal,
        bank_ref: BankRef,
        rules: &MarketRules,
    ) -> Result<Vec<AccountEvent>, Rejection> {
        check_cash_amount(amount_cny, rules)?;
        self.check_not_frozen()?;
        self.check_new_bank_ref(&bank_ref)?;
        let withdrawable = self.cash.withdrawable_cny();
        if amount_cny > withdrawable {
            return reject(
                RejectCode::InsufficientFunds,
                format!("withdrawal of {amount_cny} exceeds the withdrawable {withdrawable}"),
            );
        }
        let mut events = vec![AccountEvent::WithdrawalRequested {
            amount_cny,
            bank_ref: bank_ref.clone(),
        }];
        events.extend(aml_flag(CashDirection::Withdrawal, amount_cny, bank_ref, rules));
        Ok(events)
    }

    pub(super) fn decide_confirm_withdrawal(&self, bank_ref: BankRef) -> Result<Vec<AccountEvent>, Rejection> {
        let amount_cny = self.pending_withdrawal(&bank_ref)?;
        Ok(vec![AccountEvent::WithdrawalConfirmed { amount_cny, bank_ref }])
    }

    pub(super) fn decide_fail_withdrawal(&self, bank_ref: BankRef) -> Result<Vec<AccountEvent>, Rejection> {
        let amount_cny = self.pending_withdrawal(&bank_ref)?;
        Ok(vec![AccountEvent::WithdrawalFailed { amount_cny, bank_ref }])
    }

    fn check_new_bank_ref(&self, bank_ref: &BankRef) -> Result<(), Rejection> {
        if self.used_bank_refs.contains(bank_ref) {
            return reject(
                RejectCode::DuplicateBankRef,
                format!("bank reference {bank_ref} was already used by this account"),
            );
        }
        Ok(())
    }

    fn pending_withdrawal(&self, bank_ref: &BankRef) -> Result<Decimal, Rejection> {
        match self.pending_withdrawals.get(bank_ref) {
            Some(amount) => Ok(*amount),
            None => reject(
                RejectCode::UnknownWithdrawal,
                format!("no pending withdrawal with bank reference {bank_ref}"),
            ),
        }
    }
}

/// AML: a movement at or above the threshold is flagged beside it, not refused.
fn aml_flag(
    direction: CashDirection,
    amount_cny: Decimal,
    bank_ref: BankRef,
    rules: &MarketRules,
) -> Option<AccountEvent> {
    (amount_cny >= rules.aml_threshold_cny).then_some(AccountEvent::LargeCashMovementFlagged {
        direction,
        amount_cny,
        threshold_cny: rules.aml_threshold_cny,
        bank_ref,
    })
}
