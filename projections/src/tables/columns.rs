//! How a read model table is described once: its columns, each with the value a row
//! gives it, from which the INSERT, the SELECT and the audit digest are all built.
//!
//! Values go to the database as typed binds: money as [`Money`] (NUMERIC on PostgreSQL,
//! exact decimal text on SQLite), dates as `chrono::NaiveDate` (sqlx's own codec) and
//! instants as [`RecordedAt`].

use chrono::{DateTime, NaiveDate, Utc};
use ledger_domain::money::{round_to_fen, FEN_DECIMAL_PLACES};
use ledger_eventstore::chain::format_recorded_at;
use rust_decimal::Decimal;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Postgres, Sqlite, Type};

/// An amount as the tables hold it: NUMERIC on PostgreSQL, and on SQLite, which has no
/// decimal type, the exact decimal as text (never a float, which would lose the fen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Money(pub Decimal);

/// Decimal places of an average cost per share.
pub(crate) const AVG_COST_DECIMAL_PLACES: u32 = 4;

impl Money {
    /// A booked amount: rounded to the fen and written with exactly two decimals.
    pub(crate) fn cny(amount_cny: Decimal) -> Self {
        let mut rounded = round_to_fen(amount_cny);
        rounded.rescale(FEN_DECIMAL_PLACES);
        Money(rounded)
    }

    /// An average cost per share, written with exactly four decimals.
    pub(crate) fn avg_cost(avg_cost_cny: Decimal) -> Self {
        let mut scaled = avg_cost_cny;
        scaled.rescale(AVG_COST_DECIMAL_PLACES);
        Money(scaled)
    }
}

