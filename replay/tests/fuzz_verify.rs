//! Fuzzing `verify` on corrupted rows (issue 11): the worked example's log (169
//! events, SQLite) with one byte of one row's `payload`, `hash` or `prev_hash`
//! flipped, at random. Whatever the byte becomes (a quote turned `#`, a byte that
//! is not UTF-8, a letter of a hex digit), `verify`:
//!
//! * never fails the run and never panics: it answers with a report;
//! * never passes: the report names a problem;
//! * names the flipped row's position as the first broken one, and still reads the
//!   chain on to the head, whose hash it reports as the clean log's (unless the byte
//!   flipped was in the head's own hash).
//!
//! SQLite keeps whatever bytes a column is given, so every flip is possible there;
//! PostgreSQL's types refuse most of them (its cases are in tests/verify.rs).
//!
//! `cargo test -p ledger-replay --test fuzz_verify` runs `DEFAULT_CASES` random flips
//! after every flip of `corpus/verify-flips.txt`, well under 30 s;
//! `LEDGER_FUZZ_CASES=N` runs N (docs/operations.md, "Fuzzing"). A failing case is
//! shrunk, printed and saved in `fuzz_verify.proptest-regressions` beside this file,
//! which is committed and replayed first on every run.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ledger_eventstore::{connect, Database};
use ledger_replay::{verify, VerifyReport};
use ledger_testkit::{fuzz_config, sqlite_copy_of, Backend, TestDatabase};
use proptest::prelude::*;
use sqlx::{Connection, Row};

mod common;
use common::{loaded, EXAMPLE_EVENTS};

/// Random flips per run when `LEDGER_FUZZ_CASES` is not set: about 10 s in CI.
const DEFAULT_CASES: u32 = 64;
/// The columns a flip may hit.
const COLUMNS: [&str; 3] = ["payload", "hash", "prev_hash"];

/// One byte of one row's column, XORed with a mask that is never 0.
#[derive(Debug, Clone)]
struct Flip {
    position: u64,
    column: &'static str,
    /// Taken modulo the column's length.
    offset: usize,
    mask: u8,
}

/// The clean log, built once: its SQLite file (copied for each case) and head hash.
struct Template {
    _db: TestDatabase,
    path: PathBuf,
    head_hash: String,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        runtime().block_on(async {
            let (db, store) = loaded(Backend::Sqlite).await;
            let clean = verify(store.as_ref(), |_| {}).await.unwrap();
            assert!(clean.is_ok() && clean.events == EXAMPLE_EVENTS, "{clean:?}");
            // Closed, so that the file holds every event (SQLite checkpoints its WAL).
            if let Database::Sqlite(pool) = store.database() {
                pool.close().await;
            }
            Template {
                path: PathBuf::from(db.url.trim_start_matches("sqlite://")),
                _db: db,
                head_hash: clean.head_hash,
            }
        })
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02X}")).collect()
}

/// Flips the byte on a copy of the clean log and verifies the copy.
async fn verify_flipped(template: &Template, flip: &Flip) -> (VerifyReport, String) {
    let db = sqlite_copy_of(&template.path);
    let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    let select = format!(
        "SELECT CAST({} AS BLOB) FROM events WHERE global_position = ?",
        flip.column
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(select))
        .bind(i64::try_from(flip.position).unwrap())
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let mut bytes: Vec<u8> = row.get(0);
    conn.close().await.unwrap();
    let offset = flip.offset % bytes.len();
    bytes[offset] ^= flip.mask;
    let edit = format!(
        "UPDATE events SET {} = CAST(X'{}' AS TEXT) WHERE global_position = {}",
        flip.column,
        hex(&bytes),
        flip.position
    );
    db.tamper(&[&edit]).await;
    let store = connect(&db.url).await.unwrap();
    let report = verify(store.as_ref(), |_| {}).await.unwrap_or_else(|e| {
        panic!("{flip:?}: verify must report the broken row, not fail: {e}");
    });
    if let Database::Sqlite(pool) = store.database() {
        pool.close().await;
    }
    (report, String::from_utf8_lossy(&bytes).into_owned())
}

fn check(flip: &Flip) -> Result<(), TestCaseError> {
    let template = template();
    let (report, flipped) = runtime().block_on(verify_flipped(template, flip));
    prop_assert!(
        !report.is_ok(),
        "{flip:?} passed verify; the column now holds {flipped:?}"
    );
    prop_assert_eq!(
        report.first_broken_position,
        Some(flip.position),
        "{:?}: {:?}; the column now holds {:?}",
        flip,
        report.problems,
        flipped
    );
    prop_assert_eq!(report.events, EXAMPLE_EVENTS);
    if !(flip.column == "hash" && flip.position == EXAMPLE_EVENTS) {
        prop_assert_eq!(&report.head_hash, &template.head_hash, "{:?}", flip);
    }
    Ok(())
}

fn flip() -> impl Strategy<Value = Flip> {
    (
        1..=EXAMPLE_EVENTS,
        prop::sample::select(COLUMNS.to_vec()),
        any::<usize>(),
        1u8..=255,
    )
        .prop_map(|(position, column, offset, mask)| Flip {
            position,
            column,
            offset,
            mask,
        })
}

/// The flips of `corpus/verify-flips.txt`: `position column offset mask`, a comment after `#`.
fn corpus() -> Vec<Flip> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/verify-flips.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [position, column, offset, mask] = fields[..] else {
                panic!("{}: {line:?} is not `position column offset mask`", path.display());
            };
            Flip {
                position: position.parse().unwrap(),
                column: COLUMNS.into_iter().find(|c| *c == column).unwrap(),
                offset: offset.parse().unwrap(),
                mask: u8::from_str_radix(mask.trim_start_matches("0x"), 16).unwrap(),
            }
        })
        .collect()
}

#[test]
fn every_flip_of_the_corpus_is_placed() {
    let flips = corpus();
    assert!(flips.len() >= 6, "{flips:?}");
    for flip in flips {
        if let Err(failure) = check(&flip) {
            panic!("{failure}");
        }
    }
}

proptest! {
    #![proptest_config(fuzz_config(DEFAULT_CASES))]

    #[test]
    fn any_flipped_byte_of_a_row_is_placed_at_its_position(flip in flip()) {
        check(&flip)?;
    }
}
