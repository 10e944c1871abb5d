//! `projection_checkpoints`: how far each projection has got.

use sqlx::QueryBuilder;

use sqlx::Pool;

use super::backend::{connection, insert_rows, push_list, Backend, Operation};
use super::columns::{Cell, Column, OnConflict, Table};
use crate::ProjectionError;

/// The name of the accounts projection's checkpoint.
pub const ACCOUNTS_PROJECTION: &str = "accounts";
/// The position `projection_account_state` reflects, at or behind the accounts
/// checkpoint (see `state_cache`).
pub(crate) const ACCOUNT_STATES: &str = "account_states";
/// The checkpoint of the refused-suitability alerts. Refusals write no event, so its
/// position is not a log position: it counts the refusals covered by the last pass.
pub const REFUSAL_ALERTS: &str = "refusal_alerts";

/// A row of `projection_checkpoints`.
pub(crate) struct Checkpoint<'a> {
    pub name: &'a str,
    pub position: u64,
}

pub(crate) const CHECKPOINTS: Table<Checkpoint<'static>> = Table {
    name: "projection_checkpoints",
    on_conflict: OnConflict::Update,
    filter: None,
    columns: &[
        Column::key("name", |c| Cell::Text(c.name)),
        Column::data("position", |c| Cell::Count(c.position)),
    ],
};

/// The position of checkpoint `name`, 0 if it was never set. `lock` keeps the row
/// locked until the transaction ends.
pub(crate) async fn read<DB: Backend>(
    conn: &mut DB::Connection,
    name: &str,
    lock: bool,
) -> Result<u64, ProjectionError> {
    let suffix = if lock { DB::LOCK_ROWS } else { "" };
    Ok(read_row::<DB>(conn, name, suffix).await?.unwrap_or(0))
}

/// The position of checkpoint `name`, `None` if it was never set; nobody moves it until
/// the transaction ends.
pub(crate) async fn read_shared<DB: Backend>(
    conn: &mut DB::Connection,
    name: &str,
) -> Result<Option<u64>, ProjectionError> {
    read_row::<DB>(conn, name, DB::SHARE_ROWS).await
}

/// The position of checkpoint `name`, `None` if it was never set.
pub(crate) async fn read_optional<DB: Backend>(
    conn: &mut DB::Connection,
    name: &str,
) -> Result<Option<u64>, ProjectionError> {
    read_row::<DB>(conn, name, "").await
}

async fn read_row<DB: Backend>(
    conn: &mut DB::Connection,
    name: &str,
    lock_suffix: &'static str,
) -> Result<Option<u64>, ProjectionError> {
    let mut query = QueryBuilder::<DB>::new(CHECKPOINTS.select_only(&["position"]));
    query.push(" WHERE name = ");
    DB::bind_cell(&mut query, Cell::Text(name))?;
    query.push(lock_suffix);
    match DB::fetch_all(conn, &mut query).await?.first() {
        Some(row) => DB::count(row, "position").map(Some),
        None => Ok(None),
    }
}

/// Sets checkpoint `name` to `position`.
pub(crate) async fn set<DB: Backend>(
    conn: &mut DB::Connection,
    name: &'static str,
    position: u64,
) -> Result<(), ProjectionError> {
    insert_rows::<DB, _>(conn, &CHECKPOINTS, &[Checkpoint { name, position }]).await
}

/// The position of checkpoint `name` (0 if it was never set), its row created if need be
/// and locked until the transaction ends.
pub(crate) async fn lock<DB: Backend>(conn: &mut DB::Connection, name: &'static str) -> Result<u64, ProjectionError> {
    ensure::<DB>(conn, name).await?;
    read::<DB>(conn, name, true).await
}

/// Makes sure checkpoint `name` has a row (at 0), so it can be locked.
pub(crate) async fn ensure<DB: Backend>(conn: &mut DB::Connection, name: &'static str) -> Result<(), ProjectionError> {
    let mut query = QueryBuilder::<DB>::new(CHECKPOINTS.insert_head());
    query.push("VALUES ");
    push_list(&mut query, &[Cell::Text(name), Cell::Count(0)])?;
    query.push(" ON CONFLICT (name) DO NOTHING");
    DB::execute(conn, &mut query).await
}

/// Removes these checkpoints: their projections start from zero.
pub(crate) async fn remove<DB: Backend>(
    conn: &mut DB::Connection,
    names: &[&'static str],
) -> Result<(), ProjectionError> {
    let mut query = QueryBuilder::<DB>::new("DELETE FROM projection_checkpoints WHERE name IN ");
    let cells: Vec<Cell<'_>> = names.iter().map(|name| Cell::Text(name)).collect();
    push_list(&mut query, &cells)?;
    DB::execute(conn, &mut query).await
}

/// The checkpoint of a reader outside the read models (a relay), named at run time.
pub(crate) struct ReadNamed<'a>(pub &'a str);

impl Operation for ReadNamed<'_> {
    type Output = u64;

    async fn run<DB: Backend>(self, pool: &Pool<DB>) -> Result<u64, ProjectionError> {
        read::<DB>(&mut *connection(pool).await?, self.0, false).await
    }
}

/// Sets the checkpoint of a reader outside the read models: never backwards unless
/// `backwards` (a reader that learns its target lost what it had acknowledged).
pub(crate) struct SetNamed<'a> {
    pub name: &'a str,
    pub position: u64,
    pub backwards: bool,
}

impl Operation for SetNamed<'_> {
    type Output = ();

    async fn run<DB: Backend>(self, pool: &Pool<DB>) -> Result<(), ProjectionError> {
        let mut query = QueryBuilder::<DB>::new(CHECKPOINTS.insert_head());
        query.push("VALUES ");
        push_list(&mut query, &[Cell::Text(self.name), Cell::Count(self.position)])?;
        query.push(" ON CONFLICT (name) DO UPDATE SET position = excluded.position");
        if !self.backwards {
            query.push(" WHERE projection_checkpoints.position < excluded.position");
        }
        DB::execute(&mut *connection(pool).await?, &mut query).await
    }
}
