//! The write path: saving, moving and deleting runs keeps the summary exact,
//! in the caller's transaction.

use std::time::Duration;

use chrono::{DateTime, Utc};
use recents_schema::{Names, Schema};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, SqlErr, TransactionTrait};

use super::Key;
use super::SavedRun;
use super::summary;
use crate::error::{Error, Result};
use crate::handle::Recents;
use crate::ids::{PublishedRunId, SavedRunId, VersionId, WorkspaceId};
use crate::sql::{begin_write, finish, for_update, latest_committed, statement};
use crate::validate;

/// How saves maintain the summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaveOptions {
    /// Zero (the default) keeps every summary row exact.
    ///
    /// Above zero, a save whose summary row already holds a `last_used_at`
    /// no older than `updated_at - freshness_window` skips the row: it reads
    /// it without locking and writes nothing, so thousands of writers on one
    /// hot workflow do not queue behind its row lock.
    ///
    /// The guarantee then: every row's `last_used_at` lies within
    /// `freshness_window` below the true latest use (never above it), and
    /// `last_saved_run_id` is a run of that group with exactly that time. So a
    /// read may show a workflow up to one window late in its order, never one
    /// that was not used. Deletes still recompute exactly, and `verify`/`repair`
    /// bring rows back to exact.
    pub freshness_window: Duration,
}

impl SaveOptions {
    /// Exact summaries: every save writes its rows.
    pub fn exact() -> Self {
        Self::default()
    }

    /// Summaries allowed to lag by at most `window` (see [`SaveOptions::freshness_window`]).
    pub fn with_freshness_window(window: Duration) -> Self {
        Self {
            freshness_window: window,
        }
    }

    /// The cutoff of a save at `at`: rows at or after it are fresh. A window
    /// reaching before the earliest time any row can hold is that time: every
    /// row is fresh (a cutoff before year 1000 cannot even be encoded).
    fn fresh_after(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.freshness_window.is_zero() {
            return None;
        }
        let earliest = validate::earliest();
        let cutoff = chrono::Duration::from_std(self.freshness_window)
            .ok()
            .and_then(|window| at.checked_sub_signed(window));
        Some(cutoff.map_or(earliest, |cutoff| cutoff.max(earliest)))
    }
}

/// A saved run to insert (`id: None`) or update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSave {
    /// The run to update, or `None` to insert a new one.
    pub id: Option<SavedRunId>,
    /// The workspace the run is saved in.
    pub workspace_id: WorkspaceId,
    /// The user saving it.
    pub uid: String,
    /// The published-run version it was started from, if any.
    pub parent_version_id: Option<VersionId>,
    /// The backend's status text.
    pub run_status: String,
    /// The save's time; also `created_at` of a new run.
    pub updated_at: DateTime<Utc>,
}

const MAX_STATUS_BYTES: usize = 255;

/// Inserts or updates a saved run and keeps its summary rows exact, atomically.
///
/// Pass the backend's own run-save transaction as `conn` (the work then runs
/// in a savepoint of it) or a connection (in a transaction of its own). Roll
/// the caller's transaction back and neither the run nor its summary change
/// remains. Returns the run as written (its id, for an insert).
///
/// Updating a run that changes its version, user or workspace, or moves its
/// `updated_at` back, recomputes the group it left, reading history only if it
/// was that group's latest run.
///
/// In trigger mode (`[recent_workflows] maintained_by = "triggers"`, see
/// [`Recents::summary_kept_by_triggers`]) it writes the run only: the
/// database's triggers keep the summary, and `options` is not read (their
/// freshness window is [`Recents::set_freshness_window`]'s).
///
/// # Errors
/// [`Error::InvalidUid`], [`Error::InvalidArgument`] before any statement;
/// [`Error::WorkspaceNotFound`], [`Error::WorkspaceDeleted`] (no run is saved
/// into a deleted workspace), [`Error::VersionNotFound`],
/// [`Error::SavedRunNotFound`] for an update of a missing run; [`Error::Database`].
pub async fn save_run<C>(conn: &C, save: &RunSave, options: &SaveOptions) -> Result<SavedRun>
where
    C: ConnectionTrait + TransactionTrait,
{
    Recents::standard().save_run(conn, save, options).await
}

