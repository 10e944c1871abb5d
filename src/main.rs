//! `ledger`: the one binary. A thin layer of argument parsing and printing
//! (tables, JSON, progress bars, exit codes) over the application layer,
//! `ledger_app`; no business rule lives here.

mod bench;
mod blotter;
mod checkpoint;
mod clearing;
mod cli;
mod demo;
mod events;
mod exec;
mod export;
mod import;
mod readouts;
mod reconcile;
mod relay;
mod replay;
mod serve;
mod statement;
mod token;
mod verify;

use std::process::ExitCode;

use clap::Parser;

/// Reading the log allocates and frees a few small buffers per event (rows, JSON values,
/// strings); under glibc's allocator that was close to half of `replay`'s and
/// `events --json`'s time (docs/performance.md). mimalloc's thread-local free lists
/// make those cheap. Built with its `override` feature it also serves C's `malloc`, so
/// SQLite's allocations (its page cache, and a copy of every value of every row sqlx
/// hands back) skip glibc's locked arena: rebuild and verify took 15–25 % less time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    restore_default_sigpipe();
    let args = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(code) => code,
        Err(e) => {
            let text = error_text(&e);
            match error_code(&e) {
                Some(code) if !text.starts_with(&format!("{code}: ")) => eprintln!("error: {code}: {text}"),
                _ => eprintln!("error: {text}"),
            }
            ExitCode::from(2)
        }
    }
}

/// The stable code of the application layer's error in the chain, if there is one: the
/// code an HTTP problem would carry, so that a script can tell failures apart.
fn error_code(error: &anyhow::Error) -> Option<&'static str> {
    error
        .chain()
        .find_map(|layer| layer.downcast_ref::<ledger_app::AppError>())
        .map(ledger_app::AppError::code)
}

/// The error and its causes, each once. anyhow's `{:#}` prints every layer of the chain,
/// but a layer's message often already includes its cause (thiserror's `{0}`, as in
/// "database error: …"), which then showed twice; a layer already said is left out.
fn error_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for layer in error.chain() {
        let message = layer.to_string();
        if message.is_empty() || text.contains(&message) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&message);
    }
    text
}

/// Rust ignores SIGPIPE, so `ledger events | head` would make `println!` panic
/// once `head` exits. Restoring the default ends the process quietly instead, as
/// every Unix filter does.
#[allow(unsafe_code)]
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called once at start, before any thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(test)]
mod tests {
    use super::error_text;

    #[test]
    fn a_cause_the_message_already_includes_is_not_repeated() {
        let cause = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let said = format!("database error: {cause}");
        let error = anyhow::Error::new(cause)
            .context(said)
            .context("cannot open the ledger");
        assert_eq!(
            error_text(&error),
            "cannot open the ledger: database error: no such file"
        );
    }

    #[test]
    fn a_cause_the_message_does_not_include_is_appended() {
        let cause = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let error = anyhow::Error::new(cause).context("cannot read bank file b.csv");
        assert_eq!(error_text(&error), "cannot read bank file b.csv: no such file");
    }
}
