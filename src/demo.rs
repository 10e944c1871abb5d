//! `ledger demo`: its arguments, where its files go, and the printing of its
//! report. The run and the report itself (read models, reconciliation, statement,
//! verdict) are `ledger_app::demo::run_with_report`'s.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use ledger_app::demo::{DemoFiles, DemoProgress, DemoReport, DemoSummary};
use ledger_app::Break;
use ledger_app::{AppError, Ledger, MarketRules};

use crate::readouts::{align_numbers, balance_table, position_table};

/// Fresh database the demo writes when no `--db` is given; replaced at each run.
pub const DEMO_DATABASE_FILE: &str = "ledger-demo.db";
/// The bank's custody file and the depository's holdings file the demo writes and reconciles.
pub const DEMO_BANK_FILE: &str = "ledger-demo-bank.csv";
pub const DEMO_DEPOSITORY_FILE: &str = "ledger-demo-depository.csv";
/// One customer's statement the demo writes.
pub const DEMO_STATEMENT_FILE: &str = "ledger-demo-statement.html";

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Customer accounts to open.
    #[arg(long, default_value_t = 1_000)]
    pub accounts: usize,
    /// Seed of the generator: the same seed gives the same commands.
    #[arg(long, default_value_t = 20_240_304)]
    pub seed: u64,
    /// Also write the generated commands to this file (JSON lines, the `ledger exec` format).
    #[arg(long)]
    pub commands_out: Option<PathBuf>,
}

pub async fn run(
    args: DemoArgs,
    db: Option<String>,
    rules: Arc<MarketRules>,
    cache_aggregates: usize,
) -> anyhow::Result<ExitCode> {
    ledger_app::demo::check_accounts(args.accounts)?;
    // The database as given, for the `Try:` lines: they must run as printed.
    let (url, db_given) = match db {
        Some(url) => (url.clone(), url),
        None => {
            remove_demo_database()?;
            (format!("sqlite://{DEMO_DATABASE_FILE}"), DEMO_DATABASE_FILE.to_owned())
        }
    };
    let store = crate::cli::open_store(&url).await?;
    let files = DemoFiles {
        bank: PathBuf::from(DEMO_BANK_FILE),
        depository: PathBuf::from(DEMO_DEPOSITORY_FILE),
        statement: PathBuf::from(DEMO_STATEMENT_FILE),
        commands: args.commands_out.clone(),
    };
    let report = run_with_progress_bar(&args, Ledger::with_cache(store, rules, cache_aggregates), files)
        .await
        .map_err(|e| match e {
            AppError::DatabaseNotEmpty { events } => anyhow::anyhow!(
                "the demo needs an empty database, but {} already holds {events} events",
                ledger_app::redact_url(&url)
            ),
            _ => e.into(),
        })?;
    print_report(&report);
    print_closing(&db_given, report.files.commands.as_deref());
    print_files(&report);
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs the demo with a progress bar on stderr when it is a terminal; otherwise (a
/// log, a pipe) with a line on stderr per phase as it finishes, never minutes of silence.
async fn run_with_progress_bar(args: &DemoArgs, mut ledger: Ledger, files: DemoFiles) -> Result<DemoReport, AppError> {
    let on_terminal = std::io::stderr().is_terminal();
    let progress = if on_terminal {
        ProgressBar::new(0).with_style(
            ProgressStyle::with_template("{spinner} {msg:<36} [{bar:40}] {pos}/{len} commands ({rate})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .with_key("rate", |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                    // A whole number: fractions of a command per second say nothing.
                    let _ = write!(out, "{:.0}/s", state.per_sec());
                })
                .progress_chars("=> "),
        )
    } else {
        ProgressBar::hidden()
    };
    let report = ledger_app::demo::run_with_report(&mut ledger, args.seed, args.accounts, files, |step| match step {
        DemoProgress::Phase { name, commands } => {
            progress.set_message(name.to_owned());
            progress.inc_length(commands);
        }
        DemoProgress::Answered(commands) => progress.inc(commands),
        DemoProgress::PhaseDone {
            name,
            commands,
            seconds,
        } if !on_terminal => {
            eprintln!("{}", phase_line(name, commands, seconds));
        }
        DemoProgress::PhaseDone { .. } => {}
    })
    .await;
    progress.finish_and_clear();
    report
}

/// A finished phase, as a line of a log.
fn phase_line(name: &str, commands: u64, seconds: f64) -> String {
    if commands == 0 {
        format!("demo: {name}: {seconds:.2} s")
    } else {
        format!("demo: {name}: {commands} commands in {seconds:.2} s")
    }
}

fn remove_demo_database() -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{DEMO_DATABASE_FILE}{suffix}");
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove the previous demo database {path}")),
        }
    }
    Ok(())
}

