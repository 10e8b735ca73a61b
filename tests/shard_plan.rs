//! The Citus plan of docs/scale-out.md, held against the code: every
//! statement a recent-workflows path sends for one workspace must be
//! routable to that workspace's shard.
//!
//! The plan distributes `saved_runs` and `workspace_recent_workflows` by
//! `workspace_id` and `workspaces` by `id`, co-located; `published_runs` and
//! `published_run_versions` become reference tables. A statement is confined
//! when each distributed table it names is pinned to the one workspace: an
//! equality of its distribution column with a bound value (all such values
//! the same workspace), or a join on the distribution column with a table
//! so pinned. Anything else Citus runs on every shard, and fails here.
//!
//! Statements are recorded from a real PostgreSQL run with sea-orm's
//! metric callback, which sees every statement on the connection and its
//! transactions, bound values included, without touching the library.
//!
//! Paths that send a fan-out statement today are `#[ignore]`d with the
//! statement named, so that CI enforces the paths that hold and the gap
//! stays visible (`cargo test --test shard_plan -- --ignored` shows it).

mod support;

use std::sync::{Arc, Mutex};

use recents::entity::prelude::*;
use recents::{
    BackfillOptions, BackfillScope, PublishedRunId, RunSave, SaveOptions, SavedRunId, Scope,
    VerifyOptions, VerifyScope, VersionId, WorkspaceId, backfill, delete_published_run,
    delete_saved_run, delete_version, home_recent_workflows, recent_workflows, retract, save_run,
    touch, verify,
};
use recents_testkit::{Backend, TestDb};
use sea_orm::{DatabaseConnection, EntityTrait, Statement, TransactionTrait, Value};

/// Distributed tables and their distribution columns, co-located.
const DISTRIBUTED: [(&str, &str); 3] = [
    ("saved_runs", "workspace_id"),
    ("workspace_recent_workflows", "workspace_id"),
    ("workspaces", "id"),
];
/// Reference tables: a copy on every node, so any statement on them alone
/// (or joined to a pinned distributed table) stays on one node.
const REFERENCE: [&str; 2] = ["published_runs", "published_run_versions"];

/// Two workspaces, so that "one workspace" means something: the one the
/// path works on, and another whose rows must not be touched.
struct Fixture {
    db: TestDb,
    target: WorkspaceId,
    version: VersionId,
    published: PublishedRunId,
    runs: Vec<i64>,
}

async fn fixture() -> Option<Fixture> {
    let db = TestDb::new(Backend::Postgres).await?;
    let conn = &db.conn;
    let target = support::workspace(conn, "target", false).await;
    let other = support::workspace(conn, "other", false).await;
    let published = support::published_run(conn, target, "wf").await;
    let version = support::version(conn, published).await;
    let other_version =
        support::version(conn, support::published_run(conn, other, "wf2").await).await;
    let mut runs = Vec::new();
    for (i, (ws, v, uid)) in [
        (target, version, "alice"),
        (target, version, "bob"),
        (other, other_version, "carol"),
        (other, version, "dave"),
    ]
    .into_iter()
    .enumerate()
    {
        let id = support::save_committed(
            conn,
            &RunSave {
                id: None,
                workspace_id: ws,
                uid: uid.into(),
                parent_version_id: Some(v),
                run_status: "done".into(),
                updated_at: support::at(i as i64 * 10, 0),
            },
        )
        .await
        .unwrap();
        runs.push(id);
    }
    Some(Fixture {
        db,
        target,
        version,
        published,
        runs,
    })
}

/// A second pool on the test database whose every statement is recorded.
async fn recording(db: &TestDb) -> (DatabaseConnection, Arc<Mutex<Vec<Statement>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut conn = db.connect_again(2).await;
    let sink = log.clone();
    conn.set_metric_callback(move |info| sink.lock().unwrap().push(info.statement.clone()));
    (conn, log)
}

/// Checks every recorded statement; panics listing those that fan out.
/// `workspace`: the one every statement must stay in; `None` for the
/// deletes of versions and published runs, whose summary rows live in every
/// workspace that ran them: each statement must still stay in one.
fn assert_confined(path: &str, log: &Mutex<Vec<Statement>>, workspace: Option<WorkspaceId>) {
    let statements = log.lock().unwrap().clone();
    assert!(!statements.is_empty(), "{path}: no statement was recorded");
    let fan_out: Vec<String> = statements
        .iter()
        .filter_map(|s| {
            confined(s, workspace)
                .err()
                .map(|why| format!("  {why}\n    {}", s.sql))
        })
        .collect();
    assert!(
        fan_out.is_empty(),
        "{path}: {} of {} statements would run on every shard:\n{}",
        fan_out.len(),
        statements.len(),
        fan_out.join("\n")
    );
}

