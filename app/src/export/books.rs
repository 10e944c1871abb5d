//! The account events as double-entry transactions that an accounting tool reads:
//! the postings of `ledger_domain::journal` (cash, in CNY) and, for fills, the
//! shares moved as commodities at cost between the customer and CSDC custody.
//!
//! A holding's cost is the cost basis of `ledger positions`: what its buys cost with
//! their fees, less the pro rata part each sell takes (the domain's `cost_of_sold`),
//! so a customer's securities account stands at the cost of what they hold.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use ledger_domain::account::cost_of_sold;
use ledger_domain::journal::{self, CSDC_CUSTODY};
use ledger_domain::{AccountEvent, Side};
use rust_decimal::Decimal;

use crate::AppError;

/// An account of the books, kept structured so that each tool's writer can spell a
/// customer's id in its own syntax.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Book {
    /// A house account, as the chart of docs/journal.md names it (`assets:bank:custody`).
    House(String),
    /// `liabilities:customers:<id>:cash`.
    CustomerCash(String),
    /// `liabilities:customers:<id>:securities`.
    CustomerSecurities(String),
}

impl Book {
    /// The account's name in the chart of docs/journal.md, with `id` standing for the
    /// customer's id as the tool spells it.
    pub fn path(&self, id: impl Fn(&str) -> String) -> String {
        match self {
            Book::House(name) => name.clone(),
            Book::CustomerCash(account) => journal::customer_cash(&id(account)),
            Book::CustomerSecurities(account) => journal::customer_securities(&id(account)),
        }
    }
}

/// What a posting moves: CNY, or shares of an instrument (its code, `600000.SH`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Commodity {
    Cny,
    Shares(String),
}

/// One line of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub book: Book,
    pub commodity: Commodity,
    /// CNY (debit positive), or shares (in positive).
    pub amount: Decimal,
    /// For shares: the cost they move at, in CNY, never negative (`@@` in both tools).
    pub cost_cny: Decimal,
}

/// One event that moved money or shares, as a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub date: NaiveDate,
    pub position: u64,
    pub event_type: String,
    pub account_id: String,
    pub command_id: String,
    pub narration: String,
    pub lines: Vec<Line>,
}

/// Shares of one instrument held by one customer, and what they cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Holding {
    shares: u64,
    cost_cny: Decimal,
}

/// The average cost of each holding, followed in log order.
#[derive(Debug, Default)]
pub struct Costs {
    holdings: BTreeMap<(String, String), Holding>,
}

impl Costs {
    /// The transaction of one account event, `None` for an event that moves no money.
    pub fn entry(
        &mut self,
        date: NaiveDate,
        recorded: &ledger_eventstore::RecordedEvent,
        event: &AccountEvent,
    ) -> Result<Option<Entry>, AppError> {
        let account_id = recorded.stream.aggregate_id.as_str();
        let mut lines = cash_lines(account_id, event);
        let narration = match event {
            AccountEvent::CashDeposited { amount_cny, bank_ref } => {
                format!("deposit {amount_cny:.2} CNY, bank reference {bank_ref}")
            }
            AccountEvent::WithdrawalConfirmed { amount_cny, bank_ref } => {
                format!("withdrawal {amount_cny:.2} CNY, bank reference {bank_ref}")
            }
            AccountEvent::FillBooked {
                order_id,
                exec_id,
                instrument,
                side,
                quantity,
                price,
                value_cny,
                fees,
                ..
            } => {
                let code = instrument.as_str();
                let fill = Fill {
                    side: *side,
                    quantity: *quantity,
                    cost_cny: *value_cny + fees.total_cny(),
                };
                let cost_cny = self.move_shares(account_id, code, fill, recorded.global_position)?;
                let shares = Decimal::from(*quantity);
                let (to_custody, to_customer) = match side {
                    Side::Buy => (shares, -shares),
                    Side::Sell => (-shares, shares),
                };
                for (book, amount) in [
                    (Book::House(CSDC_CUSTODY.to_owned()), to_custody),
                    (Book::CustomerSecurities(account_id.to_owned()), to_customer),
                ] {
                    lines.push(Line {
                        book,
                        commodity: Commodity::Shares(code.to_owned()),
                        amount,
                        cost_cny,
                    });
                }
                let side = match side {
                    Side::Buy => "buy",
                    Side::Sell => "sell",
                };
                format!("{side} {quantity} {code} at {price:.2}, order {order_id}, execution {exec_id}")
            }
            _ => return Ok(None),
        };
        Ok(Some(Entry {
            date,
            position: recorded.global_position,
            event_type: recorded.event_type.clone(),
            account_id: account_id.to_owned(),
            command_id: recorded.metadata.command_id.clone(),
            narration,
            lines,
        }))
    }