impl Type<Postgres> for Money {
    fn type_info() -> <Postgres as Database>::TypeInfo {
        <Decimal as Type<Postgres>>::type_info()
    }
    fn compatible(ty: &<Postgres as Database>::TypeInfo) -> bool {
        <Decimal as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for Money {
    fn encode_by_ref(&self, buf: &mut <Postgres as Database>::ArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <Decimal as Encode<Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Money {
    fn decode(value: <Postgres as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        <Decimal as Decode<Postgres>>::decode(value).map(Money)
    }
}

impl Type<Sqlite> for Money {
    fn type_info() -> <Sqlite as Database>::TypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &<Sqlite as Database>::TypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl Encode<'_, Sqlite> for Money {
    fn encode_by_ref(&self, buf: &mut <Sqlite as Database>::ArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <String as Encode<Sqlite>>::encode(self.0.to_string(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Money {
    fn decode(value: <Sqlite as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<Sqlite>>::decode(value)?;
        Ok(Money(text.parse()?))
    }
}

/// When something was recorded: TIMESTAMPTZ on PostgreSQL; on SQLite the event store's
/// own text form (`format_recorded_at`), so alerts copied from command outcomes and
/// alerts written here read alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordedAt(pub DateTime<Utc>);

impl Type<Postgres> for RecordedAt {
    fn type_info() -> <Postgres as Database>::TypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }
    fn compatible(ty: &<Postgres as Database>::TypeInfo) -> bool {
        <DateTime<Utc> as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for RecordedAt {
    fn encode_by_ref(&self, buf: &mut <Postgres as Database>::ArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for RecordedAt {
    fn decode(value: <Postgres as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        <DateTime<Utc> as Decode<Postgres>>::decode(value).map(RecordedAt)
    }
}

impl Type<Sqlite> for RecordedAt {
    fn type_info() -> <Sqlite as Database>::TypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &<Sqlite as Database>::TypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl Encode<'_, Sqlite> for RecordedAt {
    fn encode_by_ref(&self, buf: &mut <Sqlite as Database>::ArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <String as Encode<Sqlite>>::encode(format_recorded_at(&self.0), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for RecordedAt {
    fn decode(value: <Sqlite as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<Sqlite>>::decode(value)?;
        Ok(RecordedAt(DateTime::parse_from_rfc3339(text)?.with_timezone(&Utc)))
    }
}

/// One value of one row, typed as its column is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cell<'a> {
    /// A BIGINT that Rust holds as a count or a position.
    Count(u64),
    Int(i64),
    Text(&'a str),
    OptionalText(Option<&'a str>),
    Money(Money),
    Date(NaiveDate),
    RecordedAt(RecordedAt),
}

impl Cell<'_> {
    /// The value as the audit digest compares it (`CAST(column AS TEXT)` on the table side).
    pub(crate) fn compared_text(&self) -> String {
        match self {
            Cell::Count(value) => value.to_string(),
            Cell::Int(value) => value.to_string(),
            Cell::Text(text) => (*text).to_owned(),
            Cell::OptionalText(text) => text.unwrap_or_default().to_owned(),
            Cell::Money(money) => money.0.to_string(),
            Cell::Date(date) => date.to_string(),
            Cell::RecordedAt(at) => format_recorded_at(&at.0),
        }
    }
}

/// Whether the audit compares a column with the replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audit {
    Compared,
    /// Backends print it differently (a TIMESTAMPTZ follows the session's time zone), or
    /// the log does not determine it (the position a runner batch ended at).
    NotCompared,
}

/// One column: its name, its part in the key, and the value a row gives it.
pub(crate) struct Column<R> {
    pub name: &'static str,
    pub key: bool,
    pub audit: Audit,
    pub value: for<'r> fn(&'r R) -> Cell<'r>,
}

impl<R> Column<R> {
    /// A column of the primary key.
    pub(crate) const fn key(name: &'static str, value: for<'r> fn(&'r R) -> Cell<'r>) -> Self {
        Column {
            name,
            key: true,
            audit: Audit::Compared,
            value,
        }
    }

    pub(crate) const fn data(name: &'static str, value: for<'r> fn(&'r R) -> Cell<'r>) -> Self {
        Column {
            name,
            key: false,
            audit: Audit::Compared,
            value,
        }
    }

    pub(crate) const fn not_compared(name: &'static str, value: for<'r> fn(&'r R) -> Cell<'r>) -> Self {
        Column {
            name,
            key: false,
            audit: Audit::NotCompared,
            value,
        }
    }
}

/// What an insert does when the row's key is there already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnConflict {
    /// Fail: the key is new by construction.
    Fail,
    /// Replace every other column with the new row's.
    Update,
    /// Keep the stored row (a rerun adds nothing twice).
    Ignore,
}

/// A read model table: its name, its columns in order, and what re-inserting a key does.
pub(crate) struct Table<R: 'static> {
    pub name: &'static str,
    pub columns: &'static [Column<R>],
    pub on_conflict: OnConflict,
    /// The rows of `name` this table description covers, when it shares the table.
    pub filter: Option<&'static str>,
}

impl<R> Table<R> {
    /// `INSERT INTO name (c1, c2, …) ` — the VALUES follow.
    pub(crate) fn insert_head(&self) -> String {
        format!("INSERT INTO {} ({}) ", self.name, self.names(|_| true).join(", "))
    }

    /// The upsert clause `on_conflict` asks for, or nothing.
    pub(crate) fn conflict_clause(&self) -> String {
        let keys = self.names(|c| c.key).join(", ");
        match self.on_conflict {
            OnConflict::Fail => String::new(),
            OnConflict::Ignore => format!(" ON CONFLICT ({keys}) DO NOTHING"),
            OnConflict::Update => {
                let updates: Vec<String> = self
                    .names(|c| !c.key)
                    .into_iter()
                    .map(|name| format!("{name} = excluded.{name}"))
                    .collect();
                format!(" ON CONFLICT ({keys}) DO UPDATE SET {}", updates.join(", "))
            }
        }
    }

    /// `SELECT c1, c2, … FROM name`, every column.
    pub(crate) fn select(&self) -> String {
        format!(
            "SELECT {} FROM {}{}",
            self.names(|_| true).join(", "),
            self.name,
            self.where_clause()
        )
    }

    /// `SELECT` of some of the columns, for a reader that needs only those.
    pub(crate) fn select_only(&self, names: &[&str]) -> String {
        assert!(
            names.iter().all(|name| self.columns.iter().any(|c| c.name == *name)),
            "{names:?} are not all columns of {}",
            self.name
        );
        format!("SELECT {} FROM {}{}", names.join(", "), self.name, self.where_clause())
    }

    /// Every compared column as text, as the audit digest reads them.
    pub(crate) fn select_compared_text(&self) -> String {
        let columns: Vec<String> = self
            .names(|c| c.audit == Audit::Compared)
            .into_iter()
            .map(|name| format!("CAST({name} AS TEXT)"))
            .collect();
        format!(
            "SELECT {} FROM {}{}",
            columns.join(", "),
            self.name,
            self.where_clause()
        )
    }

    /// A row's compared values as text, in the order of [`Table::select_compared_text`].
    pub(crate) fn compared_fields(&self, row: &R) -> Vec<String> {
        self.columns
            .iter()
            .filter(|c| c.audit == Audit::Compared)
            .map(|c| (c.value)(row).compared_text())
            .collect()
    }

    fn names(&self, keep: impl Fn(&Column<R>) -> bool) -> Vec<&'static str> {
        self.columns.iter().filter(|c| keep(c)).map(|c| c.name).collect()
    }

    fn where_clause(&self) -> String {
        self.filter.map(|filter| format!(" WHERE {filter}")).unwrap_or_default()
    }
}
