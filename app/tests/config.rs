//! ledger.toml: the defaults, a file named, a missing or invalid file, unknown keys.

use std::path::{Path, PathBuf};

use ledger_app::{config_from_toml, load_config, Config};

#[test]
fn without_a_file_the_defaults_say_they_are_a_placeholder() {
    let config = Config::default();
    assert!(config.broker.name.contains("set [broker] in ledger.toml"), "{config:?}");
    assert_eq!(config.broker.phone, None);
    assert_eq!(config.statement.discrepancy_days, 7);
    assert_eq!(config.statement.pdf_font, None);
    // An empty file is the defaults too: every section is optional.
    assert_eq!(config_from_toml("").unwrap(), config);
    // The tests run in app/, which has no ledger.toml: the defaults.
    assert!(!Path::new("ledger.toml").exists());
    assert_eq!(load_config(None).unwrap(), config);
}

#[test]
fn a_named_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.toml");
    std::fs::write(
        &path,
        "[broker]\nname = \"华泰 Huatai\"\naddress = \"南京 Nanjing\"\n\n[statement]\npdf_font = \"/fonts/x.ttc\"\ndiscrepancy_days = 10\n",
    )
    .unwrap();
    let config = load_config(Some(&path)).unwrap();
    assert_eq!(config.broker.name, "华泰 Huatai");
    assert_eq!(config.broker.address, "南京 Nanjing");
    assert_eq!(config.broker.phone, None);
    assert_eq!(config.statement.pdf_font, Some(PathBuf::from("/fonts/x.ttc")));
    assert_eq!(config.statement.discrepancy_days, 10);
}

#[test]
fn the_example_file_parses() {
    let config = config_from_toml(include_str!("../../ledger.example.toml")).unwrap();
    assert_eq!(config.broker.phone.as_deref(), Some("95500"));
    assert!(!config.broker.name.contains("ledger.toml"));
}

#[test]
fn a_named_file_that_is_missing_is_an_error_naming_it() {
    let error = load_config(Some(Path::new("/nonexistent/ledger.toml"))).unwrap_err();
    assert_eq!(error.code(), "config_unreadable");
    let message = error.to_string();
    assert!(
        message.contains("/nonexistent/ledger.toml") && message.contains("No such file"),
        "{message}"
    );
}

#[test]
fn an_unknown_key_or_bad_toml_is_refused_naming_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.toml");
    for (text, said) in [
        ("[broker]\nname = \"a\"\naddress = \"b\"\nfax = \"c\"\n", "fax"),
        ("[brokr]\nname = \"a\"\n", "brokr"),
        ("[broker]\nname = \"a\"\n", "address"),
        ("[broker\n", "TOML"),
        ("[statement]\ndiscrepancy_days = -1\n", "discrepancy_days"),
    ] {
        std::fs::write(&path, text).unwrap();
        let error = load_config(Some(&path)).unwrap_err();
        assert_eq!(error.code(), "invalid_config", "{text}");
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains(said), "{said:?} not in {message}");
    }
}

#[test]
fn the_events_source_defaults_and_must_be_a_uri_reference() {
    assert_eq!(config_from_toml("").unwrap().events.source, "/ledger");
    let named = config_from_toml("[events]\nsource = \"urn:ledger:sh-01\"\n").unwrap();
    assert_eq!(named.events.source, "urn:ledger:sh-01");
    for bad in ["", "two words", "全角", "tab\there"] {
        let error = config_from_toml(&format!("[events]\nsource = {bad:?}\n")).unwrap_err();
        assert!(error.contains("is not a URI reference"), "{bad:?}: {error}");
    }
    assert!(
        config_from_toml("[events]\nsorce = \"x\"\n").is_err(),
        "a misspelt key is refused"
    );
}
