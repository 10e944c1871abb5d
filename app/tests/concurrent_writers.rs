//! Writers on the same accounts at once, on every backend: engines each with its
//! own connections (as `ledger exec` processes have), running files whose batches
//! all touch the same accounts, and the server's writer (its queue and group
//! commit) fed by concurrent clients, while read-outs and `verify` run beside them.
//! All finish, every command is answered once, nothing is lost or applied twice,
//! every read-out answers, and the log verifies. The other writers make some of
//! the queue's batches conflict: each is then decided again, under the append
//! lock if need be.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ledger_app::{CommandRequest, EventStore, Ledger, LineAnswer, RequestOutcome, Status};
use ledger_testkit::{TestDatabase, BACKENDS};
use rust_decimal::Decimal;

/// Accounts both writers deposit into: every batch of either touches each of them.
const ACCOUNTS: usize = 200;
/// Lines per writer: several full engine batches each.
const DEPOSITS_PER_WRITER: usize = 3_000;
/// Writers at once. Each deposit of writer `w` is `w + 1` yuan, so their totals differ.
/// (With the three tries the engine once had, one of four gave up in every run.)
const WRITERS: usize = 4;
/// Clients of the server's writer, which writes one more writer's deposits beside them.
const QUEUE_CLIENTS: usize = 16;
/// Read-outs running beside them, each bringing the read models up to date as it goes
/// (so they also run beside each other); the first also verifies.
const READERS: usize = 2;

fn account(index: usize) -> String {
    format!("TW{index:04}")
}

fn opening_lines() -> Vec<String> {
    (0..ACCOUNTS)
        .map(|i| {
            format!(
                r#"{{"type":"open_account","command_id":"open-{i}","account_id":"{}","customer_name":"Customer {i}","id_number":"11010519491231{i:04}","risk_level":3}}"#,
                account(i)
            )
        })
        .collect()
}

fn deposit_lines(writer: usize) -> Vec<String> {
    (0..DEPOSITS_PER_WRITER)
        .map(|k| {
            format!(
                r#"{{"type":"deposit","command_id":"w{writer}-{k}","account_id":"{}","amount":"{}.00","bank_ref":"w{writer}-{k}"}}"#,
                account(k % ACCOUNTS),
                writer + 1
            )
        })
        .collect()
}

async fn engine(url: &str) -> (Arc<dyn EventStore>, Ledger) {
    let store = ledger_app::open_store(url).await.unwrap();
    let rules = Arc::new(ledger_app::load_rules(None).unwrap());
    (Arc::clone(&store), Ledger::new(store, rules))
}

/// Runs one writer's file on an engine of its own; every answer, or the error that stopped it.
async fn write(url: String, writer: usize) -> Result<Vec<LineAnswer>, String> {
    let (_store, mut ledger) = engine(&url).await;
    let lines = deposit_lines(writer);
    ledger_app::run_lines(&mut ledger, "test", 1, lines.iter(), |_| {})
        .await
        .map_err(|e| format!("writer {writer}: {}: {e}", e.code()))
}

/// Told nothing: the test reads the answers, not the batches.
struct Unobserved;

impl ledger_app::writer::BatchObserver for Unobserved {
    fn committed(&self, _: &[CommandRequest], _: &[RequestOutcome], _: std::time::Duration) {}
    fn failed(&self, _: usize, _: &ledger_app::writer::WriteFailure) {}
}

/// Writer number `writer`'s deposits sent through the server's writer by
/// `QUEUE_CLIENTS` clients, each sending a command once the one before is answered;
/// every command's answer, or the first error.
async fn write_through_the_queue(url: String, writer: usize) -> Result<Vec<Status>, String> {
    let store = ledger_app::open_store(&url).await.unwrap();
    let rules = Arc::new(ledger_app::load_rules(None).unwrap());
    let options = ledger_app::writer::WriterOptions {
        limit_commands: ledger_app::writer::DEFAULT_QUEUE_COMMANDS,
        cache_aggregates: ledger_app::DEFAULT_CACHE_AGGREGATES,
        observer: Arc::new(Unobserved),
    };
    let (queue, _commits, task) = ledger_app::writer::start(store, Arc::clone(&rules), options);
    let lines = deposit_lines(writer);
    let clients: Vec<_> = (0..QUEUE_CLIENTS)
        .map(|client| {
            let mine: Vec<String> = lines.iter().skip(client).step_by(QUEUE_CLIENTS).cloned().collect();
            let (queue, rules) = (queue.clone(), Arc::clone(&rules));
            tokio::spawn(async move {
                let mut statuses = Vec::with_capacity(mine.len());
                for line in mine {
                    let request = ledger_app::read_command_request(line.as_bytes(), None, "test", &rules)
                        .map_err(|e| format!("{line}: {e}"))?;
                    let answer = queue.send(vec![request]).map_err(|e| format!("queue: {e:?}"))?;
                    let outcomes = answer.await.map_err(|_| "the writer stopped".to_owned())?;
                    match outcomes.map_err(|e| format!("{}: {e}", e.code))?.as_slice() {
                        [RequestOutcome::Answered(result)] => statuses.push(result.status),
                        other => return Err(format!("{line}: {other:?}")),
                    }
                }
                Ok::<_, String>(statuses)
            })
        })
        .collect();
    drop(queue);
    let mut statuses = Vec::with_capacity(lines.len());
    for client in clients {
        statuses.extend(client.await.map_err(|e| e.to_string())??);
    }
    task.await.map_err(|e| e.to_string())?;
    Ok(statuses)
}