/// Whether `statement` is routable to the shard of `workspace` under the
/// plan; the reason when it is not.
fn confined(statement: &Statement, workspace: Option<WorkspaceId>) -> Result<(), String> {
    let sql = normalize(&statement.sql);
    let values: Vec<Value> = statement
        .values
        .as_ref()
        .map(|v| v.0.clone())
        .unwrap_or_default();
    let words: Vec<&str> = sql.split_whitespace().collect();
    // Transaction control, savepoints, settings and lock functions name no
    // table: they run where the transaction runs.
    let first = words.first().copied().unwrap_or("");
    if matches!(
        first,
        "begin" | "commit" | "rollback" | "savepoint" | "release" | "set" | "show"
    ) {
        return Ok(());
    }
    let mut pinned_values = Vec::new();
    let mut occurrences = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let Some((table, column)) = DISTRIBUTED.iter().find(|(t, _)| t == word) else {
            continue;
        };
        // `FROM saved_runs s`, `UPDATE saved_runs SET`, `INSERT INTO saved_runs (`.
        let alias = match words.get(i + 1).copied() {
            Some("as") => words.get(i + 2).copied().unwrap_or(table),
            Some(next) if is_alias(next) => next,
            _ => table,
        };
        occurrences.push((*table, *column, alias, i));
    }
    if occurrences.is_empty() {
        return match words.iter().find(|w| REFERENCE.contains(w)) {
            Some(_) | None => Ok(()),
        };
    }
    for (table, column, alias, at) in &occurrences {
        let is_insert_target = at >= &2 && words[at - 1] == "into" && words[at - 2] == "insert";
        if is_insert_target {
            match insert_value(&words, *at, column, &values) {
                Some(Pinned::Value(v)) => pinned_values.push(v),
                Some(Pinned::Joined) => {}
                None => {
                    return Err(format!(
                        "INSERT INTO {table}: {column} is not a bound value or a pinned column"
                    ));
                }
            }
            continue;
        }
        match pinned(&words, table, column, alias, &values, &occurrences) {
            Some(Pinned::Value(v)) => pinned_values.push(v),
            Some(Pinned::Joined) => {}
            None => {
                return Err(format!(
                    "{table} ({alias}) is not pinned by {column} = one bound value"
                ));
            }
        }
    }
    let one = workspace.map_or(pinned_values.first().copied(), |w| Some(w.0));
    match pinned_values.iter().find(|v| Some(**v) != one) {
        Some(other) => Err(format!(
            "pinned to workspace {other}, not only to {}",
            one.unwrap_or_default()
        )),
        None if pinned_values.is_empty() => {
            Err("no distributed table is pinned to a bound workspace".into())
        }
        None => Ok(()),
    }
}

enum Pinned {
    Value(i64),
    /// Equal to the distribution column of another occurrence, which is
    /// itself checked.
    Joined,
}

/// `alias.column = $n` (or `column = $n` for an unaliased table), or
/// `alias.column = other.distcol` for another distributed occurrence.
fn pinned(
    words: &[&str],
    table: &str,
    column: &str,
    alias: &str,
    values: &[Value],
    occurrences: &[(&str, &str, &str, usize)],
) -> Option<Pinned> {
    let mut names = vec![format!("{alias}.{column}")];
    if alias == table {
        names.push(column.to_owned());
    }
    for (i, word) in words.iter().enumerate() {
        if !names.iter().any(|n| n == word) {
            continue;
        }
        let (op, rhs) = (words.get(i + 1)?, words.get(i + 2)?);
        let lhs = if i >= 2 && words[i - 1] == "=" {
            Some(words[i - 2])
        } else {
            None
        };
        for other in [(*op == "=").then_some(*rhs), lhs].into_iter().flatten() {
            if let Some(v) = bound(other, values) {
                return Some(Pinned::Value(v));
            }
            // A join on the distribution column with another distributed
            // table, or with a derived table's copy of it (`h.workspace_id`
            // of a subquery over a pinned table): co-located, one shard.
            let joined = occurrences
                .iter()
                .any(|(t, c, a, _)| (*a != alias || *t != table) && other == format!("{a}.{c}"))
                || (other != format!("{alias}.{column}") && other.ends_with(&format!(".{column}")));
            if joined {
                return Some(Pinned::Joined);
            }
        }
    }
    None
}