/// Records a saved run the backend wrote with its own code, in its own
/// transaction: call it after the insert or update, in the same transaction.
/// The run is read as the database stored it (its uid, version and
/// `updated_at`, which a database may have rounded): only `run.id`,
/// `run.workspace_id` (every read stays in that workspace) and
/// `run.updated_at` (for the freshness window) are taken from `run`. A run
/// without a version counts towards nothing.
///
/// When the same write moved the run away from another version, user or
/// workspace, or back in time, also call [`retract`] with the run as it was,
/// before this call (see [`retract`]).
///
/// In trigger mode the triggers recorded the run as it was written: `touch`
/// only checks that it exists, and a backend in that mode need not call it.
///
/// # Errors
/// [`Error::InvalidUid`], [`Error::InvalidArgument`]; [`Error::SavedRunNotFound`]
/// when the workspace has no saved run `run.id` (nothing changes); [`Error::Database`].
pub async fn touch<C: ConnectionTrait>(
    conn: &C,
    run: &SavedRun,
    options: &SaveOptions,
) -> Result<()> {
    Recents::standard().touch(conn, run, options).await
}

/// Takes back what `run_before` counted for, after the backend deleted the
/// run or changed its version, user, workspace or time with its own code, in
/// the same transaction as that change. History is read only when the run
/// was its group's latest.
///
/// Call it before [`touch`] and before any other summary write of the
/// transaction: on PostgreSQL it waits for a running backfill batch (which
/// could otherwise write the run's old use back), and a transaction that
/// already holds summary row locks then risks a deadlock with that batch.
///
/// In trigger mode it does nothing: the triggers saw the change.
///
/// # Errors
/// [`Error::InvalidUid`]; [`Error::Database`].
pub async fn retract<C: ConnectionTrait>(conn: &C, run_before: &SavedRun) -> Result<()> {
    Recents::standard().retract(conn, run_before).await
}

/// Deletes the saved run `id` of `workspace` and brings its summary rows
/// back to the remaining history (a row goes when no run is left in its
/// group). Every statement names the workspace, so on a PostgreSQL sharded by
/// workspace the whole delete runs on one shard. Returns the run deleted.
///
/// # Errors
/// [`Error::SavedRunNotFound`] when the workspace has no run `id` (nothing
/// changes); [`Error::Database`].
pub async fn delete_saved_run<C>(
    conn: &C,
    workspace: WorkspaceId,
    id: SavedRunId,
) -> Result<SavedRun>
where
    C: ConnectionTrait + TransactionTrait,
{
    Recents::standard()
        .delete_saved_run(conn, workspace, id)
        .await
}

/// Deletes a published run. Its versions go with it (their runs keep living,
/// detached), and so do its summary rows, by the schema's cascades.
///
/// # Errors
/// [`Error::PublishedRunNotFound`]; [`Error::Database`].
pub async fn delete_published_run<C: ConnectionTrait>(conn: &C, id: PublishedRunId) -> Result<()> {
    Recents::standard().delete_published_run(conn, id).await
}

/// Deletes one version of a published run. Its runs are detached (the
/// schema sets their version to NULL), so every group they counted towards
/// is recomputed from the runs that remain.
///
/// # Errors
/// [`Error::VersionNotFound`]; [`Error::Database`].
pub async fn delete_version<C>(conn: &C, id: VersionId) -> Result<()>
where
    C: ConnectionTrait + TransactionTrait,
{
    Recents::standard().delete_version(conn, id).await
}

