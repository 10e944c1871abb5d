//! The write side of the ledger.
//!
//! - [`wire`]: the command-file contract, parsed strictly into typed commands;
//! - [`engine`]: decides commands on the aggregates and commits them to the
//!   event store in batches, with idempotency by command id;
//! - [`runner`]: answers every line of a command file, in order.

pub mod engine;
pub mod runner;
pub mod wire;

pub use engine::{CommandResult, EngineError, Ledger, Status, Submission, MAX_BATCH_COMMANDS};
pub use runner::{LineAnswer, LineRunner};
pub use wire::{parse_line, CommandLine, LedgerCommand, Malformed};