/// The workspace an `INSERT INTO table (cols) VALUES (...)` or
/// `... SELECT ...` writes: the bound value at the column's position, or a
/// pinned distribution column of the SELECT (`w.id`).
fn insert_value(words: &[&str], at: usize, column: &str, values: &[Value]) -> Option<Pinned> {
    let open = words.get(at + 1)?;
    if *open != "(" {
        return None;
    }
    let close = at + 1 + words[at + 1..].iter().position(|w| *w == ")")?;
    let columns: Vec<&str> = words[at + 2..close]
        .iter()
        .copied()
        .filter(|w| *w != ",")
        .collect();
    let position = columns.iter().position(|c| *c == column)?;
    let items: Vec<&str> = match words.get(close + 1).copied() {
        Some("values") => {
            let end = close + 2 + words[close + 2..].iter().position(|w| *w == ")")?;
            words[close + 3..end]
                .iter()
                .copied()
                .filter(|w| *w != ",")
                .collect()
        }
        Some("select") => words[close + 2..]
            .iter()
            .copied()
            .take_while(|w| *w != "from")
            .filter(|w| *w != ",")
            .collect(),
        _ => return None,
    };
    let item = items.get(position)?;
    if let Some(v) = bound(item, values) {
        return Some(Pinned::Value(v));
    }
    // `SELECT h.* FROM (…) h`: the rows come from the SELECT, whose own
    // distributed tables are checked (and must pin a value) on their own.
    if item.ends_with(".*") || *item == "*" {
        return Some(Pinned::Joined);
    }
    // `SELECT w.id, … FROM workspaces w WHERE w.id = $n`: pinned through w.
    DISTRIBUTED
        .iter()
        .any(|(_, c)| item.ends_with(&format!(".{c}")))
        .then_some(Pinned::Joined)
}

/// The i64 bound to a `$n` placeholder.
fn bound(word: &str, values: &[Value]) -> Option<i64> {
    let n: usize = word.strip_prefix('$')?.parse().ok()?;
    match values.get(n.checked_sub(1)?)? {
        Value::BigInt(Some(v)) => Some(*v),
        Value::Int(Some(v)) => Some(i64::from(*v)),
        _ => None,
    }
}

