//! A three-node MariaDB Galera cluster on loopback, started from nothing for
//! one test and torn down when it is dropped.
//!
//! Galera is what recents runs on when one MariaDB server is not enough, and
//! its behaviour (conflicts at COMMIT, node-local row locks, lagging reads)
//! only shows on a real cluster: three `mariadbd` processes with their own
//! data directories and ports, Debian's `galera-4` provider, state transfer
//! by rsync. The machine's own MariaDB is never touched.
//!
//! When the provider or the binaries are missing, [`Cluster::start`] says so
//! once on stderr and returns `None` (the test passes as skipped), unless
//! `RECENTS_REQUIRE_BACKENDS` names `galera`: then it panics.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use recents_migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

/// The name `RECENTS_REQUIRE_BACKENDS` uses for the cluster.
pub const NAME: &str = "galera";

/// How many nodes the cluster has: the smallest that keeps a majority
/// (and so keeps accepting writes) when one node dies.
pub const NODES: usize = 3;

const DIR_PREFIX: &str = "recents-galera-";
/// SST by rsync copies the whole data directory over loopback, and a loaded
/// two-core machine may take a while to start three servers.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// What one node listens on.
#[derive(Clone, Copy, Debug)]
struct Ports {
    sql: u16,
    gcomm: u16,
    ist: u16,
    sst: u16,
}

struct Node {
    dir: PathBuf,
    ports: Ports,
    child: Option<Child>,
    /// Where the error log ended when the node was last started.
    log_offset: usize,
    /// The position to start from after a crash (`--wsrep-recover`).
    start_position: Option<String>,
}

/// A running three-node Galera cluster.
pub struct Cluster {
    root: PathBuf,
    nodes: Vec<Node>,
}

/// A migrated database of its own on the cluster, with a pool on each node.
pub struct GaleraDb {
    /// The database's name (the same on every node).
    pub name: String,
    /// `mysql://` URLs of the database, one per node.
    pub urls: Vec<String>,
    /// A pool on each node, in node order.
    pub nodes: Vec<DatabaseConnection>,
}

/// The programs a cluster needs, found on this machine.
struct Tools {
    mariadbd: PathBuf,
    install_db: PathBuf,
    provider: PathBuf,
}

/// What keeps a cluster from starting on this machine (the provider or a
/// program that is not installed), or `None` when Galera is installed.
pub fn missing() -> Option<String> {
    find_tools().err()
}

