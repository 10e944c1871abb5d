//! Running commands: typed submissions (an HTTP request's one or few commands),
//! or command-file lines, answered in order. A file is streamed: its answers come
//! batch by batch, so a file of any length runs in bounded memory.

use std::collections::BTreeMap;
use std::io::{BufRead, Read};

use ledger_commands::{CommandResult, Ledger, LineAnswer, LineRunner, Submission, MAX_BATCH_COMMANDS};
use serde::Serialize;

use crate::AppError;

/// The longest command line; a longer one is refused as malformed.
pub use ledger_commands::wire::MAX_LINE_BYTES;

/// Most submissions one call of [`submit`] takes: one engine batch.
pub const MAX_SUBMISSIONS: usize = MAX_BATCH_COMMANDS;
/// Most lines held unanswered at once. The runner cuts batches by commands; a run
/// of malformed lines makes no command, so this bounds what waits for an answer.
pub const MAX_PENDING_LINES: u64 = 10 * MAX_BATCH_COMMANDS as u64;

/// Decides and commits typed commands in one batch; one result per submission, in order.
pub async fn submit(ledger: &mut Ledger, submissions: &[Submission]) -> Result<Vec<CommandResult>, AppError> {
    if submissions.len() > MAX_SUBMISSIONS {
        return Err(AppError::InvalidInput(format!(
            "{} commands were submitted at once; the limit is {MAX_SUBMISSIONS}",
            submissions.len()
        )));
    }
    Ok(ledger.execute(submissions).await?)
}

/// Answers given so far, counted by status (`accepted`, `duplicate`, `rejected`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub by_status: BTreeMap<&'static str, u64>,
}

impl Tally {
    pub fn count(&mut self, answers: &[LineAnswer]) {
        for answer in answers {
            *self.by_status.entry(answer.status.as_str()).or_default() += 1;
        }
    }

    pub fn total(&self) -> u64 {
        self.by_status.values().sum()
    }
}

/// Command-file lines in, answers out, in order; malformed lines are answered too.
pub struct LineBatches<'a> {
    runner: LineRunner<'a>,
    tally: Tally,
}

impl<'a> LineBatches<'a> {
    /// `actor` is recorded with every event the lines write.
    pub fn new(ledger: &'a mut Ledger, actor: &str) -> Self {
        Self {
            runner: LineRunner::new(ledger, actor),
            tally: Tally::default(),
        }
    }

    /// Adds line number `line` (1-based), as text or as the bytes read (a line that
    /// is not UTF-8 is answered malformed); returns the answers of the batch it
    /// completed, if any.
    pub async fn push(&mut self, line: u64, text: impl AsRef<[u8]>) -> Result<Vec<LineAnswer>, AppError> {
        let mut answers = self.runner.push(line, text).await?;
        if answers.is_empty() && self.runner.pending_lines() as u64 >= MAX_PENDING_LINES {
            answers = self.runner.flush().await?;
        }
        self.tally.count(&answers);
        Ok(answers)
    }

    /// Runs what is left; returns its answers.
    pub async fn finish(&mut self) -> Result<Vec<LineAnswer>, AppError> {
        let answers = self.runner.flush().await?;
        self.tally.count(&answers);
        Ok(answers)
    }

    pub fn tally(&self) -> &Tally {
        &self.tally
    }
}

/// Runs lines held in memory (a request's few, or a generated phase) and returns every answer.
/// `first_line` numbers the first of them; `on_answered` hears how many were answered, batch by batch.
pub async fn run_lines<S: AsRef<str>>(
    ledger: &mut Ledger,
    actor: &str,
    first_line: u64,
    lines: impl IntoIterator<Item = S>,
    mut on_answered: impl FnMut(u64),
) -> Result<Vec<LineAnswer>, AppError> {
    let mut batches = LineBatches::new(ledger, actor);
    let mut answers = Vec::new();
    for (offset, text) in lines.into_iter().enumerate() {
        let batch = batches
            .push(first_line + offset as u64, text.as_ref().as_bytes())
            .await?;
        on_answered(batch.len() as u64);
        answers.extend(batch);
    }
    let batch = batches.finish().await?;
    on_answered(batch.len() as u64);
    answers.extend(batch);
    Ok(answers)
}

/// The UTF-8 byte-order mark, skipped at the start of a command file.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A command file read line by line, as bytes, each line at most [`MAX_LINE_BYTES`]
/// long in memory: a longer line is cut there (and refused for its length), not held
/// whole. Whether a line is UTF-8 text is the parser's question, answered for that
/// line alone, so one bad byte never ends the file. A UTF-8 byte-order mark at the
/// very start is skipped; anywhere else it is text.
pub struct CommandLines<R> {
    reader: R,
    next_line: u64,
    buffer: Vec<u8>,
}

impl<R: BufRead> CommandLines<R> {
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            next_line: 1,
            buffer: Vec::new(),
        }
    }

    /// The next line's number and bytes (without its line ending), or None at the end.
    /// Only a failure to read (not what the bytes hold) is an error.
    pub fn next_line(&mut self) -> Result<Option<(u64, &[u8])>, AppError> {
        let line = self.next_line;
        let unreadable = |cause| AppError::UnreadableLine { line, cause };
        self.buffer.clear();
        if line == 1 {
            self.skip_byte_order_mark().map_err(unreadable)?;
        }
        // One byte past the limit keeps an overlong line overlong, so the parser refuses it.
        let limit = MAX_LINE_BYTES as u64 + 1;
        let read = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.buffer)
            .map_err(unreadable)?;
        if read == 0 {
            return Ok(None);
        }
        self.next_line += 1;
        let ended = self.buffer.last() == Some(&b'\n');
        if ended {
            self.buffer.pop();
            if self.buffer.last() == Some(&b'\r') {
                self.buffer.pop();
            }
        } else if read as u64 == limit {
            // The cut may split a character; the parser refuses the line for its length first.
            self.skip_rest_of_line().map_err(unreadable)?;
        }
        Ok(Some((line, &self.buffer)))
    }

    /// Editors on Windows start a file with a byte-order mark; it names the encoding
    /// and is not part of the first command. Skipped before reading, so the first
    /// line's length limit counts only the line.
    fn skip_byte_order_mark(&mut self) -> std::io::Result<()> {
        if self.reader.fill_buf()?.starts_with(UTF8_BOM) {
            self.reader.consume(UTF8_BOM.len());
        }
        Ok(())
    }

    fn skip_rest_of_line(&mut self) -> std::io::Result<()> {
        loop {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                return Ok(());
            }
            match available.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    self.reader.consume(end + 1);
                    return Ok(());
                }
                None => {
                    let skipped = available.len();
                    self.reader.consume(skipped);
                }
            }
        }
    }
}
