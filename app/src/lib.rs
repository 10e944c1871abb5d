//! The ledger's application layer: every use case is one function here, owning
//! its rules, so the CLI (`ledger`) and the HTTP server call the same thing.
//! Results are typed `Serialize` values; errors are one [`AppError`] with a stable
//! code per kind. Nothing here prints, parses arguments or draws progress bars:
//! long tasks report through a callback.
//!
//! - [`access`]: roles and their permission matrix, bearer tokens, personal-data masking,
//!   the append-only access log;
//! - [`as_of`](mod@as_of): the accounts at a past position, time or close, from the log alone;
//! - [`checkpoints`]: signed checkpoints of the log, made and checked;
//! - [`import`](mod@import): a log moved into an empty store (a file of envelopes, or another
//!   store) with its positions and hashes;
//! - [`store`]: open a database (connect and migrate), load market rules;
//! - [`config`]: the configuration file `ledger.toml` (the broker, statements);
//! - [`batch`]: run commands, typed or as command-file lines (streamed, bounded memory);
//! - [`clearing`]: end of day and settlement (their `eod:{date}`/`settle:{date}` ids live here),
//!   and where the close of a date ends in the log ([`close_cut`]);
//! - [`reconcile`](mod@reconcile): the bank's and the depository's CSV files against the ledger at
//!   the close of their date, replayed from the log;
//! - [`statement`](mod@statement): a customer's statement, built and rendered;
//! - [`live`]: the same reads (and one account's balance and positions, pages of balances,
//!   positions and compliance alerts) of the read models as they stand, for a server whose
//!   own runner keeps them live;
//! - [`queries`]: balances, positions, trades of a date, the blotter's orders and trades
//!   (filtered, paged), events after a position,
//!   catching up or rebuilding the read models (queries catch up first, always);
//! - [`requests`]: commands sent as requests (the HTTP API), their idempotency keys bound to
//!   their bodies ([`submit_requests`]);
//! - [`stream`]: following the log (CLI, SSE, relay): the CloudEvents envelope, filters,
//!   the head kept by one task, a follower's gap-free feed;
//! - [`verify`](mod@verify): the proof that the log is intact;
//! - [`writer`]: group commit for concurrent submitters (the server, `ledger bench engine`):
//!   a bounded queue, one task deciding each batch and answering after its commit;
//! - [`demo`]: the generated trading days of `ledger demo` (and `ledger bench`), and the
//!   whole demo with its report ([`demo::run_with_report`]: read models, reconciliation,
//!   statement, invariants).

pub mod access;
pub mod as_of;
pub mod batch;
pub mod checkpoints;
pub mod clearing;
pub mod config;
pub mod demo;
pub mod error;
pub mod export;
pub mod import;
pub mod live;
pub mod queries;
pub mod reconcile;
pub mod requests;
pub mod statement;
pub mod store;
pub mod stream;
pub mod verify;
pub mod writer;

pub use batch::{run_lines, submit, CommandLines, LineBatches, Tally};
pub use clearing::{
    clearing_report, close_cut, day_status, end_of_day, settle, CalendarCheck, ClearingOutcome, ClearingStep, CloseCut,
    DayClearing,
};
pub use config::{
    config_from_toml, load_config, BrokerConfig, Config, EventsConfig, StatementConfig, DEFAULT_CONFIG_FILE,
};
pub use error::{AppError, ReconcileFile};
pub use queries::{
    balances, catch_up_read_models, events_after, head_position, orders, positions, read_models_checkpoint,
    rebuild_read_models, trades, trades_of, CatchUp, Progress,
};
pub use reconcile::{
    ledger_at_close, read_bank_file, read_depository_file, reconcile, reconcile_with, write_agreeing_files,
    LedgerAtClose, Reconciliation,
};
pub use requests::{
    read_command_line, read_command_request, submit_requests, CommandRequest, RequestOutcome, RequestRefusal,
};
pub use statement::{load_pdf_font, statement, statement_at, StatementFormat, StatementRequest};
pub use store::{load_rules, open_existing_store, open_store, rules_from_toml};
pub use verify::verify;

/// The types the use cases take and give, from the crates below, so a caller needs only this crate.
pub use ledger_commands::{
    CommandResult, Ledger, LedgerCommand, LineAnswer, Status, Submission, DEFAULT_CACHE_AGGREGATES, KEY_REUSED_CODE,
    MAX_CACHE_AGGREGATES,
};
pub use ledger_domain::money::format_cny;
pub use ledger_domain::{DayStatus, MarketRules};
pub use ledger_eventstore::{event_at, hash_at, redact_url, EventStore, RecordedEvent, DEFAULT_DATABASE_URL};
pub use ledger_projections::clearing::{ClearingLine, ClearingReport};
pub use ledger_projections::reconcile::Break;
pub use ledger_projections::tables::{
    AlertFilter, AlertRecord, OrderFilter, OrderKey, OrderRecord, Trade, TradeFilter, TradeRecord, MAX_ALERT_ROWS,
    MAX_ORDER_ROWS, MAX_TRADE_ROWS, OPEN_ORDER_STATUSES, ORDER_STATUSES,
};
pub use ledger_projections::{BalanceRow, PositionRow};
pub use ledger_replay::{Problem, VerifyReport};
