//! Database work for the console, off the draw loop: each [`Request`] runs in
//! a tokio task and comes back as a [`Response`] over an mpsc channel. The
//! draw loop never awaits the database.

use std::time::{Duration, Instant};

use std::sync::{Arc, Mutex};

use recents_service::admin::{Migrate, Tables, WorkspaceListing, WorkspaceOverview, WorkspacePage};
use recents_service::{
    BackfillOptions, BackfillReport, BackfillScope, CancelToken, Error, Progress, RecentWorkflow,
    Recents, Scope, VerifyScope, WorkspaceId,
};

use chrono::{DateTime, Utc};
use recents_service::admin::UserQueueStats;
use recents_service::queue::{InLine, Job, ResetReport, Throughput, WorkerSeen};

use crate::Session;
use crate::commands::verify::Checked;

use super::screens::backfill::Coverage;
use tokio::sync::mpsc::UnboundedSender;

/// Recent workflows shown per scope.
pub const RECENT_LIMIT: u32 = 10;

/// Members listed on the Workspace screen (the first ones, in uid order).
pub const MEMBER_LIMIT: u32 = 200;

/// Jobs the Queue screen lists in fair order.
pub const NEXT_IN_LINE: u32 = 20;

/// Stalled jobs the Queue screen lists (the stalest first).
pub const STALLED_LIMIT: u32 = 50;

/// A `processing` job whose heartbeat is older than this is stalled: its
/// worker is presumed dead. A worker heartbeats far more often than that.
pub const STALLED_AFTER: Duration = Duration::from_secs(60);

/// The window the Queue screen's jobs per second is counted over: long
/// enough to smooth a worker's batches, short enough to show a stall.
pub const THROUGHPUT_WINDOW: Duration = Duration::from_secs(60);

/// Resets a stalled job survives before `reset_stalled` fails it for good:
/// a job that stalls its worker every time should not loop forever.
pub const MAX_RESETS: i32 = 3;

/// Something the console wants from the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Connect (or reconnect) and check the schema.
    Connect,
    /// One page of the workspace directory; `page` is its number from 0.
    Workspaces {
        /// The page asked for.
        listing: WorkspaceListing,
        /// Its number.
        page: usize,
    },
    /// A workspace's overview and members.
    Workspace(WorkspaceId),
    /// Recent workflows of a scope, from the summary.
    Recent(WorkspaceId, Scope),
    /// The same from the summary and from the history, each timed.
    Compare(WorkspaceId, Scope),
    /// Backfill the summary of the target, reporting progress as it goes.
    Backfill(Coverage),
    /// Stop the running backfill after its current batch.
    CancelBackfill,
    /// Verify the summary of the target, and repair what is found if asked.
    Verify {
        /// Every workspace or one.
        target: Coverage,
        /// Repair the drift found.
        repair: bool,
    },
    /// The queue as the Queue screen shows it: per-user counts, the next
    /// [`NEXT_IN_LINE`] jobs in fair order, and the jobs stalled longer than this.
    Queue {
        /// How old a heartbeat makes a `processing` job stalled.
        stalled_after: Duration,
    },
    /// Return stalled jobs to the queue ([`MAX_RESETS`] resets, then failed).
    ResetStalled {
        /// How old a heartbeat makes a `processing` job stalled.
        stalled_after: Duration,
    },
}

/// The queue at one refresh of the Queue screen.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueSnapshot {
    /// Per user with jobs queued, errored, processing or failed.
    pub users: Vec<UserQueueStats>,
    /// The next jobs in fair order, with their places.
    pub next: Vec<InLine>,
    /// `processing` jobs without a recent heartbeat, stalest first.
    pub stalled: Vec<Job>,
    /// The workers holding jobs, with their latest heartbeats.
    pub workers: Vec<WorkerSeen>,
    /// Jobs whose run ended in the [`THROUGHPUT_WINDOW`] before `read_at`.
    pub throughput: Throughput,
    /// The console's clock when the read began: stalled jobs and the
    /// throughput are as of this time, and heartbeat ages are shown from it.
    pub read_at: DateTime<Utc>,
}

/// A timed answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timed<T> {
    /// The answer.
    pub value: T,
    /// How long the call took, as the [`Stopwatch`] measured it.
    pub took: Duration,
}

/// The summary's and the history's answer for one scope, each timed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comparison {
    /// From `workspace_recent_workflows` (O(limit)).
    pub summary: Timed<Vec<RecentWorkflow>>,
    /// From `saved_runs` (O(runs of the scope)).
    pub history: Timed<Vec<RecentWorkflow>>,
}

impl Comparison {
    /// The first row (from 1) where the answers differ, `None` when they agree.
    pub fn first_difference(&self) -> Option<usize> {
        let (a, b) = (&self.summary.value, &self.history.value);
        if a == b {
            return None;
        }
        Some(
            a.iter()
                .zip(b.iter())
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()))
                + 1,
        )
    }
}

