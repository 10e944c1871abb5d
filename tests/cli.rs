//! The binary end to end: the demo, bad files and bad options fail cleanly.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

mod common;
use common::{ledger_in, stderr, stdout};

#[test]
fn demo_runs_on_a_fresh_directory_and_holds_the_invariants() {
    let dir = tempfile::tempdir().unwrap();
    let out = ledger_in(
        dir.path(),
        &[
            "demo",
            "--accounts",
            "30",
            "--seed",
            "7",
            "--commands-out",
            "demo.jsonl",
        ],
    );
    assert!(out.status.success(), "demo failed: {}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Invariants hold for all 30 accounts"), "{text}");
    for section in [
        "commands/s",
        "event type",
        "refusal code",
        "FillBooked",
        "OrderExpired",
        "TradesSettled",
    ] {
        assert!(text.contains(section), "the report shows {section}: {text}");
    }
    assert!(dir.path().join("ledger-demo.db").exists());
    assert!(text.contains("planted 3 breaks, found exactly those 3"), "{text}");
    let statement = std::fs::read_to_string(dir.path().join("ledger-demo-statement.html")).unwrap();
    assert!(statement.contains("对账单 Statement of account D0000001"));

    // A second run replaces its own database and gives the same figures for the same seed.
    let again = ledger_in(dir.path(), &["demo", "--accounts", "30", "--seed", "7"]);
    assert!(again.status.success(), "{}", stderr(&again));
    // The number alone: the table's padding follows the width of the timing figures.
    let events_written = |t: &str| {
        t.lines().find(|l| l.contains("events written")).map(|l| {
            l.split_whitespace()
                .filter(|word| word.parse::<u64>().is_ok())
                .collect::<Vec<_>>()
                .join(" ")
        })
    };
    let first = events_written(&text);
    assert!(first.as_deref().is_some_and(|n| !n.is_empty()), "{text}");
    assert_eq!(first, events_written(&stdout(&again)));

    // The commands it wrote replay through `ledger exec` to the same balances.
    let demo_balances = ledger_in(dir.path(), &["--db", "ledger-demo.db", "balances", "--json"]);
    let replay = ledger_in(dir.path(), &["--db", "replay.db", "exec", "demo.jsonl", "--json"]);
    assert!(replay.status.success(), "{}", stderr(&replay));
    let replay_balances = ledger_in(dir.path(), &["--db", "replay.db", "balances", "--json"]);
    assert_eq!(stdout(&demo_balances), stdout(&replay_balances));
    let balances: Value = serde_json::from_str(&stdout(&demo_balances)).unwrap();
    assert_eq!(balances.as_array().unwrap().len(), 30);
}

#[test]
fn demo_tells_its_phases_when_not_on_a_terminal_and_its_try_lines_run_as_printed() {
    let dir = tempfile::tempdir().unwrap();
    let out = ledger_in(
        dir.path(),
        &[
            "--db",
            "my ledger.db",
            "demo",
            "--accounts",
            "5",
            "--commands-out",
            "it's commands.jsonl",
        ],
    );
    assert!(out.status.success(), "demo failed: {}", stderr(&out));
    let (text, progress) = (stdout(&out), stderr(&out));
    // Stderr is a pipe here: a line per phase as it finishes instead of silence.
    for phase in [
        "listings and accounts",
        "end of day 2024-03-05",
        "read models",
        "reconciliation",
    ] {
        assert!(
            progress.lines().any(|l| l.contains(phase) && l.ends_with(" s")),
            "no line for {phase}: {progress}"
        );
    }
    // The whole run's time and each phase, rates as whole numbers.
    assert!(text.contains("whole run"), "{text}");
    let throughput = text.lines().find(|l| l.contains("commands/s")).unwrap();
    assert!(!throughput.contains('.'), "{throughput}");
    assert!(text.contains("planted 3 breaks, found exactly those 3"), "{text}");

    let tries: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once("Try: ").map(|(_, t)| t))
        .collect();
    assert!(!tries.is_empty(), "{text}");
    assert!(tries.iter().any(|t| t.contains("'my ledger.db'")), "{tries:?}");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_ledger")).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    for line in tries {
        let ran = Command::new("sh")
            .arg("-c")
            .arg(line)
            .current_dir(dir.path())
            .env("PATH", &path)
            .env_remove("LEDGER_DATABASE_URL")
            .output()
            .unwrap();
        assert!(ran.status.success(), "{line}: {}", stderr(&ran));
        assert!(stdout(&ran).contains("D0000001"), "{line}: {}", stdout(&ran));
    }
    let replay = text
        .lines()
        .find_map(|l| l.split_once("Replay them with: ").map(|(_, t)| t));
    let replay = replay.unwrap();
    let ran = Command::new("sh")
        .arg("-c")
        .arg(replay)
        .current_dir(dir.path())
        .env("PATH", &path)
        .env_remove("LEDGER_DATABASE_URL")
        .output()
        .unwrap();
    assert!(ran.status.success(), "{replay}: {}", stderr(&ran));
}

