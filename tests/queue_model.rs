//! The fair queue against an in-memory model, by property: random users,
//! arrivals, dequeues, completions, failures, cancels, stalled resets and raw
//! SQL writes of `started_at`. After every step, the job `dequeue` handed out
//! is the head of the model's fair order, `next_in_line` and `place_in_queue`
//! equal the model's order, and `execution_last_dequeues` equals the greatest
//! `started_at` ever written per user; on every backend.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use recents::entity::prelude::*;
use recents::queue::{
    JobState, NewJob, QueueOptions, cancel, complete, dequeue, enqueue_many, fail, next_in_line,
    place_in_queue, reset_stalled,
};
use recents::{JobId, UserId};
use recents_testkit::{TestDb, backend_tests};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait};

const USERS: i64 = 5;

#[derive(Clone, Debug)]
enum Op {
    /// `n` jobs of one user in one `enqueue_many`; `later`: not due for an hour.
    Enqueue {
        user: i64,
        n: usize,
        later: bool,
    },
    Dequeue,
    /// The `pick`-th processing job (mod their number).
    Complete {
        pick: usize,
    },
    Fail {
        pick: usize,
    },
    /// The `pick`-th job of all (mod their number).
    Cancel {
        pick: usize,
    },
    /// Raw SQL writes `started_at` of the `pick`-th job, bypassing the service.
    RawStart {
        pick: usize,
        seconds: i64,
    },
    /// Every processing job's worker died.
    ResetStalled,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..USERS, 1..4usize, prop::bool::weighted(0.1))
            .prop_map(|(user, n, later)| Op::Enqueue { user, n, later }),
        4 => Just(Op::Dequeue),
        2 => any::<usize>().prop_map(|pick| Op::Complete { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Fail { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        1 => (any::<usize>(), 0..10_000i64).prop_map(|(pick, seconds)| Op::RawStart { pick, seconds }),
        1 => Just(Op::ResetStalled),
    ]
}

#[derive(Clone, Debug, PartialEq)]
enum Life {
    Waiting,
    Processing,
    Finished,
}

#[derive(Clone, Debug)]
struct Job {
    id: i64,
    user: i64,
    created_at: DateTime<Utc>,
    due: bool,
    life: Life,
    failures: i32,
    /// Canceled while processing: never eligible again.
    cancel: bool,
    /// Its `started_at`, by a dequeue or raw SQL.
    started: Option<DateTime<Utc>>,
}

/// A user in the model's order: latest dequeue, oldest waiting job, its jobs.
type UserLine<'a> = (Option<DateTime<Utc>>, (DateTime<Utc>, i64), Vec<&'a Job>);

#[derive(Default)]
struct Model {
    jobs: Vec<Job>,
}

impl Model {
    /// Each user's latest dequeue: the greatest `started_at` of its jobs.
    fn latest(&self) -> BTreeMap<i64, DateTime<Utc>> {
        let mut latest = BTreeMap::new();
        for job in &self.jobs {
            if let Some(started) = job.started {
                let e = latest.entry(job.user).or_insert(started);
                *e = (*e).max(started);
            }
        }
        latest
    }

    /// The fair order: rounds of each user's waiting due jobs, users ordered
    /// by (latest dequeue, never first; oldest waiting job).
    fn order(&self) -> Vec<(i64, u64)> {
        let latest = self.latest();
        let mut per_user: BTreeMap<i64, Vec<&Job>> = BTreeMap::new();
        for job in &self.jobs {
            if job.life == Life::Waiting && job.due && !job.cancel {
                per_user.entry(job.user).or_default().push(job);
            }
        }
        let mut users: Vec<UserLine> = per_user
            .into_iter()
            .map(|(user, mut jobs)| {
                jobs.sort_by_key(|j| (j.created_at, j.id));
                let head = (jobs[0].created_at, jobs[0].id);
                (latest.get(&user).copied(), head, jobs)
            })
            .collect();
        users.sort_by_key(|a| (a.0, a.1));
        let mut order = Vec::new();
        let rounds = users.iter().map(|u| u.2.len()).max().unwrap_or(0);
        for r in 0..rounds {
            for (_, _, jobs) in &users {
                if let Some(job) = jobs.get(r) {
                    order.push((job.id, r as u64 + 1));
                }
            }
        }
        order
    }

