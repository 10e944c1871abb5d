//! Market rules as data: fee schedule, boards (price limits, lots), tick, AML threshold, limits,
//! and the trading calendar.
//!
//! The default market is China A-shares, loaded from `rules/cn-a-share.toml`
//! (built into the binary). Another market is another file with the same shape.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use strum::IntoEnumIterator;

use crate::calendar::TradingCalendar;
use crate::market::Board;
use crate::money::is_whole_fen;

/// The built-in default rules file.
pub const CN_A_SHARE_TOML: &str = include_str!("../rules/cn-a-share.toml");

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RulesError {
    #[error("market rules file is not valid TOML for the rules schema: {0}")]
    Parse(String),
    #[error("market rules are inconsistent: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketRules {
    pub name: String,
    pub currency: String,
    pub price_tick: Decimal,
    pub aml_threshold_cny: Decimal,
    pub max_cash_amount_cny: Decimal,
    pub max_order_quantity: u64,
    pub max_price: Decimal,
    pub fees: FeeSchedule,
    pub boards: BTreeMap<Board, BoardRules>,
    pub calendar: TradingCalendar,
}

/// One rule per fee kind; each becomes its own field in fill events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeSchedule {
    pub commission: FeeRule,
    pub stamp_duty: FeeRule,
    pub transfer_fee: FeeRule,
    pub handling_fee: FeeRule,
    pub regulatory_fee: FeeRule,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeRule {
    /// Fraction of trade value, e.g. `0.00025` for 0.025 %.
    pub rate: Decimal,
    /// Least total an order pays for this fee once it has any fill.
    pub minimum_cny: Decimal,
    pub on_buy: bool,
    pub on_sell: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardRules {
    /// Daily limit as a fraction of the previous close, e.g. `0.10`.
    pub price_limit_rate: Decimal,
    pub min_quantity: u64,
    pub step_quantity: u64,
}

impl MarketRules {
    /// The built-in China A-share rules.
    pub fn china_a_share() -> Result<Self, RulesError> {
        Self::from_toml(CN_A_SHARE_TOML)
    }

    /// Parses and validates a rules file.
    pub fn from_toml(text: &str) -> Result<Self, RulesError> {
        let rules: MarketRules = toml::from_str(text).map_err(|e| RulesError::Parse(e.to_string()))?;
        rules.validate()?;
        Ok(rules)
    }

    /// Rules for a board. Every board has rules once `validate` passed.
    pub fn board(&self, board: Board) -> &BoardRules {
        // validate() guarantees all boards are present; index cannot fail afterwards.
        &self.boards[&board]
    }

    fn validate(&self) -> Result<(), RulesError> {
        let invalid = |what: String| Err(RulesError::Invalid(what));
        // A tick of whole fen keeps every price and every trade value whole fen, the one
        // spelling of money in events (money::canonical_fen).
        if self.price_tick <= Decimal::ZERO || !is_whole_fen(self.price_tick) {
            return invalid(format!(
                "price_tick must be a positive whole number of fen (0.01, 0.05, …), got {}",
                self.price_tick
            ));
        }
        if self.aml_threshold_cny <= Decimal::ZERO || !is_whole_fen(self.aml_threshold_cny) {
            return invalid("aml_threshold_cny must be a positive amount in fen".into());
        }
        if self.max_cash_amount_cny <= Decimal::ZERO || self.max_price <= Decimal::ZERO {
            return invalid("max_cash_amount_cny and max_price must be positive".into());
        }
        if self.max_order_quantity == 0 {
            return invalid("max_order_quantity must be positive".into());
        }
        for (name, fee) in self.fees.named() {
            if fee.rate < Decimal::ZERO || fee.rate >= Decimal::ONE {
                return invalid(format!("fee {name}: rate must be in [0, 1), got {}", fee.rate));
            }
            if fee.minimum_cny < Decimal::ZERO || !is_whole_fen(fee.minimum_cny) {
                return invalid(format!("fee {name}: minimum_cny must be a non-negative amount in fen"));
            }
        }
        for board in Board::iter() {
            let Some(rules) = self.boards.get(&board) else {
                return invalid(format!("board {board} has no rules"));
            };
            if rules.price_limit_rate <= Decimal::ZERO || rules.price_limit_rate >= Decimal::ONE {
                return invalid(format!("board {board}: price_limit_rate must be in (0, 1)"));
            }
            if rules.min_quantity == 0 || rules.step_quantity == 0 {
                return invalid(format!(
                    "board {board}: min_quantity and step_quantity must be positive"
                ));
            }
        }
        self.calendar.validate().or_else(|e| invalid(format!("calendar: {e}")))
    }
}

impl FeeSchedule {
    /// The fee rules with their names, in the order of `FeeBreakdown`'s fields.
    pub fn named(&self) -> [(&'static str, &FeeRule); 5] {
        [
            ("commission", &self.commission),
            ("stamp_duty", &self.stamp_duty),
            ("transfer_fee", &self.transfer_fee),
            ("handling_fee", &self.handling_fee),
            ("regulatory_fee", &self.regulatory_fee),
        ]
    }
}

impl BoardRules {
    /// `min_quantity + k × step_quantity` for some k ≥ 0.
    pub fn is_valid_lot(&self, quantity_shares: u64) -> bool {
        quantity_shares >= self.min_quantity && (quantity_shares - self.min_quantity).is_multiple_of(self.step_quantity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn default_rules_parse_and_hold_the_contract_figures() {
        let rules = MarketRules::china_a_share().unwrap();
        assert_eq!(rules.fees.commission.rate, dec!(0.00025));
        assert_eq!(rules.fees.commission.minimum_cny, dec!(5.00));
        assert!(!rules.fees.stamp_duty.on_buy && rules.fees.stamp_duty.on_sell);
        assert_eq!(rules.board(Board::Star).min_quantity, 200);
        assert_eq!(rules.board(Board::St).price_limit_rate, dec!(0.05));
        assert_eq!(rules.aml_threshold_cny, dec!(500000.00));
    }

    #[test]
    fn inconsistent_rules_are_refused() {
        let broken = CN_A_SHARE_TOML.replace("price_tick = \"0.01\"", "price_tick = \"0\"");
        assert!(matches!(MarketRules::from_toml(&broken), Err(RulesError::Invalid(_))));
        // A tick below the fen would make trade values that are not whole fen.
        let below_fen = CN_A_SHARE_TOML.replace("price_tick = \"0.01\"", "price_tick = \"0.001\"");
        assert!(
            matches!(MarketRules::from_toml(&below_fen), Err(RulesError::Invalid(w)) if w.contains("whole number of fen"))
        );
        let nickel = CN_A_SHARE_TOML.replace("price_tick = \"0.01\"", "price_tick = \"0.05\"");
        assert!(MarketRules::from_toml(&nickel).is_ok());
        let missing_board = CN_A_SHARE_TOML.replace("[boards.st]", "[boards.stx]");
        assert!(MarketRules::from_toml(&missing_board).is_err());
        assert!(matches!(MarketRules::from_toml("name = 1"), Err(RulesError::Parse(_))));
    }

    #[test]
    fn lots() {
        let rules = MarketRules::china_a_share().unwrap();
        let main = rules.board(Board::Main);
        assert!(main.is_valid_lot(100) && main.is_valid_lot(4500));
        assert!(!main.is_valid_lot(4506) && !main.is_valid_lot(0) && !main.is_valid_lot(50));
        let star = rules.board(Board::Star);
        assert!(star.is_valid_lot(200) && star.is_valid_lot(329));
        assert!(!star.is_valid_lot(199) && !star.is_valid_lot(100));
    }
}
