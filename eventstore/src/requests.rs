//! The request digests behind the HTTP API's idempotency keys (`command_requests`):
//! which canonical body was first sent under a command id. Kept beside the
//! idempotency records, not in them: `command_outcomes` is the log's, written in
//! the append's transaction, and a command file has no request body to remember.

use std::collections::HashMap;

use sqlx::{QueryBuilder, Row};

use crate::database::Database;
use crate::records::StoreError;
use crate::store::{check_limit, MAX_OUTCOME_LOOKUPS};

/// Most command ids one call binds or releases.
pub const MAX_REQUEST_BINDINGS: usize = MAX_OUTCOME_LOOKUPS;
/// Rows per statement: two parameters each, well under either backend's limit.
const BINDINGS_PER_STATEMENT: usize = 500;

/// Records each `(command_id, body_sha256)` whose command id has no digest yet (the
/// first of a command id given twice wins), then returns the digest each command id
/// is bound to: its own, or the one a request before it left.
pub async fn bind_request_digests(
    database: &Database,
    requests: &[(String, String)],
) -> Result<HashMap<String, String>, StoreError> {
    check_limit("command ids in one binding", requests.len(), MAX_REQUEST_BINDINGS)?;
    let mut bound = HashMap::new();
    for chunk in requests.chunks(BINDINGS_PER_STATEMENT) {
        match database {
            Database::Sqlite(pool) => {
                insert_query(chunk).build().execute(pool).await?;
                for row in select_query(chunk).build().fetch_all(pool).await? {
                    bound.insert(row.try_get("command_id")?, row.try_get("body_sha256")?);
                }
            }
            Database::Postgres(pool) => {
                insert_query(chunk).build().execute(pool).await?;
                for row in select_query(chunk).build().fetch_all(pool).await? {
                    bound.insert(row.try_get("command_id")?, row.try_get("body_sha256")?);
                }
            }
        }
    }
    Ok(bound)
}

/// Removes the digests of command ids that were never recorded (answered `malformed`),
/// so that the id stays free for a corrected request, as it does in a command file.
pub async fn release_request_digests(database: &Database, requests: &[(String, String)]) -> Result<(), StoreError> {
    check_limit("command ids in one release", requests.len(), MAX_REQUEST_BINDINGS)?;
    for (command_id, digest) in requests {
        let sql = "DELETE FROM command_requests WHERE command_id = ";
        match database {
            Database::Sqlite(pool) => {
                let mut query = QueryBuilder::new(sql);
                query
                    .push_bind(command_id)
                    .push(" AND body_sha256 = ")
                    .push_bind(digest);
                query.build().execute(pool).await?;
            }
            Database::Postgres(pool) => {
                let mut query = QueryBuilder::new(sql);
                query
                    .push_bind(command_id)
                    .push(" AND body_sha256 = ")
                    .push_bind(digest);
                query.build().execute(pool).await?;
            }
        }
    }
    Ok(())
}

fn insert_query<DB: sqlx::Database>(chunk: &[(String, String)]) -> QueryBuilder<DB>
where
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut query = QueryBuilder::new("INSERT INTO command_requests (command_id, body_sha256) ");
    query.push_values(chunk, |mut row, (command_id, digest)| {
        row.push_bind(command_id.clone()).push_bind(digest.clone());
    });
    query.push(" ON CONFLICT (command_id) DO NOTHING");
    query
}

fn select_query<DB: sqlx::Database>(chunk: &[(String, String)]) -> QueryBuilder<DB>
where
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut query = QueryBuilder::new("SELECT command_id, body_sha256 FROM command_requests WHERE command_id IN (");
    let mut list = query.separated(", ");
    for (command_id, _) in chunk {
        list.push_bind(command_id.clone());
    }
    list.push_unseparated(")");
    query
}
