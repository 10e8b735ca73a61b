//! The one error type of `recents-service`: variants a caller can act on.

use recents_entity::execution_job::JobState;

use crate::ids::{JobId, PublishedRunId, SavedRunId, VersionId, WorkspaceId};

/// Everything a `recents-service` call can fail with.
///
/// Validation errors (`InvalidLimit`, `InvalidUid`, …) are returned before any
/// statement is sent, so they never change data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No workspace has this id.
    #[error("workspace {0} does not exist")]
    WorkspaceNotFound(WorkspaceId),
    /// The workspace is soft-deleted (`deleted_at` is set).
    #[error("workspace {0} is deleted")]
    WorkspaceDeleted(WorkspaceId),
    /// No saved run has this id.
    #[error("saved run {0} does not exist")]
    SavedRunNotFound(SavedRunId),
    /// No published run version has this id.
    #[error("published run version {0} does not exist")]
    VersionNotFound(VersionId),
    /// No published run has this id.
    #[error("published run {0} does not exist")]
    PublishedRunNotFound(PublishedRunId),
    /// No execution job has this id.
    #[error("job {0} does not exist")]
    JobNotFound(JobId),
    /// The job is not `processing`, so it cannot complete or fail.
    #[error("job {job} is {state:?}, not processing")]
    JobNotProcessing {
        /// The job.
        job: JobId,
        /// The state it is in.
        state: JobState,
    },
    /// The job is `processing`, but not by this claim of it: it was reset
    /// and handed out again (to another worker, or to one of the same name
    /// as a new attempt). The claim's result is refused; nothing changes.
    #[error("job {job} is no longer held by worker {worker:?}: it was reset and handed out again")]
    JobNotHeld {
        /// The job.
        job: JobId,
        /// The worker whose claim it was.
        worker: String,
    },
    /// The job already completed, failed or was canceled.
    #[error("job {job} is already finished ({state:?})")]
    JobFinished {
        /// The job.
        job: JobId,
        /// The state it ended in.
        state: JobState,
    },
    /// A read limit outside `1..=MAX_LIMIT`.
    #[error("limit must be between 1 and {max}, got {got}")]
    InvalidLimit {
        /// The limit asked for.
        got: i64,
        /// The largest limit allowed.
        max: u32,
    },
    /// A user id that is empty, too long or holds a NUL byte.
    #[error("invalid uid: {0}")]
    InvalidUid(&'static str),
    /// Some other argument out of its range (a timestamp, a title, a duration).
    #[error("invalid {what}: {why}")]
    InvalidArgument {
        /// Which argument.
        what: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// `DATABASE_URL` (or a URL passed in) is not a URL of a supported database.
    #[error("invalid database URL: {0}")]
    InvalidDatabaseUrl(String),
    /// The database did not answer.
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(#[source] sea_orm::DbErr),
    /// The server answered, but the database the URL names does not exist
    /// (or, for SQLite, the file does not and the URL does not ask to create it).
    #[error("{0}")]
    DatabaseNotFound(String),
    /// The database lacks migrations of recents that this version needs.
    #[error("database schema is behind: recents' migrations {0:?} are pending")]
    MigrationsBehind(Vec<String>),
    /// The database rolled the whole transaction back after this error
    /// (MySQL/MariaDB do on deadlocks, lock contention and snapshot
    /// conflicts): nothing of it remains, the caller's work before the call
    /// included. Run the whole transaction again ([`Error::is_retryable`]).
    #[error("the database rolled the transaction back: {0}")]
    TransactionRolledBack(#[source] sea_orm::DbErr),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// A step that fills only an empty database (the demo seed) found data.
    #[error(
        "the database already holds {workspaces} workspaces; {what} fills only an empty database"
    )]
    DatabaseNotEmpty {
        /// What refused to run.
        what: &'static str,
        /// How many workspaces it found.
        workspaces: u64,
    },
    /// The schema mapping is wrong: a name that is not an identifier, or a
    /// table or column the database lacks or holds with another type.
    /// Returned before anything is written.
    #[error(transparent)]
    Schema(#[from] recents_schema::SchemaError),
    /// A backfill's checkpoint row was deleted while the backfill ran; the
    /// next call starts a new pass.
    #[error("backfill checkpoint {0} was removed while its backfill ran")]
    CheckpointRemoved(String),
    /// The mapping leaves the recent-workflows summary to triggers
    /// (`[recent_workflows] maintained_by = "triggers"`) that the database
    /// does not have: the write path would write history only and nobody
    /// the summary.
    #[error(
        "the schema mapping says the recent-workflows summary is kept by {mapping}, but the \
         database has it kept by {installed}: run recents' migrations with this mapping \
         (`apply_summary_mode` switches a database already migrated), or set \
         `[recent_workflows] maintained_by = \"{installed}\"`"
    )]
    SummaryModeMismatch {
        /// What the mapping says.
        mapping: &'static str,
        /// What the database's triggers say.
        installed: &'static str,
    },
}