    fn processing(&self) -> Vec<usize> {
        (0..self.jobs.len())
            .filter(|&i| self.jobs[i].life == Life::Processing)
            .collect()
    }
}

fn origin(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + seconds, 0).unwrap()
}

const RETRY: QueueOptions = QueueOptions {
    max_failures: 2,
    backoff: Duration::ZERO,
};

async fn apply(conn: &DatabaseConnection, model: &mut Model, op: &Op) -> Result<(), String> {
    let e = |e: recents::Error| e.to_string();
    match *op {
        Op::Enqueue { user, n, later } => {
            let process_after = later.then(|| Utc::now() + chrono::Duration::hours(1));
            let new: Vec<NewJob> = (0..n)
                .map(|i| NewJob {
                    user_id: UserId(user),
                    payload: serde_json::json!({ "i": i }),
                    process_after,
                })
                .collect();
            for id in enqueue_many(conn, &new).await.map_err(e)? {
                let row = ExecutionJob::find_by_id(id.0)
                    .one(conn)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("enqueued job missing")?;
                model.jobs.push(Job {
                    id: id.0,
                    user,
                    created_at: row.created_at,
                    due: !later,
                    life: Life::Waiting,
                    failures: 0,
                    cancel: false,
                    started: None,
                });
            }
        }
        Op::Dequeue => {
            let expected = model.order().first().map(|&(id, _)| id);
            let got = dequeue(conn, "model-worker").await.map_err(e)?;
            if got.as_ref().map(|j| j.id) != expected {
                return Err(format!(
                    "dequeue gave {:?}, the fair order's head is {expected:?}",
                    got.map(|j| j.id)
                ));
            }
            if let Some(job) = got {
                let started = job.started_at.ok_or("dequeued job without started_at")?;
                let m = model.jobs.iter_mut().find(|j| j.id == job.id).unwrap();
                m.life = Life::Processing;
                m.started = Some(started);
            }
        }
        Op::Complete { pick } => {
            let processing = model.processing();
            if processing.is_empty() {
                return Ok(());
            }
            let i = processing[pick % processing.len()];
            let claim = claim_of(conn, model.jobs[i].id).await?;
            complete(conn, &claim).await.map_err(e)?;
            model.jobs[i].life = Life::Finished;
        }
        Op::Fail { pick } => {
            let processing = model.processing();
            if processing.is_empty() {
                return Ok(());
            }
            let i = processing[pick % processing.len()];
            let claim = claim_of(conn, model.jobs[i].id).await?;
            let state = fail(conn, &claim, "model failure", &RETRY)
                .await
                .map_err(e)?;
            let job = &mut model.jobs[i];
            job.failures += 1;
            let expected = if job.failures >= RETRY.max_failures {
                job.life = Life::Finished;
                JobState::Failed
            } else {
                job.life = Life::Waiting;
                JobState::Errored
            };
            if state != expected {
                return Err(format!("fail left {state:?}, expected {expected:?}"));
            }
        }
        Op::Cancel { pick } => {
            if model.jobs.is_empty() {
                return Ok(());
            }
            let i = pick % model.jobs.len();
            let result = cancel(conn, JobId(model.jobs[i].id)).await;
            match (&model.jobs[i].life, result) {
                (Life::Waiting, Ok(JobState::Canceled)) => model.jobs[i].life = Life::Finished,
                // A processing job runs on with its cancel flag.
                (Life::Processing, Ok(JobState::Processing)) => model.jobs[i].cancel = true,
                (Life::Finished, Err(recents::Error::JobFinished { .. })) => {}
                (life, other) => return Err(format!("cancel of a {life:?} job gave {other:?}")),
            }
        }
        Op::RawStart { pick, seconds } => {
            if model.jobs.is_empty() {
                return Ok(());
            }
            let i = pick % model.jobs.len();
            let job = &model.jobs[i];
            let at = origin(seconds);
            let backend = conn.get_database_backend();
            conn.execute_raw(recents::admin::statement(
                backend,
                "UPDATE execution_jobs SET started_at = ? WHERE id = ?",
                vec![at.into(), job.id.into()],
            ))
            .await
            .map_err(|e| e.to_string())?;
            model.jobs[i].started = Some(at);
        }
        Op::ResetStalled => {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let report = reset_stalled(conn, Duration::from_millis(1), i32::MAX)
                .await
                .map_err(e)?;
            // Jobs canceled while they ran end canceled; the rest go back.
            let (mut canceled, mut requeued) = (Vec::new(), Vec::new());
            for i in model.processing() {
                let job = &mut model.jobs[i];
                if job.cancel {
                    job.life = Life::Finished;
                    canceled.push(job.id);
                } else {
                    job.life = Life::Waiting;
                    requeued.push(job.id);
                }
            }
            requeued.sort();
            canceled.sort();
            let got: Vec<i64> = report.requeued.iter().map(|j| j.0).collect();
            let got_canceled: Vec<i64> = report.canceled.iter().map(|j| j.0).collect();
            if (&got, &got_canceled) != (&requeued, &canceled) {
                return Err(format!(
                    "reset_stalled requeued {got:?} and canceled {got_canceled:?}, \
                     expected {requeued:?} and {canceled:?}"
                ));
            }
        }
    }
    Ok(())
}

