//! The write path: saving, moving and deleting runs keeps the summary exact,
//! in the caller's transaction.

use std::time::Duration;

use chrono::{DateTime, Utc};
use recents_entity::saved_run;
use sea_orm::{ConnectionTrait, DbBackend, SqlErr, TransactionTrait};

use super::summary::{self, Key};
use crate::error::{Error, Result};
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
/// remains.
///
/// Updating a run that changes its version, user or workspace, or moves its
/// `updated_at` back, recomputes the group it left, reading history only if it
/// was that group's latest run.
///
/// # Errors
/// [`Error::InvalidUid`], [`Error::InvalidArgument`] before any statement;
/// [`Error::WorkspaceNotFound`], [`Error::WorkspaceDeleted`] (no run is saved
/// into a deleted workspace), [`Error::VersionNotFound`],
/// [`Error::SavedRunNotFound`] for an update of a missing run; [`Error::Database`].
pub async fn save_run<C>(
    conn: &C,
    save: &RunSave,
    options: &SaveOptions,
) -> Result<saved_run::Model>
where
    C: ConnectionTrait + TransactionTrait,
{
    validate::uid(&save.uid)?;
    validate::text("run_status", &save.run_status, MAX_STATUS_BYTES)?;
    let updated_at = validate::timestamp("updated_at", save.updated_at)?;

    if save.id.is_none() && conn.get_database_backend() == DbBackend::Postgres {
        return match insert_in_one_statement(conn, save, updated_at, options).await {
            Err(err) => Err(explain(conn, save, err).await),
            saved => saved,
        };
    }
    let txn = begin_write(conn).await?;
    let saved = match save.id {
        None => insert(&txn, save, updated_at, options).await,
        Some(id) => update(&txn, id, save, updated_at, options).await,
    };
    // The savepoint is rolled back before asking why, so PostgreSQL answers
    // the questions in `explain`. When MySQL/MariaDB rolled back the whole
    // transaction, that is the answer.
    match finish(txn, saved).await {
        Err(err @ Error::TransactionRolledBack(_)) => Err(err),
        Err(err) => Err(explain(conn, save, err).await),
        saved => saved,
    }
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
/// # Errors
/// [`Error::InvalidUid`], [`Error::InvalidArgument`]; [`Error::SavedRunNotFound`]
/// when the workspace has no saved run `run.id` (nothing changes); [`Error::Database`].
pub async fn touch<C: ConnectionTrait>(
    conn: &C,
    run: &saved_run::Model,
    options: &SaveOptions,
) -> Result<()> {
    validate::stored_uid(&run.uid)?;
    let at = validate::timestamp("updated_at", run.updated_at)?;
    let id = SavedRunId(run.id);
    // The stored row decides, its version included; only when nothing was
    // written is it worth asking whether the run exists at all.
    let workspace = WorkspaceId(run.workspace_id);
    if !summary::record(conn, id, workspace, options.fresh_after(at)).await?
        && !run_exists(conn, id, workspace).await?
    {
        return Err(Error::SavedRunNotFound(id));
    }
    Ok(())
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
/// # Errors
/// [`Error::Database`].
pub async fn retract<C: ConnectionTrait>(conn: &C, run_before: &saved_run::Model) -> Result<()> {
    validate::stored_uid(&run_before.uid)?;
    let Some(version_id) = run_before.parent_version_id else {
        return Ok(());
    };
    let Some(published_run_id) = published_run_of(conn, VersionId(version_id), "").await? else {
        // The version is gone, and with it (by cascade or by `delete_version`)
        // the rows this run counted for.
        return Ok(());
    };
    for key in summary::keys(
        WorkspaceId(run_before.workspace_id),
        &run_before.uid,
        published_run_id,
    ) {
        summary::forget(conn, &key, SavedRunId(run_before.id)).await?;
    }
    Ok(())
}

/// Deletes the saved run `id` of `workspace` and brings its summary rows
/// back to the remaining history (a row goes when no run is left in its
/// group). Every statement names the workspace, so on a PostgreSQL sharded by
/// workspace the whole delete runs on one shard.
///
/// # Errors
/// [`Error::SavedRunNotFound`] when the workspace has no run `id` (nothing
/// changes); [`Error::Database`].
pub async fn delete_saved_run<C>(
    conn: &C,
    workspace: WorkspaceId,
    id: SavedRunId,
) -> Result<saved_run::Model>
where
    C: ConnectionTrait + TransactionTrait,
{
    let txn = begin_write(conn).await?;
    let done: Result<saved_run::Model> = async {
        let run = lock_run(&txn, id, Some(workspace))
            .await?
            .ok_or(Error::SavedRunNotFound(id))?;
        txn.execute_raw(statement(
            txn.get_database_backend(),
            "DELETE FROM saved_runs WHERE id = ? AND workspace_id = ?",
            vec![id.0.into(), workspace.0.into()],
        ))
        .await?;
        retract(&txn, &run).await?;
        Ok(run)
    }
    .await;
    finish(txn, done).await
}

/// Deletes a published run. Its versions go with it (their runs keep living,
/// detached), and so do its summary rows, by the schema's cascades.
///
/// # Errors
/// [`Error::PublishedRunNotFound`]; [`Error::Database`].
pub async fn delete_published_run<C: ConnectionTrait>(conn: &C, id: PublishedRunId) -> Result<()> {
    let deleted = conn
        .execute_raw(statement(
            conn.get_database_backend(),
            "DELETE FROM published_runs WHERE id = ?",
            vec![id.0.into()],
        ))
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(Error::PublishedRunNotFound(id));
    }
    Ok(())
}

/// Deletes one version of a published run. Its runs are detached (the
/// schema sets their `parent_version_id` to NULL), so every group they
/// counted towards is recomputed from the runs that remain.
///
/// # Errors
/// [`Error::VersionNotFound`]; [`Error::Database`].
pub async fn delete_version<C>(conn: &C, id: VersionId) -> Result<()>
where
    C: ConnectionTrait + TransactionTrait,
{
    let txn = begin_write(conn).await?;
    let done: Result<()> = async {
        let backend = txn.get_database_backend();
        // Lock the version before reading who used it: a save or a move into it
        // holds a share lock on it (its foreign key check) until it commits, so
        // once this lock is ours every run of the version is committed, and no
        // new one can start. Read after the lock, the users are then all of them.
        let published_run_id = published_run_of(&txn, id, for_update(backend))
            .await?
            .ok_or(Error::VersionNotFound(id))?;
        let latest = latest_committed(backend);
        let users = txn
            .query_all_raw(statement(
                backend,
                &format!(
                    "SELECT DISTINCT workspace_id, uid FROM saved_runs WHERE parent_version_id = ?{latest}"
                ),
                vec![id.0.into()],
            ))
            .await?;
        txn.execute_raw(statement(
            backend,
            "DELETE FROM published_run_versions WHERE id = ?",
            vec![id.0.into()],
        ))
        .await?;
        let mut keys: Vec<Key> = Vec::new();
        for row in users {
            let workspace_id = WorkspaceId(row.try_get("", "workspace_id")?);
            let uid: String = row.try_get("", "uid")?;
            for key in summary::keys(workspace_id, &uid, published_run_id) {
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        for key in &keys {
            summary::recompute(&txn, key).await?;
        }
        Ok(())
    }
    .await;
    finish(txn, done).await
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
/// and, with it, the caller's transaction.
async fn insert_in_one_statement<C: ConnectionTrait>(
    conn: &C,
    save: &RunSave,
    updated_at: DateTime<Utc>,
    options: &SaveOptions,
) -> Result<saved_run::Model> {
    let backend = conn.get_database_backend();
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
    let freshness = match options.fresh_after(updated_at) {
        Some(cutoff) => {
            values.push(cutoff.into());
            "AND NOT EXISTS (SELECT 1 FROM workspace_recent_workflows f \
             WHERE f.workspace_id = run.workspace_id AND f.uid = scope.uid \
             AND f.published_run_id = v.published_run_id AND f.last_used_at >= ?)"
        }
        None => "",
    };
    // The scope rows come member first, then the workspace's: the order in
    // which every save and every move locks them.
    let sql = format!(
        "WITH run AS (\
             INSERT INTO saved_runs \
             (workspace_id, uid, parent_version_id, run_status, created_at, updated_at) \
             SELECT w.id, ?, ?, ?, ?, ? FROM workspaces w \
             WHERE w.id = ? AND w.deleted_at IS NULL \
             AND (CAST(? AS BIGINT) IS NULL \
                  OR EXISTS (SELECT 1 FROM published_run_versions pv WHERE pv.id = ? FOR KEY SHARE)) \
             FOR KEY SHARE OF w \
             RETURNING id, workspace_id, uid, updated_at, parent_version_id\
         ), used AS ({insert_into}\
             SELECT run.workspace_id, scope.uid, v.published_run_id, run.id, run.updated_at \
             FROM run JOIN published_run_versions v ON v.id = run.parent_version_id \
             CROSS JOIN LATERAL (VALUES (run.uid), ('')) AS scope (uid) \
             WHERE TRUE {freshness} {keep_greater}\
         ) SELECT id FROM run",
        insert_into = summary::INSERT_INTO,
        keep_greater = summary::keep_greater(backend),
    );
    let id: i64 = conn
        .query_one_raw(statement(backend, &sql, values))
        .await?
        .ok_or(Error::WorkspaceNotFound(save.workspace_id))?
        .try_get("", "id")?;
    Ok(new_run(save, id, updated_at))
}

/// The row a successful insert of `save` wrote under `id`.
fn new_run(save: &RunSave, id: i64, updated_at: DateTime<Utc>) -> saved_run::Model {
    saved_run::Model {
        id,
        workspace_id: save.workspace_id.0,
        uid: save.uid.clone(),
        parent_version_id: save.parent_version_id.map(|v| v.0),
        run_status: save.run_status.clone(),
        created_at: updated_at,
        updated_at,
    }
}

async fn insert<C: ConnectionTrait>(
    conn: &C,
    save: &RunSave,
    updated_at: DateTime<Utc>,
    options: &SaveOptions,
) -> Result<saved_run::Model> {
    let backend = conn.get_database_backend();
    // Selecting from the live workspace turns "deleted or missing" into zero
    // rows inserted, without a round trip of its own.
    let sql = "INSERT INTO saved_runs \
               (workspace_id, uid, parent_version_id, run_status, created_at, updated_at) \
               SELECT w.id, ?, ?, ?, ?, ? FROM workspaces w \
               WHERE w.id = ? AND w.deleted_at IS NULL";
    let values = vec![
        save.uid.clone().into(),
        save.parent_version_id.map(|v| v.0).into(),
        save.run_status.clone().into(),
        updated_at.into(),
        updated_at.into(),
        save.workspace_id.0.into(),
    ];
    let id = match backend {
        DbBackend::Postgres => conn
            .query_one_raw(statement(backend, &format!("{sql} RETURNING id"), values))
            .await?
            .map(|row| row.try_get::<i64>("", "id"))
            .transpose()?,
        _ => {
            let done = conn.execute_raw(statement(backend, sql, values)).await?;
            (done.rows_affected() == 1).then(|| done.last_insert_id() as i64)
        }
    };
    let id = id.ok_or(Error::WorkspaceNotFound(save.workspace_id))?;
    let run = new_run(save, id, updated_at);
    if run.parent_version_id.is_some() {
        summary::record(
            conn,
            SavedRunId(id),
            save.workspace_id,
            options.fresh_after(updated_at),
        )
        .await?;
    }
    Ok(run)
}

async fn update<C: ConnectionTrait>(
    conn: &C,
    id: SavedRunId,
    save: &RunSave,
    updated_at: DateTime<Utc>,
    options: &SaveOptions,
) -> Result<saved_run::Model> {
    let backend = conn.get_database_backend();
    // The run is looked for in the workspace it is saved into first: every
    // statement of an update in place then names that one workspace (one
    // shard of a PostgreSQL sharded by workspace). Only a run moving in from
    // another workspace is found by its id alone.
    let before = match lock_run(conn, id, Some(save.workspace_id)).await? {
        Some(run) => run,
        None => lock_run(conn, id, None)
            .await?
            .ok_or(Error::SavedRunNotFound(id))?,
    };
    let updated = conn
        .execute_raw(statement(
            backend,
            "UPDATE saved_runs SET workspace_id = ?, uid = ?, parent_version_id = ?, \
             run_status = ?, updated_at = ? \
             WHERE id = ? AND workspace_id = ? AND EXISTS (\
                 SELECT 1 FROM workspaces w WHERE w.id = ? AND w.deleted_at IS NULL)",
            vec![
                save.workspace_id.0.into(),
                save.uid.clone().into(),
                save.parent_version_id.map(|v| v.0).into(),
                save.run_status.clone().into(),
                updated_at.into(),
                id.0.into(),
                before.workspace_id.into(),
                save.workspace_id.0.into(),
            ],
        ))
        .await?;
    if updated.rows_affected() == 0 {
        return Err(Error::WorkspaceNotFound(save.workspace_id));
    }
    let after = saved_run::Model {
        id: id.0,
        workspace_id: save.workspace_id.0,
        uid: save.uid.clone(),
        parent_version_id: save.parent_version_id.map(|v| v.0),
        run_status: save.run_status.clone(),
        created_at: before.created_at,
        updated_at,
    };
    let same_group = before.workspace_id == after.workspace_id
        && before.uid == after.uid
        && before.parent_version_id == after.parent_version_id;
    if same_group && before.updated_at <= after.updated_at {
        if after.parent_version_id.is_some() {
            summary::record(conn, id, save.workspace_id, options.fresh_after(updated_at)).await?;
        }
        return Ok(after);
    }
    // The run leaves a group (or moves back in time in it). Two such moves in
    // opposite directions would lock each other's rows in opposite orders, so
    // every row involved is locked first, in one order for everyone.
    let old_group = match before.parent_version_id {
        Some(v) => published_run_of(conn, VersionId(v), "").await?,
        None => None,
    };
    let new_group = match after.parent_version_id {
        Some(v) => published_run_of(conn, VersionId(v), "").await?,
        None => None,
    };
    let mut involved = Vec::new();
    if let Some(pr) = old_group {
        involved.extend(summary::keys(
            WorkspaceId(before.workspace_id),
            &before.uid,
            pr,
        ));
    }
    if let Some(pr) = new_group {
        involved.extend(summary::keys(
            WorkspaceId(after.workspace_id),
            &after.uid,
            pr,
        ));
    }
    // The backfill takes the lowering lock before any summary row lock; so
    // does every path that may lower a row, this one included.
    summary::hold_lowering_lock(conn).await?;
    lock_in_order(conn, &involved).await?;
    // Retract first: the recompute reads history, which already holds the run
    // as updated, so the group it left (maybe the same group, back in time)
    // comes out exact; the new use is then recorded on top.
    if let Some(pr) = old_group {
        for key in summary::keys(WorkspaceId(before.workspace_id), &before.uid, pr) {
            summary::forget(conn, &key, SavedRunId(before.id)).await?;
        }
    }
    if after.parent_version_id.is_some() {
        summary::record(conn, id, save.workspace_id, options.fresh_after(updated_at)).await?;
    }
    Ok(after)
}

/// Locks the existing summary rows of `keys` in the order every save takes
/// them: by workspace and published run, the member's row before the
/// workspace's (the order of the upsert's two rows). SQLite has one writer
/// and nothing to order.
async fn lock_in_order<C: ConnectionTrait>(conn: &C, keys: &[Key]) -> Result<()> {
    let backend = conn.get_database_backend();
    if keys.is_empty() || backend == DbBackend::Sqlite {
        return Ok(());
    }
    let tuples = vec!["(?, ?, ?)"; keys.len()].join(", ");
    let values = keys
        .iter()
        .flat_map(|k| {
            [
                sea_orm::Value::from(k.workspace_id.0),
                k.uid.clone().into(),
                k.published_run_id.0.into(),
            ]
        })
        .collect();
    conn.query_all_raw(statement(
        backend,
        &format!(
            "SELECT workspace_id FROM workspace_recent_workflows \
             WHERE (workspace_id, uid, published_run_id) IN ({tuples}) \
             ORDER BY workspace_id, published_run_id, uid = '', uid FOR UPDATE"
        ),
        values,
    ))
    .await?;
    Ok(())
}

async fn run_exists<C: ConnectionTrait>(
    conn: &C,
    id: SavedRunId,
    workspace: WorkspaceId,
) -> Result<bool> {
    Ok(conn
        .query_one_raw(statement(
            conn.get_database_backend(),
            "SELECT id FROM saved_runs WHERE id = ? AND workspace_id = ?",
            vec![id.0.into(), workspace.0.into()],
        ))
        .await?
        .is_some())
}

/// Locks the saved run `id`, in `workspace` when given.
async fn lock_run<C: ConnectionTrait>(
    conn: &C,
    id: SavedRunId,
    workspace: Option<WorkspaceId>,
) -> Result<Option<saved_run::Model>> {
    let backend = conn.get_database_backend();
    let lock = for_update(backend);
    let (within, mut values) = match workspace {
        Some(ws) => (" AND workspace_id = ?", vec![ws.0.into()]),
        None => ("", vec![]),
    };
    values.insert(0, id.0.into());
    let row = conn
        .query_one_raw(statement(
            backend,
            &format!(
                "SELECT id, workspace_id, uid, parent_version_id, run_status, created_at, updated_at \
                 FROM saved_runs WHERE id = ?{within}{lock}"
            ),
            values,
        ))
        .await?;
    Ok(match row {
        Some(row) => Some(saved_run::Model {
            id: row.try_get("", "id")?,
            workspace_id: row.try_get("", "workspace_id")?,
            uid: row.try_get("", "uid")?,
            parent_version_id: row.try_get("", "parent_version_id")?,
            run_status: row.try_get("", "run_status")?,
            created_at: row.try_get("", "created_at")?,
            updated_at: row.try_get("", "updated_at")?,
        }),
        None => None,
    })
}

/// The published run of a version; `lock` is appended to the read (a row
/// lock, or a locking read that sees the latest committed row on MySQL).
async fn published_run_of<C: ConnectionTrait>(
    conn: &C,
    version: VersionId,
    lock: &str,
) -> Result<Option<PublishedRunId>> {
    Ok(conn
        .query_one_raw(statement(
            conn.get_database_backend(),
            &format!("SELECT published_run_id FROM published_run_versions WHERE id = ?{lock}"),
            vec![version.0.into()],
        ))
        .await?
        .map(|row| row.try_get::<i64>("", "published_run_id"))
        .transpose()?
        .map(PublishedRunId))
}

/// Names what a failed save ran into. Runs after the failed savepoint was
/// rolled back, so its queries are valid even on PostgreSQL. Its reads see
/// the latest commits (on MySQL/MariaDB as locking reads; a plain read there
/// answers from the transaction's snapshot), so a workspace or version
/// deleted by a transaction that committed while the save waited is named.
async fn explain<C: ConnectionTrait>(conn: &C, save: &RunSave, err: Error) -> Error {
    let is_foreign_key = matches!(
        &err,
        Error::Database(db) if matches!(db.sql_err(), Some(SqlErr::ForeignKeyConstraintViolation(_)))
    );
    if !matches!(err, Error::WorkspaceNotFound(_)) && !is_foreign_key {
        return err;
    }
    let backend = conn.get_database_backend();
    let latest = latest_committed(backend);
    let workspace = conn
        .query_one_raw(statement(
            backend,
            &format!("SELECT deleted_at FROM workspaces WHERE id = ?{latest}"),
            vec![save.workspace_id.0.into()],
        ))
        .await;
    let row = match workspace {
        Ok(Some(row)) => row,
        Ok(None) => return Error::WorkspaceNotFound(save.workspace_id),
        Err(_) => return err,
    };
    if matches!(
        row.try_get::<Option<DateTime<Utc>>>("", "deleted_at"),
        Ok(Some(_))
    ) {
        return Error::WorkspaceDeleted(save.workspace_id);
    }
    if let Some(version) = save.parent_version_id
        && matches!(published_run_of(conn, version, latest).await, Ok(None))
    {
        return Error::VersionNotFound(version);
    }
    if is_foreign_key {
        return err;
    }
    Error::WorkspaceNotFound(save.workspace_id)
}