fn is_alias(word: &str) -> bool {
    !matches!(
        word,
        "set"
            | "where"
            | "join"
            | "left"
            | "on"
            | "("
            | ")"
            | ","
            | "values"
            | "select"
            | "group"
            | "order"
            | "limit"
            | "for"
            | "cross"
            | "inner"
            | "using"
            | "returning"
            | "union"
            | "on_conflict"
    ) && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Lowercase, quotes dropped, punctuation as words of its own.
fn normalize(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() * 2);
    for c in sql.chars() {
        match c {
            '"' | '`' => {}
            '(' | ')' | ',' | '=' | ';' => {
                out.push(' ');
                out.push(c);
                out.push(' ');
            }
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

fn save(f: &Fixture, id: Option<i64>, uid: &str, seconds: i64) -> RunSave {
    RunSave {
        id: id.map(SavedRunId),
        workspace_id: f.target,
        uid: uid.into(),
        parent_version_id: Some(f.version),
        run_status: "done".into(),
        updated_at: support::at(seconds, 0),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_run_and_the_reads_stay_in_one_workspace() {
    let Some(f) = fixture().await else { return };
    let (conn, log) = recording(&f.db).await;
    let txn = conn.begin().await.unwrap();
    save_run(&txn, &save(&f, None, "erin", 100), &SaveOptions::exact())
        .await
        .unwrap();
    txn.commit().await.unwrap();
    assert_confined("save_run (new run)", &log, Some(f.target));
    log.lock().unwrap().clear();
    recent_workflows(&conn, f.target, &Scope::Workspace, 4)
        .await
        .unwrap();
    recent_workflows(&conn, f.target, &Scope::Member("alice".into()), 4)
        .await
        .unwrap();
    home_recent_workflows(&conn, f.target, "alice", 4)
        .await
        .unwrap();
    assert_confined("recent_workflows reads", &log, Some(f.target));
    f.db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touch_after_a_backend_write_stays_in_one_workspace() {
    let Some(f) = fixture().await else { return };
    let (conn, log) = recording(&f.db).await;
    let txn = conn.begin().await.unwrap();
    let run = SavedRun::find_by_id(f.runs[0])
        .one(&txn)
        .await
        .unwrap()
        .unwrap();
    log.lock().unwrap().clear();
    touch(&txn, &(&run).into(), &SaveOptions::exact())
        .await
        .unwrap();
    txn.commit().await.unwrap();
    assert_confined("touch", &log, Some(f.target));
    f.db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_run_of_an_existing_run_stays_in_one_workspace() {
    let Some(f) = fixture().await else { return };
    let (conn, log) = recording(&f.db).await;
    let txn = conn.begin().await.unwrap();
    save_run(
        &txn,
        &save(&f, Some(f.runs[0]), "alice", 200),
        &SaveOptions::exact(),
    )
    .await
    .unwrap();
    txn.commit().await.unwrap();
    assert_confined("save_run (existing run)", &log, Some(f.target));
    f.db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retract_stays_in_one_workspace() {
    let Some(f) = fixture().await else { return };
    let (conn, log) = recording(&f.db).await;
    let txn = conn.begin().await.unwrap();
    let run = SavedRun::find_by_id(f.runs[1])
        .one(&txn)
        .await
        .unwrap()
        .unwrap();
    log.lock().unwrap().clear();
    retract(&txn, &(&run).into()).await.unwrap();
    txn.rollback().await.unwrap();
    assert_confined("retract", &log, Some(f.target));
    f.db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_saved_run_stays_in_one_workspace() {
    let Some(f) = fixture().await else { return };
    let (conn, log) = recording(&f.db).await;
    delete_saved_run(&conn, f.target, SavedRunId(f.runs[1]))
        .await
        .unwrap();
    assert_confined("delete_saved_run", &log, Some(f.target));
    f.db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_version_reads_its_users_on_every_shard_and_the_rest_stays_in_one_each() {
    let Some(f) = fixture().await else { return };
    let (conn, log) = recording(&f.db).await;
    delete_version(&conn, f.version).await.unwrap();
    // A version's runs may be saved in any workspace: the plan makes this one
    // read a deliberate multi-shard statement (docs/scale-out.md), and only it.
    let multi_shard = "SELECT DISTINCT \"workspace_id\" AS workspace_id, \"uid\" AS uid FROM \"saved_runs\" \
         WHERE \"parent_version_id\" = $1";
    let removed = {
        let mut statements = log.lock().unwrap();
        let before = statements.len();
        statements.retain(|s| normalize(&s.sql) != normalize(multi_shard));
        before - statements.len()
    };
    assert_eq!(removed, 1, "the one multi-shard read");
    assert_confined("delete_version", &log, None);
    f.db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_published_run_stays_in_one_workspace() {
    let Some(f) = fixture().await else { return };
    let (conn, log) = recording(&f.db).await;
    delete_published_run(&conn, f.published).await.unwrap();
    assert_confined("delete_published_run", &log, None);
    f.db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_of_one_workspace_stays_in_it() {
    let Some(f) = fixture().await else { return };
    let (conn, log) = recording(&f.db).await;
    backfill(
        &conn,
        &BackfillScope::RecentWorkflowsOf(f.target),
        &BackfillOptions::default(),
        |_| {},
    )
    .await
    .unwrap();
    assert_confined("backfill RecentWorkflowsOf", &log, Some(f.target));
    f.db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_of_one_workspace_stays_in_it() {
    let Some(f) = fixture().await else { return };
    let (conn, log) = recording(&f.db).await;
    let report = verify(
        &conn,
        &VerifyScope::Workspace(f.target),
        &VerifyOptions::default(),
    )
    .await
    .unwrap();
    assert!(report.is_exact(), "{report:?}");
    assert_confined("verify Workspace", &log, Some(f.target));
    f.db.drop_database().await;
}

/// The checker itself: it must refuse what Citus would fan out.
#[test]
fn the_checker_refuses_statements_that_fan_out() {
    let ws = Some(WorkspaceId(7));
    let st = |sql: &str, values: Vec<Value>| {
        Statement::from_sql_and_values(sea_orm::DbBackend::Postgres, sql, values)
    };
    assert!(
        confined(
            &st("SELECT * FROM saved_runs WHERE id = $1", vec![1i64.into()]),
            ws
        )
        .is_err()
    );
    assert!(
        confined(
            &st(
                "SELECT * FROM saved_runs s WHERE s.workspace_id = $1",
                vec![8i64.into()]
            ),
            ws
        )
        .is_err(),
        "another workspace"
    );
    assert!(
        confined(
            &st(
                "SELECT * FROM saved_runs s JOIN published_run_versions v ON v.id = s.parent_version_id \
                 WHERE s.workspace_id = $1",
                vec![7i64.into()]
            ),
            ws
        )
        .is_ok()
    );
    assert!(
        confined(
            &st(
                "INSERT INTO workspace_recent_workflows (workspace_id, uid) VALUES ($1, $2)",
                vec![7i64.into(), "a".into()]
            ),
            ws
        )
        .is_ok()
    );
    assert!(
        confined(
            &st("SELECT COUNT(*) FROM workspace_recent_workflows", vec![]),
            ws
        )
        .is_err()
    );
    assert!(
        confined(
            &st(
                "SELECT id FROM published_runs WHERE id = $1",
                vec![3i64.into()]
            ),
            ws
        )
        .is_ok()
    );
}