async fn check(conn: &DatabaseConnection, model: &Model) -> Result<(), String> {
    let latest: BTreeMap<i64, DateTime<Utc>> = ExecutionLastDequeue::find()
        .all(conn)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|r| (r.user_id, r.latest_dequeue))
        .collect();
    if latest != model.latest() {
        return Err(format!(
            "latest dequeues {latest:?}, model {:?}",
            model.latest()
        ));
    }
    // The per-user rows the claims walk equal their definition from the jobs.
    let heads = recents::queue::verify_queue_heads(conn, 1000)
        .await
        .map_err(|e| e.to_string())?;
    if !heads.is_exact() {
        return Err(format!("queue heads drifted: {heads:?}"));
    }
    let order = model.order();
    let line: Vec<(i64, u64)> = next_in_line(conn, 1000)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|j| (j.job_id.0, j.place.place_in_user_queue))
        .collect();
    if line != order {
        return Err(format!("next_in_line {line:?}, model {order:?}"));
    }
    for (global, &(id, in_user)) in order.iter().enumerate() {
        let place = place_in_queue(conn, JobId(id))
            .await
            .map_err(|e| e.to_string())?
            .ok_or(format!("job {id} has no place"))?;
        if (place.place_in_user_queue, place.place_in_global_queue) != (in_user, global as u64 + 1)
        {
            return Err(format!(
                "job {id}: place {place:?}, model ({in_user}, {})",
                global + 1
            ));
        }
    }
    for job in &model.jobs {
        if !(job.life == Life::Waiting && job.due && !job.cancel) {
            let place = place_in_queue(conn, JobId(job.id))
                .await
                .map_err(|e| e.to_string())?;
            if place.is_some() {
                return Err(format!("job {} is not waiting but has {place:?}", job.id));
            }
        }
    }
    Ok(())
}

async fn run_case(conn: &DatabaseConnection, ops: &[Op]) -> Result<(), String> {
    for table in ["execution_jobs", "execution_last_dequeues"] {
        conn.execute_unprepared(&format!("DELETE FROM {table}"))
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut model = Model::default();
    for (step, op) in ops.iter().enumerate() {
        apply(conn, &mut model, op)
            .await
            .map_err(|e| format!("step {step} ({op:?}): {e}"))?;
        check(conn, &model)
            .await
            .map_err(|e| format!("after step {step} ({op:?}): {e}"))?;
    }
    Ok(())
}

async fn random_queues_dequeue_in_the_models_fair_order(db: &TestDb) {
    support::run_property(
        db,
        "fair queue model",
        16,
        prop::collection::vec(op(), 1..40),
        |ops| async move { run_case(&db.conn, &ops).await },
    );
}

backend_tests!(random_queues_dequeue_in_the_models_fair_order);

/// The job as its worker holds it (the model worker's current claim).
async fn claim_of(conn: &DatabaseConnection, id: i64) -> Result<recents::queue::Job, String> {
    ExecutionJob::find_by_id(id)
        .one(conn)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("job {id} missing"))
}