/// Why a call failed, as the console shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The error, one line, any URL redacted.
    pub message: String,
    /// What kind of failure it is.
    pub kind: FailureKind,
}

/// The kinds of failure the console treats differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The database does not answer: banner, retry.
    Unavailable,
    /// The schema lacks migrations: banner, retry (someone may run `migrate up`).
    Behind,
    /// The schema is newer than this binary: banner, retry.
    Ahead,
    /// The URL is wrong: banner, no retry helps.
    InvalidUrl,
    /// Anything else: a message in the status line.
    Other,
}

impl From<&Error> for Failure {
    fn from(err: &Error) -> Self {
        let kind = match err {
            Error::MigrationsBehind(_) => FailureKind::Behind,
            Error::InvalidDatabaseUrl(_) => FailureKind::InvalidUrl,
            // Someone may create it: retry, as for a server that is down.
            Error::DatabaseNotFound(_) => FailureKind::Unavailable,
            e if e.is_unavailable() => FailureKind::Unavailable,
            _ => FailureKind::Other,
        };
        let message = match err {
            // The driver's cause, once: sea-orm and sqlx each wrap and repeat it.
            Error::DatabaseUnavailable(db) => {
                format!(
                    "database unavailable: {}",
                    recents_migration::reach::cause_of(db)
                )
            }
            // The library's error names no command; the console knows it.
            Error::MigrationsBehind(_) => format!("{err} (run `recents migrate up`)"),
            other => other.to_string(),
        };
        Failure { message, kind }
    }
}

/// What came back for a [`Request`]; each carries what it answers, so a
/// late answer to a question no longer on screen is recognised and dropped.
#[derive(Clone, Debug)]
pub enum Response {
    /// Connected, schema current.
    Connected(Session),
    /// Could not connect, or the schema is not current.
    ConnectFailed(Failure),
    /// A page of the directory.
    Workspaces {
        /// The page asked for.
        listing: WorkspaceListing,
        /// Its number.
        page: usize,
        /// The answer.
        result: Result<WorkspacePage, Failure>,
    },
    /// A workspace's overview and its members (none for a deleted one).
    Workspace {
        /// The workspace asked for.
        id: WorkspaceId,
        /// The answer.
        result: Result<(WorkspaceOverview, Vec<String>), Failure>,
    },
    /// Recent workflows of a scope.
    Recent {
        /// The workspace asked for.
        id: WorkspaceId,
        /// The scope asked for.
        scope: Scope,
        /// The answer.
        result: Result<Vec<RecentWorkflow>, Failure>,
    },
    /// Summary and history answers side by side.
    Compare {
        /// The workspace asked for.
        id: WorkspaceId,
        /// The scope asked for.
        scope: Scope,
        /// The summary's answer, then the history's.
        result: Result<Comparison, Failure>,
    },
    /// A running backfill merged another batch.
    BackfillProgress(Progress),
    /// A backfill ended (finished, or cancelled with a checkpoint).
    BackfillDone(Result<BackfillReport, Failure>),
    /// What verify found, and how many rows a repair fixed.
    Verified(Result<Checked, Failure>),
    /// The queue at this refresh.
    Queue(Result<QueueSnapshot, Failure>),
    /// What a reset of stalled jobs did.
    ResetStalled(Result<ResetReport, Failure>),
    /// Nothing to show (a cancel was passed on).
    Nothing,
}

impl Response {
    /// The failure this response carries, if any.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Response::Connected(_) => None,
            Response::ConnectFailed(f) => Some(f),
            Response::Workspaces { result, .. } => result.as_ref().err(),
            Response::Workspace { result, .. } => result.as_ref().err(),
            Response::Recent { result, .. } => result.as_ref().err(),
            Response::Compare { result, .. } => result.as_ref().err(),
            Response::BackfillDone(result) => result.as_ref().err(),
            Response::Verified(result) => result.as_ref().err(),
            Response::Queue(result) => result.as_ref().err(),
            Response::ResetStalled(result) => result.as_ref().err(),
            Response::BackfillProgress(_) | Response::Nothing => None,
        }
    }
}

/// How calls are timed: for real, or at a fixed duration so that a rendered
/// screen is the same on every run (snapshot tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopwatch {
    /// Wall-clock time.
    Real,
    /// Every call "takes" this long.
    Fixed(Duration),
}

impl Stopwatch {
    /// A backfill's progress as this stopwatch tells time.
    fn progress(self, mut progress: Progress) -> Progress {
        if let Stopwatch::Fixed(took) = self {
            progress.rows_per_second = progress.rows_scanned as f64 / took.as_secs_f64();
            progress.eta = (!progress.finished).then_some(took);
        }
        progress
    }

