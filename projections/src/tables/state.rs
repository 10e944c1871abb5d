//! `projection_account_state`: the runner's working state, each account's state as
//! the domain's versioned `AccountSnapshot` in JSON (not the aggregate's private
//! form, which may change freely). `encode_state` and `decode_state` are the one
//! place that knows the stored form; a snapshot of another version is refused as
//! corrupt, never guessed at (migration 0007 emptied the older form).

use std::collections::BTreeMap;

use ledger_domain::account::{Account, AccountSnapshot};
use sqlx::QueryBuilder;

use super::backend::{insert_rows, push_list, Backend, MAX_ROWS_PER_STATEMENT};
use super::columns::{Cell, Column, OnConflict, Table};
use crate::ProjectionError;

/// An account's state as stored.
pub(crate) fn encode_state(account_id: &str, account: &Account) -> Result<String, ProjectionError> {
    serde_json::to_string(&account.snapshot_view())
        .map_err(|e| ProjectionError::Corrupt(format!("state of {account_id}: {e}")))
}

/// An account's state from its stored form.
pub(crate) fn decode_state(account_id: &str, stored: &str) -> Result<Account, ProjectionError> {
    let snapshot: AccountSnapshot =
        serde_json::from_str(stored).map_err(|e| ProjectionError::Corrupt(format!("state of {account_id}: {e}")))?;
    Account::from_snapshot(snapshot).map_err(|e| ProjectionError::Corrupt(format!("state of {account_id}: {e}")))
}

/// A row of `projection_account_state`.
pub(crate) struct StoredState {
    pub account_id: String,
    pub state: String,
}

pub(crate) const ACCOUNT_STATES: Table<StoredState> = Table {
    name: "projection_account_state",
    on_conflict: OnConflict::Update,
    filter: None,
    columns: &[
        Column::key("account_id", |s| Cell::Text(&s.account_id)),
        Column::data("state", |s| Cell::Text(&s.state)),
    ],
};

/// The stored states of these accounts; an account never seen has none.
pub(crate) async fn read<DB: Backend>(
    conn: &mut DB::Connection,
    account_ids: &[&String],
) -> Result<BTreeMap<String, Account>, ProjectionError> {
    let mut states = BTreeMap::new();
    for chunk in account_ids.chunks(MAX_ROWS_PER_STATEMENT) {
        let mut query = QueryBuilder::<DB>::new(ACCOUNT_STATES.select());
        query.push(" WHERE account_id IN ");
        let ids: Vec<Cell<'_>> = chunk.iter().map(|id| Cell::Text(id)).collect();
        push_list(&mut query, &ids)?;
        for row in DB::fetch_all(conn, &mut query).await? {
            let account_id = DB::text(&row, "account_id")?;
            let state = decode_state(&account_id, &DB::text(&row, "state")?)?;
            states.insert(account_id, state);
        }
    }
    Ok(states)
}

/// Inserts or replaces the states of these accounts.
pub(crate) async fn write<DB: Backend>(
    conn: &mut DB::Connection,
    accounts: &BTreeMap<String, Account>,
) -> Result<(), ProjectionError> {
    let states = accounts
        .iter()
        .map(|(account_id, account)| {
            Ok(StoredState {
                account_id: account_id.clone(),
                state: encode_state(account_id, account)?,
            })
        })
        .collect::<Result<Vec<_>, ProjectionError>>()?;
    insert_rows::<DB, _>(conn, &ACCOUNT_STATES, &states).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_round_trips_through_its_stored_form() {
        let account = Account::default();
        let stored = encode_state("A1", &account).unwrap();
        assert!(stored.contains("\"version\":1"), "{stored}");
        let restored = decode_state("A1", &stored).unwrap();
        assert_eq!(restored.to_snapshot(), account.to_snapshot());
    }

    #[test]
    fn a_state_of_another_version_or_the_old_form_is_refused_as_corrupt() {
        let stored = encode_state("A1", &Account::default()).unwrap();
        let newer = stored.replace("\"version\":1", "\"version\":2");
        assert!(
            matches!(decode_state("A1", &newer), Err(ProjectionError::Corrupt(message)) if message.contains("version 2"))
        );
        // The aggregate's own serialization, as rows written before migration 0007 held it.
        let old_form = serde_json::to_string(&Account::default()).unwrap();
        assert!(matches!(
            decode_state("A1", &old_form),
            Err(ProjectionError::Corrupt(_))
        ));
    }
}
