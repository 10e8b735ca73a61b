//! Adoption: recents over a backend's own tables (Django-style names, other
//! column names, extra NOT NULL columns, rows already there) and its own
//! migrator (two team migrations before recents' and one after, in one
//! `seaql_migrations`), on every backend. `up` changes no existing row or
//! column, the summaries are exact after the fill and after live writes, the
//! queue works on the backend's jobs table, `down` removes only recents'
//! objects, and a wrong mapping is a typed error that names its key and
//! creates nothing.

use std::sync::LazyLock;

use chrono::{DateTime, Duration, TimeZone, Utc};
use recents::admin::{Migrate, Tables};
use recents::migration::{
    MigrationTrait, MigratorTrait, OwnMigrations, SchemaManager, async_trait,
};
use recents::queue::NewJob;
use recents::{
    Error, Recents, Schema, SchemaError, Scope, UserId, VerifyOptions, VerifyScope, WorkspaceId,
};
use recents_testkit::{TestDb, backend_tests};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, Value};

/// The mapping of the backend below: Django's table names, some columns
/// renamed, recents' own objects under a prefix.
const MAPPING: &str = r#"
prefix = "rc_"

[tables]
workspaces = "workspaces_workspace"
published_runs = "bots_publishedrun"
versions = "bots_publishedrunversion"
saved_runs = "bots_savedrun"
execution_jobs = "batch_spec_workspace_execution_jobs"

[columns.workspaces]
name = "title"
deleted_at = "deleted_at"

[columns.published_runs]
title = "name"

[columns.saved_runs]
uid = "created_by"
version_id = "parent_version_id"
updated_at = "saved_at"

[columns.execution_jobs]
user_id = "owner_id"
cancel = "cancel_requested"
last_heartbeat_at = "heartbeat_at"
"#;

static SCHEMA: LazyLock<Schema> = LazyLock::new(|| Schema::from_toml(MAPPING).unwrap());

/// The team's own tables, as its first two migrations create them.
fn team_tables(backend: DbBackend) -> [Vec<String>; 2] {
    let (id, ts, json) = match backend {
        DbBackend::Postgres => ("BIGSERIAL PRIMARY KEY", "TIMESTAMPTZ", "JSON"),
        DbBackend::MySql => ("BIGINT AUTO_INCREMENT PRIMARY KEY", "DATETIME(6)", "JSON"),
        _ => ("INTEGER PRIMARY KEY AUTOINCREMENT", "DATETIME", "TEXT"),
    };
    let big = "BIGINT";
    [
        vec![
            format!(
                "CREATE TABLE workspaces_workspace (id {id}, title VARCHAR(100) NOT NULL, \
                 slug VARCHAR(100) NOT NULL, deleted_at {ts} NULL)"
            ),
            format!(
                "CREATE TABLE bots_publishedrun (id {id}, workspace_id {big} NOT NULL \
                 REFERENCES workspaces_workspace (id) ON DELETE CASCADE, name VARCHAR(200) NOT NULL, \
                 visibility VARCHAR(20) NOT NULL)"
            ),
            format!(
                "CREATE TABLE bots_publishedrunversion (id {id}, published_run_id {big} NOT NULL \
                 REFERENCES bots_publishedrun (id) ON DELETE CASCADE, changelog TEXT NOT NULL)"
            ),
        ],
        vec![
            format!(
                "CREATE TABLE bots_savedrun (id {id}, workspace_id {big} NOT NULL \
                 REFERENCES workspaces_workspace (id) ON DELETE CASCADE, created_by VARCHAR(128) NOT NULL, \
                 parent_version_id {big} NULL REFERENCES bots_publishedrunversion (id) ON DELETE SET NULL, \
                 run_status VARCHAR(32) NOT NULL, created_at {ts} NOT NULL, saved_at {ts} NOT NULL, \
                 price_cents INTEGER NOT NULL)"
            ),
            format!(
                "CREATE TABLE batch_spec_workspace_execution_jobs (id {id}, owner_id {big} NOT NULL, \
                 state VARCHAR(16) NOT NULL, payload {json} NOT NULL, created_at {ts} NOT NULL, \
                 started_at {ts} NULL, finished_at {ts} NULL, process_after {ts} NULL, \
                 num_resets INTEGER NOT NULL DEFAULT 0, num_failures INTEGER NOT NULL DEFAULT 0, \
                 failure_message TEXT NULL, worker_hostname VARCHAR(255) NULL, heartbeat_at {ts} NULL, \
                 cancel_requested BOOLEAN NOT NULL DEFAULT FALSE, batch_spec_id {big} NOT NULL)"
            ),
        ],
    ]
}