    /// A backfill's report as this stopwatch tells time.
    fn report(self, mut report: BackfillReport) -> BackfillReport {
        if let Stopwatch::Fixed(took) = self {
            report.elapsed = took;
        }
        report
    }

    async fn time<T>(self, call: impl Future<Output = T>) -> (T, Duration) {
        let started = Instant::now();
        let value = call.await;
        let took = match self {
            Stopwatch::Real => started.elapsed(),
            Stopwatch::Fixed(took) => took,
        };
        (value, took)
    }
}

/// What time the console reads the queue at: the real time, or a fixed
/// one so that a rendered screen (heartbeat ages, stalled jobs, jobs per
/// second) is the same on every run (snapshot tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The wall clock.
    Real,
    /// It is always this time.
    Fixed(DateTime<Utc>),
}

impl Clock {
    /// The time now, by this clock.
    pub fn now(self) -> DateTime<Utc> {
        match self {
            Clock::Real => Utc::now(),
            Clock::Fixed(at) => at,
        }
    }
}

/// The console's handle on the database: the URL, what to do with its
/// schema, and the pool once connected.
#[derive(Clone, Debug)]
pub struct Database {
    url: String,
    migrate: Migrate,
    tables: Tables,
    conn: Option<Session>,
    stopwatch: Stopwatch,
    clock: Clock,
    /// The running backfill's token, shared by every clone of this handle.
    cancel: Arc<Mutex<Option<CancelToken>>>,
    /// History rows per backfill batch.
    batch_rows: u32,
}

impl Database {
    /// A handle that connects to `url` on [`Request::Connect`].
    pub fn new(url: String, migrate: Migrate, stopwatch: Stopwatch) -> Self {
        Self {
            url,
            migrate,
            tables: Tables::default(),
            conn: None,
            stopwatch,
            clock: Clock::Real,
            cancel: Arc::default(),
            batch_rows: BackfillOptions::default().batch_rows,
        }
    }

    /// The same handle, on the backend's tables as `tables` names them.
    pub fn with_tables(mut self, tables: Tables) -> Self {
        self.tables = tables;
        self
    }

    /// The same handle, reading the queue at `clock`'s time.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The same handle, backfilling `rows` history rows per batch.
    pub fn with_backfill_batch_rows(mut self, rows: u32) -> Self {
        self.batch_rows = rows;
        self
    }

    /// Keeps the pool of a [`Response::Connected`]; forgets it when a call
    /// found the database gone, so the next [`Request::Connect`] starts afresh.
    pub fn observe(&mut self, response: &Response) {
        match response {
            Response::Connected(session) => self.conn = Some(session.clone()),
            other => {
                if other
                    .failure()
                    .is_some_and(|f| f.kind != FailureKind::Other)
                {
                    self.conn = None;
                }
            }
        }
    }

    /// Answers one request. Without a connection, every request but
    /// `Connect` fails as unavailable.
    pub async fn answer(&self, request: Request) -> Response {
        self.answer_with_progress(request, None).await
    }