impl Recents {
    /// [`save_run`] on the tables this handle's schema names.
    ///
    /// # Errors
    /// As [`save_run`].
    pub async fn save_run<C>(
        &self,
        conn: &C,
        save: &RunSave,
        options: &SaveOptions,
    ) -> Result<SavedRun>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        validate::uid(&save.uid)?;
        validate::text("run_status", &save.run_status, MAX_STATUS_BYTES)?;
        let updated_at = validate::timestamp("updated_at", save.updated_at)?;
        let schema = self.schema();
        // In trigger mode the triggers write the summary: no options reach them.
        let options = match self.summary_kept_by_triggers() {
            true => None,
            false => Some(options),
        };
        if save.id.is_none() && conn.get_database_backend() == DbBackend::Postgres {
            return match insert_in_one_statement(conn, schema, save, updated_at, options).await {
                Err(err) => Err(explain(conn, schema, save, err).await),
                saved => saved,
            };
        }
        let txn = begin_write(conn).await?;
        let saved = match save.id {
            None => insert(&txn, schema, save, updated_at, options).await,
            Some(id) => update(&txn, schema, id, save, updated_at, options).await,
        };
        // The savepoint is rolled back before asking why, so PostgreSQL answers
        // the questions in `explain`. When MySQL/MariaDB rolled back the whole
        // transaction, that is the answer.
        match finish(txn, saved).await {
            Err(err @ Error::TransactionRolledBack(_)) => Err(err),
            Err(err) => Err(explain(conn, schema, save, err).await),
            saved => saved,
        }
    }

    /// [`touch`] on the tables this handle's schema names.
    ///
    /// # Errors
    /// As [`touch`].
    pub async fn touch<C: ConnectionTrait>(
        &self,
        conn: &C,
        run: &SavedRun,
        options: &SaveOptions,
    ) -> Result<()> {
        validate::stored_uid(&run.uid)?;
        let at = validate::timestamp("updated_at", run.updated_at)?;
        // The stored row decides, its version included; only when nothing was
        // written is it worth asking whether the run exists at all.
        let schema = self.schema();
        if self.summary_kept_by_triggers() {
            return match run_exists(conn, schema, run.id, run.workspace_id).await? {
                true => Ok(()),
                false => Err(Error::SavedRunNotFound(run.id)),
            };
        }
        if !summary::record(
            conn,
            schema,
            run.id,
            run.workspace_id,
            options.fresh_after(at),
        )
        .await?
            && !run_exists(conn, schema, run.id, run.workspace_id).await?
        {
            return Err(Error::SavedRunNotFound(run.id));
        }
        Ok(())
    }

    /// [`retract`] on the tables this handle's schema names.
    ///
    /// # Errors
    /// As [`retract`].
    pub async fn retract<C: ConnectionTrait>(&self, conn: &C, run_before: &SavedRun) -> Result<()> {
        validate::stored_uid(&run_before.uid)?;
        let Some(version_id) = run_before.version_id else {
            return Ok(());
        };
        if self.summary_kept_by_triggers() {
            return Ok(());
        }
        let schema = self.schema();
        let Some(published_run_id) =
            summary::published_run_of(conn, schema, version_id, "").await?
        else {
            // The version is gone, and with it (by cascade or by `delete_version`)
            // the rows this run counted for.
            return Ok(());
        };
        for key in summary::keys(run_before.workspace_id, &run_before.uid, published_run_id) {
            summary::forget(conn, schema, &key, run_before.id).await?;
        }
        Ok(())
    }

    /// [`delete_saved_run`] on the tables this handle's schema names.
    ///
    /// # Errors
    /// As [`delete_saved_run`].
    pub async fn delete_saved_run<C>(
        &self,
        conn: &C,
        workspace: WorkspaceId,
        id: SavedRunId,
    ) -> Result<SavedRun>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        let schema = self.schema();
        let txn = begin_write(conn).await?;
        let done: Result<SavedRun> = async {
            let run = lock_run(&txn, schema, id, Some(workspace))
                .await?
                .ok_or(Error::SavedRunNotFound(id))?;
            let s = &schema.names(txn.get_database_backend()).saved_runs;
            txn.execute_raw(statement(
                txn.get_database_backend(),
                &format!(
                    "DELETE FROM {table} WHERE {id} = ? AND {ws} = ?",
                    table = s.table,
                    id = s.id,
                    ws = s.workspace_id
                ),
                vec![id.0.into(), workspace.0.into()],
            ))
            .await?;
            if !self.summary_kept_by_triggers() {
                self.retract(&txn, &run).await?;
            }
            Ok(run)
        }
        .await;
        finish(txn, done).await
    }

    /// [`delete_published_run`] on the tables this handle's schema names.
    ///
    /// # Errors
    /// As [`delete_published_run`].
    pub async fn delete_published_run<C: ConnectionTrait>(
        &self,
        conn: &C,
        id: PublishedRunId,
    ) -> Result<()> {
        let p = &self
            .schema()
            .names(conn.get_database_backend())
            .published_runs;
        match delete_by_id(conn, &p.table, &p.id, id.0).await? {
            true => Ok(()),
            false => Err(Error::PublishedRunNotFound(id)),
        }
    }

    /// [`delete_version`] on the tables this handle's schema names.
    ///
    /// # Errors
    /// As [`delete_version`].
    pub async fn delete_version<C>(&self, conn: &C, id: VersionId) -> Result<()>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        let schema = self.schema();
        if self.summary_kept_by_triggers() {
            // The triggers recompute the groups of its runs.
            let v = &schema.names(conn.get_database_backend()).versions;
            return match delete_by_id(conn, &v.table, &v.id, id.0).await? {
                true => Ok(()),
                false => Err(Error::VersionNotFound(id)),
            };
        }
        let txn = begin_write(conn).await?;
        let done: Result<()> = async {
            let backend = txn.get_database_backend();
            let n = schema.names(backend);
            // Lock the version before reading who used it: a save or a move into it
            // holds a share lock on it (its foreign key check) until it commits, so
            // once this lock is ours every run of the version is committed, and no
            // new one can start. Read after the lock, the users are then all of them.
            let published_run_id = summary::published_run_of(&txn, schema, id, for_update(backend))
                .await?
                .ok_or(Error::VersionNotFound(id))?;
            let latest = latest_committed(backend);
            let s = &n.saved_runs;
            let users = txn
                .query_all_raw(statement(
                    backend,
                    &format!(
                        "SELECT DISTINCT {ws} AS workspace_id, {uid} AS uid FROM {table} \
                         WHERE {version} = ?{latest}",
                        ws = s.workspace_id,
                        uid = s.uid,
                        table = s.table,
                        version = s.version_id,
                    ),
                    vec![id.0.into()],
                ))
                .await?;
            txn.execute_raw(statement(
                backend,
                &format!(
                    "DELETE FROM {} WHERE {} = ?",
                    n.versions.table, n.versions.id
                ),
                vec![id.0.into()],
            ))
            .await?;
            let mut keys: Vec<Key> = Vec::new();
            for row in users {
                let user = User::from_query_result(&row, "")?;
                for key in summary::keys(user.workspace_id, &user.uid, published_run_id) {
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
            }
            for key in &keys {
                summary::recompute(&txn, schema, key).await?;
            }
            Ok(())
        }
        .await;
        finish(txn, done).await
    }
}

