//! The trigger-kept mode of `workspace_recent_workflows`
//! (`[recent_workflows] maintained_by = "triggers"`): triggers on the mapped
//! saved-runs and versions tables keep the summary exact whoever writes them
//! (raw SQL, other services, bulk imports), and recents' own write path then
//! leaves the summary to them. Also `recent_workflows_settings`, the one-row
//! table whose freshness window the triggers read.
//!
//! `up` brings the database to the mapping's mode (installing the triggers,
//! or removing them for `"service"`); [`apply_summary_mode`] does the same
//! from a team's own later migration, which is how a backend switches modes.
//! `down` removes the triggers and the settings table.

use recents_schema::{MaintainedBy, Names, Schema};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use crate::columns::byte_collation;

/// Takes the schema mapping: the tables the triggers are on, the prefix, and the mode.
#[derive(DeriveMigrationName)]
pub struct Migration {
    pub(crate) schema: Schema,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        apply_summary_mode(manager, &self.schema).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if !self.schema.install().recent_workflows {
            return Ok(());
        }
        let n = self.schema.names(manager.get_database_backend());
        let db = manager.get_connection();
        for sql in drop_triggers(n) {
            db.execute_unprepared(&sql).await?;
        }
        db.execute_unprepared(&format!("DROP TABLE IF EXISTS {}", settings(n)))
            .await?;
        Ok(())
    }
}

/// Brings the database to the mode `schema` names: the settings table, and
/// the summary's triggers installed (`"triggers"`) or removed (`"service"`).
/// Idempotent. Call it from a migration of your own to switch a backend's
/// mode after this migration was applied; the summary stays exact across the
/// switch as long as, while it runs, every writer keeps the summary in either
/// mode (switch the handles to service mode before removing the triggers,
/// and install the triggers before switching the handles to trigger mode:
/// a summary kept twice is still exact).
///
/// # Errors
/// The database's, for a statement that failed.
pub async fn apply_summary_mode(manager: &SchemaManager<'_>, schema: &Schema) -> Result<(), DbErr> {
    if !schema.install().recent_workflows {
        return Ok(());
    }
    let backend = manager.get_database_backend();
    let n = schema.names(backend);
    let db = manager.get_connection();
    for sql in settings_statements(n) {
        db.execute_unprepared(&sql).await?;
    }
    for sql in drop_triggers(n) {
        db.execute_unprepared(&sql).await?;
    }
    if schema.maintained_by() == MaintainedBy::Triggers {
        let statements = match backend {
            DbBackend::Postgres => postgres(n, &schema.mapping().prefix),
            DbBackend::MySql => mysql(n, byte_collation(manager).await?),
            _ => sqlite(n),
        };
        for sql in statements {
            db.execute_unprepared(&sql).await?;
        }
    }
    Ok(())
}

fn settings(n: &Names) -> String {
    n.object("recent_workflows_settings")
}

fn settings_statements(n: &Names) -> Vec<String> {
    let table = settings(n);
    let create = format!(
        "CREATE TABLE IF NOT EXISTS {table} (id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1), \
         freshness_window_us BIGINT NOT NULL DEFAULT 0 CHECK (freshness_window_us >= 0))"
    );
    let row = match n.backend {
        DbBackend::MySql => format!("INSERT IGNORE INTO {table} (id) VALUES (1)"),
        _ => format!("INSERT INTO {table} (id) VALUES (1) ON CONFLICT DO NOTHING"),
    };
    vec![create, row]
}

/// Every name the triggers' SQL uses, each bound once per backend.
struct Columns<'a> {
    runs: &'a str,
    id: &'a str,
    ws: &'a str,
    uid: &'a str,
    version: &'a str,
    at: &'a str,
    versions: &'a str,
    v_id: &'a str,
    pr: &'a str,
    r: &'a str,
}

impl<'a> Columns<'a> {
    fn of(n: &'a Names) -> Self {
        let (s, v) = (&n.saved_runs, &n.versions);
        Columns {
            runs: &s.table,
            id: &s.id,
            ws: &s.workspace_id,
            uid: &s.uid,
            version: &s.version_id,
            at: &s.updated_at,
            versions: &v.table,
            v_id: &v.id,
            pr: &v.published_run_id,
            r: &n.recent_workflows,
        }
    }
}

