//! Every name a statement of recents uses, quoted for one backend: the
//! backend's tables and columns from the mapping, and recents' own tables and
//! objects under the mapping's prefix. Statements are written with these and
//! `format!`, a table alias before each column (`s.{uid}`).

use sea_orm::DbBackend;

use crate::ident::quote;
use crate::mapping::SchemaMapping;

/// The workspaces table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspacesSql {
    pub table: String,
    pub id: String,
    pub name: String,
    /// `None`: the table has no such column (team workspaces only).
    pub is_personal: Option<String>,
    /// `None`: the table has no soft deletes.
    pub deleted_at: Option<String>,
}

impl WorkspacesSql {
    /// The condition "the workspace aliased `alias` is not deleted".
    pub fn live(&self, alias: &str) -> String {
        match &self.deleted_at {
            Some(col) => format!("{alias}.{col} IS NULL"),
            None => "1 = 1".to_owned(),
        }
    }

    /// The deletion time of the workspace aliased `alias` (NULL without soft deletes).
    pub fn deleted_at_of(&self, alias: &str) -> String {
        match &self.deleted_at {
            Some(col) => format!("{alias}.{col}"),
            None => "NULL".to_owned(),
        }
    }

    /// Whether the workspace aliased `alias` is personal: NULL without the
    /// column, which readers take as a team workspace (a NULL, unlike an
    /// expression such as `1 = 0`, decodes as a boolean on every backend).
    pub fn is_personal_of(&self, alias: &str) -> String {
        match &self.is_personal {
            Some(col) => format!("{alias}.{col}"),
            None => "NULL".to_owned(),
        }
    }
}

/// The published-runs table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedRunsSql {
    pub table: String,
    pub id: String,
    pub workspace_id: String,
    pub title: String,
}

/// The versions table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionsSql {
    pub table: String,
    pub id: String,
    pub published_run_id: String,
}

/// The saved-runs table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedRunsSql {
    pub table: String,
    pub id: String,
    pub workspace_id: String,
    pub uid: String,
    pub version_id: String,
    pub run_status: String,
    pub created_at: String,
    pub updated_at: String,
}

/// The jobs table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobsSql {
    pub table: String,
    pub id: String,
    pub user_id: String,
    pub state: String,
    pub payload: String,
    pub created_at: String,
    pub started_at: String,
    pub finished_at: String,
    pub process_after: String,
    pub num_resets: String,
    pub num_failures: String,
    pub failure_message: String,
    pub worker_hostname: String,
    pub last_heartbeat_at: String,
    pub cancel: String,
}

impl JobsSql {
    /// Every column of the job aliased `alias` (`""`: unqualified, as in a
    /// `RETURNING`), each under recents' own name, so a row decodes as
    /// `recents_entity::execution_job::Model`.
    pub fn all_as_recents(&self, alias: &str) -> String {
        let a = if alias.is_empty() {
            String::new()
        } else {
            format!("{alias}.")
        };
        format!(
            "{a}{} AS id, {a}{} AS user_id, {a}{} AS state, {a}{} AS payload, \
             {a}{} AS created_at, {a}{} AS started_at, {a}{} AS finished_at, \
             {a}{} AS process_after, {a}{} AS num_resets, {a}{} AS num_failures, \
             {a}{} AS failure_message, {a}{} AS worker_hostname, \
             {a}{} AS last_heartbeat_at, {a}{} AS cancel",
            self.id,
            self.user_id,
            self.state,
            self.payload,
            self.created_at,
            self.started_at,
            self.finished_at,
            self.process_after,
            self.num_resets,
            self.num_failures,
            self.failure_message,
            self.worker_hostname,
            self.last_heartbeat_at,
            self.cancel,
        )
    }
}

/// Every name, quoted for one backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    pub backend: DbBackend,
    pub workspaces: WorkspacesSql,
    pub published_runs: PublishedRunsSql,
    pub versions: VersionsSql,
    pub saved_runs: SavedRunsSql,
    pub jobs: JobsSql,
    /// `workspace_recent_workflows`, prefixed.
    pub recent_workflows: String,
    /// `execution_last_dequeues`, prefixed.
    pub last_dequeues: String,
    /// `recents_backfill_checkpoints`, prefixed.
    pub checkpoints: String,
    /// `execution_dequeue_lock`, prefixed.
    pub dequeue_lock: String,
    /// `execution_queue_heads`, prefixed.
    pub queue_heads: String,
    prefix: String,
}

impl Names {
    pub(crate) fn new(
        backend: DbBackend,
        mapping: &SchemaMapping,
        is_personal: Option<&str>,
        deleted_at: Option<&str>,
    ) -> Self {
        let q = |name: &str| quote(backend, name);
        let t = &mapping.tables;
        let c = &mapping.columns;
        let prefix = mapping.prefix.clone();
        let own = |name: &str| quote(backend, &format!("{prefix}{name}"));
        Self {
            backend,
            workspaces: WorkspacesSql {
                table: q(&t.workspaces),
                id: q(&c.workspaces.id),
                name: q(&c.workspaces.name),
                is_personal: is_personal.map(q),
                deleted_at: deleted_at.map(q),
            },
            published_runs: PublishedRunsSql {
                table: q(&t.published_runs),
                id: q(&c.published_runs.id),
                workspace_id: q(&c.published_runs.workspace_id),
                title: q(&c.published_runs.title),
            },
            versions: VersionsSql {
                table: q(&t.versions),
                id: q(&c.versions.id),
                published_run_id: q(&c.versions.published_run_id),
            },
            saved_runs: SavedRunsSql {
                table: q(&t.saved_runs),
                id: q(&c.saved_runs.id),
                workspace_id: q(&c.saved_runs.workspace_id),
                uid: q(&c.saved_runs.uid),
                version_id: q(&c.saved_runs.version_id),
                run_status: q(&c.saved_runs.run_status),
                created_at: q(&c.saved_runs.created_at),
                updated_at: q(&c.saved_runs.updated_at),
            },
            jobs: JobsSql {
                table: q(&t.execution_jobs),
                id: q(&c.execution_jobs.id),
                user_id: q(&c.execution_jobs.user_id),
                state: q(&c.execution_jobs.state),
                payload: q(&c.execution_jobs.payload),
                created_at: q(&c.execution_jobs.created_at),
                started_at: q(&c.execution_jobs.started_at),
                finished_at: q(&c.execution_jobs.finished_at),
                process_after: q(&c.execution_jobs.process_after),
                num_resets: q(&c.execution_jobs.num_resets),
                num_failures: q(&c.execution_jobs.num_failures),
                failure_message: q(&c.execution_jobs.failure_message),
                worker_hostname: q(&c.execution_jobs.worker_hostname),
                last_heartbeat_at: q(&c.execution_jobs.last_heartbeat_at),
                cancel: q(&c.execution_jobs.cancel),
            },
            recent_workflows: own("workspace_recent_workflows"),
            last_dequeues: own("execution_last_dequeues"),
            checkpoints: own("recents_backfill_checkpoints"),
            dequeue_lock: own("execution_dequeue_lock"),
            queue_heads: own("execution_queue_heads"),
            prefix,
        }
    }

    /// One of recents' own objects (an index, trigger, function or
    /// procedure), prefixed and quoted.
    pub fn object(&self, name: &str) -> String {
        quote(self.backend, &self.unquoted_object(name))
    }

    /// One of recents' own objects, prefixed, unquoted (for lookups by name
    /// in the catalog, where names are values).
    pub fn unquoted_object(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}