fn print_report(report: &DemoReport) {
    let (summary, timings) = (&report.summary, &report.timings);
    let engine_secs = timings.engine_seconds.max(f64::EPSILON);
    let projected = report.read_models.applied_events;
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header(["ledger demo", ""]);
    table.add_row(["accounts".to_owned(), summary.accounts.to_string()]);
    table.add_row(["commands".to_owned(), summary.commands.to_string()]);
    for (status, count) in &summary.by_status {
        table.add_row([format!("  {status}"), count.to_string()]);
    }
    table.add_row(["events written".to_owned(), summary.events.to_string()]);
    table.add_row([
        "time in the ledger".to_owned(),
        format!("{:.2} s", timings.engine_seconds),
    ]);
    table.add_row([
        "throughput".to_owned(),
        format!(
            "{:.0} commands/s, {:.0} events/s",
            summary.commands as f64 / engine_secs,
            summary.events as f64 / engine_secs
        ),
    ]);
    table.add_row([
        "commands answered (with generation)".to_owned(),
        format!("{:.2} s", timings.commands_seconds),
    ]);
    table.add_row([
        "read models (every table)".to_owned(),
        format!(
            "{projected} events in {:.2} s ({:.0} events/s)",
            timings.read_models_seconds,
            projected as f64 / timings.read_models_seconds.max(f64::EPSILON)
        ),
    ]);
    table.add_row([
        "whole run (every phase)".to_owned(),
        format!("{:.2} s", timings.total_seconds),
    ]);
    align_numbers(&mut table, 1..2);
    println!("{table}\n");
    println!("{}\n", phase_table(report));
    println!("{}\n", count_table("event type", "events", &summary.events_by_type));
    println!("{}\n", count_table("refusal code", "commands", &summary.by_code));
    println!(
        "Balances of {} accounts\n{}\n",
        summary.sample_accounts,
        balance_table(&summary.sample_balances)
    );
    println!("Their positions\n{}\n", position_table(&summary.sample_positions));
    print_invariants(summary);
}

fn count_table(what: &str, counted: &str, counts: &std::collections::BTreeMap<String, u64>) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header([what, counted]);
    for (name, count) in counts {
        table.add_row([name.clone(), count.to_string()]);
    }
    align_numbers(&mut table, 1..2);
    table
}

fn print_invariants(summary: &DemoSummary) {
    let violations = &summary.invariant_violations;
    if violations.is_empty() {
        println!(
            "Invariants hold for all {} accounts: no negative cash or position, frozen = open reserves + pending withdrawals, frozen shares = open sells, cash and positions = sum of events.",
            summary.accounts
        );
    } else {
        println!("INVARIANTS BROKEN in {} accounts:", violations.len());
        for (account, why) in violations.iter().take(20) {
            println!("  {account}: {why}");
        }
    }
}

/// Every phase with its time, then the time between them (generating the commands) and the whole run.
fn phase_table(report: &DemoReport) -> Table {
    let timings = &report.timings;
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header(["phase", "commands", "seconds"]);
    for phase in &timings.phases {
        let commands = if phase.commands == 0 {
            String::new()
        } else {
            phase.commands.to_string()
        };
        table.add_row([phase.name.clone(), commands, format!("{:.2}", phase.seconds)]);
    }
    let in_phases: f64 = timings.phases.iter().map(|p| p.seconds).sum();
    table.add_row([
        "between phases (generating commands)".to_owned(),
        String::new(),
        format!("{:.2}", (timings.total_seconds - in_phases).max(0.0)),
    ]);
    table.add_row([
        "whole run".to_owned(),
        report.summary.commands.to_string(),
        format!("{:.2}", timings.total_seconds),
    ]);
    align_numbers(&mut table, 1..3);
    table
}