    /// Adds a buy to the holding at its cost (value and fees: the cost basis of
    /// `ledger positions`), or takes a sell out of it pro rata (the domain's
    /// `cost_of_sold`); returns the cost the shares move at.
    fn move_shares(&mut self, account_id: &str, code: &str, fill: Fill, position: u64) -> Result<Decimal, AppError> {
        let holding = self
            .holdings
            .entry((account_id.to_owned(), code.to_owned()))
            .or_default();
        match fill.side {
            Side::Buy => {
                holding.shares += fill.quantity;
                holding.cost_cny += fill.cost_cny;
                Ok(fill.cost_cny)
            }
            Side::Sell if fill.quantity > holding.shares => Err(AppError::InvalidInput(format!(
                "the log sells {} {code} of account {account_id} at position {position}, \
                 which holds {} (run `ledger verify`)",
                fill.quantity, holding.shares
            ))),
            Side::Sell => {
                let cost_cny = cost_of_sold(holding.cost_cny, holding.shares, fill.quantity);
                holding.shares -= fill.quantity;
                holding.cost_cny -= cost_cny;
                assert!(
                    holding.shares > 0 || holding.cost_cny.is_zero(),
                    "an empty holding costs nothing"
                );
                Ok(cost_cny)
            }
        }
    }
}

/// The postings of docs/journal.md (CNY), the customer's cash told apart from the house's accounts.
fn cash_lines(account_id: &str, event: &AccountEvent) -> Vec<Line> {
    let customer = journal::customer_cash(account_id);
    journal::postings(account_id, event)
        .into_iter()
        .map(|posting| Line {
            book: if posting.account == customer {
                Book::CustomerCash(account_id.to_owned())
            } else {
                Book::House(posting.account)
            },
            commodity: Commodity::Cny,
            amount: posting.amount_cny,
            cost_cny: Decimal::ZERO,
        })
        .collect()
}

/// What a fill moves of a holding: for a buy, `cost_cny` is its value and fees.
#[derive(Debug, Clone, Copy)]
struct Fill {
    side: Side,
    quantity: u64,
    cost_cny: Decimal,
}

/// Per book and commodity, the sum of the lines: (amount, cost in CNY).
#[derive(Debug, Default, Clone)]
pub struct Balances {
    sums: BTreeMap<(Book, Commodity), (Decimal, Decimal)>,
}

impl Balances {
    pub fn add(&mut self, entry: &Entry) {
        for line in &entry.lines {
            let sum = self
                .sums
                .entry((line.book.clone(), line.commodity.clone()))
                .or_default();
            sum.0 += line.amount;
            sum.1 += if line.amount.is_sign_negative() {
                -line.cost_cny
            } else {
                line.cost_cny
            };
        }
    }

    /// A customer's cash: what the journal owes them, negative (a credit).
    pub fn cash_of(&self, account_id: &str) -> Decimal {
        self.sums
            .get(&(Book::CustomerCash(account_id.to_owned()), Commodity::Cny))
            .map_or(Decimal::ZERO, |sum| sum.0)
    }

    /// Every balance that is not zero, as the lines of one opening transaction
    /// (which balances, because every entry summed into it did).
    pub fn opening_lines(&self) -> Vec<Line> {
        self.sums
            .iter()
            .filter(|(_, (amount, _))| !amount.is_zero())
            .map(|((book, commodity), (amount, cost))| Line {
                book: book.clone(),
                commodity: commodity.clone(),
                amount: *amount,
                cost_cny: cost.abs(),
            })
            .collect()
    }
}