#[test]
fn demo_refuses_a_database_that_is_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("one.jsonl"),
        r#"{"type":"list_instrument","command_id":"C1","instrument":"600519.SH","name":"Moutai","board":"main","risk_level":2}"#,
    )
    .unwrap();
    assert!(ledger_in(dir.path(), &["--db", "busy.db", "exec", "one.jsonl"])
        .status
        .success());
    let out = ledger_in(dir.path(), &["--db", "busy.db", "demo", "--accounts", "5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the demo needs an empty database"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn exec_answers_every_line_of_a_messy_file_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        r#"{"type":"open_account","command_id":"C1","account_id":"A1","customer_name":"Li Lei","id_number":"110101199001011234","risk_level":3}"#,
        "this is not json",
        "",
        r#"{"type":"deposit","command_id":"C2","account_id":"A1","amount":"100.005","bank_ref":"B1"}"#,
        r#"{"type":"deposit","command_id":"C3","account_id":"A1","amount":"100.00","bank_ref":"B1"}"#,
        r#"{"type":"deposit","command_id":"C4","account_id":"A1","amount":"100.00","bank_ref":"B1"}"#,
        r#"{"type":"withdraw","command_id":"C5","account_id":"A1","amount":"1000.00","bank_ref":"W1"}"#,
    ];
    std::fs::write(dir.path().join("messy.jsonl"), lines.join("\n")).unwrap();
    let out = ledger_in(dir.path(), &["exec", "messy.jsonl", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let answers: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let summary: Vec<(u64, &str, &str)> = answers
        .iter()
        .map(|a| {
            (
                a["line"].as_u64().unwrap(),
                a["status"].as_str().unwrap(),
                a["code"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, "accepted", "-"),
            (2, "rejected", "malformed"),
            (4, "rejected", "malformed"),
            (5, "accepted", "-"),
            (6, "rejected", "duplicate_bank_ref"),
            (7, "rejected", "insufficient_funds"),
        ]
    );
    assert!(answers[1]["message"]
        .as_str()
        .unwrap()
        .starts_with("line 2: not valid JSON"));
    assert!(
        dir.path().join("ledger.db").exists(),
        "the default database is ledger.db in the working directory"
    );
}

#[test]
fn missing_files_and_unknown_databases_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = ledger_in(dir.path(), &["exec", "nowhere.jsonl"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot open command file nowhere.jsonl"),
        "{}",
        stderr(&out)
    );

    let out = ledger_in(dir.path(), &["--db", "mysql://localhost/x", "balances"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown scheme"), "{}", stderr(&out));

    let out = ledger_in(dir.path(), &["--rules", "missing.toml", "balances"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read rules file missing.toml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn events_can_be_read_from_a_position() {
    let dir = tempfile::tempdir().unwrap();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/two-days.jsonl");
    assert!(ledger_in(dir.path(), &["exec", file.to_str().unwrap()])
        .status
        .success());
    let out = ledger_in(dir.path(), &["events", "--from", "5", "--limit", "3", "--json"]);
    assert!(out.status.success());
    let events: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let positions: Vec<u64> = events.iter().map(|e| e["position"].as_u64().unwrap()).collect();
    assert_eq!(positions, vec![5, 6, 7]);
    assert_eq!(events[0]["commandid"], "C000005");
}

#[test]
fn eod_and_settle_run_once_in_order_and_print_the_clearing_report() {
    let dir = tempfile::tempdir().unwrap();
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/two-days.jsonl"))
            .unwrap();
    // The first day, up to (not including) its end_of_day line.
    let day_one: Vec<&str> = example.lines().take(92).collect();
    std::fs::write(dir.path().join("day1.jsonl"), day_one.join("\n")).unwrap();
    assert!(ledger_in(dir.path(), &["exec", "day1.jsonl"]).status.success());

    let early = ledger_in(dir.path(), &["settle", "--date", "2024-03-04"]);
    assert_eq!(early.status.code(), Some(1));
    assert!(
        stderr(&early).contains("run end_of_day before settle"),
        "{}",
        stderr(&early)
    );

    let eod = ledger_in(dir.path(), &["eod", "--date", "2024-03-04", "--json"]);
    assert!(eod.status.success(), "{}", stderr(&eod));
    let report: Value = serde_json::from_str(&stdout(&eod)).unwrap();
    assert_eq!(report["status"], "accepted");
    // 22 fills on the first day; 601398.SH: 11 of them.
    assert_eq!(report["report"]["total"]["trades"], 22);
    let icbc = report["report"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["instrument"] == "601398.SH")
        .unwrap();
    assert_eq!(icbc["trades"], 11);
    // Net to the depository = bought - sold + every fee but commission.
    assert_eq!(report["report"]["total"]["net_to_depository_cny"], "162579.04");

    let again = ledger_in(dir.path(), &["eod", "--date", "2024-03-04"]);
    assert!(again.status.success());
    assert!(
        stdout(&again).contains("is already closed; nothing changed"),
        "{}",
        stdout(&again)
    );
    let settled = ledger_in(dir.path(), &["settle", "--date", "2024-03-04"]);
    assert!(settled.status.success(), "{}", stderr(&settled));
    assert!(stdout(&settled).contains("settlement of 2024-03-04"));
    let verified = ledger_in(dir.path(), &["verify"]);
    assert!(stdout(&verified).contains("OK:"), "{}", stdout(&verified));
}

#[test]
fn projections_follow_the_log_live_until_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/two-days.jsonl"))
            .unwrap();
    let lines: Vec<&str> = example.lines().collect();
    std::fs::write(dir.path().join("first.jsonl"), lines[..30].join("\n")).unwrap();
    assert!(ledger_in(dir.path(), &["exec", "first.jsonl"]).status.success());
    let follower = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .current_dir(dir.path())
        .env_remove("LEDGER_DATABASE_URL")
        .args(["projections", "run", "--follow", "--poll-ms", "50"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::fs::write(dir.path().join("all.jsonl"), example).unwrap();
    assert!(ledger_in(dir.path(), &["exec", "all.jsonl"]).status.success());
    // The follower catches up with the 169 events by itself; balances then need no catch-up of their own.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = ledger_in(dir.path(), &["verify", "--json"]);
        let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
        if report["projections_checked"] == true {
            assert_eq!(report["problem_count"], 0);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the follower did not catch up");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Ctrl-C, as an operator would press it: kill(1) keeps this test free of `unsafe`.
    let interrupted = Command::new("kill")
        .args(["-INT", &follower.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let output = follower.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("stopped at checkpoint 169"));
}

#[test]
fn orders_and_trades_read_out_the_blotter_as_tables_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/two-days.jsonl");
    assert!(ledger_in(dir.path(), &["exec", file.to_str().unwrap()])
        .status
        .success());
    let json = |args: &[&str]| -> Vec<Value> {
        let out = ledger_in(dir.path(), args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        serde_json::from_str(&stdout(&out)).expect("a JSON array")
    };

    let orders = json(&["orders", "--json"]);
    assert_eq!(orders.len(), 31, "every order of both days");
    assert_eq!(orders[0]["order_id"], "O000001");
    assert_eq!(orders[0]["limit_price_cny"], "5.29", "decimals are strings");
    assert_eq!(orders[0]["status"], "expired");
    let a0004 = json(&[
        "orders",
        "--account",
        "A0004",
        "--date",
        "2024-03-04",
        "--limit",
        "2",
        "--json",
    ]);
    assert_eq!(a0004.len(), 2);
    assert!(a0004.iter().all(|o| o["account_id"] == "A0004"));
    assert!(json(&["orders", "--open", "--json"]).is_empty(), "both days are closed");

    let trades = json(&["trades", "--date", "2024-03-05", "--json"]);
    assert_eq!(trades.len(), 11);
    let first = &json(&["trades", "--limit", "1", "--json"])[0];
    assert_eq!(first["exec_id"], "E000001");
    assert_eq!(first["value_cny"], "4599.00");
    assert_eq!(first["fees_cny"], "5.30");
    assert_eq!(first["net_cash_cny"], "-4604.30");

    let table = stdout(&ledger_in(dir.path(), &["trades", "--account", "A0001"]));
    assert!(table.contains("4599.00") && table.contains("-4604.30"), "{table}");
    assert_eq!(table.matches("A0001").count(), 7, "{table}");
    let table = stdout(&ledger_in(dir.path(), &["orders", "--account", "A0001"]));
    assert!(table.contains("limit price") && table.contains("   5.29 "), "{table}");

    let refused = ledger_in(dir.path(), &["trades", "--limit", "0"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("--limit"), "{}", stderr(&refused));
}
