//! The queue's throughput (the console's jobs per second) on every backend:
//! `throughput_as_of` equals a count over every job row of the table for
//! windows around the runs the library ended and around rows written with
//! times on the window's edges, and each backend's planner reads it from
//! `idx_execution_jobs_finished` rather than the whole table.

mod support;

use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeZone, Utc};
use recents::entity::execution_job::{ActiveModel, Entity, JobState};
use recents::queue::{self, NewJob, QueueOptions, Throughput};
use recents::{Recents, UserId};
use recents_testkit::{TestDb, backend_tests};
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbBackend, EntityTrait, NotSet, Statement};

/// The definition, over every row (`support::ended_in_window`).
async fn brute_force(db: &TestDb, until: DateTime<Utc>, window: Duration) -> (u64, u64) {
    let jobs = Entity::find().all(&db.conn).await.unwrap();
    support::ended_in_window(&jobs, until, window)
}

async fn agrees(db: &TestDb, until: DateTime<Utc>, window: Duration) -> Throughput {
    let t = Recents::new(recents::Schema::default())
        .throughput_as_of(&db.conn, until, window)
        .await
        .unwrap();
    assert_eq!(
        (t.completed, t.failed),
        brute_force(db, until, window).await,
        "window of {window:?} until {until}"
    );
    assert_eq!((t.until, t.window), (until, window));
    t
}

/// A finished row written as a backend's own code or an import would.
async fn ended(db: &TestDb, state: JobState, finished_at: DateTime<Utc>) {
    Entity::insert(ActiveModel {
        id: NotSet,
        user_id: Set(90),
        state: Set(state),
        payload: Set(serde_json::json!({})),
        created_at: Set(finished_at - chrono::Duration::minutes(5)),
        started_at: Set(None),
        finished_at: Set(Some(finished_at)),
        process_after: Set(None),
        num_resets: Set(0),
        num_failures: Set(0),
        failure_message: Set(None),
        worker_hostname: Set(None),
        last_heartbeat_at: Set(None),
        cancel: Set(false),
    })
    .exec_without_returning(&db.conn)
    .await
    .unwrap();
}

