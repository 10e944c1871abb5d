//! The one error of the application layer. Every kind has a stable code (what a
//! program matches on, and what the HTTP server maps to a status) and a human
//! sentence (its `Display`, complete with its cause, so it can be shown as is).

use ledger_commands::EngineError;
use ledger_eventstore::{ConnectFailure, StoreError};
use ledger_projections::ProjectionError;
use ledger_replay::VerifyError;

/// Which file of a reconciliation a bad line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconcileFile {
    /// The bank's custody balances: `account,balance`.
    Bank,
    /// The depository's holdings: `account,instrument,quantity`.
    Depository,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Input the use case cannot take (an empty period, a batch too large, a bad option).
    #[error("{0}")]
    InvalidInput(String),
    /// A command source that fails while its line is read (an I/O error, not what the
    /// line holds: a line that is not UTF-8 text is answered malformed).
    #[error("line {line} cannot be read: {cause}")]
    UnreadableLine { line: u64, cause: std::io::Error },
    /// A line of the bank's or the depository's file that does not parse.
    #[error("line {line} {reason}")]
    MalformedFileLine {
        file: ReconcileFile,
        line: u64,
        reason: String,
    },
    /// Reconciling a trade date whose end of day has not run: there is no close to compare with.
    #[error(
        "trade date {0} is not closed yet: run `ledger eod --date {0}` first; reconciliation compares the files with the ledger at the close of the date"
    )]
    DayNotClosed(chrono::NaiveDate),
    #[error("no account {0} has been opened")]
    UnknownAccount(String),
    #[error("unknown projection {name:?}; the projections are: {known}")]
    UnknownProjection { name: String, known: &'static str },
    /// The ledger refused the command (its answer carries the domain's refusal code).
    #[error("refused ({reject_code}): {message}")]
    Refused { reject_code: String, message: String },
    #[error("cannot read rules file {path}: {cause}")]
    RulesUnreadable { path: String, cause: std::io::Error },
    /// The configuration file named (`--config`, `LEDGER_CONFIG`) or found cannot be read.
    #[error("cannot read configuration file {path}: {cause}")]
    ConfigUnreadable { path: String, cause: std::io::Error },
    /// The configuration file is not valid TOML, has an unknown key, or lacks a required one.
    #[error("configuration file {path}: {reason}")]
    InvalidConfig { path: String, reason: String },
    /// The statement's period starts after the last business date the ledger has reached.
    #[error("the period starts on {from}, after {reached}, the last business date the ledger has reached")]
    PeriodNotReached {
        from: chrono::NaiveDate,
        reached: chrono::NaiveDate,
    },
    /// A PDF statement needs a font with Chinese glyphs and none was found or it cannot be used.
    #[error("{0}")]
    PdfFont(String),
    #[error("rules file {path}: {cause}")]
    InvalidRules {
        path: String,
        cause: ledger_domain::rules::RulesError,
    },
    /// Opening (connecting to and migrating) the database failed; the URL is shown without its
    /// password, and once: not again when the cause already names it.
    #[error("{}", open_store_message(url, cause))]
    OpenStore { url: String, cause: StoreError },
    /// Writing a result out (a file the caller gave) failed.
    #[error("cannot write {what}: {cause}")]
    Output { what: &'static str, cause: std::io::Error },
    #[error("the database already holds {events} events, and this needs an empty one (a new file, or a new PostgreSQL database or schema)")]
    DatabaseNotEmpty { events: u64 },
    /// A read model row the ledger itself wrote does not parse: the tables need a rebuild.
    #[error("a read model is corrupt: {0}")]
    CorruptReadModel(String),
    /// A run of command-file lines stopped by an error of the database (or of the engine)
    /// after `answered_through`, the last line answered (0: none). Its code is the cause's.
    #[error("{}", interrupted_message(cause, *answered_through))]
    Interrupted {
        answered_through: u64,
        cause: Box<AppError>,
    },
    /// Authentication, authorization or a token that cannot be made (its code is the cause's).
    #[error(transparent)]
    Access(#[from] crate::access::AccessError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

fn open_store_message(url: &str, cause: &StoreError) -> String {
    match cause {
        StoreError::UnsupportedUrl { .. } => format!("cannot open the ledger database: {cause}"),
        _ => format!("cannot open the ledger database {url}: {cause}"),
    }
}

/// The cause, what was answered (and so committed), and that a rerun is safe: the
/// idempotency records answer every command already decided with `duplicate`.
fn interrupted_message(cause: &AppError, answered_through: u64) -> String {
    let answered = match answered_through {
        0 => "no line was answered".to_owned(),
        n => format!("lines 1 to {n} were answered and are committed, no line after {n} was answered"),
    };
    format!(
        "{cause}; {answered} (the batch in flight may have been committed as well); rerunning the same \
         file is safe: a command already recorded answers `duplicate` and only the others run"
    )
}

impl AppError {
    /// A run of lines stopped after line `answered_through` (0: before any answer) by `cause`.
    pub fn interrupted(cause: AppError, answered_through: u64) -> AppError {
        AppError::Interrupted {
            answered_through,
            cause: Box::new(cause),
        }
    }

    /// The stable code of this kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::InvalidInput(_) | AppError::UnreadableLine { .. } | AppError::MalformedFileLine { .. } => {
                "invalid_input"
            }
            AppError::DayNotClosed(_) => "day_not_closed",
            AppError::UnknownAccount(_) => "unknown_account",
            AppError::UnknownProjection { .. } => "unknown_projection",
            AppError::Refused { .. } => "refused",
            AppError::RulesUnreadable { .. } | AppError::InvalidRules { .. } => "invalid_rules",
            AppError::ConfigUnreadable { .. } => "config_unreadable",
            AppError::InvalidConfig { .. } => "invalid_config",
            AppError::PeriodNotReached { .. } => "period_not_reached",
            AppError::PdfFont(_) => "pdf_font_missing",
            AppError::OpenStore { cause, .. } => store_code(cause),
            AppError::DatabaseNotEmpty { .. } => "database_not_empty",
            AppError::Output { .. } => "output_failed",
            AppError::CorruptReadModel(_) => "corrupt_data",
            AppError::Interrupted { cause, .. } => cause.code(),
            AppError::Access(cause) => cause.code(),
            AppError::Store(cause) => store_code(cause),
            AppError::Engine(cause) => engine_code(cause),
            AppError::Projection(ProjectionError::Store(cause)) => store_code(cause),
            AppError::Projection(_) => "database",
            AppError::Verify(VerifyError::Store(cause)) => store_code(cause),
            AppError::Verify(_) => "database",
        }
    }
}

fn store_code(error: &StoreError) -> &'static str {
    match error {
        StoreError::UnsupportedUrl { .. } => "invalid_input",
        StoreError::Unreachable { failure, .. } => match failure {
            ConnectFailure::NoSuchDatabase => "no_ledger",
            ConnectFailure::Authentication => "database_auth",
            _ => "database_unreachable",
        },
        StoreError::NoSuchFile | StoreError::NoLedger { .. } => "no_ledger",
        StoreError::NoDatabaseName | StoreError::NoSuchDirectory => "invalid_input",
        StoreError::ConnectionLost(_) => "database_lost",
        StoreError::Conflict { .. } | StoreError::LockTimeout { .. } => "contention",
        StoreError::LimitExceeded { .. } => "too_large",
        StoreError::Corrupt(_) => "corrupt_data",
        _ => "database",
    }
}

fn engine_code(error: &EngineError) -> &'static str {
    match error {
        EngineError::Store(cause) => store_code(cause),
        EngineError::BatchTooLarge(_) => "too_large",
        EngineError::Contention(_) => "contention",
        _ => "database",
    }
}