const TEAM_TABLES: [&str; 5] = [
    "batch_spec_workspace_execution_jobs",
    "bots_savedrun",
    "bots_publishedrunversion",
    "bots_publishedrun",
    "workspaces_workspace",
];

macro_rules! team_migration {
    ($module:ident, $body:expr, $down:expr) => {
        mod $module {
            use super::*;
            use recents::migration::MigrationName;

            pub struct Migration;

            impl MigrationName for Migration {
                fn name(&self) -> &str {
                    stringify!($module)
                }
            }

            #[async_trait::async_trait]
            impl MigrationTrait for Migration {
                async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                    let body: fn(DbBackend) -> Vec<String> = $body;
                    for sql in body(manager.get_database_backend()) {
                        manager.get_connection().execute_unprepared(&sql).await?;
                    }
                    Ok(())
                }

                async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                    let down: &[&str] = $down;
                    for table in down {
                        manager
                            .get_connection()
                            .execute_unprepared(&format!("DROP TABLE {table}"))
                            .await?;
                    }
                    Ok(())
                }
            }
        }
    };
}

team_migration!(
    m20240101_000001_team_workflows,
    |backend| team_tables(backend)[0].clone(),
    &[
        "bots_publishedrunversion",
        "bots_publishedrun",
        "workspaces_workspace"
    ]
);
team_migration!(
    m20240101_000002_team_runs_and_jobs,
    |backend| team_tables(backend)[1].clone(),
    &["batch_spec_workspace_execution_jobs", "bots_savedrun"]
);
team_migration!(
    m20990101_000001_team_audit,
    |_| vec![
        "CREATE TABLE team_audit (id BIGINT NOT NULL PRIMARY KEY, what VARCHAR(50) NOT NULL)"
            .into()
    ],
    &["team_audit"]
);

/// The team's migrator, as the README shows it: its own migrations around
/// recents', in one `seaql_migrations`.
struct TeamMigrator;

#[async_trait::async_trait]
impl MigratorTrait for TeamMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all: Vec<Box<dyn MigrationTrait>> = vec![
            Box::new(m20240101_000001_team_workflows::Migration),
            Box::new(m20240101_000002_team_runs_and_jobs::Migration),
        ];
        all.extend(recents::migration::migrations(&SCHEMA));
        all.push(Box::new(m20990101_000001_team_audit::Migration));
        all
    }
}

fn recents_count() -> u32 {
    recents::migration::migrations(&SCHEMA).len() as u32
}

/// An empty database: the test kit's migrated one, rolled back (its
/// migration table goes too).
async fn empty(db: &TestDb) {
    recents::migration::Migrator::reset(&db.conn).await.unwrap();
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + seconds, 0).unwrap()
}

async fn exec(c: &DatabaseConnection, sql: &str, values: Vec<Value>) -> sea_orm::ExecResult {
    let backend = c.get_database_backend();
    c.execute_raw(Statement::from_sql_and_values(
        backend,
        recents_schema_numbered(backend, sql),
        values,
    ))
    .await
    .unwrap_or_else(|err| panic!("{sql}: {err}"))
}

fn recents_schema_numbered(backend: DbBackend, sql: &str) -> String {
    recents::admin::statement(backend, sql, vec![]).sql
}

