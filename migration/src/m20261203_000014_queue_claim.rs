//! PostgreSQL's claim function, `execution_queue_claim(want, worker, now)`:
//! a whole fair claim in one statement, holding the claims' turn only while
//! it runs. Before it, a claim held the turn (the row of
//! `execution_dequeue_lock`, locked to commit) across three round trips to
//! the client (the turn, the claim, the commit) and its commit's flush, and
//! eight workers on two cores queued behind whichever holder the scheduler
//! had put to sleep.
//!
//! Its body is the service's claim, statement for statement, from the
//! fragments in `recents_schema` (the front, the promotion, the claim
//! round): each statement of a VOLATILE PL/pgSQL function takes a new
//! snapshot under READ COMMITTED, so what follows the turn reads every
//! claim committed before it (one still committing holds its users' rows,
//! which the claim skips). The other backends keep their claim in the
//! service; this migration does nothing there.

use recents_schema::{FRONT_SLACK, MAX_FRONT, Names, Schema};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// Takes the schema mapping: the function reads and writes the backend's
/// jobs table.
#[derive(DeriveMigrationName)]
pub struct Migration {
    pub(crate) schema: Schema,
}

// The turn is a session advisory lock keyed by the oid of the lock table
// (one per installation: a prefixed schema has its own table), taken at the
// start and released at the end of the call, before the commit: a claim
// then holds the turn only while it locks its users and stamps their start
// times, and its commit's WAL flush overlaps the next claims' turns. What
// the turn is for holds: start times follow the order in which claims lock
// their users, since each claim stamps before the next one locks, and on
// one server's clock. A claim that took its turn while the previous one
// had not yet committed skips that claim's users (their rows are locked),
// as it skips any claim in flight. An error inside (a canceled statement
// included) releases the lock before it is raised again; one raised before
// the lock was granted finds none to release. A backend that dies releases
// its session's locks.
//
// Promotion runs only when a row has scheduled jobs due by `now` (one
// probe of the next-due index). Each round claims up to the jobs still
// wanted from the front's first `v_window` users; an empty answer from a
// full window means every user in it was held by other claims or changed
// since read, and the window grows before the claim gives up. The
// variables carry a `v_`/`p_` prefix: a column of the backend's named like
// one would be an ambiguity error, not a silent substitution.
fn create_claim(n: &Names) -> String {
    let users = "= ANY (v_users)";
    // The table's name as a literal, quoted as an identifier inside.
    let lock_name = format!("'{}'", n.dequeue_lock.replace('\'', "''"));
    format!(
        "CREATE OR REPLACE FUNCTION {claim}(p_want bigint, p_worker text, p_now timestamptz) \
         RETURNS SETOF {jobs} LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_key bigint;
    v_users bigint[];
    v_got bigint := 0;
    v_n bigint;
    v_window bigint;
BEGIN
    v_key := {lock_name}::regclass::oid::bigint;
    BEGIN
        PERFORM pg_advisory_lock(v_key);
        IF (SELECT MIN(d.next_due_at) FROM {heads} d) <= p_now THEN
            SELECT array_agg(due.user_id) INTO v_users FROM ({lock_due}) due;
            IF v_users IS NOT NULL THEN
                {promote};
                {delete_empty};
            END IF;
        END IF;
        WHILE v_got < p_want LOOP
            v_window := (p_want - v_got) * 2 + {FRONT_SLACK};
            LOOP
                RETURN QUERY {round};
                GET DIAGNOSTICS v_n = ROW_COUNT;
                EXIT WHEN v_n > 0 OR v_window >= {MAX_FRONT} OR NOT EXISTS ({beyond});
                v_window := v_window * 8;
            END LOOP;
            EXIT WHEN v_n = 0;
            v_got := v_got + v_n;
        END LOOP;
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        IF EXISTS (SELECT 1 FROM pg_locks k WHERE k.locktype = 'advisory' \
                AND k.pid = pg_backend_pid() AND k.granted \
                AND k.classid = 0 AND k.objid = v_key::oid AND k.objsubid = 1) THEN
            PERFORM pg_advisory_unlock(v_key);
        END IF;
        RAISE;
    END;
    PERFORM pg_advisory_unlock(v_key);
END
$$",
        claim = n.queue_claim(),
        jobs = n.jobs.table,
        heads = n.queue_heads,
        lock_due = n.lock_due("p_now"),
        promote = n.promote("p_now", users),
        delete_empty = n.delete_empty(users),
        round = n.claim_front_pg("v_window", "(p_want - v_got)", "p_now", "p_worker"),
        beyond = n.queue_front_beyond("v_window"),
    )
}

fn drop_claim(n: &Names) -> String {
    format!(
        "DROP FUNCTION IF EXISTS {}(bigint, text, timestamptz)",
        n.queue_claim()
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        if !self.schema.install().fair_queue || backend != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(&create_claim(self.schema.names(backend)))
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        if !self.schema.install().fair_queue || backend != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(&drop_claim(self.schema.names(backend)))
            .await
            .map(|_| ())
    }
}
