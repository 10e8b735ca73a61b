//! The headless subcommands, run as the real `recents` binary against every
//! backend: their output, their JSON, and their exit codes on bad input
//! (1 with one line on stderr for a bad value or state, 2 for bad usage).

mod support;

use std::process::{Command, Output};

use recents_migration::{Migrator, MigratorTrait};
use recents_service::UserId;
use recents_service::queue::{NewJob, dequeue, enqueue_many};
use recents_testkit::{TestDb, backend_tests};
use sea_orm::ConnectionTrait;
use serde_json::Value;

fn recents(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recents"))
        .args(args)
        .env("DATABASE_URL", url)
        .env_remove("RUST_LOG")
        .output()
        .expect("the recents binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Exit code 1 and exactly one line on stderr, containing `needle`.
fn assert_fails_with(output: &Output, needle: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(1), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line, got: {err}");
    assert!(err.starts_with("recents: "), "{err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
}

fn json(output: &Output) -> Value {
    assert!(output.status.success(), "stderr: {}", stderr(output));
    serde_json::from_str(stdout(output).trim()).expect("one line of JSON")
}

async fn migrate_reports_and_applies_pending_migrations(db: &TestDb) {
    Migrator::reset(&db.conn).await.unwrap();
    // recents' own migrations; the history set is created only on request.
    let names: Vec<String> = recents_migration::migrations(&recents_migration::Schema::default())
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let with_history: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();

    // A schema behind is reported, then fails like every other subcommand.
    let behind = recents(&db.url, &["migrate", "status", "--json"]);
    assert_eq!(behind.status.code(), Some(1), "{}", stderr(&behind));
    let status: Value = serde_json::from_str(stdout(&behind).trim()).unwrap();
    assert_eq!(status["current"], false);
    assert_eq!(status["pending"], serde_json::json!(names));
    let error: Value = serde_json::from_str(stderr(&behind).trim()).unwrap();
    assert_eq!(error["error"], "schema_behind", "{error}");
    let text = recents(&db.url, &["migrate", "status"]);
    assert_fails_with(&text, "recents migrate up");
    assert!(
        stdout(&text).contains("schema is behind"),
        "{}",
        stdout(&text)
    );

    // A schema behind is refused by the reading subcommands.
    assert_fails_with(
        &recents(&db.url, &["recent", "--workspace", "1"]),
        "recents migrate up",
    );
    assert_fails_with(
        &recents(&db.url, &["queue", "status"]),
        "recents migrate up",
    );

    // Without the history tables, recents' own migrations cannot start; the
    // failure leaves nothing applied.
    assert_eq!(recents(&db.url, &["migrate", "up"]).status.code(), Some(1));
    let up = json(&recents(
        &db.url,
        &["migrate", "up", "--with-history", "--json"],
    ));
    assert_eq!(up["applied_now"], serde_json::json!(with_history));
    let again = recents(&db.url, &["migrate"]);
    assert!(stdout(&again).contains("up to date"), "{}", stdout(&again));
    let status = json(&recents(&db.url, &["migrate", "status", "--json"]));
    assert_eq!(status["current"], true);
}

async fn migrate_leaves_a_teams_migrations_alone(db: &TestDb) {
    db.conn
        .execute_unprepared(
            "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m20240101_000001_team_users', 0)",
        )
        .await
        .unwrap();
    let up = recents(&db.url, &["migrate", "up"]);
    assert!(up.status.success(), "{}", stderr(&up));
    let status = json(&recents(&db.url, &["migrate", "status", "--json"]));
    assert_eq!(status["current"], true);
    assert!(!status["applied"].to_string().contains("team_users"));
}

/// The console's and the subcommands' mapping: the backend's own tables
/// under other names, `--schema FILE` or `RECENTS_SCHEMA`.
async fn every_subcommand_works_on_a_mapped_database(db: &TestDb) {
    let c = &db.conn;
    // The test kit's database under other names: recents' rolled back, its
    // history tables renamed as a backend would have them.
    Migrator::reset(c).await.unwrap();
    let all = recents_migration::history_migrations();
    let history = &all[0];
    history
        .up(&recents_migration::SchemaManager::new(c))
        .await
        .unwrap();
    support::rename_history_tables(c).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("schema.toml");
    std::fs::write(&file, support::TEAM_TABLES).unwrap();
    let schema = file.to_str().unwrap();
    let ws = c
        .execute_unprepared(
            "INSERT INTO team_workspaces (name, is_personal, created_at) VALUES ('acme', false, '2026-01-01 00:00:00+00')",
        )
        .await;
    // SQLite and MySQL take the time as text of their own format.
    if ws.is_err() {
        c.execute_unprepared(
            "INSERT INTO team_workspaces (name, is_personal, created_at) VALUES ('acme', false, '2026-01-01 00:00:00')",
        )
        .await
        .unwrap();
    }
    let mapped = |args: &[&str]| {
        let mut all = vec!["--schema", schema];
        all.extend_from_slice(args);
        recents(&db.url, &all)
    };
    let up = mapped(&["migrate", "up"]);
    assert!(up.status.success(), "{}", stderr(&up));
    let status = json(&mapped(&["migrate", "status", "--json"]));
    assert_eq!(status["current"], true);
    let verify = json(&mapped(&["verify", "--json"]));
    assert_eq!(verify["missing"], 0, "{verify}");
    let backfill = mapped(&["backfill", "--json"]);
    assert!(backfill.status.success(), "{}", stderr(&backfill));
    let recent = mapped(&["recent", "--workspace", "1", "--json"]);
    assert!(recent.status.success(), "{}", stderr(&recent));
    let queue = mapped(&["queue", "status", "--json"]);
    assert!(queue.status.success(), "{}", stderr(&queue));
    // RECENTS_SCHEMA names the same file.
    let by_env = Command::new(env!("CARGO_BIN_EXE_recents"))
        .args(["migrate", "status", "--json"])
        .env("DATABASE_URL", &db.url)
        .env("RECENTS_SCHEMA", schema)
        .output()
        .unwrap();
    assert!(by_env.status.success(), "{}", stderr(&by_env));
    // Without the mapping, recents' own names are not there.
    assert_eq!(recents(&db.url, &["verify"]).status.code(), Some(1));
    // A mapping naming a table the database lacks is one clear line, and
    // nothing is created.
    let right = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, right.replace("\"team_runs\"", "\"no_such_runs\"")).unwrap();
    let wrong = mapped(&["migrate", "up"]);
    assert_fails_with(&wrong, "tables.saved_runs");
    // --with-history and a mapping contradict each other.
    assert_eq!(
        mapped(&["migrate", "up", "--with-history"]).status.code(),
        Some(1)
    );
}

async fn seed_demo_then_read_recent_workflows(db: &TestDb) {
    let seeded = json(&recents(
        &db.url,
        &["seed", "--demo", "--heavy-runs", "700", "--json"],
    ));
    assert_eq!(seeded["workspaces"], 7);
    assert_eq!(seeded["jobs"], 3_000);
    let heavy = seeded["heavy_workspace"].as_i64().unwrap().to_string();

    let rows = json(&recents(
        &db.url,
        &["recent", "--workspace", &heavy, "--json"],
    ));
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["title"], "Nightly import");

    // platform-team is workspace 4 and has six workflows; ada uses four.
    let team = json(&recents(
        &db.url,
        &["recent", "--workspace", "4", "--limit", "10", "--json"],
    ));
    assert_eq!(team.as_array().unwrap().len(), 6);
    let ada = json(&recents(
        &db.url,
        &[
            "recent",
            "--workspace",
            "4",
            "--uid",
            "ada",
            "--limit",
            "2",
            "--json",
        ],
    ));
    let ada = ada.as_array().unwrap();
    assert_eq!(ada.len(), 2);
    assert!(ada[0]["last_used_at"].as_str() >= ada[1]["last_used_at"].as_str());

    let text = recents(&db.url, &["recent", "--workspace", &heavy]);
    assert!(text.status.success());
    assert!(
        stdout(&text).contains("Nightly import"),
        "{}",
        stdout(&text)
    );

    // A second demo seed would double the data set: refused.
    assert_fails_with(
        &recents(&db.url, &["seed", "--demo", "--heavy-runs", "10"]),
        "already holds 7 workspaces",
    );
}

async fn recent_refuses_bad_input_with_one_line_and_exit_1(db: &TestDb) {
    assert_fails_with(
        &recents(&db.url, &["recent", "--workspace", "999999"]),
        "workspace 999999 does not exist",
    );
    assert_fails_with(
        &recents(&db.url, &["recent", "--workspace", "1", "--limit", "0"]),
        "limit must be between 1 and 1000, got 0",
    );
    assert_fails_with(
        &recents(&db.url, &["recent", "--workspace", "1", "--limit", "1001"]),
        "got 1001",
    );
    assert_fails_with(
        &recents(&db.url, &["recent", "--workspace", "1", "--uid", ""]),
        "invalid uid: empty",
    );
    db.conn
        .execute_unprepared(
            "INSERT INTO workspaces (name, is_personal, created_at, deleted_at) \
             VALUES ('gone', FALSE, '2026-01-01 00:00:00', '2026-01-02 00:00:00')",
        )
        .await
        .unwrap();
    assert_fails_with(
        &recents(&db.url, &["recent", "--workspace", "1"]),
        "workspace 1 is deleted",
    );
}

async fn usage_errors_exit_2(db: &TestDb) {
    for args in [
        &["recent", "--workspace", "abc"][..],
        &["recent"][..],
        &["seed"][..],
        &["seed", "--demo", "--scale", "1"][..],
        &["seed", "--scale", "1", "--heavy-runs", "5"][..],
        &["seed", "--scale", "abc"][..],
        &["migrate", "sideways"][..],
        &["queue"][..],
        &["queue", "status", "--limit", "many"][..],
        &["queue", "sideways"][..],
        &["no-such-command"][..],
    ] {
        let output = recents(&db.url, args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(!stderr(&output).is_empty());
    }
}

async fn verify_checks_latest_dequeues_too(db: &TestDb) {
    // A latest dequeue for a user without any started job: extra.
    let backend = db.conn.get_database_backend();
    db.conn
        .execute_raw(recents_service::admin::statement(
            backend,
            "INSERT INTO execution_last_dequeues (user_id, latest_dequeue) VALUES (?, ?)",
            vec![999i64.into(), chrono::Utc::now().into()],
        ))
        .await
        .unwrap();
    // And a queue head for a user without jobs: extra too.
    db.conn
        .execute_raw(recents_service::admin::statement(
            backend,
            "INSERT INTO execution_queue_heads (user_id, due_count, as_of) VALUES (?, 1, ?)",
            vec![998i64.into(), chrono::Utc::now().into()],
        ))
        .await
        .unwrap();
    let found = recents(&db.url, &["verify", "--json"]);
    assert_eq!(found.status.code(), Some(1), "stderr: {}", stderr(&found));
    let found: Value = serde_json::from_str(stdout(&found).trim()).unwrap();
    assert_eq!(found["last_dequeues"]["extra"].as_u64(), Some(1), "{found}");
    assert_eq!(found["queue_heads"]["extra"].as_u64(), Some(1), "{found}");
    let repaired = json(&recents(&db.url, &["verify", "--repair", "--json"]));
    assert_eq!(
        repaired["last_dequeues"]["repaired"].as_u64(),
        Some(1),
        "{repaired}"
    );
    assert_eq!(
        repaired["queue_heads"]["repaired"].as_u64(),
        Some(1),
        "{repaired}"
    );
    let clean = recents(&db.url, &["verify"]);
    assert!(clean.status.success(), "stderr: {}", stderr(&clean));
    assert!(stdout(&clean).contains("0 extra"), "{}", stdout(&clean));
    // The closing line says what was checked, against what.
    let last = stdout(&clean).lines().last().unwrap_or("").to_owned();
    assert!(
        last.starts_with("checked workspace_recent_workflows (")
            && last.contains("and execution_last_dequeues (")
            && last.ends_with(": exact"),
        "{last}"
    );
    let found = json(&recents(&db.url, &["verify", "--json"]));
    assert_eq!(
        found["checked"],
        serde_json::json!([
            "workspace_recent_workflows",
            "execution_last_dequeues",
            "execution_queue_heads"
        ])
    );
    db.conn
        .execute_raw(recents_service::admin::statement(
            backend,
            "INSERT INTO workspaces (name, is_personal, created_at) VALUES ('w', ?, ?)",
            vec![false.into(), chrono::Utc::now().into()],
        ))
        .await
        .unwrap();
    let id: i64 = db
        .conn
        .query_one_raw(recents_service::admin::statement(
            backend,
            "SELECT MAX(id) AS id FROM workspaces",
            vec![],
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "id")
        .unwrap();
    let one = recents(&db.url, &["verify", "--workspace", &id.to_string()]);
    assert!(one.status.success(), "stderr: {}", stderr(&one));
    let last = stdout(&one).lines().last().unwrap_or("").to_owned();
    assert!(
        last.contains("execution_last_dequeues is checked by whole-database runs only"),
        "{last}"
    );
}

async fn backfill_and_verify_find_and_repair_drift(db: &TestDb) {
    json(&recents(
        &db.url,
        &["seed", "--demo", "--heavy-runs", "500", "--json"],
    ));
    // Drift of two kinds: a row gone, a row too high.
    db.conn
        .execute_unprepared(
            "DELETE FROM workspace_recent_workflows WHERE workspace_id = 4 AND uid = ''",
        )
        .await
        .unwrap();
    db.conn
        .execute_unprepared(
            "UPDATE workspace_recent_workflows SET last_saved_run_id = last_saved_run_id + 100000 \
             WHERE workspace_id = 1",
        )
        .await
        .unwrap();

    let found = recents(&db.url, &["verify"]);
    assert_fails_with(&found, "recents verify --repair");
    assert!(stdout(&found).contains("missing"), "{}", stdout(&found));
    let report = recents(&db.url, &["verify", "--json"]);
    assert_eq!(report.status.code(), Some(1));
    let report: Value = serde_json::from_str(stdout(&report).trim()).unwrap();
    assert!(report["missing"].as_u64().unwrap() > 0, "{report}");
    assert!(report["too_high"].as_u64().unwrap() > 0, "{report}");

    let repaired = json(&recents(&db.url, &["verify", "--repair", "--json"]));
    assert!(repaired["repaired"].as_u64().unwrap() > 0, "{repaired}");
    let clean = json(&recents(&db.url, &["verify", "--json"]));
    assert_eq!(
        (
            clean["missing"].as_u64(),
            clean["stale"].as_u64(),
            clean["too_high"].as_u64(),
            clean["extra"].as_u64()
        ),
        (Some(0), Some(0), Some(0), Some(0))
    );

    // A backfill from an empty summary rebuilds it exactly.
    db.conn
        .execute_unprepared("DELETE FROM workspace_recent_workflows")
        .await
        .unwrap();
    let done = json(&recents(&db.url, &["backfill", "--json"]));
    assert_eq!(done["finished"], true);
    assert!(done["rows_scanned"].as_u64().unwrap() >= 500, "{done}");
    let plain = recents(&db.url, &["verify"]);
    assert!(plain.status.success(), "stderr: {}", stderr(&plain));
    // Progress lines go to stderr when it is not a terminal.
    let one = recents(&db.url, &["backfill", "--workspace", "4"]);
    assert!(one.status.success(), "stderr: {}", stderr(&one));
    assert!(
        stdout(&one).starts_with("backfill done"),
        "{}",
        stdout(&one)
    );
}

async fn queue_status_lists_users_and_the_fair_order(db: &TestDb) {
    // Nothing queued yet.
    let empty = json(&recents(&db.url, &["queue", "status", "--json"]));
    assert_eq!(
        empty,
        serde_json::json!({ "users": [], "next_in_line": [] })
    );
    let text = recents(&db.url, &["queue", "status"]);
    assert!(text.status.success(), "stderr: {}", stderr(&text));
    assert!(
        stdout(&text).contains("nobody is waiting"),
        "{}",
        stdout(&text)
    );

    // User 1 enqueues three jobs and is served once; user 2, never served,
    // enqueues two later and still goes first.
    let job = |user| NewJob::now(UserId(user), serde_json::json!({}));
    let first = enqueue_many(&db.conn, &[job(1), job(1), job(1)])
        .await
        .unwrap();
    let second = enqueue_many(&db.conn, &[job(2), job(2)]).await.unwrap();
    let served = dequeue(&db.conn, "worker-1").await.unwrap().unwrap();
    assert_eq!(served.id, first[0].0);

    let status = json(&recents(&db.url, &["queue", "status", "--json"]));
    let users = status["users"].as_array().unwrap();
    assert_eq!(users.len(), 2, "{status}");
    assert_eq!(
        (
            &users[0]["user_id"],
            &users[0]["queued"],
            &users[0]["processing"]
        ),
        (&Value::from(1), &Value::from(2), &Value::from(1))
    );
    assert!(users[0]["latest_dequeue"].is_string(), "{status}");
    assert_eq!(
        (
            &users[1]["user_id"],
            &users[1]["queued"],
            &users[1]["latest_dequeue"]
        ),
        (&Value::from(2), &Value::from(2), &Value::Null)
    );
    let line: Vec<(i64, u64, u64)> = status["next_in_line"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["job_id"].as_i64().unwrap(),
                j["place_in_global_queue"].as_u64().unwrap(),
                j["place_in_user_queue"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        line,
        vec![
            (second[0].0, 1, 1),
            (first[1].0, 2, 1),
            (second[1].0, 3, 2),
            (first[2].0, 4, 2),
        ]
    );

    let two = json(&recents(
        &db.url,
        &["queue", "status", "--limit", "2", "--json"],
    ));
    assert_eq!(two["next_in_line"].as_array().unwrap().len(), 2);
    let text = recents(&db.url, &["queue", "status"]);
    assert!(text.status.success(), "stderr: {}", stderr(&text));
    let out = stdout(&text);
    assert!(out.contains("latest dequeue (UTC)"), "{out}");
    assert!(out.contains("next 4 in line (fair order):"), "{out}");
    assert!(out.contains("never"), "user 2 was never served: {out}");
}

async fn queue_status_refuses_a_bad_limit_with_one_line_and_exit_1(db: &TestDb) {
    assert_fails_with(
        &recents(&db.url, &["queue", "status", "--limit", "0"]),
        "limit must be between 1 and 1000, got 0",
    );
    // Any whole number out of range, negative or huge, gets the same message.
    for limit in ["-1", "99999999999"] {
        assert_fails_with(
            &recents(&db.url, &["queue", "status", "--limit", limit]),
            &format!("limit must be between 1 and 1000, got {limit}"),
        );
    }
    // With --json the error is one JSON object on stderr, with a stable kind.
    let output = recents(&db.url, &["queue", "status", "--limit", "1001", "--json"]);
    assert_json_error(&output, 1, "invalid_limit", "got 1001");
}

/// Exit code `code` and exactly one line on stderr: a JSON object whose
/// `error` is `kind` and whose `message` holds `needle`; nothing on stdout.
fn assert_json_error(output: &Output, code: i32, kind: &str, needle: &str) {
    assert_eq!(output.status.code(), Some(code), "{}", stderr(output));
    assert_eq!(stderr(output).lines().count(), 1, "{}", stderr(output));
    let error: Value = serde_json::from_str(stderr(output).trim()).expect("a JSON error");
    assert_eq!(error["error"], kind, "{error}");
    assert!(
        error["message"].as_str().unwrap_or("").contains(needle),
        "{needle:?} not in {error}"
    );
    assert!(stdout(output).is_empty(), "{}", stdout(output));
}

async fn json_errors_are_one_object_on_stderr_with_a_stable_kind(db: &TestDb) {
    assert_json_error(
        &recents(&db.url, &["recent", "--workspace", "999999", "--json"]),
        1,
        "workspace_not_found",
        "workspace 999999 does not exist",
    );
    assert_json_error(
        &recents(
            &db.url,
            &["recent", "--workspace", "1", "--uid", "", "--json"],
        ),
        1,
        "invalid_uid",
        "empty",
    );
    assert_json_error(
        &recents(&db.url, &["recent", "--json"]),
        2,
        "usage",
        "--workspace",
    );
    assert_json_error(
        &recents(&db.url, &["backfill", "--workspace", "999999", "--json"]),
        1,
        "workspace_not_found",
        "999999",
    );
}

async fn ctrl_c_stops_a_backfill_at_its_checkpoint_and_says_how_to_resume(db: &TestDb) {
    use std::io::{BufRead, BufReader};
    json(&recents(
        &db.url,
        &["seed", "--demo", "--heavy-runs", "20000", "--json"],
    ));
    db.conn
        .execute_unprepared("DELETE FROM workspace_recent_workflows")
        .await
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_recents"))
        .args(["backfill", "--batch-rows", "50"])
        .env("DATABASE_URL", &db.url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The first progress line comes after the first batch.
    let mut progress = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    progress.read_line(&mut first).unwrap();
    assert!(first.contains("rows/s"), "{first}");
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut rest = String::new();
    for line in progress.lines() {
        rest.push_str(&line.unwrap());
        rest.push('\n');
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    let last = rest.lines().last().unwrap_or("");
    assert!(
        last.contains("backfill stopped at its checkpoint")
            && last.contains("run `recents backfill` again to resume"),
        "{rest}"
    );
    let resumed = json(&recents(&db.url, &["backfill", "--json"]));
    assert_eq!(
        (resumed["resumed"].as_bool(), resumed["finished"].as_bool()),
        (Some(true), Some(true))
    );
    let verified = recents(&db.url, &["verify"]);
    assert!(verified.status.success(), "{}", stderr(&verified));
}

async fn seed_scale_generates_the_history_with_its_summary_exact(db: &TestDb) {
    assert_fails_with(
        &recents(&db.url, &["seed", "--scale", "0"]),
        "--scale must be above 0 and at most 10, got 0",
    );
    assert_fails_with(&recents(&db.url, &["seed", "--scale", "11"]), "got 11");
    let seeded = json(&recents(&db.url, &["seed", "--scale", "0.0005", "--json"]));
    // Five heavy workspaces, the team one, and a tail of at least 20.
    assert_eq!(
        seeded["heavy_workspaces"],
        serde_json::json!([1, 2, 3, 4, 5])
    );
    assert_eq!(seeded["team_workspace"], 6);
    let workspaces = seeded["workspaces"].as_u64().unwrap();
    assert!(workspaces >= 26, "{seeded}");
    let runs = seeded["runs"].as_u64().unwrap();
    assert!(runs >= 3_000, "{seeded}");

    // The summary is backfilled: verify finds it exact, over every run.
    let verified = json(&recents(&db.url, &["verify", "--json"]));
    assert_eq!(verified["history_rows"].as_u64(), Some(runs), "{verified}");
    assert_eq!(
        (
            verified["missing"].as_u64(),
            verified["stale"].as_u64(),
            verified["too_high"].as_u64(),
            verified["extra"].as_u64()
        ),
        (Some(0), Some(0), Some(0), Some(0))
    );
    let heavy = json(&recents(&db.url, &["recent", "--workspace", "1", "--json"]));
    assert_eq!(heavy.as_array().unwrap().len(), 1, "one workflow: {heavy}");

    // Generated ids would collide with what is there: refused up front.
    assert_fails_with(
        &recents(&db.url, &["seed", "--scale", "0.0005"]),
        "the scale seed needs an empty database",
    );
}

backend_tests!(
    seed_scale_generates_the_history_with_its_summary_exact,
    queue_status_lists_users_and_the_fair_order,
    queue_status_refuses_a_bad_limit_with_one_line_and_exit_1,
    backfill_and_verify_find_and_repair_drift,
    verify_checks_latest_dequeues_too,
    migrate_reports_and_applies_pending_migrations,
    migrate_leaves_a_teams_migrations_alone,
    every_subcommand_works_on_a_mapped_database,
    seed_demo_then_read_recent_workflows,
    recent_refuses_bad_input_with_one_line_and_exit_1,
    usage_errors_exit_2,
    json_errors_are_one_object_on_stderr_with_a_stable_kind,
    ctrl_c_stops_a_backfill_at_its_checkpoint_and_says_how_to_resume,
);

/// A scratch directory of the test's own, for runs on the embedded database
/// (`recents.db` in the working directory).
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("recents-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn embedded(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recents"))
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .output()
        .expect("the recents binary runs")
}

#[test]
fn subcommands_bring_the_embedded_database_up_to_date_and_leave_nothing_when_they_fail() {
    let dir = scratch("embedded");
    // A failing subcommand on a database it had to create leaves no file.
    assert_fails_with(
        &embedded(&dir, &["recent", "--workspace", "1"]),
        "workspace 1 does not exist",
    );
    assert!(
        !dir.join("recents.db").exists(),
        "no recents.db left behind"
    );
    // A reading subcommand migrates the embedded database first.
    let status = embedded(&dir, &["queue", "status", "--json"]);
    assert!(status.status.success(), "{}", stderr(&status));
    assert!(dir.join("recents.db").exists());
    let migrated = embedded(&dir, &["migrate", "status", "--json"]);
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    // A failure on a database that was already there leaves it alone.
    assert_fails_with(
        &embedded(&dir, &["recent", "--workspace", "1"]),
        "workspace 1 does not exist",
    );
    assert!(dir.join("recents.db").exists());
    // Seeding says what it is doing while it does it.
    let seeded = embedded(&dir, &["seed", "--demo", "--heavy-runs", "50"]);
    assert!(seeded.status.success(), "{}", stderr(&seeded));
    assert!(
        stderr(&seeded).contains("seeding the demo: the heavy workspace: 50 runs of one workflow"),
        "{}",
        stderr(&seeded)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unreachable_database_fails_in_one_line_without_its_password() {
    let output = recents(
        "postgres://operator:hunter2-secret@127.0.0.1:1/recents",
        &["recent", "--workspace", "1"],
    );
    assert_fails_with(&output, "database unavailable");
    assert!(!stderr(&output).contains("hunter2-secret"));
    assert!(
        stderr(&output).contains("operator:***@"),
        "{}",
        stderr(&output)
    );
    let output = recents(
        "mysql://operator:hunter2-secret@127.0.0.1:1/recents",
        &["queue", "status", "--json"],
    );
    assert_json_error(
        &output,
        1,
        "database_unavailable",
        "nothing answers at 127.0.0.1:1",
    );
    assert!(!stderr(&output).contains("hunter2-secret"));
}

#[test]
fn a_malformed_or_foreign_database_url_fails_in_one_line() {
    assert_fails_with(
        &recents("not a url", &["migrate", "status"]),
        "invalid database URL",
    );
    let output = recents("redis://app:hunter2-secret@h/0", &["migrate", "status"]);
    assert_fails_with(&output, "unsupported scheme `redis`");
    assert!(!stderr(&output).contains("hunter2-secret"));
}

#[test]
fn the_console_without_a_terminal_says_to_use_a_subcommand() {
    let dir = std::env::temp_dir().join(format!("recents-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/console.db?mode=rwc", dir.display());
    // Output captured and stdin not a terminal: nothing to draw on.
    let output = recents(&url, &[]);
    assert_fails_with(&output, "the console needs a terminal");
    let _ = std::fs::remove_dir_all(&dir);
}
