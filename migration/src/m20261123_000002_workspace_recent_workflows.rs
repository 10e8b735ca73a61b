//! `workspace_recent_workflows`: the summary behind the recent-workflows read,
//! created and filled from the saved runs already there, so that `migrate up`
//! on an existing database leaves exact summaries. Its foreign keys and the
//! fill name the backend's tables through the schema mapping.

use std::time::Instant;

use recents_schema::{Names, Schema};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};

use crate::columns::{byte_collation, timestamp, uid};
use recents_schema::numbered;

/// Takes the schema mapping: the foreign keys and the fill name its tables.
#[derive(DeriveMigrationName)]
pub struct Migration {
    pub(crate) schema: Schema,
}

#[derive(DeriveIden)]
enum WorkspaceRecentWorkflows {
    WorkspaceId,
    Uid,
    PublishedRunId,
    LastSavedRunId,
    LastUsedAt,
}

const TABLE: &str = "workspace_recent_workflows";
const RECENCY_INDEX: &str = "idx_workspace_recent_workflows_recency";
const PUBLISHED_RUN_INDEX: &str = "idx_workspace_recent_workflows_published_run";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    // The fill commits batch by batch instead of holding one transaction over
    // the whole history. If it stops half-way, `up` runs again: the schema
    // steps skip what exists, and the fill's upsert makes a second fill exact.
    fn use_transaction(&self) -> Option<bool> {
        Some(false)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if !self.schema.install().recent_workflows {
            return Ok(());
        }
        create(manager, &self.schema).await?;
        fill(manager, &self.schema).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(own(&self.schema, TABLE))
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}

/// One of recents' own tables or indexes, under the mapping's prefix.
fn own(schema: &Schema, name: &str) -> Alias {
    Alias::new(format!("{}{name}", schema.mapping().prefix))
}