/// Deletes the row `id` of `table` (quoted names); whether there was one.
async fn delete_by_id<C: ConnectionTrait>(
    conn: &C,
    table: &str,
    id_column: &str,
    id: i64,
) -> Result<bool> {
    let backend = conn.get_database_backend();
    let deleted = conn
        .execute_raw(statement(
            backend,
            &format!("DELETE FROM {table} WHERE {id_column} = ?"),
            vec![id.into()],
        ))
        .await?;
    Ok(deleted.rows_affected() > 0)
}

#[derive(FromQueryResult)]
struct User {
    workspace_id: WorkspaceId,
    uid: String,
}

#[derive(FromQueryResult)]
struct NewId {
    id: i64,
}

/// PostgreSQL inserts the run and records both summary rows in one
/// statement: atomic on its own, so neither a savepoint nor a transaction of
/// its own is needed, and a save is one round trip where it would be four
/// (begin, insert, upsert, commit). A missing or deleted workspace or a
/// missing version makes it insert nothing rather than fail, so a caller's
/// transaction stays usable and `explain` can say which. The workspace and
/// the version are read with the foreign keys' own lock (`FOR KEY SHARE`):
/// one deleted by a transaction that commits while the save waits is then
/// skipped as missing, where the foreign key check would fail the statement
/// and, with it, the caller's transaction. `options`: `None` when triggers
/// keep the summary (the statement inserts the run only).
async fn insert_in_one_statement<C: ConnectionTrait>(
    conn: &C,
    schema: &Schema,
    save: &RunSave,
    updated_at: DateTime<Utc>,
    options: Option<&SaveOptions>,
) -> Result<SavedRun> {
    let backend = conn.get_database_backend();
    let n = schema.names(backend);
    let (s, v, w) = (&n.saved_runs, &n.versions, &n.workspaces);
    let version = save.parent_version_id.map(|v| v.0);
    let mut values: Vec<sea_orm::Value> = vec![
        save.uid.clone().into(),
        version.into(),
        save.run_status.clone().into(),
        updated_at.into(),
        updated_at.into(),
        save.workspace_id.0.into(),
        version.into(),
        version.into(),
    ];
    let freshness = match options.and_then(|o| o.fresh_after(updated_at)) {
        Some(cutoff) => {
            values.push(cutoff.into());
            format!(
                "AND NOT EXISTS (SELECT 1 FROM {} f \
                 WHERE f.workspace_id = run.workspace_id AND f.uid = scope.uid \
                 AND f.published_run_id = v.{} AND f.last_used_at >= ?)",
                n.recent_workflows, v.published_run_id
            )
        }
        None => String::new(),
    };
    // The scope rows come member first, then the workspace's: the order in
    // which every save and every move locks them.
    let used = match options {
        Some(_) => format!(
            ", used AS ({insert_into}\
                 SELECT run.workspace_id, scope.uid, v.{pr}, run.id, run.updated_at \
                 FROM run JOIN {versions} v ON v.{v_id} = run.version_id \
                 CROSS JOIN LATERAL (VALUES (run.uid), ('')) AS scope (uid) \
                 WHERE TRUE {freshness} {keep_greater}\
             )",
            versions = v.table,
            v_id = v.id,
            pr = v.published_run_id,
            insert_into = summary::insert_into(n),
            keep_greater = summary::keep_greater(n),
        ),
        None => String::new(),
    };
    let sql = format!(
        "WITH run AS (\
             INSERT INTO {runs} ({ws}, {uid}, {version}, {status}, {created}, {at}) \
             SELECT w.{w_id}, ?, ?, ?, ?, ? FROM {workspaces} w \
             WHERE w.{w_id} = ? AND {live} \
             AND (CAST(? AS BIGINT) IS NULL \
                  OR EXISTS (SELECT 1 FROM {versions} pv WHERE pv.{v_id} = ? FOR KEY SHARE)) \
             FOR KEY SHARE OF w \
             RETURNING {id} AS id, {ws} AS workspace_id, {uid} AS uid, {at} AS updated_at, {version} AS version_id\
         ){used} SELECT id FROM run",
        runs = s.table,
        ws = s.workspace_id,
        uid = s.uid,
        version = s.version_id,
        status = s.run_status,
        created = s.created_at,
        at = s.updated_at,
        id = s.id,
        w_id = w.id,
        workspaces = w.table,
        live = w.live("w"),
        versions = v.table,
        v_id = v.id,
    );
    let row = conn
        .query_one_raw(statement(backend, &sql, values))
        .await?
        .ok_or(Error::WorkspaceNotFound(save.workspace_id))?;
    let id = NewId::from_query_result(&row, "")?.id;
    Ok(written(save, SavedRunId(id), updated_at))
}