/// The standard upsert's conflict clause (PostgreSQL, SQLite) that only ever
/// moves the summary row `row` to a greater `(last_used_at, last_saved_run_id)`.
fn keep_greater(row: &str) -> String {
    format!(
        "ON CONFLICT (workspace_id, uid, published_run_id) DO UPDATE \
         SET last_saved_run_id = excluded.last_saved_run_id, last_used_at = excluded.last_used_at \
         WHERE (excluded.last_used_at, excluded.last_saved_run_id) > ({row}.last_used_at, {row}.last_saved_run_id)"
    )
}

/// The lock every path that lowers a summary row holds shared, and a
/// backfill batch exclusively (the service's `LOWERING_LOCK`).
const LOWERING_LOCK: i64 = 0x7265_6365_6e74_7301;

// The canonical order in which every writer takes summary rows: by workspace
// and published run, the member's row before the workspace's (uid '').
// recents' service paths lock in the same order.

// PostgreSQL. A statement trigger per event records what the statement did
// (read from its transition tables) in a transaction-local setting, as a
// JSON array; a row-level constraint trigger, DEFERRABLE INITIALLY DEFERRED,
// applies it at commit. So the summary rows are locked only for the commit
// itself, not from the save to the caller's commit; the first firing at
// commit applies all the transaction's rows in the canonical order (two
// committers then take their rows in one order and cannot deadlock), and the
// others find nothing left. The upsert keeps the greater
// (last_used_at, last_saved_run_id): commit order is not time order. A
// setting, unlike a table, costs nothing at commit and leaves no dead rows.
//
// A caller that runs `SET CONSTRAINTS ALL IMMEDIATE` makes the row triggers
// fire as each statement ends, before the statement trigger has recorded
// it: a row trigger that finds nothing recorded says so in a second setting,
// and the statement trigger then applies what it recorded at once.
fn postgres(n: &Names, prefix: &str) -> Vec<String> {
    let Columns {
        runs,
        id,
        ws,
        uid,
        version,
        at,
        versions,
        v_id,
        pr,
        r,
    } = Columns::of(n);
    let pending = format!("recents.{prefix}rw_pending");
    let immediate = format!("recents.{prefix}rw_immediate");
    let append = n.object("recents_rw_append");
    let record = n.object("recents_rw_record");
    let record_version = n.object("recents_rw_record_version");
    let apply_pending = n.object("recents_rw_apply_pending");
    let apply = n.object("recents_rw_apply");
    let settings = settings(n);
    // Two JSON arrays made one: the recorded and a statement's.
    let append_sql = format!(
        "CREATE OR REPLACE FUNCTION {append}(p_uses text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_pending text := current_setting('{pending}', true);
BEGIN
    IF p_uses IS NULL THEN
        RETURN;
    ELSIF v_pending IS NULL OR v_pending = '' THEN
        PERFORM set_config('{pending}', p_uses, true);
    ELSE
        PERFORM set_config('{pending}', left(v_pending, -1) || ',' || substr(p_uses, 2), true);
    END IF;
END
$$"
    );
    // Each use is [leaving, workspace, uid, published run, run]. A run leaves
    // its group when deleted, moved to another workspace, user or version, or
    // saved back in time; it raises the group it is in (read at commit, as it
    // then is). A run detached because its version is being deleted finds no
    // version: the version's delete recorded its users (below).
    let record_sql = format!(
        "CREATE OR REPLACE FUNCTION {record}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_uses text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT jsonb_agg(jsonb_build_array(false, n.{ws}, NULL, NULL, n.{id}))::text INTO v_uses
        FROM recents_new_runs n WHERE n.{version} IS NOT NULL;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT jsonb_agg(u.e)::text INTO v_uses FROM (
            SELECT jsonb_build_array(true, o.{ws}, o.{uid}, v.{pr}, o.{id}) AS e
            FROM recents_old_runs o JOIN recents_new_runs n ON n.{id} = o.{id}
            JOIN {versions} v ON v.{v_id} = o.{version}
            WHERE n.{ws} <> o.{ws} OR n.{uid} <> o.{uid}
               OR n.{version} IS DISTINCT FROM o.{version} OR n.{at} < o.{at}
            UNION ALL
            SELECT jsonb_build_array(false, n.{ws}, NULL, NULL, n.{id})
            FROM recents_old_runs o JOIN recents_new_runs n ON n.{id} = o.{id}
            WHERE n.{version} IS NOT NULL AND (n.{ws} <> o.{ws} OR n.{uid} <> o.{uid}
               OR n.{version} IS DISTINCT FROM o.{version} OR n.{at} IS DISTINCT FROM o.{at})
        ) u;
    ELSE
        SELECT jsonb_agg(jsonb_build_array(true, o.{ws}, o.{uid}, v.{pr}, o.{id}))::text INTO v_uses
        FROM recents_old_runs o JOIN {versions} v ON v.{v_id} = o.{version};
    END IF;
    PERFORM {append}(v_uses);
    IF current_setting('{immediate}', true) = 'on' THEN
        PERFORM set_config('{immediate}', '', true);
        PERFORM {apply_pending}();
    END IF;
    RETURN NULL;
END
$$",
    );
    // Before a version goes (its runs are then detached by the foreign key),
    // each (workspace, user) that used it is recorded as leaving with every
    // run (run NULL): the group is recomputed at commit. The version row is
    // locked when this runs, so saves into it have committed and are read.
    let record_version_sql = format!(
        "CREATE OR REPLACE FUNCTION {record_version}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM {append}((
        SELECT jsonb_agg(jsonb_build_array(true, u.workspace_id, u.uid, OLD.{pr}, NULL))::text
        FROM (SELECT DISTINCT s.{ws} AS workspace_id, s.{uid} AS uid
              FROM {runs} s WHERE s.{version} = OLD.{v_id}) u));
    RETURN OLD;
