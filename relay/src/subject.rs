//! The NATS subject of each event: `<prefix>.<aggregate type>.<aggregate id>.<event type>`,
//! so a consumer subscribes to what it wants with NATS's own wildcards
//! (`ledger.account.*.FillBooked`, `ledger.account.A0001.>`), and several ledgers share
//! one NATS under prefixes of their own.

use ledger_app::RecordedEvent;

/// `--subject-prefix` when left out.
pub const DEFAULT_SUBJECT_PREFIX: &str = "ledger";
/// Longest prefix: NATS subjects are kept short.
pub const MAX_PREFIX_CHARS: usize = 64;

/// Checks a subject prefix: one or more dot-separated tokens of letters, digits, `-` and `_`.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    let token_ok =
        |token: &str| !token.is_empty() && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if prefix.len() > MAX_PREFIX_CHARS || !prefix.split('.').all(token_ok) {
        return Err(format!(
            "subject prefix {prefix:?} must be dot-separated tokens of letters, digits, - and _ (at most {MAX_PREFIX_CHARS} characters), such as \"ledger\" or \"sh01.ledger\""
        ));
    }
    Ok(())
}

/// The subject `event` is published to. An aggregate id may hold a `.` (an instrument
/// code, `600519.SH`), which NATS reads as a token separator: it becomes `_`; the
/// envelope's `subject` keeps the id as it is.
pub fn subject_of(prefix: &str, event: &RecordedEvent) -> String {
    format!(
        "{prefix}.{}.{}.{}",
        event.stream.aggregate_type.to_ascii_lowercase(),
        event.stream.aggregate_id.replace('.', "_"),
        event.event_type
    )
}

/// The subjects of a stream that holds every event under `prefix`.
pub fn stream_subjects(prefix: &str) -> String {
    format!("{prefix}.>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_tokens_without_wildcards() {
        assert!(check_prefix("ledger").is_ok());
        assert!(check_prefix("sh01.ledger").is_ok());
        for bad in ["", "a..b", "led ger", "led*", "a.>", ".ledger", "ledger."] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
    }
}