/// The run a successful write of `save` left under `id`.
fn written(save: &RunSave, id: SavedRunId, updated_at: DateTime<Utc>) -> SavedRun {
    SavedRun {
        id,
        workspace_id: save.workspace_id,
        uid: save.uid.clone(),
        version_id: save.parent_version_id,
        updated_at,
    }
}

async fn insert<C: ConnectionTrait>(
    conn: &C,
    schema: &Schema,
    save: &RunSave,
    updated_at: DateTime<Utc>,
    options: Option<&SaveOptions>,
) -> Result<SavedRun> {
    let backend = conn.get_database_backend();
    let n = schema.names(backend);
    let (s, w) = (&n.saved_runs, &n.workspaces);
    // Selecting from the live workspace turns "deleted or missing" into zero
    // rows inserted, without a round trip of its own.
    let sql = format!(
        "INSERT INTO {runs} ({ws}, {uid}, {version}, {status}, {created}, {at}) \
         SELECT w.{w_id}, ?, ?, ?, ?, ? FROM {workspaces} w \
         WHERE w.{w_id} = ? AND {live}",
        runs = s.table,
        ws = s.workspace_id,
        uid = s.uid,
        version = s.version_id,
        status = s.run_status,
        created = s.created_at,
        at = s.updated_at,
        w_id = w.id,
        workspaces = w.table,
        live = w.live("w"),
    );
    let values = vec![
        save.uid.clone().into(),
        save.parent_version_id.map(|v| v.0).into(),
        save.run_status.clone().into(),
        updated_at.into(),
        updated_at.into(),
        save.workspace_id.0.into(),
    ];
    let id = match backend {
        DbBackend::Postgres => match conn
            .query_one_raw(statement(
                backend,
                &format!("{sql} RETURNING {} AS id", s.id),
                values,
            ))
            .await?
        {
            Some(row) => Some(NewId::from_query_result(&row, "")?.id),
            None => None,
        },
        _ => {
            let done = conn.execute_raw(statement(backend, &sql, values)).await?;
            (done.rows_affected() == 1).then(|| done.last_insert_id() as i64)
        }
    };
    let id = SavedRunId(id.ok_or(Error::WorkspaceNotFound(save.workspace_id))?);
    let run = written(save, id, updated_at);
    if let (Some(options), Some(_)) = (options, run.version_id) {
        summary::record(
            conn,
            schema,
            id,
            save.workspace_id,
            options.fresh_after(updated_at),
        )
        .await?;
    }
    Ok(run)
}