END
$$",
    );
    // Every key recorded, in the canonical order. A key a leaving run was the
    // latest of is locked and recomputed from history (in READ COMMITTED each
    // statement reads what committed before the lock was granted, and this
    // transaction's own runs: a save still running raises the row at its own
    // commit); otherwise the greatest run the transaction left in the group is
    // upserted, skipped when the row is fresh within the settings' window (a
    // read, no lock).
    let scope_uid = format!("CASE WHEN w.wide THEN '' ELSE s.{uid} END");
    let keep_greater = keep_greater("r");
    let apply_pending_sql = format!(
        "CREATE OR REPLACE FUNCTION {apply_pending}() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    k record;
    v_pending jsonb := NULLIF(current_setting('{pending}', true), '')::jsonb;
    v_lowering boolean;
    v_runs bigint[];
    v_window bigint;
    v_latest bigint;
    v_run bigint;
    v_at timestamptz;
BEGIN
    IF v_pending IS NULL THEN
        RETURN;
    END IF;
    PERFORM set_config('{pending}', '', true);
    IF jsonb_array_length(v_pending) = 1 AND NOT (v_pending->0->>0)::boolean THEN
        -- One run raised, the common save: its rows in one statement, the
        -- member's first (the canonical order), fresh rows left alone.
        INSERT INTO {r} AS r (workspace_id, uid, published_run_id, last_saved_run_id, last_used_at)
        SELECT s.{ws}, {scope_uid}, v.{pr}, s.{id}, s.{at}
        FROM {runs} s JOIN {versions} v ON v.{v_id} = s.{version}
        CROSS JOIN (VALUES (false), (true)) AS w (wide)
        WHERE s.{id} = (v_pending->0->>4)::bigint AND (w.wide OR s.{uid} <> '')
          AND NOT EXISTS (
            SELECT 1 FROM {settings} c JOIN {r} f ON c.freshness_window_us > 0
            WHERE f.workspace_id = s.{ws} AND f.uid = {scope_uid} AND f.published_run_id = v.{pr}
              AND f.last_used_at >= s.{at} - c.freshness_window_us * interval '1 microsecond')
        ORDER BY w.wide
        {keep_greater};
        RETURN;
    END IF;
    SELECT bool_or((e->>0)::boolean) INTO v_lowering FROM jsonb_array_elements(v_pending) e;
    -- The raised runs as an array, so that the runs are read by their key
    -- (a join with the JSON's rows, estimated at 100, may scan the table).
    v_runs := ARRAY(SELECT DISTINCT (e->>4)::bigint FROM jsonb_array_elements(v_pending) e
                    WHERE NOT (e->>0)::boolean);
    IF v_lowering THEN
        PERFORM pg_advisory_xact_lock_shared({LOWERING_LOCK});
    END IF;
    SELECT COALESCE(MAX(c.freshness_window_us), 0) INTO v_window FROM {settings} c;
    FOR k IN
        WITH pending AS (
            SELECT (e->>0)::boolean AS leaving, (e->>1)::bigint AS workspace_id, e->>2 AS uid,
                (e->>3)::bigint AS published_run_id, (e->>4)::bigint AS run_id
            FROM jsonb_array_elements(v_pending) e
        ), used AS (
            SELECT DISTINCT ON (s.{ws}, {scope_uid}, v.{pr})
                s.{ws} AS workspace_id, {scope_uid} AS uid,
                v.{pr} AS published_run_id, s.{id} AS run_id, s.{at} AS used_at
            FROM {runs} s
            JOIN {versions} v ON v.{v_id} = s.{version}
            CROSS JOIN (VALUES (false), (true)) AS w (wide)
            WHERE s.{id} = ANY (v_runs) AND (w.wide OR s.{uid} <> '')
            ORDER BY s.{ws}, {scope_uid}, v.{pr}, s.{at} DESC, s.{id} DESC
        ), gone AS (
            SELECT p.workspace_id, CASE WHEN w.wide THEN '' ELSE p.uid END AS uid,
                p.published_run_id, array_agg(p.run_id) AS runs, bool_or(p.run_id IS NULL) AS every_run
            FROM pending p CROSS JOIN (VALUES (false), (true)) AS w (wide)
            WHERE p.leaving AND (w.wide OR p.uid <> '')
            GROUP BY 1, 2, 3
        )
        SELECT workspace_id, uid, published_run_id, u.run_id, u.used_at, g.runs, g.every_run
        FROM used u FULL JOIN gone g USING (workspace_id, uid, published_run_id)
        ORDER BY workspace_id, published_run_id, uid = '', uid COLLATE \"C\"
    LOOP
        IF k.runs IS NOT NULL THEN
            SELECT r.last_saved_run_id INTO v_latest FROM {r} r
            WHERE r.workspace_id = k.workspace_id AND r.uid = k.uid
              AND r.published_run_id = k.published_run_id
            FOR UPDATE;
            IF FOUND AND (k.every_run OR v_latest = ANY (k.runs)) THEN
                IF k.uid = '' THEN
                    SELECT s.{id}, s.{at} INTO v_run, v_at FROM {runs} s
                    JOIN {versions} v ON v.{v_id} = s.{version}
                    WHERE s.{ws} = k.workspace_id AND v.{pr} = k.published_run_id
                    ORDER BY s.{at} DESC, s.{id} DESC LIMIT 1;
                ELSE
                    SELECT s.{id}, s.{at} INTO v_run, v_at FROM {runs} s
                    JOIN {versions} v ON v.{v_id} = s.{version}
                    WHERE s.{ws} = k.workspace_id AND v.{pr} = k.published_run_id AND s.{uid} = k.uid
                    ORDER BY s.{at} DESC, s.{id} DESC LIMIT 1;
                END IF;
                IF v_run IS NULL THEN
                    DELETE FROM {r} r WHERE r.workspace_id = k.workspace_id AND r.uid = k.uid
                      AND r.published_run_id = k.published_run_id;
                ELSE
                    UPDATE {r} r SET last_saved_run_id = v_run, last_used_at = v_at
                    WHERE r.workspace_id = k.workspace_id AND r.uid = k.uid
                      AND r.published_run_id = k.published_run_id;
                END IF;
                -- History holds this transaction's runs: nothing left to raise.
                CONTINUE;
            END IF;
        END IF;
        IF k.run_id IS NOT NULL THEN
            INSERT INTO {r} AS r (workspace_id, uid, published_run_id, last_saved_run_id, last_used_at)
            SELECT k.workspace_id, k.uid, k.published_run_id, k.run_id, k.used_at
            WHERE v_window = 0 OR NOT EXISTS (
                SELECT 1 FROM {r} f WHERE f.workspace_id = k.workspace_id AND f.uid = k.uid
                  AND f.published_run_id = k.published_run_id
                  AND f.last_used_at >= k.used_at - v_window * interval '1 microsecond')
            {keep_greater};
        END IF;
    END LOOP;
END
$$",
    );
    let apply_sql = format!(
        "CREATE OR REPLACE FUNCTION {apply}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF COALESCE(current_setting('{pending}', true), '') <> '' THEN
        PERFORM {apply_pending}();
    ELSE
        PERFORM set_config('{immediate}', 'on', true);
    END IF;
    RETURN NULL;
END
$$"
    );
    let changed = format!(
        "OLD.{ws} IS DISTINCT FROM NEW.{ws} OR OLD.{uid} IS DISTINCT FROM NEW.{uid} \
         OR OLD.{version} IS DISTINCT FROM NEW.{version} OR OLD.{at} IS DISTINCT FROM NEW.{at}"
    );
    let mut all = vec![
        append_sql,
        apply_pending_sql,
        record_sql,
        record_version_sql,
        apply_sql,
    ];
    // Transition tables take no column list: the update's statement trigger
    // fires for every UPDATE and finds the rows that changed.
    for (name, event, transition) in [
        ("insert", "INSERT", "NEW TABLE AS recents_new_runs"),
        (
            "update",
            "UPDATE",
            "OLD TABLE AS recents_old_runs NEW TABLE AS recents_new_runs",
        ),
        ("delete", "DELETE", "OLD TABLE AS recents_old_runs"),
    ] {
        all.push(format!(
            "CREATE TRIGGER {trigger} AFTER {event} ON {table} REFERENCING {transition} \
             FOR EACH STATEMENT EXECUTE FUNCTION {record}()",
            trigger = n.object(&format!("recents_rw_a_{name}")),
            table = runs,
        ));
    }
    for (name, event, when) in [
        (
            "insert",
            "INSERT".to_owned(),
            format!("NEW.{version} IS NOT NULL"),
        ),
        (
            "update",
            format!("UPDATE OF {ws}, {uid}, {version}, {at}"),
            changed,
        ),
        (
            "delete",
            "DELETE".to_owned(),
            format!("OLD.{version} IS NOT NULL"),
        ),
    ] {
        all.push(format!(
            "CREATE CONSTRAINT TRIGGER {trigger} AFTER {event} ON {table} \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN ({when}) \
             EXECUTE FUNCTION {apply}()",
            trigger = n.object(&format!("recents_rw_b_{name}")),
            table = runs,
        ));
    }
    all.push(format!(
        "CREATE TRIGGER {trigger} BEFORE DELETE ON {table} FOR EACH ROW \
         EXECUTE FUNCTION {record_version}()",
        trigger = n.object("recents_rw_version_delete"),
        table = versions,
    ));
    all
}