async fn create(manager: &SchemaManager<'_>, schema: &Schema) -> Result<(), DbErr> {
    use WorkspaceRecentWorkflows as W;
    let db = manager.get_database_backend();
    let m = schema.mapping();
    let table = format!("{}{TABLE}", m.prefix);
    let collation = byte_collation(manager).await?;
    if !manager.has_table(&table).await? {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new(&table))
                    .col(ColumnDef::new(W::WorkspaceId).big_integer().not_null())
                    .col(uid(db, W::Uid, collation).not_null())
                    .col(ColumnDef::new(W::PublishedRunId).big_integer().not_null())
                    .col(ColumnDef::new(W::LastSavedRunId).big_integer().not_null())
                    .col(timestamp(db, W::LastUsedAt).not_null())
                    // The upsert's conflict target: one row per (workspace, user, workflow).
                    .primary_key(
                        Index::create()
                            .name(format!("{}pk_workspace_recent_workflows", m.prefix))
                            .col(W::WorkspaceId)
                            .col(W::Uid)
                            .col(W::PublishedRunId),
                    )
                    // Deleting a workspace or a workflow deletes its rows.
                    .foreign_key(
                        ForeignKey::create()
                            .name(format!(
                                "{}fk_workspace_recent_workflows_workspace",
                                m.prefix
                            ))
                            .from(Alias::new(&table), W::WorkspaceId)
                            .to(
                                Alias::new(&m.tables.workspaces),
                                Alias::new(&m.columns.workspaces.id),
                            )
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name(format!(
                                "{}fk_workspace_recent_workflows_published_run",
                                m.prefix
                            ))
                            .from(Alias::new(&table), W::PublishedRunId)
                            .to(
                                Alias::new(&m.tables.published_runs),
                                Alias::new(&m.columns.published_runs.id),
                            )
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
    }
    // The read: `WHERE workspace_id = ? AND uid = ? ORDER BY last_used_at
    // DESC, published_run_id DESC LIMIT n` is a range of exactly n index
    // entries, for a member and for the workspace-wide row (uid = '') alike.
    let recency = format!("{}{RECENCY_INDEX}", m.prefix);
    if !manager.has_index(&table, &recency).await? {
        manager
            .create_index(
                Index::create()
                    .name(&recency)
                    .table(Alias::new(&table))
                    .col(W::WorkspaceId)
                    .col(W::Uid)
                    .col((W::LastUsedAt, IndexOrder::Desc))
                    .col((W::PublishedRunId, IndexOrder::Desc))
                    .to_owned(),
            )
            .await?;
    }
    // Deleting a published run cascades here; without this index that
    // cascade would scan the whole summary.
    let by_published_run = format!("{}{PUBLISHED_RUN_INDEX}", m.prefix);
    if !manager.has_index(&table, &by_published_run).await? {
        manager
            .create_index(
                Index::create()
                    .name(&by_published_run)
                    .table(Alias::new(&table))
                    .col(W::PublishedRunId)
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

// The fill's SQL, frozen here as this migration shipped it (the service's
// backfill may change; a migration must not). Batches of saved-run ids are
// walked from the newest down, each aggregated to its member rows and, from
// those, its workspace rows (uid ''; a run whose own uid is '' counts for its
// workspace only, as in the service), and merged with a monotonic upsert: a
// row only ever moves to a greater (last_used_at, last_saved_run_id). Newest
// first, most rows reach their final value in the first batches and the
// rest only compare.

/// The batch's lowest id, given its highest and its size.
fn fill_probe(n: &Names) -> String {
    let s = &n.saved_runs;
    numbered(
        n.backend,
        &format!(
            "SELECT COUNT(*) AS n, MIN(t.id) AS low FROM (\
                SELECT {id} AS id FROM {table} WHERE {id} <= ? ORDER BY {id} DESC LIMIT ?\
            ) t",
            id = s.id,
            table = s.table,
        ),
    )
}

/// The runs of one batch `[?, ?]` of ids, with their published runs.
fn runs_of_batch(n: &Names) -> String {
    let s = &n.saved_runs;
    let v = &n.versions;
    format!(
        "FROM {runs} s JOIN {versions} v ON v.{v_id} = s.{version_id} \
         WHERE s.{id} >= ? AND s.{id} <= ?",
        runs = s.table,
        versions = v.table,
        v_id = v.id,
        version_id = s.version_id,
        id = s.id,
    )
}

fn fill_postgres(n: &Names) -> String {
    let s = &n.saved_runs;
    let v = &n.versions;
    let r = &n.recent_workflows;
    numbered(
        n.backend,
        &format!(
            "WITH m AS (\
                SELECT DISTINCT ON (s.{ws}, s.{uid} COLLATE \"C\", v.{pr}) \
                    s.{ws} AS workspace_id, s.{uid} AS uid, v.{pr} AS published_run_id, \
                    s.{id} AS last_saved_run_id, s.{at} AS last_used_at \
                {batch} \
                ORDER BY s.{ws}, s.{uid} COLLATE \"C\", v.{pr}, s.{at} DESC, s.{id} DESC\
            ), h AS (\
                SELECT * FROM m WHERE m.uid <> '' UNION ALL (\
                    SELECT DISTINCT ON (workspace_id, published_run_id) \
                        workspace_id, '', published_run_id, last_saved_run_id, last_used_at \
                    FROM m ORDER BY workspace_id, published_run_id, last_used_at DESC, last_saved_run_id DESC)\
            ) \
            INSERT INTO {r} \
                (workspace_id, uid, published_run_id, last_saved_run_id, last_used_at) \
            SELECT h.* FROM h WHERE NOT COALESCE((\
                SELECT (o.last_used_at, o.last_saved_run_id) >= (h.last_used_at, h.last_saved_run_id) \
                FROM {r} o \
                WHERE o.workspace_id = h.workspace_id AND o.uid = h.uid AND o.published_run_id = h.published_run_id\
            ), false) \
            ON CONFLICT (workspace_id, uid, published_run_id) DO UPDATE \
            SET last_saved_run_id = excluded.last_saved_run_id, last_used_at = excluded.last_used_at \
            WHERE (excluded.last_used_at, excluded.last_saved_run_id) \
                > ({r}.last_used_at, {r}.last_saved_run_id)",
            ws = s.workspace_id,
            uid = s.uid,
            pr = v.published_run_id,
            id = s.id,
            at = s.updated_at,
            batch = runs_of_batch(n),
        ),
    )
}

// SQLite and MySQL/MariaDB: the same aggregate by window; each member winner
// is emitted again as its workspace's row when it also wins there.
fn fill_standard(n: &Names) -> String {
    let s = &n.saved_runs;
    let v = &n.versions;
    let r = &n.recent_workflows;
    let conflict = match n.backend {
        // No WHERE on MySQL's upsert: the run id moves on the pair
        // comparison, then the time follows the run id (assignments see the
        // ones before them).
        DbBackend::MySql => format!(
            "ON DUPLICATE KEY UPDATE \
             last_saved_run_id = IF((VALUES(last_used_at), VALUES(last_saved_run_id)) \
                 > ({r}.last_used_at, {r}.last_saved_run_id), \
                 VALUES(last_saved_run_id), {r}.last_saved_run_id), \
             last_used_at = IF({r}.last_saved_run_id = VALUES(last_saved_run_id), \
                 GREATEST({r}.last_used_at, VALUES(last_used_at)), {r}.last_used_at)"
        ),
        _ => format!(
            "ON CONFLICT (workspace_id, uid, published_run_id) DO UPDATE \
             SET last_saved_run_id = excluded.last_saved_run_id, last_used_at = excluded.last_used_at \
             WHERE (excluded.last_used_at, excluded.last_saved_run_id) \
                 > ({r}.last_used_at, {r}.last_saved_run_id)"
        ),
    };
    format!(
        "INSERT INTO {r} \
            (workspace_id, uid, published_run_id, last_saved_run_id, last_used_at) \
        SELECT m.workspace_id, CASE WHEN k.wide = 1 THEN '' ELSE m.uid END, m.published_run_id, \
            m.last_saved_run_id, m.last_used_at \
        FROM (\
            SELECT r.*, ROW_NUMBER() OVER (PARTITION BY r.workspace_id, r.published_run_id \
                ORDER BY r.last_used_at DESC, r.last_saved_run_id DESC) AS nth_in_workspace \
            FROM (\
                SELECT s.{ws} AS workspace_id, s.{uid} AS uid, v.{pr} AS published_run_id, \
                    s.{id} AS last_saved_run_id, s.{at} AS last_used_at, \
                    ROW_NUMBER() OVER (PARTITION BY s.{ws}, s.{uid}, v.{pr} \
                        ORDER BY s.{at} DESC, s.{id} DESC) AS nth \
                {batch}\
            ) r WHERE r.nth = 1\
        ) m CROSS JOIN (SELECT 0 AS wide UNION ALL SELECT 1) k \
        WHERE ((k.wide = 0 AND m.uid <> '') OR (k.wide = 1 AND m.nth_in_workspace = 1)) {conflict}",
        ws = s.workspace_id,
        uid = s.uid,
        pr = v.published_run_id,
        id = s.id,
        at = s.updated_at,
        batch = runs_of_batch(n),
    )
}

const FILL_BATCH_ROWS: i64 = 50_000;

// sea-orm-migration's CLI shows only its own crate's events unless run with
// --verbose; the fill's progress goes out under that name to be seen.
const LOG: &str = "sea_orm_migration::fill";

async fn fill(manager: &SchemaManager<'_>, schema: &Schema) -> Result<(), DbErr> {
    let conn = manager.get_connection();
    let backend = manager.get_database_backend();
    let names = schema.names(backend);
    let upsert = match backend {
        DbBackend::Postgres => fill_postgres(names),
        _ => fill_standard(names),
    };
    let probe = fill_probe(names);
    let extent = conn
        .query_one_raw(Statement::from_string(
            backend,
            format!(
                "SELECT MAX({id}) AS max_id, COUNT(*) AS n FROM {table}",
                id = names.saved_runs.id,
                table = names.saved_runs.table
            ),
        ))
        .await?;
    let (mut high, total) = match extent {
        Some(row) => (
            row.try_get::<Option<i64>>("", "max_id")?.unwrap_or(0),
            row.try_get::<i64>("", "n")?,
        ),
        None => (0, 0),
    };
    if total == 0 {
        return Ok(());
    }
    tracing::info!(target: LOG, "{TABLE}: filling from {total} saved runs");
    let started = Instant::now();
    let mut logged = started;
    let mut done: i64 = 0;
    // Down the whole id range, i64::MIN included: a backend may number its
    // runs anywhere in it.
    loop {
        let row = conn
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                &probe,
                [high.into(), FILL_BATCH_ROWS.into()],
            ))
            .await?;
        let (n, low) = match row {
            Some(row) => (
                row.try_get::<i64>("", "n")?,
                row.try_get::<Option<i64>>("", "low")?,
            ),
            None => (0, None),
        };
        let Some(low) = low else { break };
        let txn = conn.begin().await?;
        if backend == DbBackend::Postgres {
            // Room for the batch's sorts in memory, and no JIT: compiling
            // the statement took longer than running it.
            txn.execute_unprepared("SET LOCAL work_mem = '64MB'")
                .await?;
            txn.execute_unprepared("SET LOCAL jit = off").await?;
        }
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            &upsert,
            [low.into(), high.into()],
        ))
        .await?;
        txn.commit().await?;
        done += n;
        if n < FILL_BATCH_ROWS || low == i64::MIN {
            break;
        }
        high = low - 1;
        if logged.elapsed().as_secs() >= 2 {
            logged = Instant::now();
            let seconds = started.elapsed().as_secs_f64().max(1e-3);
            tracing::info!(
                target: LOG,
                "{TABLE}: {done} of {total} saved runs ({:.0}%), {:.0} rows/s",
                100.0 * done as f64 / total as f64,
                done as f64 / seconds
            );
        }
    }
    tracing::info!(
        target: LOG,
        "{TABLE}: filled from {done} saved runs in {:.1?}",
        started.elapsed()
    );
    Ok(())
}
