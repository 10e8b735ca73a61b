//! Which worker of a fleet runs [`reset_stalled`]: the one holding a session
//! lock on a connection of its own, held for the worker's life (PostgreSQL:
//! an advisory lock; MySQL/MariaDB: a named lock); on SQLite, whose workers
//! share one file on one machine, each worker (resets are transactions, so
//! two resetters are merely redundant). A leader that dies loses its session
//! and so its lock; the next worker to try takes over.

use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use super::metrics::Counters;

/// PostgreSQL's advisory lock key of the resetter: "recents" and 1, as bytes.
#[cfg(feature = "postgres")]
const PG_LOCK_KEY: i64 = 0x7265_6365_6e74_7301;

/// MySQL/MariaDB's lock of the resetter: its name with the database's, as
/// named locks are the server's while advisory locks on PostgreSQL are the
/// database's (names are at most 64 characters; database names at most 64
/// too, so the name is cut).
#[cfg(feature = "mysql")]
const MYSQL_GET_LOCK: &str = "SELECT GET_LOCK(LEFT(CONCAT('recents.reset.', DATABASE()), 64), 0)";

/// How the resetter runs.
#[derive(Clone, Debug)]
pub(super) struct ResetPlan {
    pub(super) recents: crate::handle::Recents,
    pub(super) every: Duration,
    pub(super) stall_age: Duration,
    pub(super) max_resets: i32,
}

/// This worker's part in the election: the lock's connection, once opened.
enum Election {
    /// Every worker resets (SQLite, and connections that are not pools of
    /// sqlx: a mock or a proxy).
    Everyone,
    #[cfg(feature = "postgres")]
    Postgres {
        conn: Option<sea_orm::sqlx::PgConnection>,
        held: bool,
    },
    #[cfg(feature = "mysql")]
    MySql {
        conn: Option<sea_orm::sqlx::MySqlConnection>,
        held: bool,
    },
}

impl Election {
    fn new(conn: &DatabaseConnection) -> Self {
        #[cfg(any(feature = "postgres", feature = "mysql"))]
        use sea_orm::DatabaseConnectionType as T;
        match &conn.inner {
            #[cfg(feature = "postgres")]
            T::SqlxPostgresPoolConnection(_) => Election::Postgres {
                conn: None,
                held: false,
            },
            #[cfg(feature = "mysql")]
            T::SqlxMySqlPoolConnection(_) => Election::MySql {
                conn: None,
                held: false,
            },
            _ => Election::Everyone,
        }
    }

    /// Whether this worker leads now: takes the lock if it is free, and
    /// checks that the session holding it is still alive if it was taken.
    #[cfg_attr(
        not(any(feature = "postgres", feature = "mysql")),
        allow(unused_variables)
    )]
    async fn lead(&mut self, pool: &DatabaseConnection) -> bool {
        #[cfg(any(feature = "postgres", feature = "mysql"))]
        use sea_orm::sqlx::Connection;
        match self {
            Election::Everyone => true,
            #[cfg(feature = "postgres")]
            Election::Postgres { conn, held } => {
                if conn.is_none() {
                    // Detached: the pool opens another in its place, and
                    // the lock lives exactly as long as this session.
                    match pool.get_postgres_connection_pool().acquire().await {
                        Ok(c) => *conn = Some(c.detach()),
                        Err(e) => {
                            tracing::warn!(error = %e, "resetter election: no connection");
                            return false;
                        }
                    }
                }
                let Some(c) = conn.as_mut() else {
                    return false;
                };
                let result = if *held {
                    c.ping().await.map(|()| true)
                } else {
                    sea_orm::sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
                        .bind(PG_LOCK_KEY)
                        .fetch_one(&mut *c)
                        .await
                };
                settle(conn, held, result)
            }
            #[cfg(feature = "mysql")]
            Election::MySql { conn, held } => {
                if conn.is_none() {
                    match pool.get_mysql_connection_pool().acquire().await {
                        Ok(c) => *conn = Some(c.detach()),
                        Err(e) => {
                            tracing::warn!(error = %e, "resetter election: no connection");
                            return false;
                        }
                    }
                }
                let Some(c) = conn.as_mut() else {
                    return false;
                };
                let result = if *held {
                    c.ping().await.map(|()| true)
                } else {
                    sea_orm::sqlx::query_scalar::<_, Option<i64>>(MYSQL_GET_LOCK)
                        .fetch_one(&mut *c)
                        .await
                        .map(|got| got == Some(1))
                };
                settle(conn, held, result)
            }
        }
    }

    /// Gives the lock up by closing its session.
    async fn resign(self) {
        #[cfg(any(feature = "postgres", feature = "mysql"))]
        use sea_orm::sqlx::Connection;
        match self {
            Election::Everyone => {}
            #[cfg(feature = "postgres")]
            Election::Postgres { conn, .. } => {
                if let Some(c) = conn {
                    let _ = c.close().await;
                }
            }
            #[cfg(feature = "mysql")]
            Election::MySql { conn, .. } => {
                if let Some(c) = conn {
                    let _ = c.close().await;
                }
            }
        }
    }
}

/// Records the outcome of a lock attempt or a liveness check: a session that
/// failed is dropped (and with it any lock), to be opened again next time.
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn settle<C>(
    conn: &mut Option<C>,
    held: &mut bool,
    result: Result<bool, sea_orm::sqlx::Error>,
) -> bool {
    match result {
        Ok(leads) => {
            if leads && !*held {
                tracing::info!("this worker now resets stalled jobs for the fleet");
            }
            *held = leads;
            leads
        }
        Err(e) => {
            if *held {
                tracing::warn!(error = %e, "resetter lost its lock session");
            }
            *conn = None;
            *held = false;
            false
        }
    }
}

/// Every `plan.every`, if this worker leads, returns stalled jobs to the
/// queue; until `stop`.
pub(super) async fn run_resetter(
    conn: DatabaseConnection,
    plan: ResetPlan,
    counters: std::sync::Arc<Counters>,
    stop: CancellationToken,
) {
    let mut election = Election::new(&conn);
    let mut tick = tokio::time::interval(plan.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        if !election.lead(&conn).await {
            continue;
        }
        // A plain read first: most ticks find nothing stalled, and then take
        // no write transaction (SQLite's write lock) and no row locks. On
        // MySQL/MariaDB `reset_stalled`'s locking read walks the primary key
        // and locks every row it passes, waiting jobs included, so that a
        // claim running meanwhile skips users' heads (SKIP LOCKED) and serves
        // a later user out of its turn; reading first keeps that to the
        // ticks that do find stalled jobs.
        match plan.recents.stalled_jobs(&conn, plan.stall_age, 1).await {
            Ok(stalled) if stalled.is_empty() => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for stalled jobs; trying again next time");
                continue;
            }
        }
        match plan
            .recents
            .reset_stalled(&conn, plan.stall_age, plan.max_resets)
            .await
        {
            Ok(report) => Counters::add(&counters.reset, report.requeued.len() as u64),
            Err(e) => tracing::warn!(error = %e, "reset_stalled failed; trying again next time"),
        }
    }
    election.resign().await;
}
