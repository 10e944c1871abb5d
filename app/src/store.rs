//! Opening the ledger's database and loading its market rules: what every use case needs first.

use std::path::Path;
use std::sync::Arc;

use ledger_domain::MarketRules;
use ledger_eventstore::{EventStore, OpenMode};

use crate::AppError;

/// Connects to the database a URL names and migrates it, creating the ledger if missing: for the
/// use cases whose job is to write (exec, demo, migrate, init). The error shows the URL without its password.
pub async fn open_store(url: &str) -> Result<Arc<dyn EventStore>, AppError> {
    open_store_as(url, OpenMode::Create).await
}

/// Connects to the ledger a URL names, refusing a database that does not exist or holds no
/// ledger: for every use case that must not create one (read-outs, verify, eod, settle, reconcile).
pub async fn open_existing_store(url: &str) -> Result<Arc<dyn EventStore>, AppError> {
    open_store_as(url, OpenMode::Existing).await
}

async fn open_store_as(url: &str, mode: OpenMode) -> Result<Arc<dyn EventStore>, AppError> {
    ledger_eventstore::open(url, mode)
        .await
        .map_err(|cause| AppError::OpenStore {
            url: ledger_eventstore::redact_url(url),
            cause,
        })
}

/// The market rules of a TOML file, or the built-in China A-share rules when no file is given.
pub fn load_rules(path: Option<&Path>) -> Result<MarketRules, AppError> {
    let Some(path) = path else {
        return MarketRules::china_a_share().map_err(|cause| AppError::InvalidRules {
            path: "(built in)".to_owned(),
            cause,
        });
    };
    let text = std::fs::read_to_string(path).map_err(|cause| AppError::RulesUnreadable {
        path: path.display().to_string(),
        cause,
    })?;
    rules_from_toml(&text, &path.display().to_string())
}

/// Market rules from TOML text (a file's, or an upload's); `source` names it in the error.
pub fn rules_from_toml(text: &str, source: &str) -> Result<MarketRules, AppError> {
    MarketRules::from_toml(text).map_err(|cause| AppError::InvalidRules {
        path: source.to_owned(),
        cause,
    })
}