/// Read-outs (and, with `verifying`, verify), with connections of their own, until the
/// writers are done; how many rounds ran, or the first error.
async fn read(url: String, verifying: bool, writers_done: Arc<AtomicBool>) -> Result<u32, String> {
    let (store, _ledger) = engine(&url).await;
    let mut rounds = 0;
    while !writers_done.load(Ordering::Relaxed) || rounds == 0 {
        rounds += 1;
        ledger_app::balances(store.as_ref(), |_| {})
            .await
            .map_err(|e| format!("balances: {}: {e}", e.code()))?;
        if !verifying {
            continue;
        }
        let report = ledger_app::verify(store.as_ref(), |_| {})
            .await
            .map_err(|e| format!("verify: {}: {e}", e.code()))?;
        if !report.is_ok() {
            return Err(format!("verify beside the writers: {:?}", report.problems));
        }
    }
    Ok(rounds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_on_the_same_accounts_all_finish() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let (store, mut ledger) = engine(&db.url).await;
        let opened = ledger_app::run_lines(&mut ledger, "test", 1, opening_lines().iter(), |_| {})
            .await
            .unwrap();
        assert!(opened.iter().all(|a| a.status == Status::Accepted), "{backend:?}");

        let writers_done = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..READERS)
            .map(|reader| tokio::spawn(read(db.url.clone(), reader == 0, Arc::clone(&writers_done))))
            .collect();
        let queued = tokio::spawn(write_through_the_queue(db.url.clone(), WRITERS));
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| tokio::spawn(write(db.url.clone(), writer)))
            .collect();
        let mut answered = Vec::new();
        for handle in writers {
            answered.push(handle.await.unwrap());
        }
        let queued = queued.await.unwrap().unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        writers_done.store(true, Ordering::Relaxed);
        for handle in readers {
            let rounds = handle.await.unwrap().unwrap_or_else(|e| panic!("{backend:?}: {e}"));
            assert!(rounds > 0, "{backend:?}");
        }
        for (writer, answers) in answered.into_iter().enumerate() {
            let answers = answers.unwrap_or_else(|e| panic!("{backend:?}: {e}"));
            assert_eq!(
                answers.len(),
                DEPOSITS_PER_WRITER,
                "{backend:?}: every line answered once"
            );
            for (index, answer) in answers.iter().enumerate() {
                assert_eq!(answer.line, index as u64 + 1, "{backend:?}: in order");
                assert_eq!(
                    answer.status,
                    Status::Accepted,
                    "{backend:?} writer {writer}: {answer:?}"
                );
            }
        }

        assert_eq!(
            queued.len(),
            DEPOSITS_PER_WRITER,
            "{backend:?}: every command answered once"
        );
        assert!(
            queued.iter().all(|status| *status == Status::Accepted),
            "{backend:?}: through the queue: {:?}",
            queued
                .iter()
                .filter(|status| **status != Status::Accepted)
                .collect::<Vec<_>>()
        );

        assert_every_deposit_once(store.as_ref(), backend).await;
    }
}

/// Nothing lost, nothing applied twice: each account holds exactly its deposits, and
/// the log verifies with one event per opening and per deposit.
async fn assert_every_deposit_once(store: &dyn EventStore, backend: ledger_testkit::Backend) {
    let balances = ledger_app::balances(store, |_| {}).await.unwrap();
    let available: BTreeMap<String, Decimal> = balances
        .iter()
        .map(|row| (row.account_id.clone(), row.available.parse().unwrap()))
        .collect();
    let per_account = DEPOSITS_PER_WRITER / ACCOUNTS;
    // Writer `w` deposits `w + 1` yuan; the queue's is writer number WRITERS.
    let expected = Decimal::from(per_account * (1..=WRITERS + 1).sum::<usize>());
    for i in 0..ACCOUNTS {
        assert_eq!(
            available.get(&account(i)),
            Some(&expected),
            "{backend:?} {}",
            account(i)
        );
    }

    let report = ledger_app::verify(store, |_| {}).await.unwrap();
    assert!(report.is_ok(), "{backend:?}: {:?}", report.problems);
    assert!(report.projections_checked, "{backend:?}");
    assert_eq!(
        report.events,
        (ACCOUNTS + (WRITERS + 1) * DEPOSITS_PER_WRITER) as u64,
        "{backend:?}: one event per open and per deposit"
    );
}
