//! The answers of the read routes as the OpenAPI document describes them: the same
//! fields as the `ledger_app` rows they stand for (which do not depend on utoipa).

use serde::Serialize;
use utoipa::ToSchema;

/// A balance row (`ledger balances --json`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Balance)]
pub struct BalanceDoc {
    pub account_id: String,
    /// `CNY`.
    pub currency: String,
    /// Two decimals, as every amount.
    pub available: String,
    pub frozen: String,
    pub unsettled: String,
    /// max(0, available − unsettled).
    pub withdrawable: String,
}

/// A position row (`ledger positions --json`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Position)]
pub struct PositionDoc {
    pub account_id: String,
    pub instrument: String,
    pub quantity: u64,
    pub frozen: u64,
    pub sellable: u64,
    /// Cost including buy fees per share, 4 decimals.
    pub avg_cost: String,
}

/// An order of the blotter (`ledger orders --json`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Order)]
pub struct OrderDoc {
    pub account_id: String,
    pub order_id: String,
    pub trade_date: String,
    pub instrument: String,
    /// `buy` or `sell`.
    pub side: String,
    pub quantity: u64,
    pub limit_price_cny: String,
    pub filled_quantity: u64,
    /// `open`, `cancel_requested`, `filled`, `canceled`, `rejected` or `expired`.
    pub status: String,
}

/// A trade of the blotter (`ledger trades --json`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = TradeRow)]
pub struct TradeDoc {
    pub global_position: u64,
    pub trade_date: String,
    pub account_id: String,
    pub order_id: String,
    pub exec_id: String,
    pub instrument: String,
    pub side: String,
    pub quantity: u64,
    pub price_cny: String,
    pub value_cny: String,
    pub commission_cny: String,
    pub stamp_duty_cny: String,
    pub transfer_fee_cny: String,
    pub handling_fee_cny: String,
    pub regulatory_fee_cny: String,
    pub fees_cny: String,
    pub net_cash_cny: String,
}

/// A compliance alert; the fields of the other kind are null.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Alert)]
pub struct AlertDoc {
    /// `event:<global_position>` or `command:<command_id>`.
    pub alert_id: String,
    /// `large_cash_movement` or `suitability_refused`.
    pub kind: String,
    pub account_id: String,
    pub global_position: Option<u64>,
    pub command_id: Option<String>,
    pub direction: Option<String>,
    pub amount_cny: Option<String>,
    pub threshold_cny: Option<String>,
    pub bank_ref: Option<String>,
    pub message: Option<String>,
    /// RFC 3339.
    pub recorded_at: String,
}

/// Pages, named for the OpenAPI document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PositionPage {
    pub rows: Vec<PositionDoc>,
    /// `ACCOUNT,INSTRUMENT` of the last row; null when the page is empty.
    pub next_after: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderPage {
    pub rows: Vec<OrderDoc>,
    /// `ACCOUNT,ORDER` of the last row; null when the page is empty.
    pub next_after: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TradePage {
    pub rows: Vec<TradeDoc>,
    /// The last row's global position, as text; null when the page is empty.
    pub next_after: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertPage {
    pub rows: Vec<AlertDoc>,
    /// The last row's alert id; null when the page is empty.
    pub next_after: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BalancePage {
    pub rows: Vec<BalanceDoc>,
    /// The last row's account id; null when the page is empty.
    pub next_after: Option<String>,
}
