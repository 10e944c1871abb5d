//! `ledger token create` and `ledger token list`: the `[[tokens]]` entries of ledger.toml.
//!
//! A new entry is appended with `toml_edit`, so the file keeps its comments, order and
//! layout; the file as it was must read as a valid configuration first, so nothing is
//! added to a file the ledger would refuse. The token itself is returned to be shown
//! once and is never written anywhere: the file gets its SHA-256 only.

use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use toml_edit::{value, Array, ArrayOfTables, DocumentMut, Item, Table};

use super::roles::Role;
use super::tokens::{check_name, new_token, TokenHash};
use super::AccessError;
use crate::config::config_from_toml;
use crate::AppError;

/// A token just made: the token (shown once, stored nowhere) and what the file now says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedToken {
    pub token: String,
    pub summary: TokenSummary,
}

/// What `ledger token list` shows of a token: never its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenSummary {
    pub name: String,
    pub role: Role,
    pub accounts: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
}

/// Makes a token for `name` with `role` (limited to `accounts` when any are given), appends
/// its entry to the configuration file at `path` (created when missing), and returns it.
/// A name already in the file is refused and the file is left as it was.
pub fn create_token(
    path: &Path,
    name: &str,
    role: Role,
    accounts: &[String],
    now: DateTime<Utc>,
) -> Result<CreatedToken, AppError> {
    check_name(name).map_err(AccessError::InvalidToken)?;
    for account in accounts {
        ledger_domain::ids::AccountId::parse(account)
            .map_err(|e| AccessError::InvalidToken(format!("account {account:?}: {e}")))?;
    }
    let text = read_if_present(path)?.unwrap_or_default();
    let config = config_from_toml(&text).map_err(|reason| invalid(path, reason))?;
    if config.tokens.entries().iter().any(|entry| entry.name == name) {
        return Err(AccessError::DuplicateName(name.to_owned()).into());
    }
    let mut document: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| invalid(path, e.to_string()))?;
    let token = new_token()?;
    let summary = TokenSummary {
        name: name.to_owned(),
        role,
        accounts: (!accounts.is_empty()).then(|| accounts.to_vec()),
        created_at: now,
    };
    tokens_array(&mut document, path)?.push(entry_table(&summary, TokenHash::of(&token)));
    let new_text = document.to_string();
    // What is written must read back: the same check as every later load.
    config_from_toml(&new_text).map_err(|reason| invalid(path, reason))?;
    write_replacing(path, &new_text)?;
    Ok(CreatedToken { token, summary })
}

/// The tokens of the configuration file at `path` (none when it does not exist).
pub fn list_tokens(path: &Path) -> Result<Vec<TokenSummary>, AppError> {
    let text = read_if_present(path)?.unwrap_or_default();
    let config = config_from_toml(&text).map_err(|reason| invalid(path, reason))?;
    Ok(config
        .tokens
        .entries()
        .iter()
        .map(|entry| TokenSummary {
            name: entry.name.clone(),
            role: entry.role,
            accounts: entry.accounts.clone(),
            created_at: entry.created_at,
        })
        .collect())
}

fn invalid(path: &Path, reason: String) -> AppError {
    AppError::InvalidConfig {
        path: path.display().to_string(),
        reason,
    }
}

fn read_if_present(path: &Path) -> Result<Option<String>, AppError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(cause) if cause.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(cause) => Err(AppError::ConfigUnreadable {
            path: path.display().to_string(),
            cause,
        }),
    }
}

/// The document's `[[tokens]]` array, made when the file has none yet.
fn tokens_array<'d>(document: &'d mut DocumentMut, path: &Path) -> Result<&'d mut ArrayOfTables, AppError> {
    let item = document
        .entry("tokens")
        .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()));
    item.as_array_of_tables_mut()
        .ok_or_else(|| invalid(path, "`tokens` must be written as [[tokens]] entries".to_owned()))
}

fn entry_table(summary: &TokenSummary, hash: TokenHash) -> Table {
    let mut table = Table::new();
    table.insert("name", value(summary.name.as_str()));
    table.insert("role", value(<&str>::from(summary.role)));
    table.insert("sha256", value(hash.to_hex()));
    if let Some(accounts) = &summary.accounts {
        table.insert(
            "accounts",
            value(accounts.iter().map(String::as_str).collect::<Array>()),
        );
    }
    let created_at = summary.created_at.to_rfc3339_opts(SecondsFormat::Secs, true);
    table.insert("created_at", value(created_at));
    table
}

/// Writes the whole file beside it, then renames it over the old one, so a crash leaves
/// the old file or the new one, never half of either.
fn write_replacing(path: &Path, text: &str) -> Result<(), AppError> {
    let output = |cause| AppError::Output {
        what: "the configuration file",
        cause,
    };
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".new");
    let temporary = std::path::PathBuf::from(temporary);
    std::fs::write(&temporary, text).map_err(output)?;
    std::fs::rename(&temporary, path).map_err(output)
}
