//! Choosing the backend a database URL names, and showing such a URL without its password.

use std::path::Path;
use std::sync::Arc;

use url::Url;

use crate::postgres::PostgresEventStore;
use crate::records::StoreError;
use crate::sqlite::SqliteEventStore;
use crate::store::EventStore;

/// Default database: `ledger.db` in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://ledger.db";

/// What a URL that has credentials but cannot be parsed shows instead of itself.
const UNPARSEABLE_URL_WITH_CREDENTIALS: &str = "(a database URL that does not parse; hidden, it may hold a password)";

/// Whether opening a database may create the ledger there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the database file (SQLite) and the ledger's tables when missing: for commands whose job is to write.
    Create,
    /// Refuse a database that does not exist or holds no ledger: for every other command, so that a
    /// mistyped name is said, not silently made into a new, empty ledger.
    Existing,
}

/// Opens the store a URL names, creating and migrating it on first use.
/// `postgres://…` selects PostgreSQL; `sqlite://PATH`, `sqlite::memory:` or a plain file path select SQLite.
pub async fn connect(url: &str) -> Result<Arc<dyn EventStore>, StoreError> {
    open(url, OpenMode::Create).await
}

/// Opens the store a URL names; `mode` says whether a missing ledger is created or refused.
/// An existing ledger is migrated to the current schema either way.
pub async fn open(url: &str, mode: OpenMode) -> Result<Arc<dyn EventStore>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        if !names_a_database(url) {
            return Err(StoreError::NoDatabaseName);
        }
        return Ok(Arc::new(PostgresEventStore::open_with(url, mode).await?));
    }
    if let Some((scheme, _)) = url.split_once("://") {
        if scheme != "sqlite" {
            return Err(StoreError::UnsupportedUrl {
                url: redact_url(url),
                reason: unknown_scheme_reason(scheme),
            });
        }
    }
    if let Some(path) = sqlite_file(url) {
        check_sqlite_file(path, mode)?;
    }
    Ok(Arc::new(SqliteEventStore::open_with(url, mode).await?))
}

/// Whether a PostgreSQL URL has a database name in its path: without one the server would
/// take the user's default database (often `postgres`) and the ledger would land there.
fn names_a_database(url: &str) -> bool {
    // An unparseable URL is left to the driver, whose error says what is wrong with it.
    Url::parse(url).map_or(true, |parsed| !parsed.path().trim_matches('/').is_empty())
}

fn unknown_scheme_reason(scheme: &str) -> String {
    let lower = scheme.to_ascii_lowercase();
    let hint = if lower.starts_with("postg") || lower.starts_with("pg") {
        " (did you mean postgres://?)"
    } else if lower.starts_with("sql") {
        " (did you mean sqlite://?)"
    } else {
        ""
    };
    format!("unknown scheme {scheme:?}{hint}; use postgres://…, sqlite://PATH or a file path")
}

/// The file a SQLite URL or path names; `None` for an in-memory database.
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.contains(":memory:")).then_some(path)
}

/// Refuses a SQLite file that is missing (unless it is to be created) or whose directory is missing.
fn check_sqlite_file(path: &str, mode: OpenMode) -> Result<(), StoreError> {
    let file = Path::new(path);
    if file.exists() {
        return Ok(());
    }
    if mode == OpenMode::Existing {
        return Err(StoreError::NoSuchFile);
    }
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(StoreError::NoSuchDirectory),
        _ => Ok(()),
    }
}

/// The URL with its password shown as `***`, for messages; a URL without one unchanged.
pub fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => match parsed.set_password(Some("***")) {
            Ok(()) => parsed.to_string(),
            Err(()) => UNPARSEABLE_URL_WITH_CREDENTIALS.to_owned(),
        },
        Ok(_) => url.to_owned(),
        // A plain file path is no URL; anything else that fails to parse might still hold a password.
        Err(_) if url.contains('@') => UNPARSEABLE_URL_WITH_CREDENTIALS.to_owned(),
        Err(_) => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db?options=-c%20search_path%3Dx"),
            "postgres://u:***@h:5432/db?options=-c%20search_path%3Dx"
        );
        assert_eq!(
            redact_url("postgres://u:secret@h:notaport/db"),
            super::UNPARSEABLE_URL_WITH_CREDENTIALS
        );
    }

    #[tokio::test]
    async fn an_unsupported_url_is_refused_without_its_password() {
        let Err(error) = super::connect("mysql://u:secret@h:3306/db").await else {
            panic!("a mysql URL is not a ledger database");
        };
        let message = error.to_string();
        assert!(message.contains("mysql://u:***@h:3306/db"), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }

    #[test]
    fn sqlite_urls_and_paths_are_shown_as_given() {
        for url in [
            "sqlite://ledger.db",
            "sqlite::memory:",
            "ledger.db",
            "/tmp/x/ledger.db",
            "sqlite:///tmp/l.db",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }
}