/// Where the log is, and commands to paste as they are: paths quoted for the shell,
/// a password left out (it comes from `PGPASSWORD` or `~/.pgpass`, never the screen).
fn print_closing(db: &str, commands_out: Option<&Path>) {
    let (db, had_password) = without_password(db);
    println!("\nThe log is in {db}.");
    if had_password {
        println!("Its password is left out here: give it in PGPASSWORD or ~/.pgpass.");
    }
    println!("Try: ledger --db {} balances", shell_quoted(&db));
    if let Some(path) = commands_out {
        println!(
            "The commands are in {}. Replay them with: ledger --db ledger-replay.db exec {}",
            path.display(),
            shell_quoted(&path.display().to_string())
        );
    }
}

/// A word the shell reads back unchanged: as it is when plain, else in single quotes.
fn shell_quoted(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A database URL without its password (and whether it had one); a path unchanged.
fn without_password(db: &str) -> (String, bool) {
    let Some((scheme, rest)) = db.split_once("://") else {
        return (db.to_owned(), false);
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => (format!("{scheme}://{user}@{host}{tail}"), true),
            None => (db.to_owned(), false),
        },
        None => (db.to_owned(), false),
    }
}

/// The reconciliation's verdict and where the sample statement is.
fn print_files(report: &DemoReport) {
    let (reconciliation, files) = (&report.reconciliation, &report.files);
    let (planted, found) = (&reconciliation.planted, &reconciliation.breaks);
    let verdict = if reconciliation.found_exactly_the_planted() {
        format!("found exactly those {}", found.len())
    } else {
        format!("found {}, NOT the planted ones", found.len())
    };
    println!(
        "Reconciliation of {} (the ledger as of position {}, the close of the date) against {} (bank) and {} (depository), with breaks planted in them: planted {} breaks, {verdict}.",
        reconciliation.trade_date,
        reconciliation.as_of_position,
        files.bank.display(),
        files.depository.display(),
        planted.len()
    );
    for each in found {
        let mark = if planted.contains(each) {
            "planted"
        } else {
            "NOT PLANTED"
        };
        println!("  {}  ({mark})", break_line(each));
    }
    for missed in planted.iter().filter(|p| !found.contains(p)) {
        println!("  {}  (planted, NOT FOUND)", break_line(missed));
    }
    let statement = &report.statement;
    println!(
        "The statement (对账单) of {} for {} to {} is in {}.",
        statement.account_id,
        statement.from,
        statement.to,
        files.statement.display()
    );
}

fn break_line(each: &Break) -> String {
    let or_none = |text: &str| {
        if text.is_empty() {
            "none".to_owned()
        } else {
            text.to_owned()
        }
    };
    let what = if each.instrument.is_empty() {
        each.account_id.clone()
    } else {
        format!("{} {}", each.account_id, each.instrument)
    };
    format!(
        "{} {what}: ours {}, theirs {}",
        each.kind.as_str(),
        or_none(&each.ours),
        or_none(&each.theirs)
    )
}

#[cfg(test)]
mod tests {
    use super::{shell_quoted, without_password};

    #[test]
    fn try_lines_quote_what_the_shell_would_split_and_leave_out_passwords() {
        assert_eq!(shell_quoted("ledger-demo.db"), "ledger-demo.db");
        assert_eq!(shell_quoted("my ledger.db"), "'my ledger.db'");
        assert_eq!(shell_quoted("it's.db"), r"'it'\''s.db'");
        assert_eq!(shell_quoted(""), "''");
        assert_eq!(
            without_password("postgres://u:secret@h:5432/db?sslmode=require"),
            ("postgres://u@h:5432/db?sslmode=require".to_owned(), true)
        );
        assert_eq!(
            without_password("postgres://u@h/db"),
            ("postgres://u@h/db".to_owned(), false)
        );
        assert_eq!(
            without_password("sqlite://a b.db"),
            ("sqlite://a b.db".to_owned(), false)
        );
    }
}
