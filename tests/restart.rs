//! The database restarted under load: a PostgreSQL cluster of the test's own
//! (`initdb` into a temporary folder, never the machine's shared server) is
//! crashed (`pg_ctl stop -m immediate`) while writers save runs and a worker
//! drains the queue, then started again. While it is down, calls fail with a
//! typed error; afterwards the pool reconnects, every committed write is
//! there, and verify reports zero drift.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use recents::migration::{Migrator, MigratorTrait};
use recents::queue::{NewJob, complete, dequeue, enqueue_many};
use recents::{
    RunSave, Scope, UserId, VerifyOptions, VerifyScope, recent_workflows, verify,
    verify_last_dequeues,
};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use support::{at, published_run, version, workspace};

/// A PostgreSQL cluster in a temporary folder, stopped and removed on drop.
struct OwnCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

/// Runs a PostgreSQL tool as the `postgres` user when the test runs as root
/// (initdb and postgres refuse to run as root).
fn pg_tool(bin: &Path, tool: &str, args: &[&str]) -> std::io::Result<std::process::Output> {
    let tool = bin.join(tool);
    let as_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if as_root {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(tool)
            .args(args)
            .output()
    } else {
        Command::new(tool).args(args).output()
    }
}

impl OwnCluster {
    fn create() -> Result<Self, String> {
        let bin = postgres_bin().ok_or("no PostgreSQL server binaries in /usr/lib/postgresql")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let dir =
            std::env::temp_dir().join(format!("recents-restart-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let _ = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .output();
        let cluster = Self { dir, bin, port };
        let out = pg_tool(
            &cluster.bin,
            "initdb",
            &[
                "-D",
                cluster.data(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        )
        .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("initdb: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(cluster)
    }

    fn data(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on",
            self.port,
            self.data()
        );
        let log = self.dir.join("log");
        let out = pg_tool(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                self.data(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        )
        .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A crash: no shutdown checkpoint, the next start replays the WAL.
    fn crash(&self) {
        let out = pg_tool(
            &self.bin,
            "pg_ctl",
            &["-D", self.data(), "-m", "immediate", "-w", "stop"],
        )
        .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = pg_tool(
            &self.bin,
            "pg_ctl",
            &["-D", self.data(), "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn pool(url: &str) -> DatabaseConnection {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(8)
        .connect_timeout(Duration::from_secs(2))
        .acquire_timeout(Duration::from_secs(3))
        .sqlx_logging(false);
    Database::connect(options).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_restarted_under_load_loses_no_committed_write() {
    let cluster = match OwnCluster::create() {
        Ok(cluster) => cluster,
        Err(why) => {
            let required = std::env::var("RECENTS_REQUIRE_BACKENDS")
                .is_ok_and(|b| b.split(',').any(|b| b.trim() == "postgres"));
            assert!(!required, "cannot make a PostgreSQL cluster: {why}");
            eprintln!("skipped: cannot make a PostgreSQL cluster: {why}");
            return;
        }
    };
    cluster.start();
    let conn = pool(&cluster.url()).await;
    Migrator::up(&conn, None).await.unwrap();
    let ws = workspace(&conn, "team", false).await;
    let pr = published_run(&conn, ws, "A").await;
    let v = version(&conn, pr).await;
    let jobs: Vec<NewJob> = (0..400)
        .map(|i| NewJob::now(UserId(i % 10), serde_json::json!({ "i": i })))
        .collect();
    enqueue_many(&conn, &jobs).await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(Mutex::new(Vec::<i64>::new()));
    let completed = Arc::new(Mutex::new(Vec::<i64>::new()));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (conn, stop, committed, errors) = (
            conn.clone(),
            stop.clone(),
            committed.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let save = RunSave {
                    id: None,
                    workspace_id: ws,
                    uid: format!("writer-{w}"),
                    parent_version_id: Some(v),
                    run_status: "running".into(),
                    updated_at: at(n, 0),
                };
                let result = support::save_committed(&conn, &save).await;
                match result {
                    Ok(id) => committed.lock().unwrap().push(id),
                    Err(e) => {
                        errors.lock().unwrap().push(e.to_string());
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }));
    }
    {
        let (conn, stop, completed, errors) = (
            conn.clone(),
            stop.clone(),
            completed.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let result = async {
                    if let Some(job) = dequeue(&conn, "restart-worker").await? {
                        complete(&conn, &job).await?;
                        return Ok(Some(job.id));
                    }
                    Ok::<_, recents::Error>(None)
                }
                .await;
                match result {
                    Ok(Some(id)) => completed.lock().unwrap().push(id),
                    Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
                    Err(e) => {
                        errors.lock().unwrap().push(e.to_string());
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    let before_crash = committed.lock().unwrap().len();
    cluster.crash();
    // Down: a read fails with a typed error that says the database is unavailable.
    let down = recent_workflows(&conn, ws, &Scope::Workspace, 4).await;
    match down {
        Err(e) => assert!(e.is_unavailable(), "not reported as unavailable: {e:?}"),
        Ok(answer) => panic!("a read answered while the database was down: {answer:?}"),
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.start();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }

    let committed = committed.lock().unwrap().clone();
    let errors = errors.lock().unwrap().clone();
    assert!(before_crash > 0, "writers committed before the crash");
    assert!(
        committed.len() > before_crash,
        "writers committed again after the restart"
    );
    assert!(!errors.is_empty(), "the outage was seen by the writers");
    // Every committed run survived the crash.
    let backend = conn.get_database_backend();
    let present = conn
        .query_one_raw(recents::admin::statement(
            backend,
            &format!(
                "SELECT COUNT(*) AS n FROM saved_runs WHERE id IN ({})",
                vec!["?"; committed.len()].join(", ")
            ),
            committed.iter().map(|&id| id.into()).collect(),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(
        present as usize,
        committed.len(),
        "a committed run was lost"
    );
    let completed = completed.lock().unwrap().clone();
    let states = conn
        .query_one_raw(recents::admin::statement(
            backend,
            &format!(
                "SELECT COUNT(*) AS n FROM execution_jobs WHERE state = 'completed' AND id IN ({})",
                vec!["?"; completed.len().max(1)].join(", ")
            ),
            if completed.is_empty() {
                vec![0i64.into()]
            } else {
                completed.iter().map(|&id| id.into()).collect()
            },
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(states as usize, completed.len(), "a completed job was lost");
    let report = verify(&conn, &VerifyScope::All, &VerifyOptions::default())
        .await
        .unwrap();
    assert!(report.is_exact(), "{report:?}");
    assert!(verify_last_dequeues(&conn, 1000).await.unwrap().is_exact());
    eprintln!(
        "restart: {} runs committed ({before_crash} before the crash), {} jobs completed, {} failed calls while down; verify exact",
        committed.len(),
        completed.len(),
        errors.len()
    );
}
