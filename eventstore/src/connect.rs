//! Choosing the backend a database URL names, and showing such a URL without its password.

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

/// Opens the store a URL names, creating and migrating it on first use.
/// `postgres://…` selects PostgreSQL; `sqlite://PATH`, `sqlite::memory:` or a plain file path select SQLite.
pub async fn connect(url: &str) -> Result<Arc<dyn EventStore>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(PostgresEventStore::open(url).await?));
    }
    if let Some((scheme, _)) = url.split_once("://") {
        if scheme != "sqlite" {
            return Err(StoreError::UnsupportedUrl {
                url: redact_url(url),
                reason: format!("unknown scheme {scheme:?}; use postgres://…, sqlite://PATH or a file path"),
            });
        }
    }
    Ok(Arc::new(SqliteEventStore::open(url).await?))
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
