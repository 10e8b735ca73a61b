//! `execution_queue_heads`: one row per user with eligible jobs, its head
//! job and its latest dequeue, indexed in the order in which the fair queue
//! serves users, so that a claim reads the front of an index instead of
//! probing every waiting user. Triggers on the backend's jobs table keep the
//! rows exact whatever code writes the jobs (the service, raw SQL, a bulk
//! import), and a trigger on `execution_last_dequeues` copies each user's
//! latest dequeue into its row. The row's definition is
//! `recents_schema::Names::queue_head_of`; see there for what "as of" means.
//!
//! Each trigger change locks the user's row first and only then reads the
//! user's jobs (a later statement: PostgreSQL's READ COMMITTED then sees
//! every change committed before the lock), so two writers of one user's
//! jobs apply their changes one after the other. A row that does not exist
//! is created from the user's jobs (so the fill below and the triggers can
//! run at once); a row with nothing left is deleted.

use recents_schema::{Names, Schema, numbered};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::columns::timestamp;
use crate::m20261123_000005_fair_queue::QUEUED_USER_COLUMN;

/// Takes the schema mapping: the jobs table and its columns.
#[derive(DeriveMigrationName)]
pub struct Migration {
    pub(crate) schema: Schema,
}

const LOG: &str = "recents_migration";

/// The rows with a head in the fair order of users: the claim's walk.
const ORDER_INDEX: &str = "idx_execution_queue_heads_order";

/// Rows that must be brought up to date when a scheduled job comes due.
const NEXT_DUE_INDEX: &str = "idx_execution_queue_heads_next_due";

/// Each user's eligible jobs with a `process_after`, by it: `next_due_at`.
const SCHEDULED_INDEX: &str = "idx_execution_jobs_scheduled";

/// The function (PostgreSQL) or procedure (MySQL/MariaDB) applying one
/// job's change to one user's row.
const CHANGE: &str = "recents_queue_head_change";

/// The trigger functions on the jobs table (PostgreSQL: one per event,
/// suffixed; MySQL/MariaDB: one procedure the triggers call).
const ON_JOB: &str = "recents_queue_head_on_job";

/// PostgreSQL's trigger function on `execution_last_dequeues`.
const ON_LATEST: &str = "recents_queue_head_latest";

/// Jobs per fill batch (about).
const FILL_BATCH_JOBS: i64 = 20_000;

