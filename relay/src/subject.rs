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

/// Longest stream name.
pub const MAX_STREAM_NAME_CHARS: usize = 64;

/// Checks a JetStream stream name: letters, digits, `-` and `_` (NATS refuses `.`, `*`,
/// `>`, spaces and path separators in one), so a bad name is said at once instead of
/// retried as if NATS were down.
pub fn check_stream_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_STREAM_NAME_CHARS
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        return Err(format!(
            "stream name {name:?} must be 1 to {MAX_STREAM_NAME_CHARS} letters, digits, - and _, such as \"LEDGER\""
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
    fn stream_names_are_plain_tokens() {
        assert!(check_stream_name("LEDGER").is_ok());
        assert!(check_stream_name("sh-01_ledger").is_ok());
        for bad in ["", "LED.GER", "LED GER", "LED*", "a/b", &"X".repeat(65)] {
            assert!(check_stream_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn prefixes_are_tokens_without_wildcards() {
        assert!(check_prefix("ledger").is_ok());
        assert!(check_prefix("sh01.ledger").is_ok());
        for bad in ["", "a..b", "led ger", "led*", "a.>", ".ledger", "ledger."] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
    }
}
