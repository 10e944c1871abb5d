//! `verify` as a job: reading the whole log takes longer than a request should wait, so
//! `POST /v1/verify` starts one and `GET /v1/verify/{job_id}` reads its state and, once
//! done, its report. At most one runs at a time ([`MAX_RUNNING_VERIFY_JOBS`]); finished
//! jobs are kept in memory, the last [`MAX_KEPT_VERIFY_JOBS`] of them, until the server stops.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use ledger_app::{EventStore, VerifyReport};
use serde::Serialize;
use utoipa::ToSchema;

/// Verify jobs running at once: each reads the whole log, and two would only halve each other.
pub const MAX_RUNNING_VERIFY_JOBS: usize = 1;
/// Finished verify jobs kept for `GET /v1/verify/{job_id}`; older ones are forgotten (404).
pub const MAX_KEPT_VERIFY_JOBS: usize = 16;

/// A verify job as `GET /v1/verify/{job_id}` answers it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = VerifyJob)]
pub struct JobView {
    pub job_id: u64,
    /// `running`, `done` (the report is there; it may list problems) or `failed` (the
    /// log could not be read to the end: `error`).
    pub state: String,
    /// Who started it (the token's name).
    pub started_by: String,
    /// RFC 3339.
    pub started_at: String,
    pub finished_at: Option<String>,
    /// Events read so far.
    pub events_read: u64,
    /// The log's head when the job started.
    pub events_total: u64,
    /// `ledger verify --json`'s object (docs/api.md), once done.
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
    /// The code and sentence of the failure, once failed.
    pub error: Option<JobError>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobError {
    pub code: String,
    pub message: String,
}

struct Job {
    id: u64,
    started_by: String,
    started_at: DateTime<Utc>,
    read: Arc<AtomicU64>,
    total: Arc<AtomicU64>,
    finished: Option<(DateTime<Utc>, Result<VerifyReport, JobError>)>,
}

impl Job {
    fn view(&self) -> JobView {
        let (state, finished_at, report, error) = match &self.finished {
            None => ("running", None, None, None),
            Some((at, Ok(report))) => ("done", Some(*at), serde_json::to_value(report).ok(), None),
            Some((at, Err(error))) => ("failed", Some(*at), None, Some(error.clone())),
        };
        JobView {
            job_id: self.id,
            state: state.to_owned(),
            started_by: self.started_by.clone(),
            started_at: self.started_at.to_rfc3339(),
            finished_at: finished_at.map(|at| at.to_rfc3339()),
            events_read: self.read.load(Ordering::Relaxed),
            events_total: self.total.load(Ordering::Relaxed),
            report,
            error,
        }
    }
}

/// The verify jobs of this server.
#[derive(Clone, Default)]
pub struct VerifyJobs {
    jobs: Arc<Mutex<Jobs>>,
}

#[derive(Default)]
struct Jobs {
    last_id: u64,
    kept: VecDeque<Job>,
}

impl VerifyJobs {
    /// Starts a job, or names the one already running (`Err`, its id).
    pub fn start(&self, store: Arc<dyn EventStore>, started_by: &str) -> Result<JobView, u64> {
        let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        let running: Vec<u64> = jobs
            .kept
            .iter()
            .filter(|j| j.finished.is_none())
            .map(|j| j.id)
            .collect();
        if running.len() >= MAX_RUNNING_VERIFY_JOBS {
            return Err(running[0]);
        }
        jobs.last_id += 1;
        let id = jobs.last_id;
        let job = Job {
            id,
            started_by: started_by.to_owned(),
            started_at: Utc::now(),
            read: Arc::new(AtomicU64::new(0)),
            total: Arc::new(AtomicU64::new(0)),
            finished: None,
        };
        let (read, total) = (Arc::clone(&job.read), Arc::clone(&job.total));
        let view = job.view();
        jobs.kept.push_back(job);
        // Forget the oldest finished jobs beyond the limit (the running one stays).
        while jobs.kept.len() > MAX_KEPT_VERIFY_JOBS + MAX_RUNNING_VERIFY_JOBS {
            let Some(index) = jobs.kept.iter().position(|j| j.finished.is_some()) else {
                break;
            };
            jobs.kept.remove(index);
        }
        drop(jobs);
        let this = self.clone();
        tokio::spawn(async move {
            let result = ledger_app::verify(store.as_ref(), |progress| {
                read.store(progress.done, Ordering::Relaxed);
                total.store(progress.total, Ordering::Relaxed);
            })
            .await
            .map_err(|error| JobError {
                code: error.code().to_owned(),
                message: error.to_string(),
            });
            this.finish(id, result);
        });
        Ok(view)
    }

    fn finish(&self, id: u64, result: Result<VerifyReport, JobError>) {
        let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(job) = jobs.kept.iter_mut().find(|j| j.id == id) {
            job.finished = Some((Utc::now(), result));
        }
    }

    /// The job `id`, if it is kept.
    pub fn get(&self, id: u64) -> Option<JobView> {
        let jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        jobs.kept.iter().find(|j| j.id == id).map(Job::view)
    }
}