/// The id of the row just inserted (`RETURNING id` where there is one).
async fn insert(c: &DatabaseConnection, sql: &str, values: Vec<Value>) -> i64 {
    let backend = c.get_database_backend();
    if backend == DbBackend::MySql {
        return exec(c, sql, values).await.last_insert_id() as i64;
    }
    let row = c
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            recents_schema_numbered(backend, &format!("{sql} RETURNING id")),
            values,
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "id").unwrap()
}

/// The team's history, written by the team's own code: two workspaces, three
/// workflows, runs of three users over them (one without a version).
struct History {
    workspaces: Vec<WorkspaceId>,
    versions: Vec<i64>,
}

async fn write_history(c: &DatabaseConnection) -> History {
    let mut workspaces = Vec::new();
    for name in ["acme", "globex"] {
        workspaces.push(WorkspaceId(
            insert(
                c,
                "INSERT INTO workspaces_workspace (title, slug) VALUES (?, ?)",
                vec![name.into(), name.into()],
            )
            .await,
        ));
    }
    let mut versions = Vec::new();
    for (n, title) in ["Deploy", "Report", "Backup"].iter().enumerate() {
        let ws = workspaces[n % 2];
        let workflow = insert(
            c,
            "INSERT INTO bots_publishedrun (workspace_id, name, visibility) VALUES (?, ?, 'team')",
            vec![ws.0.into(), (*title).into()],
        )
        .await;
        versions.push(
            insert(
                c,
                "INSERT INTO bots_publishedrunversion (published_run_id, changelog) VALUES (?, 'v1')",
                vec![workflow.into()],
            )
            .await,
        );
    }
    for n in 0..60i64 {
        let v = versions[(n % 3) as usize];
        let ws = workspaces[(n % 3 % 2) as usize];
        let uid = ["ann", "bob", "cy"][(n % 5 % 3) as usize];
        let version: Option<i64> = (n % 7 != 0).then_some(v);
        save_raw(c, ws, uid, version, at(n * 17 % 50)).await;
    }
    History {
        workspaces,
        versions,
    }
}

async fn save_raw(
    c: &DatabaseConnection,
    ws: WorkspaceId,
    uid: &str,
    version: Option<i64>,
    saved_at: DateTime<Utc>,
) -> i64 {
    insert(
        c,
        "INSERT INTO bots_savedrun (workspace_id, created_by, parent_version_id, run_status, \
         created_at, saved_at, price_cents) VALUES (?, ?, ?, 'done', ?, ?, 7)",
        vec![
            ws.0.into(),
            uid.into(),
            version.into(),
            saved_at.into(),
            saved_at.into(),
        ],
    )
    .await
}

/// Every row of the team's tables, column by column as text, and every
/// column's declared type (recents' own, prefixed columns left out).
async fn checksum(c: &DatabaseConnection) -> Vec<String> {
    let backend = c.get_database_backend();
    let mut out = Vec::new();
    for table in TEAM_TABLES {
        let columns = team_columns(c, table).await;
        out.push(format!("{table}: {columns:?}"));
        let cast = |col: &str| match backend {
            DbBackend::MySql => format!("COALESCE(CAST({col} AS CHAR), '-')"),
            _ => format!("COALESCE(CAST({col} AS TEXT), '-')"),
        };
        let concat = columns
            .iter()
            .map(|(name, _)| cast(name))
            .collect::<Vec<_>>();
        let joined = match backend {
            DbBackend::MySql => format!("CONCAT_WS('|', {})", concat.join(", ")),
            _ => concat.join(" || '|' || "),
        };
        let rows = c
            .query_all_raw(Statement::from_string(
                backend,
                format!("SELECT {joined} AS r FROM {table} ORDER BY id"),
            ))
            .await
            .unwrap();
        for row in rows {
            out.push(row.try_get::<String>("", "r").unwrap());
        }
    }
    out
}

