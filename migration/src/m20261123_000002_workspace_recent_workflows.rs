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
    /// Saved runs per batch of the fill: [`fill_batch_rows`] but in tests.
    pub(crate) fill_batch_rows: Option<i64>,
}

/// Saved runs per batch of the fill on `backend`. PostgreSQL stages a batch
/// with no index to maintain: a few seconds of aggregation, sorted in memory.
/// The others merge each batch with an upsert: about a tenth of a second.
pub(crate) fn fill_batch_rows(backend: DbBackend) -> i64 {
    match backend {
        DbBackend::Postgres => 1_000_000,
        _ => 50_000,
    }
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
const PRIMARY_KEY: &str = "pk_workspace_recent_workflows";
const WORKSPACE_KEY: &str = "fk_workspace_recent_workflows_workspace";
const PUBLISHED_RUN_KEY: &str = "fk_workspace_recent_workflows_published_run";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    // The fill commits batch by batch instead of holding one transaction over
    // the whole history. If it stops half-way, `up` runs again: the schema
    // steps skip what exists; PostgreSQL's fill goes on below its lowest
    // staged batch, and elsewhere the fill's upsert makes a second fill exact.
    fn use_transaction(&self) -> Option<bool> {
        Some(false)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if !self.schema.install().recent_workflows {
            return Ok(());
        }
        let batch_rows = self
            .fill_batch_rows
            .unwrap_or_else(|| fill_batch_rows(manager.get_database_backend()));
        if manager.get_database_backend() == DbBackend::Postgres {
            // Keys and indexes come after the fill: checked and inserted row
            // by row they were most of its time.
            create(manager, &self.schema, false).await?;
            staged_fill::run(manager, &self.schema, batch_rows).await?;
            staged_fill::create_indexes(manager, &self.schema).await?;
            return staged_fill::add_foreign_keys(manager, &self.schema).await;
        }
        create(manager, &self.schema, true).await?;
        create_indexes(manager, &self.schema).await?;
        fill(manager, &self.schema, batch_rows).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            staged_fill::drop_staging(manager, &self.schema).await?;
        }
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

/// The table, with its primary and foreign keys when `keys` (PostgreSQL adds
/// them after the fill).
async fn create(manager: &SchemaManager<'_>, schema: &Schema, keys: bool) -> Result<(), DbErr> {
    use WorkspaceRecentWorkflows as W;
    let db = manager.get_database_backend();
    let m = schema.mapping();
    let table = format!("{}{TABLE}", m.prefix);
    let collation = byte_collation(manager).await?;
    if !manager.has_table(&table).await? {
        let mut create = Table::create();
        create
            .table(Alias::new(&table))
            .col(ColumnDef::new(W::WorkspaceId).big_integer().not_null())
            .col(uid(db, W::Uid, collation).not_null())
            .col(ColumnDef::new(W::PublishedRunId).big_integer().not_null())
            .col(ColumnDef::new(W::LastSavedRunId).big_integer().not_null())
            .col(timestamp(db, W::LastUsedAt).not_null());
        if keys {
            // The upsert's conflict target: one row per (workspace, user, workflow).
            create
                .primary_key(
                    Index::create()
                        .name(format!("{}{PRIMARY_KEY}", m.prefix))
                        .col(W::WorkspaceId)
                        .col(W::Uid)
                        .col(W::PublishedRunId),
                )
                // Deleting a workspace or a workflow deletes its rows.
                .foreign_key(
                    ForeignKey::create()
                        .name(format!("{}{WORKSPACE_KEY}", m.prefix))
                        .from(Alias::new(&table), W::WorkspaceId)
                        .to(
                            Alias::new(&m.tables.workspaces),
                            Alias::new(&m.columns.workspaces.id),
                        )
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name(format!("{}{PUBLISHED_RUN_KEY}", m.prefix))
                        .from(Alias::new(&table), W::PublishedRunId)
                        .to(
                            Alias::new(&m.tables.published_runs),
                            Alias::new(&m.columns.published_runs.id),
                        )
                        .on_delete(ForeignKeyAction::Cascade),
                );
        }
        manager.create_table(create.to_owned()).await?;
    }
    Ok(())
}

/// The secondary indexes (before the fill, where the fill is an upsert).
async fn create_indexes(manager: &SchemaManager<'_>, schema: &Schema) -> Result<(), DbErr> {
    use WorkspaceRecentWorkflows as W;
    let m = schema.mapping();
    let table = format!("{}{TABLE}", m.prefix);
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

/// PostgreSQL: one batch `[?, ?]` of runs as member rows (a run whose uid is
/// '' among them: it counts for its workspace's row only).
fn member_rows_postgres(n: &Names) -> String {
    let s = &n.saved_runs;
    let v = &n.versions;
    format!(
        "SELECT DISTINCT ON (s.{ws}, s.{uid} COLLATE \"C\", v.{pr}) \
            s.{ws} AS workspace_id, s.{uid} AS uid, v.{pr} AS published_run_id, \
            s.{id} AS last_saved_run_id, s.{at} AS last_used_at \
         {batch} \
         ORDER BY s.{ws}, s.{uid} COLLATE \"C\", v.{pr}, s.{at} DESC, s.{id} DESC",
        ws = s.workspace_id,
        uid = s.uid,
        pr = v.published_run_id,
        id = s.id,
        at = s.updated_at,
        batch = runs_of_batch(n),
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

// sea-orm-migration's CLI shows only its own crate's events unless run with
// --verbose; the fill's progress goes out under that name to be seen.
const LOG: &str = "sea_orm_migration::fill";

/// The saved runs' ids walked down from the top in batches of `batch_rows`
/// runs: [`next`](Self::next) gives each batch's inclusive range and logs
/// the progress of the ones before it (`verb` says what happens to a
/// batch). Down the whole id range, i64::MIN included: a backend may number
/// its runs anywhere in it.
struct BatchWalk<'a> {
    conn: &'a SchemaManagerConnection<'a>,
    backend: DbBackend,
    probe: String,
    top: Option<i64>,
    batch_rows: i64,
    total: i64,
    verb: &'static str,
    started: Instant,
    logged: Instant,
    /// Runs of the batches walked before the last one given.
    done: i64,
    /// Runs of the last batch given.
    given: i64,
}

impl<'a> BatchWalk<'a> {
    fn new(
        conn: &'a SchemaManagerConnection<'a>,
        names: &Names,
        top: Option<i64>,
        batch_rows: i64,
        total: i64,
        verb: &'static str,
    ) -> Self {
        let started = Instant::now();
        Self {
            conn,
            backend: names.backend,
            probe: fill_probe(names),
            top,
            batch_rows,
            total,
            verb,
            started,
            logged: started,
            done: 0,
            given: 0,
        }
    }

    /// The next batch `(low, high)`, once the last one given is done.
    async fn next(&mut self) -> Result<Option<(i64, i64)>, DbErr> {
        self.done += std::mem::take(&mut self.given);
        if self.done > 0 && self.logged.elapsed().as_secs() >= 2 {
            self.logged = Instant::now();
            let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
            tracing::info!(
                target: LOG,
                "{TABLE}: {} of {} saved runs {} ({:.0}%), {:.0} rows/s",
                self.done,
                self.total,
                self.verb,
                100.0 * self.done as f64 / Ord::max(self.total, 1) as f64,
                self.done as f64 / seconds
            );
        }
        let Some(high) = self.top else {
            return Ok(None);
        };
        let row = self
            .conn
            .query_one_raw(Statement::from_sql_and_values(
                self.backend,
                &self.probe,
                [high.into(), self.batch_rows.into()],
            ))
            .await?;
        let (rows, low) = match row {
            Some(row) => (
                row.try_get::<i64>("", "n")?,
                row.try_get::<Option<i64>>("", "low")?,
            ),
            None => (0, None),
        };
        let Some(low) = low else {
            self.top = None;
            return Ok(None);
        };
        self.given = rows;
        self.top = if rows < self.batch_rows {
            None
        } else {
            low.checked_sub(1)
        };
        Ok(Some((low, high)))
    }
}

async fn fill(manager: &SchemaManager<'_>, schema: &Schema, batch_rows: i64) -> Result<(), DbErr> {
    let conn = manager.get_connection();
    let backend = manager.get_database_backend();
    let names = schema.names(backend);
    let upsert = fill_standard(names);
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
    let (max_id, total) = match extent {
        Some(row) => (
            row.try_get::<Option<i64>>("", "max_id")?,
            row.try_get::<i64>("", "n")?,
        ),
        None => (None, 0),
    };
    if total == 0 {
        return Ok(());
    }
    tracing::info!(target: LOG, "{TABLE}: filling from {total} saved runs");
    let mut walk = BatchWalk::new(conn, names, max_id, batch_rows, total, "merged");
    while let Some((low, high)) = walk.next().await? {
        let txn = conn.begin().await?;
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            &upsert,
            [low.into(), high.into()],
        ))
        .await?;
        txn.commit().await?;
    }
    let (done, started) = (walk.done, walk.started);
    tracing::info!(
        target: LOG,
        "{TABLE}: filled from {done} saved runs in {:.1?}",
        started.elapsed()
    );
    Ok(())
}

/// PostgreSQL's fill: a set-based rebuild cut into resumable batches.
///
/// Each batch aggregates one id range of runs to its member rows into an
/// unlogged staging table (heap inserts only: no index, no key, no conflict
/// check, no WAL). The staged rows are then reduced, in one statement, to one
/// row per member key and from those to the workspace rows, into the empty
/// summary, and the staging table is dropped in the same transaction. Nothing
/// else writes the summary before this migration is recorded (the service
/// refuses a database whose migrations are behind), so the reduce is a plain
/// insert into a table with no index yet. The primary key and the indexes are
/// then built and the foreign keys validated, each in one sorted pass or
/// anti-join instead of row by row.
///
/// Writers of the history are never blocked for longer than adding a foreign
/// key (an instant, with a lock timeout and retries). A kill at any point
/// resumes where it stopped: below the lowest staged batch, or at the first
/// step after the reduce not yet done. An unlogged table is emptied by a
/// server crash; the fill then starts again from the top.
mod staged_fill {
    use std::time::Duration;

    use super::*;

    const STAGING: &str = "workspace_recent_workflows_fill";

    const COLUMNS: &str = "workspace_id, uid, published_run_id, last_saved_run_id, last_used_at";

    pub(super) async fn drop_staging(
        manager: &SchemaManager<'_>,
        schema: &Schema,
    ) -> Result<(), DbErr> {
        let n = schema.names(DbBackend::Postgres);
        manager
            .get_connection()
            .execute_unprepared(&format!("DROP TABLE IF EXISTS {}", n.object(STAGING)))
            .await
            .map(|_| ())
    }

    pub(super) async fn run(
        manager: &SchemaManager<'_>,
        schema: &Schema,
        batch_rows: i64,
    ) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        let backend = DbBackend::Postgres;
        let n = schema.names(backend);
        let r = &n.recent_workflows;
        let s = &n.saved_runs;
        let staging = n.object(STAGING);
        if !manager.has_table(&n.unquoted_object(STAGING)).await? {
            let filled = conn
                .query_one_raw(Statement::from_string(
                    backend,
                    format!("SELECT 1 AS one FROM {r} LIMIT 1"),
                ))
                .await?
                .is_some();
            if filled {
                return Ok(());
            }
            conn.execute_unprepared(&format!(
                "CREATE UNLOGGED TABLE {staging} (LIKE {r}, batch_low BIGINT NOT NULL)"
            ))
            .await?;
        }
        let extent = conn
            .query_one_raw(Statement::from_string(
                backend,
                format!(
                    "SELECT (SELECT MIN(batch_low) FROM {staging}) AS staged_low, \
                     (SELECT MAX({id}) FROM {runs}) AS max_id, \
                     (SELECT COUNT(*) FROM {runs}) AS n",
                    id = s.id,
                    runs = s.table,
                ),
            ))
            .await?;
        let (staged_low, max_id, total) = match extent {
            Some(row) => (
                row.try_get::<Option<i64>>("", "staged_low")?,
                row.try_get::<Option<i64>>("", "max_id")?,
                row.try_get::<i64>("", "n")?,
            ),
            None => (None, None, 0),
        };
        // Batches are staged from the newest down; a resume goes on below the
        // lowest one (i64::MIN: every batch is staged).
        let high = match staged_low {
            Some(low) => low.checked_sub(1),
            None => max_id,
        };
        tracing::info!(target: LOG, "{TABLE}: filling from {total} saved runs");
        let stage = numbered(
            backend,
            &format!(
                "INSERT INTO {staging} ({COLUMNS}, batch_low) SELECT m.*, ? FROM ({rows}) m",
                rows = member_rows_postgres(n)
            ),
        );
        let mut walk = BatchWalk::new(conn, n, high, batch_rows, total, "staged");
        while let Some((low, top)) = walk.next().await? {
            let txn = conn.begin().await?;
            // Room for the batch's sorts in memory, and no JIT: compiling
            // the statement took longer than running it.
            txn.execute_unprepared("SET LOCAL work_mem = '256MB'")
                .await?;
            txn.execute_unprepared("SET LOCAL jit = off").await?;
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                &stage,
                // The staged rows' batch, then the batch's range.
                [low.into(), low.into(), top.into()],
            ))
            .await?;
            txn.commit().await?;
        }
        let (done, started) = (walk.done, walk.started);
        let txn = conn.begin().await?;
        txn.execute_unprepared("SET LOCAL work_mem = '256MB'")
            .await?;
        txn.execute_unprepared("SET LOCAL jit = off").await?;
        // A workspace's row is the greatest of its member rows, the uid ''
        // ones included; those are no member's.
        txn.execute_unprepared(&format!(
            "WITH m AS (\
                SELECT DISTINCT ON (workspace_id, uid, published_run_id) {COLUMNS} FROM {staging} \
                ORDER BY workspace_id, uid, published_run_id, last_used_at DESC, last_saved_run_id DESC\
             ) \
             INSERT INTO {r} ({COLUMNS}) \
             SELECT * FROM m WHERE m.uid <> '' UNION ALL (\
                SELECT DISTINCT ON (workspace_id, published_run_id) \
                    workspace_id, '', published_run_id, last_saved_run_id, last_used_at \
                FROM m ORDER BY workspace_id, published_run_id, last_used_at DESC, last_saved_run_id DESC)"
        ))
        .await?;
        txn.execute_unprepared(&format!("DROP TABLE {staging}"))
            .await?;
        txn.commit().await?;
        tracing::info!(
            target: LOG,
            "{TABLE}: filled from {done} saved runs in {:.1?}",
            started.elapsed()
        );
        Ok(())
    }

    /// The primary key and the secondary indexes, each built in one sorted
    /// pass (nothing else writes the summary yet, so not `CONCURRENTLY`).
    pub(super) async fn create_indexes(
        manager: &SchemaManager<'_>,
        schema: &Schema,
    ) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        let n = schema.names(DbBackend::Postgres);
        let r = &n.recent_workflows;
        if constraint_validated(conn, n, PRIMARY_KEY).await?.is_none() {
            let txn = conn.begin().await?;
            txn.execute_unprepared("SET LOCAL maintenance_work_mem = '256MB'")
                .await?;
            txn.execute_unprepared(&format!(
                "ALTER TABLE {r} ADD CONSTRAINT {} PRIMARY KEY (workspace_id, uid, published_run_id)",
                n.object(PRIMARY_KEY)
            ))
            .await?;
            txn.commit().await?;
        }
        // The read's range and the published-run cascade's, as in
        // `create_indexes`.
        for (name, columns) in [
            (
                RECENCY_INDEX,
                "workspace_id, uid, last_used_at DESC, published_run_id DESC",
            ),
            (PUBLISHED_RUN_INDEX, "published_run_id"),
        ] {
            let txn = conn.begin().await?;
            txn.execute_unprepared("SET LOCAL maintenance_work_mem = '256MB'")
                .await?;
            txn.execute_unprepared(&format!(
                "CREATE INDEX IF NOT EXISTS {} ON {} ({columns})",
                n.object(name),
                n.recent_workflows
            ))
            .await?;
            txn.commit().await?;
        }
        Ok(())
    }

    /// Adds each foreign key `NOT VALID` (from then on it holds for every
    /// write and cascades every delete), deletes the rows whose workspace or
    /// workflow was deleted while the fill ran, then validates it in one
    /// anti-join that blocks no writer.
    pub(super) async fn add_foreign_keys(
        manager: &SchemaManager<'_>,
        schema: &Schema,
    ) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        let backend = DbBackend::Postgres;
        let n = schema.names(backend);
        let r = &n.recent_workflows;
        for (name, column, table, key) in [
            (
                WORKSPACE_KEY,
                "workspace_id",
                &n.workspaces.table,
                &n.workspaces.id,
            ),
            (
                PUBLISHED_RUN_KEY,
                "published_run_id",
                &n.published_runs.table,
                &n.published_runs.id,
            ),
        ] {
            let found = constraint_validated(conn, n, name).await?;
            if found == Some(true) {
                continue;
            }
            let constraint = n.object(name);
            if found.is_none() {
                add_not_valid(
                    conn,
                    &format!(
                        "ALTER TABLE {r} ADD CONSTRAINT {constraint} FOREIGN KEY ({column}) \
                         REFERENCES {table} ({key}) ON DELETE CASCADE NOT VALID"
                    ),
                )
                .await?;
            }
            conn.execute_unprepared(&format!(
                "DELETE FROM {r} o WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.{key} = o.{column})"
            ))
            .await?;
            conn.execute_unprepared(&format!("ALTER TABLE {r} VALIDATE CONSTRAINT {constraint}"))
                .await?;
        }
        Ok(())
    }

    /// Whether the summary has the constraint `name`, and if so whether it
    /// is validated.
    async fn constraint_validated(
        conn: &SchemaManagerConnection<'_>,
        n: &Names,
        name: &str,
    ) -> Result<Option<bool>, DbErr> {
        conn.query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT convalidated FROM pg_constraint \
             WHERE conrelid = to_regclass($1) AND conname = $2",
            [
                n.recent_workflows.clone().into(),
                n.unquoted_object(name).into(),
            ],
        ))
        .await?
        .map(|row| row.try_get::<bool>("", "convalidated"))
        .transpose()
    }

    /// Adding a foreign key locks the referenced table against writes for an
    /// instant, but waiting for that lock would queue every writer behind the
    /// wait: it waits a second at most, and tries again.
    async fn add_not_valid(conn: &SchemaManagerConnection<'_>, sql: &str) -> Result<(), DbErr> {
        let mut attempt = 0;
        loop {
            let txn = conn.begin().await?;
            txn.execute_unprepared("SET LOCAL lock_timeout = '1s'")
                .await?;
            match txn.execute_unprepared(sql).await {
                Ok(_) => return txn.commit().await,
                Err(error) if attempt < 60 && error.to_string().contains("lock timeout") => {
                    txn.rollback().await?;
                    attempt += 1;
                    tracing::info!(target: LOG, "{TABLE}: a writer holds the lock; trying again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => return Err(error),
            }
        }
    }
}
