//! `ledger token create` and `ledger token list` end to end: the token printed once,
//! alone on the last line, verifying against the file that holds only its hash; the
//! file's comments kept; a duplicate name refused with the file unchanged.

use ledger_app::access::{authenticate, Role};
use serde_json::Value;

mod common;
use common::{ledger_command, ledger_in, stderr, stdout};

const CONFIG: &str =
    "# Settings of our ledger: this comment stays.\n[broker]\nname = \"示例证券\"\naddress = \"上海\"\n";

#[test]
fn create_prints_the_token_once_and_the_file_keeps_only_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ops.toml"), CONFIG).unwrap();
    let args = [
        "token",
        "create",
        "--role",
        "gateway",
        "--name",
        "gw-1",
        "--account",
        "A0001",
        "--account",
        "A0002",
        "--config",
        "ops.toml",
    ];
    let out = ledger_in(dir.path(), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let token = printed.lines().last().unwrap();
    assert!(
        token.starts_with("lgr_") && !token.contains(' '),
        "the last line is the token alone: {printed}"
    );
    assert_eq!(printed.matches(token).count(), 1, "printed once: {printed}");

    let text = std::fs::read_to_string(dir.path().join("ops.toml")).unwrap();
    assert!(text.starts_with(CONFIG), "{text}");
    assert!(!text.contains(token), "the file never holds the token: {text}");
    let config = ledger_app::load_config(Some(&dir.path().join("ops.toml"))).unwrap();
    let principal = authenticate(&config.tokens, Some(token)).unwrap();
    assert_eq!(principal.role, Role::Gateway);
    assert_eq!(principal.accounts, Some(vec!["A0001".to_owned(), "A0002".to_owned()]));

    // The same name again is refused, saying so, and the file is as it was.
    let again = ledger_in(dir.path(), &args);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("already exists"), "{}", stderr(&again));
    assert_eq!(std::fs::read_to_string(dir.path().join("ops.toml")).unwrap(), text);

    // An unknown role is refused by the argument parser, naming the roles.
    let bad = ledger_in(
        dir.path(),
        &[
            "token", "create", "--role", "admin", "--name", "x", "--config", "ops.toml",
        ],
    );
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("auditor"), "{}", stderr(&bad));
}

#[test]
fn list_shows_names_roles_accounts_and_dates_never_hashes() {
    let dir = tempfile::tempdir().unwrap();
    // No --config: ledger.toml in the working directory, created by the first token.
    for (role, name) in [("auditor", "audit"), ("subscriber", "feed")] {
        let out = ledger_in(dir.path(), &["token", "create", "--role", role, "--name", name]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let text = std::fs::read_to_string(dir.path().join("ledger.toml")).unwrap();
    let hashes: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("sha256 = \""))
        .map(|l| l.trim_end_matches('"'))
        .collect();
    assert_eq!(hashes.len(), 2, "{text}");

    let table = stdout(&ledger_in(dir.path(), &["token", "list"]));
    for needed in ["audit", "auditor", "feed", "subscriber", "every account"] {
        assert!(table.contains(needed), "{needed}: {table}");
    }
    let out = ledger_command(dir.path())
        .args(["token", "list", "--json"])
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["audit", "feed"]);
    for hash in hashes {
        assert!(!table.contains(hash) && !stdout(&out).contains(hash));
    }
    // The other commands read the same file and accept it.
    let help = ledger_in(dir.path(), &["--db", "ledger.db", "init"]);
    assert!(help.status.success(), "{}", stderr(&help));
}