// MySQL/MariaDB: row triggers calling procedures, as each row changes; the
// summary rows are then locked until the caller commits, as in service mode.
// Foreign-key cascades fire no triggers there, so a deleted version
// recomputes every summary row of its published run (a deleted published
// run's rows go by the summary's own cascade). Each write of a summary row
// bumps `writes`, as the service's do (see migration 7). Reads of history are
// locking reads: they see the latest committed runs, not the snapshot.
fn mysql(n: &Names, collation: &str) -> Vec<String> {
    let Columns {
        runs,
        id,
        ws,
        uid,
        version,
        at,
        versions,
        v_id,
        pr,
        r,
    } = Columns::of(n);
    let uid_type = format!("VARCHAR(255) CHARACTER SET utf8mb4 COLLATE {collation}");
    let raise = n.object("recents_rw_raise");
    let forget = n.object("recents_rw_forget");
    let forget_row = n.object("recents_rw_forget_row");
    let recompute_workflow = n.object("recents_rw_recompute_workflow");
    let settings = settings(n);
    let raise_sql = format!(
        "CREATE PROCEDURE {raise}(IN p_ws BIGINT, IN p_uid {uid_type}, IN p_version BIGINT, \
                                  IN p_run BIGINT, IN p_at DATETIME(6))
BEGIN
  DECLARE l_pr BIGINT DEFAULT NULL;
  DECLARE l_window BIGINT DEFAULT 0;
  DECLARE l_fresh INT DEFAULT 0;
  DECLARE CONTINUE HANDLER FOR NOT FOUND BEGIN END;
  SELECT {pr} INTO l_pr FROM {versions} WHERE {v_id} = p_version;
  IF l_pr IS NOT NULL THEN
    SELECT freshness_window_us INTO l_window FROM {settings} WHERE id = 1;
    IF l_window > 0 THEN
      SELECT COUNT(*) INTO l_fresh FROM {r} WHERE workspace_id = p_ws AND uid IN (p_uid, '')
        AND published_run_id = l_pr AND last_used_at >= p_at - INTERVAL l_window MICROSECOND;
    END IF;
    IF l_fresh < IF(p_uid = '', 1, 2) THEN
      INSERT INTO {r} (workspace_id, uid, published_run_id, last_saved_run_id, last_used_at)
      SELECT p_ws, k.uid, l_pr, p_run, p_at
      FROM (SELECT p_uid AS uid, 0 AS wide FROM DUAL WHERE p_uid <> '' UNION ALL SELECT '', 1) k
      ORDER BY k.wide
      ON DUPLICATE KEY UPDATE
        last_saved_run_id = IF((VALUES(last_used_at), VALUES(last_saved_run_id))
            > ({r}.last_used_at, {r}.last_saved_run_id),
            VALUES(last_saved_run_id), {r}.last_saved_run_id),
        last_used_at = IF({r}.last_saved_run_id = VALUES(last_saved_run_id),
            GREATEST({r}.last_used_at, VALUES(last_used_at)), {r}.last_used_at),
        writes = {r}.writes + 1;
    END IF;
  END IF;
END",
    );
    // One row: recomputed from history when `p_run` was its latest (or for
    // any run, `p_run` NULL), else only its write counted.
    let forget_row_sql = format!(
        "CREATE PROCEDURE {forget_row}(IN p_ws BIGINT, IN p_uid {uid_type}, IN p_pr BIGINT, \
                                       IN p_run BIGINT)
BEGIN
  DECLARE l_latest BIGINT DEFAULT NULL;
  DECLARE l_run BIGINT DEFAULT NULL;
  DECLARE l_at DATETIME(6) DEFAULT NULL;
  DECLARE CONTINUE HANDLER FOR NOT FOUND BEGIN END;
  SELECT last_saved_run_id INTO l_latest FROM {r}
  WHERE workspace_id = p_ws AND uid = p_uid AND published_run_id = p_pr FOR UPDATE;
  IF l_latest IS NOT NULL THEN
    IF p_run IS NULL OR l_latest = p_run THEN
      SELECT s.{id}, s.{at} INTO l_run, l_at FROM {runs} s JOIN {versions} v ON v.{v_id} = s.{version}
      WHERE s.{ws} = p_ws AND v.{pr} = p_pr AND (p_uid = '' OR s.{uid} = p_uid)
      ORDER BY s.{at} DESC, s.{id} DESC LIMIT 1 LOCK IN SHARE MODE;
      IF l_run IS NULL THEN
        DELETE FROM {r} WHERE workspace_id = p_ws AND uid = p_uid AND published_run_id = p_pr;
      ELSE
        UPDATE {r} SET last_saved_run_id = l_run, last_used_at = l_at, writes = writes + 1
        WHERE workspace_id = p_ws AND uid = p_uid AND published_run_id = p_pr;
      END IF;
    ELSE
      UPDATE {r} SET writes = writes + 1
      WHERE workspace_id = p_ws AND uid = p_uid AND published_run_id = p_pr;
    END IF;
  END IF;
END",
    );
    let forget_sql = format!(
        "CREATE PROCEDURE {forget}(IN p_ws BIGINT, IN p_uid {uid_type}, IN p_version BIGINT, \
                                   IN p_run BIGINT)
BEGIN
  DECLARE l_pr BIGINT DEFAULT NULL;
  DECLARE CONTINUE HANDLER FOR NOT FOUND BEGIN END;
  SELECT {pr} INTO l_pr FROM {versions} WHERE {v_id} = p_version;
  IF l_pr IS NOT NULL THEN
    IF p_uid <> '' THEN
      CALL {forget_row}(p_ws, p_uid, l_pr, p_run);
    END IF;
    CALL {forget_row}(p_ws, '', l_pr, p_run);
  END IF;
END",
    );
    let recompute_workflow_sql = format!(
        "CREATE PROCEDURE {recompute_workflow}(IN p_pr BIGINT)
BEGIN
  DECLARE l_done INT DEFAULT 0;
  DECLARE l_ws BIGINT;
  DECLARE l_uid {uid_type};
  DECLARE rows_of_workflow CURSOR FOR
    SELECT workspace_id, uid FROM {r} WHERE published_run_id = p_pr
    ORDER BY workspace_id, uid = '', uid;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET l_done = 1;
  OPEN rows_of_workflow;
  each_row: LOOP
    FETCH rows_of_workflow INTO l_ws, l_uid;
    IF l_done = 1 THEN
      LEAVE each_row;
    END IF;
    CALL {forget_row}(l_ws, l_uid, p_pr, NULL);
    SET l_done = 0;
  END LOOP;
  CLOSE rows_of_workflow;
END"
    );
    let same_group = format!(
        "NEW.{ws} <=> OLD.{ws} AND NEW.{uid} <=> OLD.{uid} AND NEW.{version} <=> OLD.{version}"
    );
    vec![
        raise_sql,
        forget_row_sql,
        forget_sql,
        recompute_workflow_sql,
        format!(
            "CREATE TRIGGER {trigger} AFTER INSERT ON {table} FOR EACH ROW \
             BEGIN \
               IF NEW.{version} IS NOT NULL THEN \
                 CALL {raise}(NEW.{ws}, NEW.{uid}, NEW.{version}, NEW.{id}, NEW.{at}); \
               END IF; \
             END",
            trigger = n.object("recents_rw_insert"),
            table = runs,
        ),
        format!(
            "CREATE TRIGGER {trigger} AFTER UPDATE ON {table} FOR EACH ROW \
             BEGIN \
               IF OLD.{version} IS NOT NULL AND NOT ({same_group} AND NEW.{at} >= OLD.{at}) THEN \
                 CALL {forget}(OLD.{ws}, OLD.{uid}, OLD.{version}, OLD.{id}); \
               END IF; \
               IF NEW.{version} IS NOT NULL AND NOT ({same_group} AND NEW.{at} <=> OLD.{at}) THEN \
                 CALL {raise}(NEW.{ws}, NEW.{uid}, NEW.{version}, NEW.{id}, NEW.{at}); \
               END IF; \
             END",
            trigger = n.object("recents_rw_update"),
            table = runs,
        ),
        format!(
            "CREATE TRIGGER {trigger} AFTER DELETE ON {table} FOR EACH ROW \
             BEGIN \
               IF OLD.{version} IS NOT NULL THEN \
                 CALL {forget}(OLD.{ws}, OLD.{uid}, OLD.{version}, OLD.{id}); \
               END IF; \
             END",
            trigger = n.object("recents_rw_delete"),
            table = runs,
        ),
        format!(
            "CREATE TRIGGER {trigger} AFTER DELETE ON {table} FOR EACH ROW \
             CALL {recompute_workflow}(OLD.{pr})",
            trigger = n.object("recents_rw_version_delete"),
            table = versions,
        ),
    ]
}