async fn throughput_counts_the_runs_ended_in_its_window(db: &TestDb) {
    let c = &db.conn;
    let minute = Duration::from_secs(60);
    // Runs the library ends, at the real time.
    let ids = queue::enqueue_many(
        c,
        &(0..6)
            .map(|i| NewJob::now(UserId(i % 2), serde_json::json!({ "i": i })))
            .collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    let retry = QueueOptions::default();
    let give_up = QueueOptions {
        max_failures: 1,
        ..QueueOptions::default()
    };
    for (k, options) in [None, None, Some(&retry), Some(&give_up)]
        .into_iter()
        .enumerate()
    {
        let job = queue::dequeue(c, &format!("w{k}")).await.unwrap().unwrap();
        match options {
            None => queue::complete(c, &job).await.unwrap(),
            Some(options) => {
                queue::fail(c, &job, "boom", options).await.unwrap();
            }
        }
    }
    // A waiting job canceled: it ends, but nothing ran.
    queue::cancel(c, ids[5]).await.unwrap();
    // To the microsecond, as every backend stores times (and the window's end is).
    let now = Utc::now().trunc_subsecs(6);
    let t = agrees(db, now, minute).await;
    assert_eq!(
        (t.completed, t.failed),
        (2, 2),
        "two completed, one errored and one failed; the cancel not counted"
    );
    assert!((t.per_second() - 4.0 / 60.0).abs() < 1e-9);

    // Rows on the edges of a fixed window: (until - 60 s, until].
    let until = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap();
    let micro = chrono::Duration::microseconds(1);
    let start = until - chrono::Duration::seconds(60);
    for (state, at) in [
        (JobState::Completed, start),
        (JobState::Completed, start + micro),
        (JobState::Failed, until),
        (JobState::Completed, until + micro),
        (JobState::Errored, until - chrono::Duration::seconds(30)),
        (JobState::Canceled, until - chrono::Duration::seconds(30)),
        // An errored job claimed again keeps its last finished_at.
        (JobState::Processing, until - chrono::Duration::seconds(20)),
        (JobState::Completed, until - chrono::Duration::days(3)),
    ] {
        ended(db, state, at).await;
    }
    let t = agrees(db, until, minute).await;
    assert_eq!((t.completed, t.failed), (1, 2), "only the edges inside");
    for window in [1, 30, 59, 61, 3_600, 7 * 86_400] {
        agrees(db, until, Duration::from_secs(window)).await;
        agrees(db, until + micro, Duration::from_secs(window)).await;
    }
    agrees(db, now, Duration::from_secs(10 * 86_400)).await;
    // A window reaching before the years every backend stores is refused.
    assert!(matches!(
        Recents::new(recents::Schema::default())
            .throughput_as_of(c, until, Duration::from_secs(u64::MAX / 4))
            .await,
        Err(recents::Error::InvalidArgument { .. })
    ));
}

/// The service's statement, as `throughput_as_of` sends it (it is private
/// to the service; keep the two alike).
fn statement(backend: DbBackend, until: DateTime<Utc>) -> Statement {
    let sql = "SELECT COUNT(CASE WHEN \"state\" = 'completed' THEN 1 END) AS completed, \
         COUNT(CASE WHEN \"state\" IN ('errored', 'failed') THEN 1 END) AS failed \
         FROM \"execution_jobs\" WHERE \"finished_at\" > ? AND \"finished_at\" <= ?";
    let sql = match backend {
        DbBackend::Postgres => sql.replacen('?', "$1", 1).replacen('?', "$2", 1),
        DbBackend::MySql => sql.replace('"', "`"),
        _ => sql.to_owned(),
    };
    let since = until - chrono::Duration::seconds(60);
    Statement::from_sql_and_values(backend, sql, [since.into(), until.into()])
}

async fn throughput_reads_the_window_from_its_index(db: &TestDb) {
    let c = &db.conn;
    let backend = db.db_backend();
    let until = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap();
    // A day of finished jobs before the window, a few in it.
    if backend == DbBackend::Postgres {
        c.execute_unprepared(
            "INSERT INTO execution_jobs (user_id, state, payload, created_at, finished_at) \
             SELECT g % 50, 'completed', '{}', t, t FROM generate_series(1, 20000) g, \
             LATERAL (SELECT TIMESTAMPTZ '2026-11-22 09:00:00+00' + g * INTERVAL '4 second' AS t) x",
        )
        .await
        .unwrap();
    } else {
        // No generate_series: a hundred rows a statement.
        for k in 0..200 {
            let rows: Vec<String> = (0..100)
                .map(|i| {
                    let at = until - chrono::Duration::seconds(3_600 + 4 * (k * 100 + i));
                    let at = match backend {
                        DbBackend::MySql => at.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
                        _ => at.to_rfc3339_opts(chrono::SecondsFormat::Micros, false),
                    };
                    format!("({}, 'completed', '{{}}', '{at}', '{at}')", i % 50)
                })
                .collect();
            c.execute_unprepared(&format!(
                "INSERT INTO execution_jobs (user_id, state, payload, created_at, finished_at) VALUES {}",
                rows.join(", ")
            ))
            .await
            .unwrap();
        }
    }
    for s in [5, 25, 45] {
        ended(
            db,
            JobState::Completed,
            until - chrono::Duration::seconds(s),
        )
        .await;
    }
    agrees(db, until, Duration::from_secs(60)).await;
    let explain = match backend {
        DbBackend::Postgres => {
            c.execute_unprepared("ANALYZE execution_jobs")
                .await
                .unwrap();
            "EXPLAIN "
        }
        DbBackend::MySql => {
            c.execute_unprepared("ANALYZE TABLE execution_jobs")
                .await
                .unwrap();
            "EXPLAIN "
        }
        _ => {
            c.execute_unprepared("ANALYZE").await.unwrap();
            "EXPLAIN QUERY PLAN "
        }
    };
    let mut query = statement(backend, until);
    query.sql = format!("{explain}{}", query.sql);
    let plan: Vec<String> = c
        .query_all_raw(query)
        .await
        .unwrap()
        .iter()
        .map(|row| match backend {
            DbBackend::Postgres => row.try_get::<String>("", "QUERY PLAN").unwrap(),
            DbBackend::MySql => format!(
                "key={} extra={}",
                row.try_get::<Option<String>>("", "key")
                    .unwrap()
                    .unwrap_or_default(),
                row.try_get::<Option<String>>("", "Extra")
                    .unwrap()
                    .unwrap_or_default()
            ),
            _ => row.try_get::<String>("", "detail").unwrap(),
        })
        .collect();
    let plan = plan.join("\n");
    // Index-only on every backend: the window's entries, never the rows.
    let wanted = match backend {
        DbBackend::Postgres => "Index Only Scan using idx_execution_jobs_finished",
        DbBackend::MySql => "key=idx_execution_jobs_finished extra=Using where; Using index",
        _ => "USING COVERING INDEX idx_execution_jobs_finished",
    };
    assert!(plan.contains(wanted), "{plan}");
}

backend_tests!(
    throughput_counts_the_runs_ended_in_its_window,
    throughput_reads_the_window_from_its_index
);
