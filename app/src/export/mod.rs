//! `ledger export`: the log for auditors' own tools. `jsonl` is the log itself (the
//! CloudEvents envelope of docs/events.md, hashes included, what `ledger import`
//! reads back); `hledger` and `beancount` are the double-entry journal of
//! docs/journal.md, with the shares at cost and the customers' cash asserted at the
//! end of each business day (docs/export.md).

mod beancount;
mod books;
mod hledger;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use chrono::{NaiveDate, TimeDelta};
use ledger_domain::{AccountEvent, MarketRules};
use ledger_eventstore::codec::decode;
use ledger_eventstore::{read_towards, EventStore, RecordedEvent, StreamId, MAX_READ_EVENTS};
use ledger_projections::business_date::BusinessDates;
use ledger_projections::ProjectionError;

use crate::stream::{envelope_for, EventFilter, ACCOUNT_STREAM};
use crate::AppError;
use books::{Balances, Book, Commodity, Costs, Entry, Line};

/// The formats of `ledger export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::Display, strum::VariantNames)]
#[strum(serialize_all = "lowercase")]
pub enum ExportFormat {
    /// The log, one CloudEvents envelope a line, hashes included.
    Jsonl,
    /// An hledger journal.
    Hledger,
    /// A Beancount file.
    Beancount,
}

/// What to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRequest {
    pub format: ExportFormat,
    /// First business date included (the beginning when `None`).
    pub from: Option<NaiveDate>,
    /// Last business date included (the end when `None`).
    pub to: Option<NaiveDate>,
    /// Only these customers' accounts (every account when empty; then the instruments'
    /// and the clearing days' events too, in `jsonl`).
    pub accounts: Vec<String>,
}

/// What an export wrote, and the log it was taken from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// Events written (`jsonl`) or transactions written (the journals).
    pub written: u64,
    /// The last position of the log the export read.
    pub head_position: u64,
    /// That event's hash (the genesis hash for an empty log).
    pub head_hash: String,
}

/// The log's head when the export began, which every line of the export stops at.
struct Head {
    position: u64,
    hash: String,
}

/// China Standard Time (UTC+8, no daylight saving), which dates an event the ledger
/// gave no business date to.
const CHINA_STANDARD_TIME_HOURS: i64 = 8;

/// Writes the export `request` asks for to `out`.
pub async fn export(
    store: &dyn EventStore,
    rules: &MarketRules,
    source: &str,
    request: &ExportRequest,
    out: &mut dyn Write,
) -> Result<ExportSummary, AppError> {
    if let (Some(from), Some(to)) = (request.from, request.to) {
        if from > to {
            return Err(AppError::InvalidInput(format!(
                "the export starts on {from}, after its end on {to}"
            )));
        }
    }
    let filter = EventFilter::new(&[], &request.accounts)?;
    for account in &request.accounts {
        if store
            .load_stream(&StreamId::new(ACCOUNT_STREAM, account.clone()))
            .await?
            .is_empty()
        {
            return Err(AppError::UnknownAccount(account.clone()));
        }
    }
    let head_position = store.head_position().await?;
    let head = Head {
        position: head_position,
        hash: crate::hash_at(store, head_position, head_position)
            .await?
            .ok_or_else(|| AppError::InvalidInput(format!("the event at the head ({head_position}) cannot be read")))?,
    };
    let dates = BusinessDates::of_log(store, &rules.calendar).await?;
    let window = Window {
        from: request.from,
        to: request.to,
    };
    let scope = Scope { filter, dates, window };
    let written = match request.format {
        ExportFormat::Jsonl => write_jsonl(store, &scope, &head, source, out).await?,
        ExportFormat::Hledger | ExportFormat::Beancount => {
            let journal = collect_journal(store, &scope, &head).await?;
            let written = journal.entry_count();
            let result = if request.format == ExportFormat::Hledger {
                hledger::write(out, &journal)
            } else {
                beancount::write(out, &journal)
            };
            result.map_err(|cause| AppError::Output {
                what: "the journal",
                cause,
            })?;
            written
        }
    };
    Ok(ExportSummary {
        written,
        head_position: head.position,
        head_hash: head.hash,
    })
}