// SQLite: row triggers; one writer at a time, so nothing to lock or order.
// A leaving run's rows (`scope`: which rows) are deleted when no run is left
// in their group and set to the group's latest run otherwise, but only where
// the leaving run was the latest. Times are UTC text in one format, so text
// order is time order; the freshness window compares julian days (to the
// millisecond).
fn sqlite(n: &Names) -> Vec<String> {
    let Columns {
        runs,
        id,
        ws,
        uid,
        version,
        at,
        versions,
        v_id,
        pr,
        r,
    } = Columns::of(n);
    let settings = settings(n);
    let history = |pick: &str| {
        format!(
            "SELECT {pick} FROM {runs} s JOIN {versions} v ON v.{v_id} = s.{version} \
             WHERE s.{ws} = {r}.workspace_id AND v.{pr} = {r}.published_run_id \
             AND ({r}.uid = '' OR s.{uid} = {r}.uid)",
        )
    };
    let recompute = |scope: &str| {
        format!(
            "DELETE FROM {r} WHERE {scope} AND NOT EXISTS ({exists}); \
             UPDATE {r} SET (last_saved_run_id, last_used_at) = ({latest} \
                 ORDER BY s.{at} DESC, s.{id} DESC LIMIT 1) \
             WHERE {scope};",
            exists = history("1"),
            latest = history(&format!("s.{id}, s.{at}")),
        )
    };
    // The rows the leaving run `OLD` was the latest of.
    let leaving = format!(
        "workspace_id = OLD.{ws} AND uid IN (OLD.{uid}, '') AND last_saved_run_id = OLD.{id} \
         AND published_run_id = (SELECT v.{pr} FROM {versions} v WHERE v.{v_id} = OLD.{version})",
    );
    let raise = format!(
        "INSERT INTO {r} (workspace_id, uid, published_run_id, last_saved_run_id, last_used_at) \
         SELECT NEW.{ws}, k.uid, v.{pr}, NEW.{id}, NEW.{at} \
         FROM {versions} v CROSS JOIN (SELECT NEW.{uid} AS uid WHERE NEW.{uid} <> '' UNION ALL SELECT '') k \
         WHERE v.{v_id} = NEW.{version} AND NOT EXISTS (\
             SELECT 1 FROM {settings} c JOIN {r} f ON c.freshness_window_us > 0 \
             WHERE f.workspace_id = NEW.{ws} AND f.uid = k.uid AND f.published_run_id = v.{pr} \
             AND julianday(f.last_used_at) >= julianday(NEW.{at}) - c.freshness_window_us / 86400000000.0) \
         {keep_greater};",
        keep_greater = keep_greater(r),
    );
    let left = format!(
        "NOT (NEW.{ws} IS OLD.{ws} AND NEW.{uid} IS OLD.{uid} AND NEW.{version} IS OLD.{version} \
         AND NEW.{at} >= OLD.{at})"
    );
    // An update forgets only a run that left its group.
    let forget_if_left = recompute(&format!("{left} AND {leaving}"));
    let forget = recompute(&leaving);
    vec![
        format!(
            "CREATE TRIGGER IF NOT EXISTS {trigger} AFTER INSERT ON {table} \
             WHEN NEW.{version} IS NOT NULL BEGIN {raise} END",
            trigger = n.object("recents_rw_insert"),
            table = runs,
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS {trigger} AFTER UPDATE OF {ws}, {uid}, {version}, {at} \
             ON {table} WHEN OLD.{version} IS NOT NULL OR NEW.{version} IS NOT NULL \
             BEGIN {forget_if_left} {raise} END",
            trigger = n.object("recents_rw_update"),
            table = runs,
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS {trigger} AFTER DELETE ON {table} \
             WHEN OLD.{version} IS NOT NULL BEGIN {forget} END",
            trigger = n.object("recents_rw_delete"),
            table = runs,
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS {trigger} AFTER DELETE ON {table} \
             BEGIN {recompute} END",
            trigger = n.object("recents_rw_version_delete"),
            table = versions,
            recompute = recompute(&format!("published_run_id = OLD.{pr}")),
        ),
    ]
}