    /// As [`Database::answer`], sending a backfill's progress events to
    /// `progress` as they happen.
    pub async fn answer_with_progress(
        &self,
        request: Request,
        progress: Option<UnboundedSender<Response>>,
    ) -> Response {
        if request == Request::CancelBackfill {
            if let Some(token) = self
                .cancel
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
            {
                token.cancel();
            }
            return Response::Nothing;
        }
        let session = match (&request, &self.conn) {
            (Request::Connect, _) => {
                return match recents_service::admin::open_tables(
                    &self.url,
                    self.migrate,
                    &self.tables,
                )
                .await
                {
                    Ok((db, schema)) => Response::Connected(Session {
                        db,
                        recents: Recents::new(schema),
                    }),
                    Err(err) => Response::ConnectFailed(Failure::from(&err)),
                };
            }
            (_, Some(session)) => session,
            (_, None) => {
                return Response::ConnectFailed(Failure {
                    message: "not connected".into(),
                    kind: FailureKind::Unavailable,
                });
            }
        };
        let (recents, conn) = (&session.recents, &session.db);
        match request {
            Request::Connect => unreachable!("answered above"),
            Request::Workspaces { listing, page } => {
                let result = recents
                    .list_workspaces(conn, &listing)
                    .await
                    .map_err(|e| Failure::from(&e));
                Response::Workspaces {
                    listing,
                    page,
                    result,
                }
            }
            Request::Workspace(id) => {
                let result = async {
                    let overview = recents.workspace_overview(conn, id).await?;
                    let members = if overview.deleted_at.is_some() {
                        Vec::new()
                    } else {
                        recents
                            .workspace_members(conn, id, None, MEMBER_LIMIT)
                            .await?
                    };
                    Ok::<_, Error>((overview, members))
                }
                .await
                .map_err(|e| Failure::from(&e));
                Response::Workspace { id, result }
            }
            Request::Recent(id, scope) => {
                let result = recents
                    .recent_workflows(conn, id, &scope, RECENT_LIMIT)
                    .await
                    .map_err(|e| Failure::from(&e));
                Response::Recent { id, scope, result }
            }
            Request::Compare(id, scope) => {
                let result = async {
                    let (summary, summary_took) = self
                        .stopwatch
                        .time(recents.recent_workflows(conn, id, &scope, RECENT_LIMIT))
                        .await;
                    let (history, history_took) = self
                        .stopwatch
                        .time(recents.recent_workflows_from_history(conn, id, &scope, RECENT_LIMIT))
                        .await;
                    Ok::<_, Error>(Comparison {
                        summary: Timed {
                            value: summary?,
                            took: summary_took,
                        },
                        history: Timed {
                            value: history?,
                            took: history_took,
                        },
                    })
                }
                .await
                .map_err(|e| Failure::from(&e));
                Response::Compare { id, scope, result }
            }
            Request::Backfill(target) => {
                let token = CancelToken::new();
                *self.cancel.lock().unwrap_or_else(|p| p.into_inner()) = Some(token.clone());
                let scope = match target {
                    Coverage::All => BackfillScope::RecentWorkflows,
                    Coverage::Workspace(id) => BackfillScope::RecentWorkflowsOf(id),
                };
                let options = BackfillOptions {
                    cancel: token,
                    batch_rows: self.batch_rows,
                    ..BackfillOptions::default()
                };
                let sink = progress_sink(progress, self.stopwatch);
                let result = recents
                    .backfill(conn, &scope, &options, sink)
                    .await
                    .map(|report| self.stopwatch.report(report))
                    .map_err(|e| Failure::from(&e));
                *self.cancel.lock().unwrap_or_else(|p| p.into_inner()) = None;
                Response::BackfillDone(result)
            }
            Request::Verify { target, repair } => {
                let scope = match target {
                    Coverage::All => VerifyScope::All,
                    Coverage::Workspace(id) => VerifyScope::Workspace(id),
                };
                // The subcommand's policy: latest dequeues too, database-wide.
                let result = crate::commands::verify::check(recents, conn, &scope, repair)
                    .await
                    .map_err(|e| Failure::from(&e));
                Response::Verified(result)
            }
            Request::Queue { stalled_after } => {
                let result = async {
                    let read_at = self.clock.now();
                    Ok::<_, Error>(QueueSnapshot {
                        users: recents.queue_stats(conn).await?,
                        next: recents.next_in_line(conn, NEXT_IN_LINE).await?,
                        stalled: recents
                            .stalled_jobs_as_of(conn, read_at, stalled_after, STALLED_LIMIT)
                            .await?,
                        workers: recents.workers(conn).await?,
                        throughput: recents
                            .throughput_as_of(conn, read_at, THROUGHPUT_WINDOW)
                            .await?,
                        read_at,
                    })
                }
                .await
                .map_err(|e| Failure::from(&e));
                Response::Queue(result)
            }
            Request::ResetStalled { stalled_after } => Response::ResetStalled(
                recents
                    .reset_stalled_as_of(conn, self.clock.now(), stalled_after, MAX_RESETS)
                    .await
                    .map_err(|e| Failure::from(&e)),
            ),
            Request::CancelBackfill => unreachable!("answered above"),
        }
    }
}

/// Sends each progress event of a backfill to the draw loop. An owned
/// closure: one that borrowed would make the backfill's future `Send` only
/// for one lifetime, and `tokio::spawn` needs it for all.
fn progress_sink(
    progress: Option<UnboundedSender<Response>>,
    stopwatch: Stopwatch,
) -> impl FnMut(&Progress) + Send {
    move |p: &Progress| {
        if let Some(progress) = &progress {
            let _ = progress.send(Response::BackfillProgress(stopwatch.progress(p.clone())));
        }
    }
}

/// Runs requests in tokio tasks and sends their responses to the draw loop.
pub struct Worker {
    database: Database,
    responses: UnboundedSender<Response>,
}

impl Worker {
    /// A worker answering through `database` into `responses`.
    pub fn new(database: Database, responses: UnboundedSender<Response>) -> Self {
        Self {
            database,
            responses,
        }
    }

    /// Starts answering `request`; the response arrives on the channel.
    pub fn submit(&self, request: Request) {
        let database = self.database.clone();
        let responses = self.responses.clone();
        tokio::spawn(async move {
            let response = database
                .answer_with_progress(request, Some(responses.clone()))
                .await;
            // The receiver is gone only when the console is closing.
            let _ = responses.send(response);
        });
    }

    /// See [`Database::observe`].
    pub fn observe(&mut self, response: &Response) {
        self.database.observe(response);
    }
}