impl Cluster {
    /// Starts a fresh cluster: node 0 bootstraps it (`--wsrep-new-cluster`),
    /// nodes 1 and 2 join one after the other by SST. `None` when Galera is
    /// not installed and not required.
    ///
    /// # Panics
    /// When Galera is required but not installed, or installed but the
    /// cluster does not come up: both mean the test run itself is broken.
    pub async fn start() -> Option<Cluster> {
        let tools = match find_tools() {
            Ok(tools) => tools,
            Err(missing) => {
                if crate::required(NAME) {
                    panic!(
                        "galera is required (RECENTS_REQUIRE_BACKENDS) but {missing} \
                         (apt-get install galera-4 mariadb-server rsync)"
                    );
                }
                // Straight to the process's stderr, as for the other backends:
                // a skipped cluster must be visible in a passing run.
                let _ = writeln!(
                    std::io::stderr(),
                    "recents-testkit: galera is not installed ({missing}); its tests are skipped"
                );
                return None;
            }
        };
        sweep_stale();
        let root = std::env::temp_dir().join(format!(
            "{DIR_PREFIX}{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("a temp dir for the cluster");
        let ports = free_ports();
        let gcomm = ports
            .iter()
            .map(|p| format!("127.0.0.1:{}", p.gcomm))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes = Vec::new();
        for (i, ports) in ports.iter().enumerate() {
            let dir = root.join(format!("node{i}"));
            std::fs::create_dir_all(dir.join("data")).expect("a node's data dir");
            std::fs::write(
                dir.join("my.cnf"),
                config(&dir, i, *ports, &gcomm, &tools.provider),
            )
            .expect("a node's my.cnf");
            nodes.push(Node {
                dir,
                ports: *ports,
                child: None,
                log_offset: 0,
                start_position: None,
            });
        }
        let install = Command::new(&tools.install_db)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", nodes[0].dir.join("data").display()))
            .arg(format!("--user={}", server_user()))
            // root over TCP with an empty password, as on the dev machines.
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("mariadb-install-db runs");
        assert!(install.success(), "mariadb-install-db failed");
        if is_root() {
            // The rsync daemon that receives an SST drops root to `nobody`
            // and then cannot write the data dir; as `mysql` it can.
            let chown = Command::new("chown")
                .args(["-R", "mysql:mysql"])
                .arg(&root)
                .status()
                .expect("chown runs");
            assert!(chown.success(), "chown -R mysql:mysql {}", root.display());
        }
        let mut cluster = Cluster { root, nodes };
        cluster.spawn(0, &tools.mariadbd, true);
        cluster.wait_synced(0).await;
        // One joiner at a time: a donor serves one SST at once, and two
        // joiners asking together wait on each other.
        for i in 1..NODES {
            cluster.spawn(i, &tools.mariadbd, false);
            cluster.wait_synced(i).await;
        }
        cluster.wait_size(0, NODES).await;
        Some(cluster)
    }

    /// The SQL port of `node`.
    pub fn port(&self, node: usize) -> u16 {
        self.nodes[node].ports.sql
    }

    /// A `mysql://` URL of `database` on `node`.
    pub fn url(&self, node: usize, database: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{database}", self.port(node))
    }

    /// A fresh database, created and migrated through node 0 (DDL is
    /// replicated in total order), with a pool of `pool_size` on each node.
    pub async fn database(&self, pool_size: u32) -> GaleraDb {
        let name = format!(
            "recents_g_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let admin = crate::connect(&self.url(0, "mysql"), 1)
            .await
            .expect("node 0 answers");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("CREATE DATABASE on node 0");
        let _ = admin.close().await;
        let urls: Vec<String> = (0..NODES).map(|i| self.url(i, &name)).collect();
        let first = crate::connect(&urls[0], pool_size)
            .await
            .expect("the test database on node 0");
        Migrator::up(&first, None)
            .await
            .unwrap_or_else(|e| panic!("migrations fail on galera: {e}"));
        let mut nodes = vec![first];
        for url in &urls[1..] {
            // The other nodes apply the migrations' DDL after node 0 returns;
            // a statement that opens a table whose triggers are being
            // replaced meanwhile fails ("… has an error in its body"). Wait
            // until each has applied everything (`wsrep_sync_wait`).
            let synced = crate::connect(url, 1)
                .await
                .expect("the test database on a joined node");
            synced
                .execute_unprepared("SET SESSION wsrep_sync_wait = 1")
                .await
                .expect("wsrep_sync_wait");
            synced
                .execute_unprepared("SELECT COUNT(*) FROM information_schema.TRIGGERS")
                .await
                .expect("the node caught up");
            let _ = synced.close().await;
            nodes.push(
                crate::connect(url, pool_size)
                    .await
                    .expect("the test database on a joined node"),
            );
        }
        GaleraDb { name, urls, nodes }
    }

    /// Kills `node` with SIGKILL, as a crash would: no shutdown, no goodbye
    /// to the group. The other two keep a majority and go on.
    pub fn kill(&mut self, node: usize) {
        if let Some(mut child) = self.nodes[node].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a killed `node` again and waits until it is synced: it
    /// recovers its position from InnoDB and asks a donor for the write
    /// sets it missed (IST, from the donor's gcache).
    ///
    /// A crashed node's `grastate.dat` says seqno -1, and a node that does
    /// not know its position asks for a full SST. So, as Debian's
    /// `galera_recovery` does for systemd, `--wsrep-recover` first reads the
    /// position from InnoDB, and the node starts from it.
    pub async fn restart(&mut self, node: usize) {
        let tools = find_tools().expect("galera was installed when the cluster started");
        let dir = self.nodes[node].dir.clone();
        let recover_log = dir.join("recover.log");
        let _ = std::fs::remove_file(&recover_log);
        let status = Command::new(&tools.mariadbd)
            .arg(format!("--defaults-file={}", dir.join("my.cnf").display()))
            .arg("--wsrep-recover")
            .arg(format!("--log-error={}", recover_log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("mariadbd --wsrep-recover runs");
        assert!(status.success(), "mariadbd --wsrep-recover failed");
        let log = std::fs::read_to_string(&recover_log).unwrap_or_default();
        let position = log
            .lines()
            .rev()
            .find_map(|l| l.split("WSREP: Recovered position: ").nth(1))
            .map(|p| p.trim().to_owned())
            .unwrap_or_else(|| panic!("no recovered position in:\n{log}"));
        self.nodes[node].start_position = Some(position);
        self.spawn(node, &tools.mariadbd, false);
        self.wait_synced(node).await;
        self.wait_size(node, NODES).await;
    }

    /// How many write sets `node` received by incremental state transfer
    /// since it was last started, or `None` when it caught up otherwise (a
    /// full SST copies the whole data directory instead).
    pub fn rejoined_by_ist(&self, node: usize) -> Option<u64> {
        let log = std::fs::read(self.nodes[node].dir.join("error.log")).unwrap_or_default();
        let since = &log[self.nodes[node].log_offset.min(log.len())..];
        let since = String::from_utf8_lossy(since);
        if since.contains("rsync SST completed on joiner") {
            return None;
        }
        since
            .lines()
            .rev()
            .filter_map(|l| l.split("Receiving IST: ").nth(1))
            .find_map(|rest| rest.split_whitespace().next()?.parse().ok())
    }

    /// The last lines of `node`'s error log, for a failure message.
    pub fn log_tail(&self, node: usize) -> String {
        let log =
            std::fs::read_to_string(self.nodes[node].dir.join("error.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn spawn(&mut self, node: usize, mariadbd: &Path, bootstrap: bool) {
        let dir = self.nodes[node].dir.clone();
        let log_offset = std::fs::metadata(dir.join("error.log")).map_or(0, |m| m.len() as usize);
        let mut command = Command::new(mariadbd);
        command.arg(format!("--defaults-file={}", dir.join("my.cnf").display()));
        if bootstrap {
            command.arg("--wsrep-new-cluster");
        }
        if let Some(position) = self.nodes[node].start_position.take() {
            command.arg(format!("--wsrep-start-position={position}"));
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd starts");
        let _ = std::fs::write(dir.join("mariadbd.pid"), child.id().to_string());
        self.nodes[node].child = Some(child);
        self.nodes[node].log_offset = log_offset;
    }

    async fn status(&self, node: usize, variable: &str) -> Option<String> {
        let conn = crate::connect(&self.url(node, "mysql"), 1).await.ok()?;
        let row = conn
            .query_one_raw(Statement::from_string(
                conn.get_database_backend(),
                format!("SHOW STATUS LIKE '{variable}'"),
            ))
            .await
            .ok()??;
        let _ = conn.close().await;
        row.try_get::<String>("", "Value").ok()
    }

    async fn wait_synced(&mut self, node: usize) {
        self.wait_for(node, "wsrep_local_state_comment", |v| v == "Synced")
            .await;
    }

    async fn wait_size(&mut self, node: usize, size: usize) {
        let size = size.to_string();
        self.wait_for(node, "wsrep_cluster_size", |v| v == size)
            .await;
    }

    async fn wait_for(&mut self, node: usize, variable: &str, ok: impl Fn(&str) -> bool) {
        let start = Instant::now();
        loop {
            if let Some(value) = self.status(node, variable).await
                && ok(&value)
            {
                return;
            }
            let exited = self.nodes[node]
                .child
                .as_mut()
                .map(|c| matches!(c.try_wait(), Ok(Some(_))))
                .unwrap_or(true);
            if exited || start.elapsed() > READY_TIMEOUT {
                panic!(
                    "galera node {node} did not reach {variable} ({}):\n{}",
                    if exited {
                        "mariadbd exited"
                    } else {
                        "timed out"
                    },
                    self.log_tail(node)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in 0..self.nodes.len() {
            self.kill(node);
        }
        // A failed run keeps the logs for a look; a passing one leaves nothing.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

impl GaleraDb {
    /// A one-connection pool on `node` whose reads wait until the node has
    /// applied every write set the cluster committed before them
    /// (`wsrep_sync_wait = 1`): what a check must read on a node other
    /// than the one that wrote.
    pub async fn synced_reader(&self, node: usize) -> DatabaseConnection {
        let conn = crate::connect(&self.urls[node], 1)
            .await
            .expect("a reader on the node");
        conn.execute_unprepared("SET SESSION wsrep_sync_wait = 1")
            .await
            .expect("wsrep_sync_wait");
        conn
    }

    /// Closes every pool.
    pub async fn close(self) {
        for conn in self.nodes {
            let _ = conn.close().await;
        }
    }
}

fn find_tools() -> Result<Tools, String> {
    let provider = std::env::var_os("RECENTS_GALERA_PROVIDER")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            [
                "/usr/lib/galera/libgalera_smm.so",
                "/usr/lib/libgalera_smm.so",
                "/usr/lib64/galera-4/libgalera_smm.so",
                "/usr/lib64/galera/libgalera_smm.so",
            ]
            .map(PathBuf::from),
        )
        .find(|p| p.exists())
        .ok_or("no libgalera_smm.so (Debian: galera-4)")?;
    let mariadbd = program("mariadbd").ok_or("no mariadbd (Debian: mariadb-server)")?;
    let install_db =
        program("mariadb-install-db").ok_or("no mariadb-install-db (Debian: mariadb-server)")?;
    program("rsync").ok_or("no rsync, which the SST uses (Debian: rsync)")?;
    program("wsrep_sst_rsync").ok_or("no wsrep_sst_rsync (Debian: mariadb-server)")?;
    Ok(Tools {
        mariadbd,
        install_db,
        provider,
    })
}

fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `mysql` when running as root (mariadbd refuses root without `--user`,
/// and the SST's rsync daemon cannot write as `nobody`); else whoever runs.
fn server_user() -> String {
    if is_root() {
        "mysql".into()
    } else {
        std::env::var("USER").unwrap_or_else(|_| "mysql".into())
    }
}

/// Twelve ports the kernel says are free now. Asking for port 0 keeps two
/// test processes (or a developer's own cluster) from picking the same ones.
fn free_ports() -> Vec<Ports> {
    let listeners: Vec<std::net::TcpListener> = (0..NODES * 4)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().expect("a bound port").port())
        .collect();
    drop(listeners);
    ports
        .chunks(4)
        .map(|p| Ports {
            sql: p[0],
            gcomm: p[1],
            ist: p[2],
            sst: p[3],
        })
        .collect()
}

fn config(dir: &Path, index: usize, ports: Ports, gcomm: &str, provider: &Path) -> String {
    let d = dir.display();
    format!(
        "[mysqld]
datadir={d}/data
socket={d}/mysqld.sock
pid-file={d}/mysqld.pid
log-error={d}/error.log
port={sql}
bind-address=127.0.0.1
user={user}
# Galera replicates row events and needs interleaved auto-increment locks.
binlog_format=ROW
default_storage_engine=InnoDB
innodb_autoinc_lock_mode=2
# Durability comes from the other nodes; each fsync would only slow the tests.
innodb_flush_log_at_trx_commit=0
innodb_buffer_pool_size=64M
innodb_log_file_size=16M
max_connections=300
# A claim stuck behind a brute-force abort chain fails in 10 s, not 50.
innodb_lock_wait_timeout=10
wsrep_on=ON
wsrep_provider={provider}
wsrep_cluster_name=recents_test_{pid}
wsrep_cluster_address=gcomm://{gcomm}
wsrep_node_address=127.0.0.1
wsrep_node_name=node{index}
wsrep_provider_options=\"gmcast.listen_addr=tcp://127.0.0.1:{gport};ist.recv_addr=127.0.0.1:{ist};gcache.size=128M\"
wsrep_sst_receive_address=127.0.0.1:{sst}
wsrep_sst_method=rsync
wsrep_slave_threads=2
",
        sql = ports.sql,
        user = server_user(),
        provider = provider.display(),
        pid = std::process::id(),
        gport = ports.gcomm,
        ist = ports.ist,
        sst = ports.sst,
    )
}

/// Kills the nodes of clusters whose test process is gone (a test process
/// killed outright never ran `Drop`) and removes their directories.
fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(DIR_PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if pid.is_empty() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        for node in 0..NODES {
            let pid_file = entry.path().join(format!("node{node}/mariadbd.pid"));
            if let Ok(pid) = std::fs::read_to_string(pid_file) {
                let pid = pid.trim();
                // Only if it still is our mariadbd: a pid may have been reused.
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmdline).contains(&name) {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
        }
        let _ = std::fs::remove_dir_all(entry.path());
    }
}