fn drop_triggers(n: &Names) -> Vec<String> {
    let (runs, versions) = (&n.saved_runs.table, &n.versions.table);
    match n.backend {
        DbBackend::Postgres => {
            let mut all: Vec<String> = [
                "a_insert", "a_update", "a_delete", "b_insert", "b_update", "b_delete",
            ]
            .iter()
            .map(|t| {
                format!(
                    "DROP TRIGGER IF EXISTS {} ON {runs}",
                    n.object(&format!("recents_rw_{t}"))
                )
            })
            .collect();
            all.push(format!(
                "DROP TRIGGER IF EXISTS {} ON {versions}",
                n.object("recents_rw_version_delete")
            ));
            for (function, arguments) in [
                ("recents_rw_apply", ""),
                ("recents_rw_record", ""),
                ("recents_rw_record_version", ""),
                ("recents_rw_apply_pending", ""),
                ("recents_rw_append", "text"),
            ] {
                all.push(format!(
                    "DROP FUNCTION IF EXISTS {}({arguments})",
                    n.object(function)
                ));
            }
            all
        }
        DbBackend::MySql => {
            let mut all: Vec<String> = [
                "recents_rw_insert",
                "recents_rw_update",
                "recents_rw_delete",
                "recents_rw_version_delete",
            ]
            .iter()
            .map(|t| format!("DROP TRIGGER IF EXISTS {}", n.object(t)))
            .collect();
            for procedure in [
                "recents_rw_raise",
                "recents_rw_forget",
                "recents_rw_forget_row",
                "recents_rw_recompute_workflow",
            ] {
                all.push(format!("DROP PROCEDURE IF EXISTS {}", n.object(procedure)));
            }
            all
        }
        _ => [
            "recents_rw_insert",
            "recents_rw_update",
            "recents_rw_delete",
            "recents_rw_version_delete",
        ]
        .iter()
        .map(|t| format!("DROP TRIGGER IF EXISTS {}", n.object(t)))
        .collect(),
    }
}
