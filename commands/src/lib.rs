//! The write side of the ledger.
//!
//! - [`wire`]: the command-file contract: [`LedgerCommand`], the one place the
//!   command vocabulary is spelled out, read by serde through newtypes that
//!   check each value, with the contract's sentences for a malformed line;
//! - [`engine`]: routes each command to the aggregate that decides it (an
//!   account, an instrument, a clearing day) and commits batches to the event
//!   store, with idempotency by command id;
//! - [`runner`]: answers every line of a command file, in order.

pub mod engine;
pub mod runner;
pub mod wire;

pub use engine::{
    CommandResult, EngineError, Ledger, Status, Submission, DEFAULT_CACHE_AGGREGATES, KEY_REUSED_CODE,
    MAX_BATCH_COMMANDS, MAX_CACHE_AGGREGATES,
};
pub use runner::{LineAnswer, LineRunner};
pub use wire::{parse_line, parse_line_bytes, CommandLine, CommandType, LedgerCommand, Malformed};