/// How one tool spells the accounts and commodities of the journal.
trait Spelling {
    /// Indentation of a posting under its transaction.
    const INDENT: &'static str;
    fn account(book: &Book) -> String;
    fn commodity(commodity: &Commodity) -> String;
}

/// The first lines of either file: what it is, and the log it was taken from.
fn write_provenance(out: &mut dyn Write, journal: &Journal) -> std::io::Result<()> {
    writeln!(
        out,
        "; The ledger's double-entry journal (docs/journal.md), exported by `ledger export`."
    )?;
    writeln!(
        out,
        "; From the log through position {}, head hash {}.",
        journal.head_position, journal.head_hash
    )
}

/// A transaction's postings: CNY, or shares at their cost as a total price (`@@`),
/// which both tools read alike.
fn write_lines<S: Spelling>(out: &mut dyn Write, lines: &[Line]) -> std::io::Result<()> {
    for line in lines {
        let account = S::account(&line.book);
        match &line.commodity {
            Commodity::Cny => writeln!(out, "{}{account}  {:.2} CNY", S::INDENT, line.amount)?,
            shares @ Commodity::Shares(_) => writeln!(
                out,
                "{}{account}  {} {} @@ {:.2} CNY",
                S::INDENT,
                line.amount,
                S::commodity(shares),
                line.cost_cny
            )?,
        }
    }
    Ok(())
}

/// The business dates an export covers, both ends included.
#[derive(Debug, Clone, Copy)]
struct Window {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

impl Window {
    fn is_before(&self, date: NaiveDate) -> bool {
        self.from.is_some_and(|from| date < from)
    }

    fn is_after(&self, date: NaiveDate) -> bool {
        self.to.is_some_and(|to| date > to)
    }
}

struct Scope {
    filter: EventFilter,
    dates: BusinessDates,
    window: Window,
}

impl Scope {
    /// An event's business date (docs/events.md, "Business dates"); one the ledger
    /// decided before it named any trade date is dated by its recorded time in
    /// China Standard Time.
    fn date_of(&self, recorded: &RecordedEvent) -> NaiveDate {
        self.dates.date_of(recorded).unwrap_or_else(|| {
            let recorded_at = recorded.metadata.recorded_at;
            recorded_at
                .checked_add_signed(TimeDelta::hours(CHINA_STANDARD_TIME_HOURS))
                .unwrap_or(recorded_at)
                .date_naive()
        })
    }
}

/// Calls `visit` on every event of the log up to the head, in log order.
async fn for_each_event(
    store: &dyn EventStore,
    head: &Head,
    mut visit: impl FnMut(&RecordedEvent) -> Result<(), AppError>,
) -> Result<(), AppError> {
    let mut after = 0;
    while after < head.position {
        let events = read_towards(store, after, head.position, MAX_READ_EVENTS).await?;
        let Some(last) = events.last() else { break };
        after = last.global_position;
        for event in events.iter().filter(|e| e.global_position <= head.position) {
            visit(event)?;
        }
    }
    Ok(())
}

async fn write_jsonl(
    store: &dyn EventStore,
    scope: &Scope,
    head: &Head,
    source: &str,
    out: &mut dyn Write,
) -> Result<u64, AppError> {
    let mut written = 0;
    let output = |cause| AppError::Output {
        what: "the export",
        cause,
    };
    for_each_event(store, head, |event| {
        let date = scope.date_of(event);
        if !scope.filter.matches(event) || scope.window.is_before(date) || scope.window.is_after(date) {
            return Ok(());
        }
        serde_json::to_writer(&mut *out, &envelope_for(event, source, None)).map_err(|e| output(e.into()))?;
        writeln!(out).map_err(output)?;
        written += 1;
        Ok(())
    })
    .await?;
    Ok(written)
}

/// The journal of an export, in the order both tools' files are written.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    /// The log the export was taken from.
    head_position: u64,
    head_hash: String,
    /// The balances before the first business date, when the export starts later
    /// than the log does.
    opening: Option<(NaiveDate, Vec<Line>)>,
    /// Each business date's transactions, in log order, and then the cash of the
    /// customers to assert at its end: those whose cash moved that day, and on the
    /// last day every customer of the export.
    days: BTreeMap<NaiveDate, Day>,
    books: BTreeSet<Book>,
    commodities: BTreeSet<Commodity>,
}

