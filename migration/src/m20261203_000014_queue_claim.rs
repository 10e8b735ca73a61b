//! PostgreSQL's claim function, `execution_queue_claim(want, worker, now)`:
//! a whole fair claim in one statement, so that a claim sent on its own
//! connection is its own transaction and holds the claims' turn (the row of
//! `execution_dequeue_lock`) for no round trip to the client. Before it, a
//! claim held the turn across three (the turn, the claim, the commit), and
//! eight workers on two cores queued behind whichever holder the scheduler
//! had put to sleep.
//!
//! Its body is the service's claim, statement for statement, from the
//! fragments in `recents_schema` (the front, the promotion, the claim
//! round): each statement of a VOLATILE PL/pgSQL function takes a new
//! snapshot under READ COMMITTED, so what follows the turn reads the
//! previous claim's commit, as the service's next statement did. The other
//! backends keep their claim in the service; this migration does nothing
//! there.

use recents_schema::{FRONT_SLACK, MAX_FRONT, Names, Schema};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// Takes the schema mapping: the function reads and writes the backend's
/// jobs table.
#[derive(DeriveMigrationName)]
pub struct Migration {
    pub(crate) schema: Schema,
}

// The turn's statement also tells whether any row has scheduled jobs due
// by `now` (one probe of the next-due index; read in its snapshot, before
// the turn came: a job due since then waits for the next claim, whose
// `now` is later too), so that the promotion runs only then. A missing lock
// row leaves `v_due` NULL: promote, as the other backends always do.
//
// Each round claims up to the jobs still wanted from the front's first
// `v_window` users; an empty answer from a full window means every user in
// it was held by other claims or changed since read, and the window grows
// before the claim gives up. The variables carry a `v_`/`p_` prefix: a
// column of the backend's named like one would be an ambiguity error, not
// a silent substitution.
fn create_claim(n: &Names) -> String {
    let users = "= ANY (v_users)";
    format!(
        "CREATE OR REPLACE FUNCTION {claim}(p_want bigint, p_worker text, p_now timestamptz) \
         RETURNS SETOF {jobs} LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_due boolean;
    v_users bigint[];
    v_got bigint := 0;
    v_n bigint;
    v_window bigint;
BEGIN
    SELECT COALESCE((SELECT MIN(d.next_due_at) FROM {heads} d) <= p_now, false) INTO v_due
    FROM {lock} l WHERE l.id = 1 FOR UPDATE OF l;
    IF v_due IS NOT FALSE THEN
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
END
$$",
        claim = n.queue_claim(),
        jobs = n.jobs.table,
        heads = n.queue_heads,
        lock = n.dequeue_lock,
        lock_due = n.lock_due("p_now"),
        promote = n.promote("p_now", users),
        delete_empty = n.delete_empty(users),
        round = n.claim_front_pg("v_window", "(p_want - v_got)", "p_now", "p_worker", "*"),
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