async fn update<C: ConnectionTrait>(
    conn: &C,
    schema: &Schema,
    id: SavedRunId,
    save: &RunSave,
    updated_at: DateTime<Utc>,
    options: Option<&SaveOptions>,
) -> Result<SavedRun> {
    let backend = conn.get_database_backend();
    let n = schema.names(backend);
    let (s, w) = (&n.saved_runs, &n.workspaces);
    // The run is looked for in the workspace it is saved into first: every
    // statement of an update in place then names that one workspace (one
    // shard of a PostgreSQL sharded by workspace). Only a run moving in from
    // another workspace is found by its id alone.
    let before = match lock_run(conn, schema, id, Some(save.workspace_id)).await? {
        Some(run) => run,
        None => lock_run(conn, schema, id, None)
            .await?
            .ok_or(Error::SavedRunNotFound(id))?,
    };
    let updated = conn
        .execute_raw(statement(
            backend,
            &format!(
                "UPDATE {runs} SET {ws} = ?, {uid} = ?, {version} = ?, {status} = ?, {at} = ? \
                 WHERE {id} = ? AND {ws} = ? AND EXISTS (\
                     SELECT 1 FROM {workspaces} w WHERE w.{w_id} = ? AND {live})",
                runs = s.table,
                ws = s.workspace_id,
                uid = s.uid,
                version = s.version_id,
                status = s.run_status,
                at = s.updated_at,
                id = s.id,
                workspaces = w.table,
                w_id = w.id,
                live = w.live("w"),
            ),
            vec![
                save.workspace_id.0.into(),
                save.uid.clone().into(),
                save.parent_version_id.map(|v| v.0).into(),
                save.run_status.clone().into(),
                updated_at.into(),
                id.0.into(),
                before.workspace_id.0.into(),
                save.workspace_id.0.into(),
            ],
        ))
        .await?;
    if updated.rows_affected() == 0 {
        return Err(Error::WorkspaceNotFound(save.workspace_id));
    }
    let after = written(save, id, updated_at);
    if let Some(options) = options {
        summary::move_run(
            conn,
            schema,
            &before,
            &after,
            options.fresh_after(updated_at),
        )
        .await?;
    }
    Ok(after)
}