#[derive(Debug, Default)]
pub(crate) struct Day {
    entries: Vec<Entry>,
    /// (customer's account id, their cash in the journal: negative, a credit).
    closing_cash: Vec<(String, rust_decimal::Decimal)>,
}

impl Journal {
    fn entry_count(&self) -> u64 {
        self.days.values().map(|day| day.entries.len() as u64).sum()
    }

    /// The first date the files use (their accounts open on it).
    fn first_date(&self) -> Option<NaiveDate> {
        let first_day = self.days.keys().next().copied();
        match (&self.opening, first_day) {
            (Some((opening, _)), Some(day)) => Some((*opening).min(day)),
            (Some((opening, _)), None) => Some(*opening),
            (None, day) => day,
        }
    }
}

async fn collect_journal(store: &dyn EventStore, scope: &Scope, head: &Head) -> Result<Journal, AppError> {
    let mut costs = Costs::default();
    let mut opening = Balances::default();
    let mut journal = Journal {
        head_position: head.position,
        head_hash: head.hash.clone(),
        ..Journal::default()
    };
    let mut customers = BTreeSet::new();
    for_each_event(store, head, |recorded| {
        if recorded.stream.aggregate_type != ACCOUNT_STREAM || !scope.filter.matches(recorded) {
            return Ok(());
        }
        let date = scope.date_of(recorded);
        if scope.window.is_after(date) {
            return Ok(());
        }
        customers.insert(recorded.stream.aggregate_id.clone());
        let event: AccountEvent = decode(recorded).map_err(ProjectionError::from)?;
        let Some(entry) = costs.entry(date, recorded, &event)? else {
            if !scope.window.is_before(date) {
                journal.days.entry(date).or_default();
            }
            return Ok(());
        };
        if scope.window.is_before(date) {
            opening.add(&entry);
        } else {
            journal.days.entry(date).or_default().entries.push(entry);
        }
        Ok(())
    })
    .await?;
    assert_closing_cash(&mut journal, opening.clone(), &customers);
    if let Some(from) = scope.window.from {
        let lines = opening.opening_lines();
        if !lines.is_empty() {
            journal.opening = Some((from, lines));
        }
    }
    let lines = journal.opening.iter().flat_map(|(_, lines)| lines).chain(
        journal
            .days
            .values()
            .flat_map(|day| day.entries.iter().flat_map(|e| &e.lines)),
    );
    for line in lines {
        journal.books.insert(line.book.clone());
        journal.commodities.insert(line.commodity.clone());
    }
    journal
        .books
        .extend(customers.iter().map(|id| Book::CustomerCash(id.clone())));
    journal.commodities.insert(Commodity::Cny);
    Ok(journal)
}

/// Each day in date order (then log order within the day: the order both tools check
/// assertions in), the customers whose cash moved that day, at the day's end; on the
/// last day, every customer of the export.
fn assert_closing_cash(journal: &mut Journal, mut balances: Balances, customers: &BTreeSet<String>) {
    let last = journal.days.keys().next_back().copied();
    for (date, day) in &mut journal.days {
        let mut moved = BTreeSet::new();
        for entry in &day.entries {
            balances.add(entry);
            moved.insert(entry.account_id.clone());
        }
        let asserted = if Some(*date) == last { customers } else { &moved };
        day.closing_cash = asserted.iter().map(|id| (id.clone(), balances.cash_of(id))).collect();
    }
}