async fn team_columns(c: &DatabaseConnection, table: &str) -> Vec<(String, String)> {
    let backend = c.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT column_name::text AS n, data_type::text AS t FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position"
        }
        DbBackend::MySql => {
            "SELECT CAST(COLUMN_NAME AS CHAR) AS n, CAST(COLUMN_TYPE AS CHAR) AS t \
             FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? \
             ORDER BY ordinal_position"
        }
        _ => "SELECT name AS n, type AS t FROM pragma_table_info(?)",
    };
    let rows = c
        .query_all_raw(Statement::from_sql_and_values(backend, sql, [table.into()]))
        .await
        .unwrap();
    rows.iter()
        .map(|r| (r.try_get("", "n").unwrap(), r.try_get("", "t").unwrap()))
        .filter(|(name, _): &(String, String)| !name.starts_with("rc_"))
        .collect()
}

/// Every scope's recent workflows from the summary equal the history query.
async fn assert_exact(c: &DatabaseConnection, recents: &Recents, history: &History) {
    let report = recents
        .verify(c, &VerifyScope::All, &VerifyOptions::default())
        .await
        .unwrap();
    assert!(report.is_exact(), "{report:?}");
    for ws in &history.workspaces {
        for scope in [
            Scope::Workspace,
            Scope::Member("ann".into()),
            Scope::Member("bob".into()),
            Scope::Member("cy".into()),
        ] {
            assert_eq!(
                recents.recent_workflows(c, *ws, &scope, 10).await.unwrap(),
                recents
                    .recent_workflows_from_history(c, *ws, &scope, 10)
                    .await
                    .unwrap(),
                "{ws} {scope:?}"
            );
        }
    }
}

async fn recents_tables(c: &DatabaseConnection) -> Vec<&'static str> {
    let manager = SchemaManager::new(c);
    let mut found = Vec::new();
    for table in [
        "rc_workspace_recent_workflows",
        "rc_execution_last_dequeues",
        "rc_recents_backfill_checkpoints",
        "rc_execution_dequeue_lock",
        "workspace_recent_workflows",
        "saved_runs",
    ] {
        if manager.has_table(table).await.unwrap() {
            found.push(table);
        }
    }
    found
}