async fn run_exists<C: ConnectionTrait>(
    conn: &C,
    schema: &Schema,
    id: SavedRunId,
    workspace: WorkspaceId,
) -> Result<bool> {
    let backend = conn.get_database_backend();
    let s = &schema.names(backend).saved_runs;
    Ok(conn
        .query_one_raw(statement(
            backend,
            &format!(
                "SELECT {id} AS id FROM {table} WHERE {id} = ? AND {ws} = ?",
                id = s.id,
                table = s.table,
                ws = s.workspace_id
            ),
            vec![id.0.into(), workspace.0.into()],
        ))
        .await?
        .is_some())
}

/// The saved run, read as the summary sees it, from the runs aliased `s`.
fn run_columns(n: &Names) -> String {
    let s = &n.saved_runs;
    format!(
        "s.{id} AS id, s.{ws} AS workspace_id, s.{uid} AS uid, s.{version} AS version_id, \
         s.{at} AS updated_at",
        id = s.id,
        ws = s.workspace_id,
        uid = s.uid,
        version = s.version_id,
        at = s.updated_at,
    )
}

/// Locks the saved run `id`, in `workspace` when given.
async fn lock_run<C: ConnectionTrait>(
    conn: &C,
    schema: &Schema,
    id: SavedRunId,
    workspace: Option<WorkspaceId>,
) -> Result<Option<SavedRun>> {
    let backend = conn.get_database_backend();
    let n = schema.names(backend);
    let s = &n.saved_runs;
    let lock = for_update(backend);
    let (within, mut values) = match workspace {
        Some(ws) => (format!(" AND s.{} = ?", s.workspace_id), vec![ws.0.into()]),
        None => (String::new(), vec![]),
    };
    values.insert(0, id.0.into());
    let row = conn
        .query_one_raw(statement(
            backend,
            &format!(
                "SELECT {columns} FROM {table} s WHERE s.{id} = ?{within}{lock}",
                columns = run_columns(n),
                table = s.table,
                id = s.id,
            ),
            values,
        ))
        .await?;
    Ok(match row {
        Some(row) => Some(SavedRun::from_query_result(&row, "")?),
        None => None,
    })
}

#[derive(FromQueryResult)]
struct Deletion {
    deleted_at: Option<DateTime<Utc>>,
}

/// Names what a failed save ran into. Runs after the failed savepoint was
/// rolled back, so its queries are valid even on PostgreSQL. Its reads see
/// the latest commits (on MySQL/MariaDB as locking reads; a plain read there
/// answers from the transaction's snapshot), so a workspace or version
/// deleted by a transaction that committed while the save waited is named.
async fn explain<C: ConnectionTrait>(
    conn: &C,
    schema: &Schema,
    save: &RunSave,
    err: Error,
) -> Error {
    let is_foreign_key = matches!(
        &err,
        Error::Database(db) if matches!(db.sql_err(), Some(SqlErr::ForeignKeyConstraintViolation(_)))
    );
    if !matches!(err, Error::WorkspaceNotFound(_)) && !is_foreign_key {
        return err;
    }
    let backend = conn.get_database_backend();
    let w = &schema.names(backend).workspaces;
    let latest = latest_committed(backend);
    let workspace = conn
        .query_one_raw(statement(
            backend,
            &format!(
                "SELECT {deleted} AS deleted_at FROM {table} w WHERE w.{id} = ?{latest}",
                deleted = w.deleted_at_of("w"),
                table = w.table,
                id = w.id,
            ),
            vec![save.workspace_id.0.into()],
        ))
        .await;
    let row = match workspace {
        Ok(Some(row)) => row,
        Ok(None) => return Error::WorkspaceNotFound(save.workspace_id),
        Err(_) => return err,
    };
    if matches!(
        Deletion::from_query_result(&row, ""),
        Ok(Deletion {
            deleted_at: Some(_)
        })
    ) {
        return Error::WorkspaceDeleted(save.workspace_id);
    }
    if let Some(version) = save.parent_version_id
        && matches!(
            summary::published_run_of(conn, schema, version, latest).await,
            Ok(None)
        )
    {
        return Error::VersionNotFound(version);
    }
    if is_foreign_key {
        return err;
    }
    Error::WorkspaceNotFound(save.workspace_id)
}
