//! The bounds a command's values must keep whatever the state: a command outside
//! them is `malformed`, a fault of the command alone. Each is checked before any
//! state is looked at, by the aggregates and by the engine before it looks up the
//! command id, so a malformed command is answered the same wherever it is met
//! (and, as the parser's malformed lines, never recorded).

use rust_decimal::Decimal;

use crate::error::{reject, RejectCode, Rejection};
use crate::instrument::RISK_LEVELS;
use crate::money::is_whole_fen;
use crate::rules::MarketRules;

/// Quantity and price of an order or a fill within the rules' bounds, which also
/// keep `price × quantity` far inside `Decimal`'s range.
pub fn order_size(what: &str, quantity: u64, price: Decimal, rules: &MarketRules) -> Result<(), Rejection> {
    if quantity == 0 || quantity > rules.max_order_quantity {
        return reject(
            RejectCode::Malformed,
            format!(
                "{what} quantity must be 1 to {} shares, got {quantity}",
                rules.max_order_quantity
            ),
        );
    }
    price_in_bounds(&format!("{what} price"), price, rules)
}

/// A price above zero and at most the rules' largest.
pub fn price_in_bounds(what: &str, price: Decimal, rules: &MarketRules) -> Result<(), Rejection> {
    if price <= Decimal::ZERO || price > rules.max_price {
        return reject(
            RejectCode::Malformed,
            format!("{what} must be above 0 and at most {}, got {price}", rules.max_price),
        );
    }
    Ok(())
}

/// A deposit or withdrawal: positive, whole fen, at most the largest accepted movement.
pub fn cash_amount(amount_cny: Decimal, rules: &MarketRules) -> Result<(), Rejection> {
    if amount_cny <= Decimal::ZERO {
        return reject(
            RejectCode::Malformed,
            format!("amount must be positive, got {amount_cny}"),
        );
    }
    if !is_whole_fen(amount_cny) {
        return reject(
            RejectCode::Malformed,
            format!("amount {amount_cny} has more than 2 decimal places"),
        );
    }
    if amount_cny > rules.max_cash_amount_cny {
        return reject(
            RejectCode::Malformed,
            format!(
                "amount {amount_cny} is above the largest accepted movement {}",
                rules.max_cash_amount_cny
            ),
        );
    }
    Ok(())
}

/// A risk level of a customer or a product: 1 to 5.
pub fn risk_level(risk_level: u8) -> Result<(), Rejection> {
    if !RISK_LEVELS.contains(&risk_level) {
        return reject(
            RejectCode::Malformed,
            format!("risk_level must be 1 to 5, got {risk_level}"),
        );
    }
    Ok(())
}

/// A new customer: a risk level, a name and an id number that are not blank.
pub fn customer(customer_name: &str, id_number: &str, customer_risk_level: u8) -> Result<(), Rejection> {
    risk_level(customer_risk_level)?;
    if customer_name.trim().is_empty() || id_number.trim().is_empty() {
        return reject(RejectCode::Malformed, "customer_name and id_number must not be empty");
    }
    Ok(())
}

/// A listing: a risk level and a name that is not blank.
pub fn listing(name: &str, product_risk_level: u8) -> Result<(), Rejection> {
    risk_level(product_risk_level)?;
    if name.trim().is_empty() {
        return reject(RejectCode::Malformed, "name must not be empty");
    }
    Ok(())
}