async fn a_team_adopts_recents_over_its_own_tables_and_migrator(db: &TestDb) {
    let c = &db.conn;
    empty(db).await;
    TeamMigrator::up(c, Some(2)).await.unwrap();
    let history = write_history(c).await;
    let before = checksum(c).await;

    // recents' migrations, from the team's migrator: the fill included.
    TeamMigrator::up(c, Some(recents_count())).await.unwrap();
    assert_eq!(
        checksum(c).await,
        before,
        "recents changed a row or column of the team's"
    );
    TeamMigrator::up(c, None).await.unwrap();
    assert!(
        TeamMigrator::get_pending_migrations(c)
            .await
            .unwrap()
            .is_empty()
    );
    let status = OwnMigrations::new(SCHEMA.clone()).status(c).await.unwrap();
    assert!(status.pending.is_empty(), "{status:?}");
    assert_eq!(status.applied.len() as u32, recents_count());
    // The library, the CLI and the console see a current schema beside the
    // team's migrations.
    let (_, checked) = recents::admin::open_tables(
        &db.url,
        Migrate::Never,
        &Tables::Mapped(Box::new(SCHEMA.clone())),
    )
    .await
    .unwrap();
    let recents = Recents::connect(c, checked).await.unwrap();
    assert_exact(c, &recents, &history).await;
    assert_eq!(
        recents_tables(c).await,
        [
            "rc_workspace_recent_workflows",
            "rc_execution_last_dequeues",
            "rc_recents_backfill_checkpoints",
            "rc_execution_dequeue_lock"
        ]
    );

    // The team's run-save transaction: its own INSERT and UPDATE, then touch
    // (and retract for a move), with the plain value.
    let ws = history.workspaces[0];
    let id = save_raw(c, ws, "dee", Some(history.versions[0]), at(100)).await;
    let run = recents::SavedRun {
        id: recents::SavedRunId(id),
        workspace_id: ws,
        uid: "dee".into(),
        version_id: Some(recents::VersionId(history.versions[0])),
        updated_at: at(100),
    };
    recents
        .touch(c, &run, &recents::SaveOptions::exact())
        .await
        .unwrap();
    exec(
        c,
        "UPDATE bots_savedrun SET parent_version_id = ?, saved_at = ? WHERE id = ?",
        vec![history.versions[2].into(), at(101).into(), id.into()],
    )
    .await;
    recents.retract(c, &run).await.unwrap();
    recents
        .touch(
            c,
            &recents::SavedRun {
                updated_at: at(101),
                version_id: Some(recents::VersionId(history.versions[2])),
                ..run.clone()
            },
            &recents::SaveOptions::exact(),
        )
        .await
        .unwrap();
    // save_run for a team that lets recents write the row: its extra NOT
    // NULL column has no default, so the insert is refused by the database.
    let refused = recents
        .save_run(
            c,
            &recents::RunSave {
                id: None,
                workspace_id: ws,
                uid: "eve".into(),
                parent_version_id: Some(recents::VersionId(history.versions[0])),
                run_status: "done".into(),
                updated_at: at(102),
            },
            &recents::SaveOptions::exact(),
        )
        .await;
    assert!(matches!(refused, Err(Error::Database(_))), "{refused:?}");
    // A delete through recents, and one of a version.
    recents
        .delete_saved_run(c, ws, recents::SavedRunId(id))
        .await
        .unwrap();
    recents
        .delete_version(c, recents::VersionId(history.versions[1]))
        .await
        .unwrap();
    assert_exact(c, &recents, &history).await;

    // The fair queue on the team's jobs table (whose extra NOT NULL column
    // has no default: the team enqueues with its own INSERTs).
    for (user, n) in [(7i64, 3), (8, 1), (9, 2)] {
        for k in 0..n {
            insert(
                c,
                "INSERT INTO batch_spec_workspace_execution_jobs \
                 (owner_id, state, payload, created_at, batch_spec_id) VALUES (?, 'queued', ?, ?, 1)",
                vec![
                    user.into(),
                    serde_json::json!({ "k": k }).into(),
                    (at(200) + Duration::seconds(user * 10 + k)).into(),
                ],
            )
            .await;
        }
    }
    let line = recents.next_in_line(c, 10).await.unwrap();
    assert_eq!(line, recents.fair_order_from_history(c, 10).await.unwrap());
    let mut served = Vec::new();
    while let Some(job) = recents.dequeue(c, "worker-1").await.unwrap() {
        served.push(job.user_id);
        if served.len() % 2 == 0 {
            recents.complete(c, &job).await.unwrap();
        } else {
            recents
                .fail(c, &job, "boom", &recents::queue::QueueOptions::default())
                .await
                .unwrap();
        }
    }
    assert_eq!(&served[..3], [7, 8, 9], "one job per user first");
    assert_eq!(served.len(), 6);
    assert!(
        recents
            .verify_last_dequeues(c, 1000)
            .await
            .unwrap()
            .is_exact()
    );
    let heartbeat = recents
        .heartbeat(c, "worker-1", &[recents::JobId(1)])
        .await
        .unwrap();
    assert!(heartbeat.alive.is_empty());
    assert!(!recents.queue_stats(c).await.unwrap().is_empty());
    // enqueue through recents is refused by the team's own NOT NULL column,
    // with nothing written.
    assert!(
        recents
            .enqueue(c, &NewJob::now(UserId(1), serde_json::json!({})))
            .await
            .is_err()
    );

    // Down: the team's last migration, then recents' only. The team's tables
    // and rows stay as they are.
    let kept = checksum(c).await;
    TeamMigrator::down(c, Some(1 + recents_count()))
        .await
        .unwrap();
    assert_eq!(checksum(c).await, kept);
    assert!(recents_tables(c).await.is_empty());
    // No trigger of recents is left on the jobs table.
    insert(
        c,
        "INSERT INTO batch_spec_workspace_execution_jobs \
         (owner_id, state, payload, created_at, started_at, batch_spec_id) VALUES (1, 'processing', ?, ?, ?, 1)",
        vec![serde_json::json!({}).into(), at(300).into(), at(300).into()],
    )
    .await;
    exec(c, "DELETE FROM batch_spec_workspace_execution_jobs", vec![]).await;

    // Up again (the fill of existing history, again exact), then `fresh`,
    // which drops every table of the database, the team's too.
    TeamMigrator::up(c, None).await.unwrap();
    assert_exact(c, &recents, &history).await;
    // SQLite checks foreign keys on DROP TABLE, and sea-orm-migration's
    // `fresh` drops tables in the order the catalog lists them: a child after
    // its parent fails there. A team on SQLite turns the checks off for it,
    // on the one connection that runs it (the pragma is per connection).
    let one = db.connect_again(1).await;
    let c = &one;
    let sqlite = c.get_database_backend() == DbBackend::Sqlite;
    if sqlite {
        c.execute_unprepared("PRAGMA foreign_keys = OFF")
            .await
            .unwrap();
    }
    TeamMigrator::fresh(c).await.unwrap();
    if sqlite {
        c.execute_unprepared("PRAGMA foreign_keys = ON")
            .await
            .unwrap();
    }
    assert!(
        TeamMigrator::get_pending_migrations(c)
            .await
            .unwrap()
            .is_empty()
    );
    let empty_again: i64 = c
        .query_one_raw(Statement::from_string(
            c.get_database_backend(),
            "SELECT COUNT(*) AS n FROM bots_savedrun",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "n")
        .unwrap();
    assert_eq!(
        empty_again, 0,
        "fresh dropped and recreated the team's tables"
    );
}

/// `migrate`'s result on a database with the team's tables and no recents.
async fn with_mapping(db: &TestDb, mapping: &str) -> Result<(), Error> {
    let schema = Schema::from_toml(mapping)?;
    recents::admin::open_tables(&db.url, Migrate::Pending, &Tables::Mapped(Box::new(schema)))
        .await
        .map(|_| ())
}

async fn a_wrong_mapping_is_a_typed_error_naming_its_key_and_creates_nothing(db: &TestDb) {
    let c = &db.conn;
    empty(db).await;
    TeamMigrator::up(c, Some(2)).await.unwrap();
    let cases: [(&str, &str); 5] = [
        (
            &MAPPING.replace("\"bots_savedrun\"", "\"bots_saved_run\""),
            "tables.saved_runs",
        ),
        (
            &MAPPING.replace("uid = \"created_by\"", "uid = \"author\""),
            "columns.saved_runs.uid",
        ),
        // A timestamp column that is text.
        (
            &MAPPING.replace("updated_at = \"saved_at\"", "updated_at = \"run_status\""),
            "columns.saved_runs.updated_at",
        ),
        (
            &MAPPING.replace("\"bots_savedrun\"", "\"x; DROP TABLE y\""),
            "tables.saved_runs",
        ),
        (&format!("{MAPPING}\n[recents]\nmode = 1\n"), "recents"),
    ];
    for (mapping, key) in &cases {
        let err = with_mapping(db, mapping).await.unwrap_err();
        let named = match &err {
            Error::Schema(
                SchemaError::MissingTable { key: k, .. }
                | SchemaError::MissingColumn { key: k, .. }
                | SchemaError::WrongType { key: k, .. }
                | SchemaError::InvalidIdentifier { key: k, .. },
            ) => k == key,
            Error::Schema(SchemaError::Parse { message }) => message.contains(key),
            _ => false,
        };
        assert!(named, "{key}: {err:?}");
        assert!(err.to_string().contains(key), "{err}");
        assert!(
            recents_tables(c).await.is_empty(),
            "{key}: something was created"
        );
    }
    // The mapping right, the same call migrates.
    with_mapping(db, MAPPING).await.unwrap();
    assert_eq!(recents_tables(c).await.len(), 4);
}

backend_tests!(
    a_team_adopts_recents_over_its_own_tables_and_migrator,
    a_wrong_mapping_is_a_typed_error_naming_its_key_and_creates_nothing,
);
