//! `ledger bench engine --workload demo`: the demo's two trading days (its generator,
//! `ledger_app::demo::DemoScript`) through the writer, phase by phase, by concurrent
//! clients each waiting for its answer.
//!
//! A phase's commands are dealt to the clients by account, so that each account's
//! commands keep their order, as behind a gateway that routes an account to one
//! session. A command that names no account (a listing, a previous close, a day's
//! close or settlement) is sent alone, once everything before it in its phase is
//! answered, and nothing after it is sent before its answer: the order the demo gives
//! those commands is their meaning. The clock runs while phases run, not while the
//! generator plans the next one from the answers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use ledger_app::demo::DemoScript;
use ledger_app::writer::{self, DEFAULT_QUEUE_COMMANDS};
use ledger_app::{read_command_line, CommandRequest, LineAnswer, MarketRules, RequestOutcome};

use super::engine::ACTOR;
use super::measured::{send_and_keep, Measured, RecordedWriter};
use super::setup::record_latency_us;

/// The demo's days for `accounts` accounts from `seed`, over `clients` clients.
pub(super) async fn run_demo_days(
    store: Arc<dyn ledger_app::EventStore>,
    rules: Arc<MarketRules>,
    cache_aggregates: usize,
    (accounts, seed): (usize, u64),
    clients: usize,
) -> anyhow::Result<Measured> {
    assert!(clients > 0);
    let mut script = DemoScript::new(seed, accounts, Arc::clone(&rules))?;
    let writer = RecordedWriter::start(store, Arc::clone(&rules), cache_aggregates, DEFAULT_QUEUE_COMMANDS)?;
    let mut measured = Measured::new()?;
    while let Some(phase) = script.next_phase() {
        let (mut requests, mut answers) = read_phase(&phase.lines, &rules);
        let started = Instant::now();
        let answered = run_phase(&writer.queue, &mut requests, &phase.lines, clients).await?;
        measured.elapsed += started.elapsed();
        for (index, (outcome, latency_us)) in answered {
            record_latency_us(&mut measured.latencies, latency_us);
            answers[index] = Some(outcome.into_line_answer(index as u64 + 1));
        }
        let answers = answers
            .into_iter()
            .map(|answer| answer.ok_or_else(|| anyhow::anyhow!("a line of the phase {} was not answered", phase.name)))
            .collect::<anyhow::Result<Vec<LineAnswer>>>()?;
        measured.commands += answers.len() as u64;
        for answer in &answers {
            *measured.endings.entry(answer.status.as_str().to_owned()).or_default() += 1;
        }
        script.answered(answers);
    }
    measured.batches = Some(writer.finish().await?);
    Ok(measured)
}

/// A phase's lines read as `ledger exec` reads them, before its clock starts: each a
/// request, or (a line the demo plants malformed) its answer already.
fn read_phase(lines: &[String], rules: &MarketRules) -> (Vec<Option<CommandRequest>>, Vec<Option<LineAnswer>>) {
    let mut requests = Vec::with_capacity(lines.len());
    let mut answers = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        match read_command_line(line.as_bytes(), index as u64 + 1, ACTOR, rules) {
            Ok(request) => {
                requests.push(Some(request));
                answers.push(None);
            }
            Err(answer) => {
                requests.push(None);
                answers.push(Some(*answer));
            }
        }
    }
    (requests, answers)
}

/// Sends a phase's requests; returns each one's line index, outcome and latency.
async fn run_phase(
    queue: &writer::Queue,
    requests: &mut [Option<CommandRequest>],
    lines: &[String],
    clients: usize,
) -> anyhow::Result<Vec<(usize, (RequestOutcome, u64))>> {
    let sendable: Vec<bool> = requests.iter().map(Option::is_some).collect();
    let mut answered = Vec::with_capacity(requests.len());
    for part in parts_of(lines, &sendable, clients)? {
        let sent: Vec<_> = part
            .into_iter()
            .map(|indexes| {
                let taken: Vec<CommandRequest> = indexes.iter().filter_map(|&i| requests[i].take()).collect();
                assert_eq!(taken.len(), indexes.len(), "each line is sent once");
                let client = tokio::spawn(send_and_keep(queue.clone(), taken));
                (indexes, client)
            })
            .collect();
        for (indexes, client) in sent {
            answered.extend(indexes.into_iter().zip(client.await??));
        }
    }
    Ok(answered)
}

/// The `sendable` lines of a phase cut at each line that names no account: a part is
/// either such a line alone, or the lines between two of them dealt to at most
/// `clients` clients by account (each client's line indexes in order).
fn parts_of(lines: &[String], sendable: &[bool], clients: usize) -> anyhow::Result<Vec<Vec<Vec<usize>>>> {
    let mut parts: Vec<Vec<Vec<usize>>> = Vec::new();
    let mut dealt: Vec<Vec<usize>> = Vec::new();
    let mut client_of: HashMap<String, usize> = HashMap::new();
    for (index, line) in lines.iter().enumerate().filter(|(index, _)| sendable[*index]) {
        let command: serde_json::Value = serde_json::from_str(line)?;
        match command.get("account_id").and_then(serde_json::Value::as_str) {
            Some(account_id) => {
                let next_client = client_of.len() % clients;
                let client = *client_of.entry(account_id.to_owned()).or_insert(next_client);
                if dealt.len() <= client {
                    dealt.resize_with(client + 1, Vec::new);
                }
                dealt[client].push(index);
            }
            None => {
                if !dealt.is_empty() {
                    parts.push(std::mem::take(&mut dealt));
                    client_of.clear();
                }
                parts.push(vec![vec![index]]);
            }
        }
    }
    if !dealt.is_empty() {
        parts.push(dealt);
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::parts_of;

    #[test]
    fn lines_without_an_account_stand_alone_and_each_account_keeps_its_order() {
        let lines: Vec<String> = [
            r#"{"type":"list_instrument"}"#,
            r#"{"type":"deposit","account_id":"A"}"#,
            r#"{"type":"deposit","account_id":"B"}"#,
            r#"{"type":"deposit","account_id":"C"}"#,
            r#"{"type":"withdraw","account_id":"A"}"#,
            r#"{"type":"end_of_day"}"#,
            r#"{"type":"deposit","account_id":"B"}"#,
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        let parts = parts_of(&lines, &[true; 7], 2).unwrap();
        assert_eq!(
            parts,
            vec![
                vec![vec![0]],
                vec![vec![1, 3, 4], vec![2]],
                vec![vec![5]],
                vec![vec![6]],
            ]
        );
        let mut sendable = [true; 7];
        sendable[3] = false;
        sendable[5] = false;
        assert_eq!(
            parts_of(&lines, &sendable, 2).unwrap(),
            vec![vec![vec![0]], vec![vec![1, 4], vec![2, 6]]],
            "a line not sent cuts nothing"
        );
    }
}