impl Error {
    /// A stable, machine-readable name of the error's kind (`workspace_not_found`,
    /// `database_unavailable`, …), for logs, metrics and JSON error output.
    /// New kinds may be added; existing names do not change.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::WorkspaceNotFound(_) => "workspace_not_found",
            Error::WorkspaceDeleted(_) => "workspace_deleted",
            Error::SavedRunNotFound(_) => "saved_run_not_found",
            Error::VersionNotFound(_) => "version_not_found",
            Error::PublishedRunNotFound(_) => "published_run_not_found",
            Error::JobNotFound(_) => "job_not_found",
            Error::JobNotProcessing { .. } => "job_not_processing",
            Error::JobNotHeld { .. } => "job_not_held",
            Error::JobFinished { .. } => "job_finished",
            Error::InvalidLimit { .. } => "invalid_limit",
            Error::InvalidUid(_) => "invalid_uid",
            Error::InvalidArgument { .. } => "invalid_argument",
            Error::InvalidDatabaseUrl(_) => "invalid_database_url",
            Error::DatabaseUnavailable(_) => "database_unavailable",
            Error::DatabaseNotFound(_) => "database_not_found",
            Error::MigrationsBehind(_) => "schema_behind",
            Error::TransactionRolledBack(_) => "transaction_rolled_back",
            Error::Database(_) => "database",
            Error::DatabaseNotEmpty { .. } => "database_not_empty",
            Error::Schema(_) => "invalid_schema_mapping",
            Error::CheckpointRemoved(_) => "checkpoint_removed",
            Error::SummaryModeMismatch { .. } => "summary_mode_mismatch",
        }
    }
}

/// The MySQL/MariaDB error number of a database error, when the driver is
/// built in and the error is one.
fn mysql_error_number(err: &sea_orm::sqlx::Error) -> Option<u16> {
    #[cfg(feature = "mysql")]
    {
        err.as_database_error()?
            .try_downcast_ref::<sea_orm::sqlx::mysql::MySqlDatabaseError>()
            .map(|e| e.number())
    }
    #[cfg(not(feature = "mysql"))]
    {
        let _ = err;
        None
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the database could not be reached (refused, timed out, pool
    /// exhausted): worth retrying later, unlike an error in what was asked.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::DatabaseUnavailable(_) => true,
            Error::Database(err) => match err {
                sea_orm::DbErr::Conn(_) | sea_orm::DbErr::ConnectionAcquire(_) => true,
                sea_orm::DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e))
                | sea_orm::DbErr::Query(sea_orm::RuntimeErr::SqlxError(e)) => {
                    matches!(
                        e.as_ref(),
                        sea_orm::sqlx::Error::Io(_)
                            | sea_orm::sqlx::Error::PoolTimedOut
                            | sea_orm::sqlx::Error::PoolClosed
                            | sea_orm::sqlx::Error::WorkerCrashed
                    )
                    // A Galera node that is not (yet, or no longer) part of
                    // the primary component: 1047 "WSREP has not yet prepared
                    // node for application use", 1180 an error during COMMIT.
                    || matches!(mysql_error_number(e), Some(1047 | 1180))
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// Whether the caller's transaction lost a race the database resolved by
    /// aborting it (deadlock, serialization failure, SQLite busy, or any error
    /// after which the database rolled the transaction back:
    /// [`Error::TransactionRolledBack`]): run the whole transaction again. MySQL/MariaDB reports deadlocks between
    /// concurrent first inserts of neighbouring keys; PostgreSQL between
    /// transactions that move runs across each other's groups.
    pub fn is_retryable(&self) -> bool {
        let err = match self {
            Error::TransactionRolledBack(_) => return true,
            Error::Database(err) => err,
            _ => return false,
        };
        let runtime = match err {
            sea_orm::DbErr::Exec(e) | sea_orm::DbErr::Query(e) => e,
            _ => return false,
        };
        let sea_orm::RuntimeErr::SqlxError(sqlx) = runtime else {
            return false;
        };
        let Some(code) = sqlx.as_database_error().and_then(|d| d.code()) else {
            return false;
        };
        // SQLSTATE: PostgreSQL's deadlock_detected and serialization_failure;
        // MySQL/MariaDB report ER_LOCK_DEADLOCK as 40001 too (Galera reports
        // a certification conflict between nodes the same way, at COMMIT).
        // SQLite's SQLITE_BUSY (5) and SQLITE_BUSY_SNAPSHOT (517): a deferred
        // transaction that read first could not take the write lock.
        matches!(code.as_ref(), "40P01" | "40001" | "5" | "517")
            // MySQL/MariaDB's lock wait timeout (1205): the statement lost a
            // wait for a row lock; its SQLSTATE (HY000) says nothing.
            || mysql_error_number(sqlx) == Some(1205)
            // Galera: a statement brute-force aborted by a replicated write
            // set while it loaded the table's triggers reports the trigger
            // as unparsable (ER_PARSE_ERROR, 1064, "Trigger … has an error in
            // its body", or "Unknown trigger … 'Query was empty'"); the same
            // statement parses when run again.
            || (mysql_error_number(sqlx) == Some(1064)
                && sqlx.to_string().contains("has an error in its body"))
    }
}