#[derive(DeriveIden)]
enum Heads {
    UserId,
    LatestDequeue,
    HeadJobId,
    HeadCreatedAt,
    DueCount,
    NextDueAt,
    AsOf,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    // The fill commits batch by batch, with the triggers already in place.
    fn use_transaction(&self) -> Option<bool> {
        Some(false)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if !self.schema.install().fair_queue {
            return Ok(());
        }
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let n = self.schema.names(backend);
        let heads = n.unquoted_object("execution_queue_heads");
        if !manager.has_table(&heads).await? {
            manager
                .create_table(
                    Table::create()
                        .table(Alias::new(&heads))
                        .col(
                            ColumnDef::new(Heads::UserId)
                                .big_integer()
                                .not_null()
                                .primary_key(),
                        )
                        .col(timestamp(backend, Heads::LatestDequeue).null())
                        .col(ColumnDef::new(Heads::HeadJobId).big_integer().null())
                        .col(timestamp(backend, Heads::HeadCreatedAt).null())
                        .col(ColumnDef::new(Heads::DueCount).big_integer().not_null())
                        .col(timestamp(backend, Heads::NextDueAt).null())
                        .col(timestamp(backend, Heads::AsOf).not_null())
                        .to_owned(),
                )
                .await?;
        }
        let jobs = &self.schema.mapping().tables.execution_jobs;
        let scheduled = n.unquoted_object(SCHEDULED_INDEX);
        if !manager.has_index(jobs, &scheduled).await? {
            db.execute_unprepared(&scheduled_index(n)).await?;
        }
        if !manager
            .has_index(&heads, &n.unquoted_object(ORDER_INDEX))
            .await?
        {
            db.execute_unprepared(&order_index(n)).await?;
        }
        if !manager
            .has_index(&heads, &n.unquoted_object(NEXT_DUE_INDEX))
            .await?
        {
            db.execute_unprepared(&next_due_index(n)).await?;
        }
        for sql in drop_triggers(n) {
            db.execute_unprepared(&sql).await?;
        }
        for sql in triggers(n) {
            db.execute_unprepared(&sql).await?;
        }
        fill(manager, n).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if !self.schema.install().fair_queue {
            return Ok(());
        }
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let n = self.schema.names(backend);
        for sql in drop_triggers(n) {
            db.execute_unprepared(&sql).await?;
        }
        let scheduled = n.object(SCHEDULED_INDEX);
        db.execute_unprepared(&match backend {
            DbBackend::MySql => format!("ALTER TABLE {} DROP INDEX {scheduled}", n.jobs.table),
            _ => format!("DROP INDEX IF EXISTS {scheduled}"),
        })
        .await?;
        manager
            .drop_table(
                Table::drop()
                    .table(Alias::new(n.unquoted_object("execution_queue_heads")))
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}

fn scheduled_index(n: &Names) -> String {
    let j = &n.jobs;
    let index = n.object(SCHEDULED_INDEX);
    match n.backend {
        DbBackend::MySql => format!(
            "ALTER TABLE {table} ADD INDEX {index} ({queued}, {after})",
            table = j.table,
            queued = n.object(QUEUED_USER_COLUMN),
            after = j.process_after,
        ),
        _ => format!(
            "CREATE INDEX IF NOT EXISTS {index} ON {table} ({user}, {after}) \
             WHERE {state} IN ('queued', 'errored') AND NOT {cancel} AND {after} IS NOT NULL",
            table = j.table,
            user = j.user_id,
            after = j.process_after,
            state = j.state,
            cancel = j.cancel,
        ),
    }
}

// PostgreSQL and SQLite index only the rows with a head; MySQL/MariaDB (no
// partial indexes) all of them, and the walk passes over the rows of users
// whose jobs are all scheduled later.
fn order_index(n: &Names) -> String {
    let index = n.object(ORDER_INDEX);
    let heads = &n.queue_heads;
    let order = n.queue_head_order("");
    match n.backend {
        DbBackend::MySql => format!("CREATE INDEX {index} ON {heads} ({order})"),
        _ => format!(
            "CREATE INDEX IF NOT EXISTS {index} ON {heads} ({order}) WHERE head_job_id IS NOT NULL"
        ),
    }
}

fn next_due_index(n: &Names) -> String {
    let index = n.object(NEXT_DUE_INDEX);
    let heads = &n.queue_heads;
    match n.backend {
        DbBackend::MySql => format!("CREATE INDEX {index} ON {heads} (next_due_at)"),
        _ => format!(
            "CREATE INDEX IF NOT EXISTS {index} ON {heads} (next_due_at) WHERE next_due_at IS NOT NULL"
        ),
    }
}

/// One side of a job's change, as the change function takes it: whether
/// the job is eligible, its id, `created_at` and `process_after`.
struct Side {
    eligible: String,
    id: String,
    created: String,
    after: String,
}

impl Side {
    fn of(n: &Names, row: &str) -> Self {
        let j = &n.jobs;
        Side {
            eligible: format!(
                "({row}.{state} IN ('queued', 'errored') AND NOT {row}.{cancel})",
                state = j.state,
                cancel = j.cancel,
            ),
            id: format!("{row}.{}", j.id),
            created: format!("{row}.{}", j.created_at),
            after: format!("{row}.{}", j.process_after),
        }
    }

    fn none() -> Self {
        Side {
            eligible: "FALSE".into(),
            id: "NULL".into(),
            created: "NULL".into(),
            after: "NULL".into(),
        }
    }
}

/// Whether an UPDATE of a job can change a queue head: its eligibility, its
/// user, or its place (`created_at`, `process_after`, id).
fn changes_a_head(n: &Names, distinct: impl Fn(&str, &str) -> String) -> String {
    let j = &n.jobs;
    let (o, nw) = (Side::of(n, "OLD"), Side::of(n, "NEW"));
    format!(
        "({oe} OR {ne}) AND ({oe} <> {ne} OR OLD.{user} <> NEW.{user} OR OLD.{id} <> NEW.{id} \
         OR {created} OR {after})",
        oe = o.eligible,
        ne = nw.eligible,
        user = j.user_id,
        id = j.id,
        created = distinct(&o.created, &nw.created),
        after = distinct(&o.after, &nw.after),
    )
}

// PostgreSQL: statement triggers over transition tables, as for
// `execution_last_dequeues`: a row trigger fires only once the whole
// statement is done, so a row made from the jobs by the first row's trigger
// would already hold the rows whose triggers are still to come. Each
// statement's jobs are gathered per user (leaving: no longer eligible, or
// changed; entering: eligible after the change) and applied to that user's
// row in one call, users in id order so that two statements cannot
// deadlock. SELECT … INTO sets the targets to NULL when no row is found,
// which is what a head or a next due time with no job is.
fn pg_change(n: &Names) -> String {
    let j = &n.jobs;
    let heads = &n.queue_heads;
    format!(
        "CREATE OR REPLACE FUNCTION {change}(u bigint, l_ids bigint[], l_after timestamptz[], \
            e_ids bigint[], e_created timestamptz[], e_after timestamptz[]) \
         RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    r {heads}%ROWTYPE;
    e_id bigint;
    e_at timestamptz;
    e_next timestamptz;
    at timestamptz;
BEGIN
    LOOP
        SELECT * INTO r FROM {heads} WHERE user_id = u FOR UPDATE;
        IF FOUND THEN
            r.due_count := r.due_count
                - (SELECT count(*) FROM unnest(l_after) a WHERE a IS NULL OR a <= r.as_of)
                + (SELECT count(*) FROM unnest(e_after) a WHERE a IS NULL OR a <= r.as_of);
            IF r.head_job_id = ANY (l_ids) THEN
                SELECT hp.{id}, hp.{created} INTO r.head_job_id, r.head_created_at
                FROM {jobs} hp WHERE {eligible} AND hp.{user} = u AND {due}
                ORDER BY hp.{created}, hp.{id} LIMIT 1;
            ELSE
                SELECT e.id, e.created INTO e_id, e_at
                FROM unnest(e_ids, e_created, e_after) AS e(id, created, after)
                WHERE e.after IS NULL OR e.after <= r.as_of
                ORDER BY e.created, e.id LIMIT 1;
                IF e_id IS NOT NULL AND (r.head_job_id IS NULL
                        OR (e_at, e_id) < (r.head_created_at, r.head_job_id)) THEN
                    r.head_job_id := e_id;
                    r.head_created_at := e_at;
                END IF;
            END IF;
            IF EXISTS (SELECT 1 FROM unnest(l_after) a WHERE a > r.as_of) THEN
                r.next_due_at := {next_due};
            ELSE
                e_next := (SELECT min(a) FROM unnest(e_after) a WHERE a > r.as_of);
                IF e_next IS NOT NULL AND (r.next_due_at IS NULL OR e_next < r.next_due_at) THEN
                    r.next_due_at := e_next;
                END IF;
            END IF;
            IF r.due_count <= 0 AND r.next_due_at IS NULL THEN
                DELETE FROM {heads} WHERE user_id = u;
            ELSE
                UPDATE {heads} SET head_job_id = r.head_job_id, head_created_at = r.head_created_at,
                    due_count = r.due_count, next_due_at = r.next_due_at
                WHERE user_id = u;
            END IF;
            RETURN;
        END IF;
        -- No row: the user had nothing eligible (or the fill has not reached
        -- it). Make the row from the jobs, this statement's included; if
        -- another writer made it first, apply the change to that row.
        IF NOT EXISTS (SELECT 1 FROM {jobs} e WHERE {eligible_e} AND e.{user} = u) THEN
            RETURN;
        END IF;
        at := clock_timestamp();
        INSERT INTO {heads} ({columns}) VALUES ({row_of})
        ON CONFLICT (user_id) DO NOTHING;
        IF FOUND THEN
            RETURN;
        END IF;
    END LOOP;
END
$$",
        change = n.object(CHANGE),
        id = j.id,
        created = j.created_at,
        jobs = j.table,
        user = j.user_id,
        eligible = n.job_eligible("hp"),
        eligible_e = n.job_eligible("e"),
        due = n.job_due("hp", "r.as_of"),
        next_due = n.next_due_probe("u", "r.as_of"),
        columns = n.queue_head_columns(),
        row_of = n.queue_head_of("u", "at"),
    )
}

/// PostgreSQL's statement trigger function for `event`: the statement's
/// leaving and entering jobs, per user, to [`pg_change`].
fn pg_on_jobs(n: &Names, event: &str) -> String {
    let j = &n.jobs;
    let change = n.object(CHANGE);
    let eligible = |row: &str| {
        format!(
            "({row}.{state} IN ('queued', 'errored') AND NOT {row}.{cancel})",
            state = j.state,
            cancel = j.cancel,
        )
    };
    let side = |row: &str| {
        format!(
            "{row}.{user} AS user_id, {row}.{id} AS id, {row}.{created}::timestamptz AS created, \
             {row}.{after}::timestamptz AS after",
            user = j.user_id,
            id = j.id,
            created = j.created_at,
            after = j.process_after,
        )
    };
    // Each changed job once as leaving (its old row, if eligible) and once
    // as entering (its new row, if eligible).
    let changes = match event {
        "insert" => format!(
            "SELECT 'e' AS way, {new} FROM recents_new_jobs n WHERE {ne}",
            new = side("n"),
            ne = eligible("n"),
        ),
        "delete" => format!(
            "SELECT 'l' AS way, {old} FROM recents_old_jobs o WHERE {oe}",
            old = side("o"),
            oe = eligible("o"),
        ),
        _ => format!(
            "WITH pairs AS (SELECT o AS o, n AS n FROM recents_old_jobs o \
                 FULL JOIN recents_new_jobs n ON o.{id} = n.{id} \
                 WHERE o.{id} IS NULL OR n.{id} IS NULL OR {changed}) \
             SELECT 'l' AS way, {old} FROM (SELECT (p.o).* FROM pairs p WHERE (p.o).{id} IS NOT NULL) o \
             WHERE {oe} \
             UNION ALL \
             SELECT 'e' AS way, {new} FROM (SELECT (p.n).* FROM pairs p WHERE (p.n).{id} IS NOT NULL) n \
             WHERE {ne}",
            id = j.id,
            changed = changes_a_head_rows(n, "o", "n"),
            old = side("o"),
            new = side("n"),
            oe = eligible("o"),
            ne = eligible("n"),
        ),
    };
    format!(
        "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    c record;
BEGIN
    FOR c IN
        SELECT x.user_id,
            coalesce(array_agg(x.id) FILTER (WHERE x.way = 'l'), '{{}}') AS l_ids,
            coalesce(array_agg(x.after) FILTER (WHERE x.way = 'l'), '{{}}') AS l_after,
            coalesce(array_agg(x.id) FILTER (WHERE x.way = 'e'), '{{}}') AS e_ids,
            coalesce(array_agg(x.created) FILTER (WHERE x.way = 'e'), '{{}}') AS e_created,
            coalesce(array_agg(x.after) FILTER (WHERE x.way = 'e'), '{{}}') AS e_after
        FROM ({changes}) x GROUP BY x.user_id ORDER BY x.user_id
    LOOP
        PERFORM {change}(c.user_id, c.l_ids, c.l_after, c.e_ids, c.e_created, c.e_after);
    END LOOP;
    RETURN NULL;
END
$$",
        function = n.object(&format!("{ON_JOB}_{event}")),
    )
}

/// Whether a job's change between rows `o` and `n` can change a queue head.
fn changes_a_head_rows(n: &Names, o: &str, nw: &str) -> String {
    let j = &n.jobs;
    let e = |row: &str| {
        format!(
            "({row}.{state} IN ('queued', 'errored') AND NOT {row}.{cancel})",
            state = j.state,
            cancel = j.cancel,
        )
    };
    format!(
        "({oe} OR {ne}) AND ({oe} <> {ne} OR {o}.{user} <> {nw}.{user} \
         OR {o}.{created} IS DISTINCT FROM {nw}.{created} \
         OR {o}.{after} IS DISTINCT FROM {nw}.{after})",
        oe = e(o),
        ne = e(nw),
        user = j.user_id,
        created = j.created_at,
        after = j.process_after,
    )
}

fn pg_on_latest(n: &Names) -> String {
    let heads = &n.queue_heads;
    format!(
        "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE {heads} SET latest_dequeue = NULL
        WHERE user_id = OLD.user_id AND latest_dequeue IS NOT NULL;
    ELSE
        UPDATE {heads} SET latest_dequeue = NEW.latest_dequeue
        WHERE user_id = NEW.user_id AND latest_dequeue IS DISTINCT FROM NEW.latest_dequeue;
    END IF;
    RETURN NULL;
END
$$",
        function = n.object(ON_LATEST),
    )
}

// MySQL/MariaDB: the same change as a procedure. ROW_COUNT() inside a
// trigger is not the last statement's, so a duplicate row (another writer
// made it first) is caught by a handler instead. No `--` comments in the
// body: Galera replicates the statement on one line, where one would end it.
// The service's queue
// transactions run in READ COMMITTED there, so the reads after the lock see
// every committed change; a writer in REPEATABLE READ that read the jobs
// earlier in its transaction reads them as they were then (see the README).
fn mysql_change(n: &Names) -> String {
    let j = &n.jobs;
    let heads = &n.queue_heads;
    format!(
        "CREATE PROCEDURE {change}(IN u BIGINT, IN o_eligible BOOLEAN, IN o_id BIGINT, \
            IN o_created DATETIME(6), IN o_after DATETIME(6), IN n_eligible BOOLEAN, \
            IN n_id BIGINT, IN n_created DATETIME(6), IN n_after DATETIME(6))
BEGIN
    DECLARE found_row INT DEFAULT 0;
    DECLARE done INT DEFAULT 0;
    DECLARE v_as_of DATETIME(6);
    DECLARE v_head BIGINT;
    DECLARE v_head_at DATETIME(6);
    DECLARE v_count BIGINT;
    DECLARE v_next DATETIME(6);
    DECLARE o_counted BOOLEAN;
    DECLARE n_counted BOOLEAN;
    DECLARE v_at DATETIME(6);
    DECLARE v_latest DATETIME(6);
    DECLARE duplicate INT DEFAULT 0;
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET found_row = 0;
    DECLARE CONTINUE HANDLER FOR 1062 SET duplicate = 1;
    WHILE done = 0 DO
        SET found_row = 0;
        SELECT 1, as_of, head_job_id, head_created_at, due_count, next_due_at
        INTO found_row, v_as_of, v_head, v_head_at, v_count, v_next
        FROM {heads} WHERE user_id = u FOR UPDATE;
        IF found_row = 1 THEN
            SET o_counted = o_eligible AND (o_after IS NULL OR o_after <= v_as_of);
            SET n_counted = n_eligible AND (n_after IS NULL OR n_after <= v_as_of);
            SET v_count = v_count - o_counted + n_counted;
            IF o_counted AND o_id = v_head THEN
                SET v_head = NULL, v_head_at = NULL;
                SELECT hp.{id}, hp.{created} INTO v_head, v_head_at
                FROM {jobs} hp WHERE {owner} = u AND {due}
                ORDER BY hp.{created}, hp.{id} LIMIT 1;
            ELSEIF n_counted AND (v_head IS NULL OR n_created < v_head_at
                    OR (n_created = v_head_at AND n_id < v_head)) THEN
                SET v_head = n_id, v_head_at = n_created;
            END IF;
            IF o_eligible AND NOT o_counted THEN
                SET v_next = {next_due};
            ELSEIF n_eligible AND NOT n_counted AND (v_next IS NULL OR n_after < v_next) THEN
                SET v_next = n_after;
            END IF;
            IF v_count <= 0 AND v_next IS NULL THEN
                DELETE FROM {heads} WHERE user_id = u;
            ELSE
                UPDATE {heads} SET head_job_id = v_head, head_created_at = v_head_at,
                    due_count = v_count, next_due_at = v_next
                WHERE user_id = u;
            END IF;
            SET done = 1;
        ELSEIF NOT EXISTS (SELECT 1 FROM {jobs} e WHERE {owner_e} = u) THEN
            SET done = 1;
        ELSE
            SET v_at = UTC_TIMESTAMP(6);
            SET v_latest = (SELECT ld.latest_dequeue FROM {last} ld WHERE ld.user_id = u),
                v_head = {head_id}, v_head_at = {head_created},
                v_count = {count_of}, v_next = {next_at};
            SET duplicate = 0;
            INSERT INTO {heads} ({columns})
            VALUES (u, v_latest, v_head, v_head_at, v_count, v_next, v_at);
            IF duplicate = 0 THEN
                SET done = 1;
            END IF;
        END IF;
    END WHILE;
END",
        change = n.object(CHANGE),
        id = j.id,
        created = j.created_at,
        jobs = j.table,
        owner = n.job_owner("hp"),
        owner_e = n.job_owner("e"),
        due = n.job_due("hp", "v_as_of"),
        next_due = n.next_due_probe("u", "v_as_of"),
        columns = n.queue_head_columns(),
        last = n.last_dequeues,
        head_id = n.head_probe(&j.id, "u", "v_at"),
        head_created = n.head_probe(&j.created_at, "u", "v_at"),
        count_of = n.due_count_probe("u", "v_at"),
        next_at = n.next_due_probe("u", "v_at"),
    )
}

/// MySQL/MariaDB: a job's change, from its old and new columns (`o_user`
/// NULL: inserted; `n_user` NULL: deleted), to the rows of the users it
/// touches, in user order. The triggers only pass columns: on Galera a
/// long trigger body failed to load on the nodes it was replicated to.
fn mysql_on_job(n: &Names) -> String {
    let change = n.object(CHANGE);
    let e = |side: &str| format!("({side}_state IN ('queued', 'errored') AND NOT {side}_cancel)");
    format!(
        "CREATE PROCEDURE {on_job}(IN o_user BIGINT, IN o_state VARCHAR(16), IN o_cancel BOOLEAN, \
            IN o_id BIGINT, IN o_created DATETIME(6), IN o_after DATETIME(6), \
            IN n_user BIGINT, IN n_state VARCHAR(16), IN n_cancel BOOLEAN, \
            IN n_id BIGINT, IN n_created DATETIME(6), IN n_after DATETIME(6))
BEGIN
    DECLARE o_eligible BOOLEAN DEFAULT (o_user IS NOT NULL AND {oe});
    DECLARE n_eligible BOOLEAN DEFAULT (n_user IS NOT NULL AND {ne});
    IF (o_eligible OR n_eligible) AND (o_user IS NULL OR n_user IS NULL
            OR o_eligible <> n_eligible OR o_user <> n_user OR o_id <> n_id
            OR NOT (o_created <=> n_created) OR NOT (o_after <=> n_after)) THEN
        IF o_user = n_user THEN
            CALL {change}(n_user, o_eligible, o_id, o_created, o_after,
                n_eligible, n_id, n_created, n_after);
        ELSEIF n_user IS NULL OR (o_user IS NOT NULL AND o_user < n_user) THEN
            IF o_eligible THEN
                CALL {change}(o_user, TRUE, o_id, o_created, o_after, FALSE, NULL, NULL, NULL);
            END IF;
            IF n_eligible THEN
                CALL {change}(n_user, FALSE, NULL, NULL, NULL, TRUE, n_id, n_created, n_after);
            END IF;
        ELSE
            IF n_eligible THEN
                CALL {change}(n_user, FALSE, NULL, NULL, NULL, TRUE, n_id, n_created, n_after);
            END IF;
            IF o_eligible THEN
                CALL {change}(o_user, TRUE, o_id, o_created, o_after, FALSE, NULL, NULL, NULL);
            END IF;
        END IF;
    END IF;
END",
        on_job = n.object(ON_JOB),
        oe = e("o"),
        ne = e("n"),
    )
}

fn mysql_triggers(n: &Names) -> Vec<String> {
    let j = &n.jobs;
    let on_job = n.object(ON_JOB);
    let table = &j.table;
    let last = &n.last_dequeues;
    let heads = &n.queue_heads;
    let cols = |row: &str| {
        format!(
            "{row}.{user}, {row}.{state}, {row}.{cancel}, {row}.{id}, {row}.{created}, {row}.{after}",
            user = j.user_id,
            state = j.state,
            cancel = j.cancel,
            id = j.id,
            created = j.created_at,
            after = j.process_after,
        )
    };
    let none = "NULL, NULL, NULL, NULL, NULL, NULL";
    vec![
        format!(
            "CREATE TRIGGER {trigger} AFTER INSERT ON {table} FOR EACH ROW \
             CALL {on_job}({none}, {new})",
            trigger = n.object("execution_jobs_queue_head_insert"),
            new = cols("NEW"),
        ),
        format!(
            "CREATE TRIGGER {trigger} AFTER DELETE ON {table} FOR EACH ROW \
             CALL {on_job}({old}, {none})",
            trigger = n.object("execution_jobs_queue_head_delete"),
            old = cols("OLD"),
        ),
        format!(
            "CREATE TRIGGER {trigger} AFTER UPDATE ON {table} FOR EACH ROW \
             CALL {on_job}({old}, {new})",
            trigger = n.object("execution_jobs_queue_head_update"),
            old = cols("OLD"),
            new = cols("NEW"),
        ),
        format!(
            "CREATE TRIGGER {trigger} AFTER INSERT ON {last} FOR EACH ROW \
             UPDATE {heads} SET latest_dequeue = NEW.latest_dequeue WHERE user_id = NEW.user_id",
            trigger = n.object("execution_last_dequeues_queue_head_insert"),
        ),
        format!(
            "CREATE TRIGGER {trigger} AFTER UPDATE ON {last} FOR EACH ROW \
             UPDATE {heads} SET latest_dequeue = NEW.latest_dequeue WHERE user_id = NEW.user_id",
            trigger = n.object("execution_last_dequeues_queue_head_update"),
        ),
        format!(
            "CREATE TRIGGER {trigger} AFTER DELETE ON {last} FOR EACH ROW \
             UPDATE {heads} SET latest_dequeue = NULL WHERE user_id = OLD.user_id",
            trigger = n.object("execution_last_dequeues_queue_head_delete"),
        ),
    ]
}

// SQLite: one writer at a time, so each trigger is set-based: apply the
// change to the rows of the users it touches, make a missing row from the
// jobs (then it already holds the change), delete a row left empty. Its
// times are RFC 3339 text in UTC, so "now" is written the same way.
const SQLITE_NOW: &str = "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')";

fn sqlite_statements(n: &Names, old: Option<&Side>, new: Option<&Side>) -> String {
    let j = &n.jobs;
    let heads = &n.queue_heads;
    let user = &j.user_id;
    let none = Side::none();
    // Each side counts for the row of its own user only.
    let side = |s: Option<&Side>, row: &str| -> (Side, String) {
        match s {
            Some(s) => (
                Side {
                    eligible: format!("({} AND {row}.{user} = {heads}.user_id)", s.eligible),
                    id: s.id.clone(),
                    created: s.created.clone(),
                    after: s.after.clone(),
                },
                format!("{row}.{user}"),
            ),
            None => (
                Side {
                    eligible: none.eligible.clone(),
                    id: none.id.clone(),
                    created: none.created.clone(),
                    after: none.after.clone(),
                },
                String::new(),
            ),
        }
    };
    let (o, o_user) = side(old, "OLD");
    let (nw, n_user) = side(new, "NEW");
    let counted = |s: &Side| {
        format!(
            "({e} AND ({a} IS NULL OR {a} <= {heads}.as_of))",
            e = s.eligible,
            a = s.after
        )
    };
    let (oc, nc) = (counted(&o), counted(&nw));
    let row = |column: &str| format!("{heads}.{column}");
    let head_probe = |column: &str| n.head_probe(column, &row("user_id"), &row("as_of"));
    // The head after the change: looked up again if the change took it
    // away, the changed job if it now comes first, else as it was.
    let head = |probe_column: &str, from_new: &str, kept: &str| {
        format!(
            "CASE WHEN {oc} AND {oid} = head_job_id THEN {probe} \
             WHEN {nc} AND (head_job_id IS NULL OR {ncreated} < head_created_at \
                 OR ({ncreated} = head_created_at AND {nid} < head_job_id)) THEN {from_new} \
             ELSE {kept} END",
            oid = o.id,
            probe = head_probe(probe_column),
            ncreated = nw.created,
            nid = nw.id,
        )
    };
    let users: Vec<&str> = [o_user.as_str(), n_user.as_str()]
        .into_iter()
        .filter(|u| !u.is_empty())
        .collect();
    let users = users.join(", ");
    let mut all = format!(
        "UPDATE {heads} SET due_count = due_count - ({oc}) + ({nc}), \
         head_job_id = {head_id}, head_created_at = {head_created}, \
         next_due_at = CASE WHEN {oe} AND NOT {oc} THEN {next_probe} \
             WHEN {ne} AND NOT {nc} AND (next_due_at IS NULL OR {nafter} < next_due_at) THEN {nafter} \
             ELSE next_due_at END \
         WHERE user_id IN ({users}); ",
        head_id = head(&j.id, &nw.id, "head_job_id"),
        head_created = head(&j.created_at, &nw.created, "head_created_at"),
        oe = o.eligible,
        ne = nw.eligible,
        next_probe = n.next_due_probe(&row("user_id"), &row("as_of")),
        nafter = nw.after,
    );
    for u in [o_user.as_str(), n_user.as_str()] {
        if u.is_empty() {
            continue;
        }
        all.push_str(&format!(
            "INSERT OR IGNORE INTO {heads} ({columns}) SELECT {row_of} \
             WHERE EXISTS (SELECT 1 FROM {jobs} e WHERE {eligible} AND e.{user} = {u}); \
             DELETE FROM {heads} WHERE user_id = {u} AND due_count <= 0 AND next_due_at IS NULL; ",
            columns = n.queue_head_columns(),
            row_of = n.queue_head_of(u, SQLITE_NOW),
            jobs = j.table,
            eligible = n.job_eligible("e"),
        ));
    }
    all
}

fn sqlite_triggers(n: &Names) -> Vec<String> {
    let j = &n.jobs;
    let table = &j.table;
    let (o, nw) = (Side::of(n, "OLD"), Side::of(n, "NEW"));
    let last = &n.last_dequeues;
    let heads = &n.queue_heads;
    vec![
        format!(
            "CREATE TRIGGER IF NOT EXISTS {trigger} AFTER INSERT ON {table} WHEN {ne} \
             BEGIN {body} END",
            trigger = n.object("execution_jobs_queue_head_insert"),
            ne = nw.eligible,
            body = sqlite_statements(n, None, Some(&nw)),
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS {trigger} AFTER DELETE ON {table} WHEN {oe} \
             BEGIN {body} END",
            trigger = n.object("execution_jobs_queue_head_delete"),
            oe = o.eligible,
            body = sqlite_statements(n, Some(&o), None),
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS {trigger} AFTER UPDATE ON {table} WHEN {changes} \
             BEGIN {body} END",
            trigger = n.object("execution_jobs_queue_head_update"),
            changes = changes_a_head(n, |a, b| format!("{a} IS NOT {b}")),
            body = sqlite_statements(n, Some(&o), Some(&nw)),
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS {trigger} AFTER INSERT ON {last} BEGIN \
             UPDATE {heads} SET latest_dequeue = NEW.latest_dequeue WHERE user_id = NEW.user_id; END",
            trigger = n.object("execution_last_dequeues_queue_head_insert"),
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS {trigger} AFTER UPDATE ON {last} BEGIN \
             UPDATE {heads} SET latest_dequeue = NEW.latest_dequeue WHERE user_id = NEW.user_id; END",
            trigger = n.object("execution_last_dequeues_queue_head_update"),
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS {trigger} AFTER DELETE ON {last} BEGIN \
             UPDATE {heads} SET latest_dequeue = NULL WHERE user_id = OLD.user_id; END",
            trigger = n.object("execution_last_dequeues_queue_head_delete"),
        ),
    ]
}

fn triggers(n: &Names) -> Vec<String> {
    let table = &n.jobs.table;
    let last = &n.last_dequeues;
    match n.backend {
        DbBackend::Postgres => {
            let mut all = vec![pg_change(n), pg_on_latest(n)];
            for (event, referencing) in [
                ("insert", "NEW TABLE AS recents_new_jobs"),
                (
                    "update",
                    "OLD TABLE AS recents_old_jobs NEW TABLE AS recents_new_jobs",
                ),
                ("delete", "OLD TABLE AS recents_old_jobs"),
            ] {
                all.push(pg_on_jobs(n, event));
                all.push(format!(
                    "CREATE TRIGGER {trigger} AFTER {upper} ON {table} \
                     REFERENCING {referencing} FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
                    trigger = n.object(&format!("execution_jobs_queue_head_{event}")),
                    upper = event.to_uppercase(),
                    function = n.object(&format!("{ON_JOB}_{event}")),
                ));
            }
            all.push(format!(
                "CREATE TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE ON {last} \
                 FOR EACH ROW EXECUTE FUNCTION {function}()",
                trigger = n.object("execution_last_dequeues_queue_head"),
                function = n.object(ON_LATEST),
            ));
            all
        }
        DbBackend::MySql => {
            let mut all = vec![mysql_change(n), mysql_on_job(n)];
            all.extend(mysql_triggers(n));
            all
        }
        _ => sqlite_triggers(n),
    }
}

fn drop_triggers(n: &Names) -> Vec<String> {
    let table = &n.jobs.table;
    let last = &n.last_dequeues;
    match n.backend {
        DbBackend::Postgres => {
            let mut all = Vec::new();
            for event in ["insert", "update", "delete"] {
                all.push(format!(
                    "DROP TRIGGER IF EXISTS {} ON {table}",
                    n.object(&format!("execution_jobs_queue_head_{event}"))
                ));
                all.push(format!(
                    "DROP FUNCTION IF EXISTS {}()",
                    n.object(&format!("{ON_JOB}_{event}"))
                ));
            }
            all.push(format!(
                "DROP TRIGGER IF EXISTS {} ON {last}",
                n.object("execution_last_dequeues_queue_head")
            ));
            all.push(format!("DROP FUNCTION IF EXISTS {}()", n.object(ON_LATEST)));
            all.push(format!(
                "DROP FUNCTION IF EXISTS {}(bigint, bigint[], timestamptz[], bigint[], \
                 timestamptz[], timestamptz[])",
                n.object(CHANGE)
            ));
            all
        }
        _ => {
            let mut all: Vec<String> = [
                "execution_jobs_queue_head_insert",
                "execution_jobs_queue_head_delete",
                "execution_jobs_queue_head_update",
                "execution_last_dequeues_queue_head_insert",
                "execution_last_dequeues_queue_head_update",
                "execution_last_dequeues_queue_head_delete",
            ]
            .into_iter()
            .map(|t| format!("DROP TRIGGER IF EXISTS {}", n.object(t)))
            .collect();
            if n.backend == DbBackend::MySql {
                all.push(format!("DROP PROCEDURE IF EXISTS {}", n.object(ON_JOB)));
                all.push(format!("DROP PROCEDURE IF EXISTS {}", n.object(CHANGE)));
            }
            all
        }
    }
}

/// The rows of the waiting users in `[?, ?]`, made from their jobs; a row
/// the triggers made first is kept (it is exact already).
fn fill_batch(n: &Names) -> String {
    let heads = &n.queue_heads;
    let now = match n.backend {
        DbBackend::Postgres => "clock_timestamp()",
        DbBackend::MySql => "UTC_TIMESTAMP(6)",
        _ => SQLITE_NOW,
    };
    let ignore = match n.backend {
        DbBackend::MySql => "IGNORE ",
        DbBackend::Sqlite => "OR IGNORE ",
        _ => "",
    };
    let conflict = match n.backend {
        DbBackend::Postgres => " ON CONFLICT (user_id) DO NOTHING",
        _ => "",
    };
    numbered(
        n.backend,
        &format!(
            "INSERT {ignore}INTO {heads} ({columns}) SELECT {row_of} FROM (\
                SELECT {owner} AS user_id FROM {jobs} j WHERE {eligible} \
                AND {owner} >= ? AND {owner} <= ? GROUP BY {owner}\
             ) w{conflict}",
            columns = n.queue_head_columns(),
            row_of = n.queue_head_of("w.user_id", now),
            owner = n.job_owner("j"),
            jobs = n.jobs.table,
            eligible = n.job_eligible("j"),
        ),
    )
}

async fn fill(manager: &SchemaManager<'_>, n: &Names) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let backend = manager.get_database_backend();
    let owner = n.job_owner("j");
    let eligible = n.job_eligible("j");
    let jobs = &n.jobs.table;
    let next_sql = numbered(
        backend,
        &format!(
            "SELECT {owner} AS user_id FROM {jobs} j WHERE {eligible} AND {owner} >= ? \
             ORDER BY {owner} LIMIT 1 OFFSET ?"
        ),
    );
    let first = db
        .query_one_raw(Statement::from_string(
            backend,
            format!("SELECT MIN({owner}) AS lo, MAX({owner}) AS hi FROM {jobs} j WHERE {eligible}"),
        ))
        .await?;
    let (lo, hi): (Option<i64>, Option<i64>) = match &first {
        Some(row) => (row.try_get("", "lo")?, row.try_get("", "hi")?),
        None => (None, None),
    };
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Ok(());
    };
    tracing::info!(target: LOG, "execution_queue_heads: filling users {lo}..={hi}");
    let batch = fill_batch(n);
    let mut from = lo;
    loop {
        let next = db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                &next_sql,
                [from.into(), (FILL_BATCH_JOBS - 1).into()],
            ))
            .await?;
        let to = match next {
            Some(row) => row.try_get::<i64>("", "user_id")?,
            None => hi,
        };
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            &batch,
            [from.into(), to.into()],
        ))
        .await?;
        if to >= hi {
            break;
        }
        from = to + 1;
    }
    Ok(())
}
