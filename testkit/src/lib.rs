//! A fresh, migrated database for each test, on every backend that answers.
//!
//! SQLite always runs (a file in the temp folder). PostgreSQL and MySQL/MariaDB
//! run when they answer at `RECENTS_TEST_POSTGRES_URL` / `RECENTS_TEST_MYSQL_URL`
//! (defaults: this machine's local services); each test gets its own database,
//! dropped when the test ends, so tests run in parallel. When a backend does not
//! answer, the run says so once and its tests pass as skipped, unless
//! `RECENTS_REQUIRE_BACKENDS=postgres,mysql` names it: then they fail.
//! [`galera`] starts a three-node MariaDB Galera cluster of the test's own
//! (`galera` in `RECENTS_REQUIRE_BACKENDS` makes its absence fail too).
//!
//! ```ignore
//! async fn saves_round_trip(db: &TestDb) { /* use db.conn */ }
//! recents_testkit::backend_tests!(saves_round_trip);
//! ```

pub mod galera;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use recents_migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};

/// A database engine the tests run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    /// All backends, in the order tests report them.
    pub const ALL: [Backend; 3] = [Backend::Sqlite, Backend::Postgres, Backend::MySql];

    /// The name used in `RECENTS_REQUIRE_BACKENDS` and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
        }
    }

    fn admin_url(self) -> Option<String> {
        let (var, default) = match self {
            Backend::Sqlite => return None,
            Backend::Postgres => (
                "RECENTS_TEST_POSTGRES_URL",
                "postgres://postgres@127.0.0.1:5432/postgres",
            ),
            Backend::MySql => ("RECENTS_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
        };
        Some(std::env::var(var).unwrap_or_else(|_| default.to_owned()))
    }

    fn required(self) -> bool {
        required(self.name())
    }
}

/// Whether `RECENTS_REQUIRE_BACKENDS` names `name`: then its absence fails
/// the run instead of skipping its tests.
pub fn required(name: &str) -> bool {
    std::env::var("RECENTS_REQUIRE_BACKENDS")
        .map(|list| list.split(',').any(|b| b.trim() == name))
        .unwrap_or(false)
}

/// A migrated database of its own for one test.
pub struct TestDb {
    /// A pooled connection to the test's database.
    pub conn: DatabaseConnection,
    /// The backend it runs on.
    pub backend: Backend,
    /// A URL that reaches the same database, for a second pool or a child process.
    pub url: String,
    admin_url: Option<String>,
    name: String,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);
static SAID_ABSENT: Mutex<Vec<Backend>> = Mutex::new(Vec::new());
static SWEPT: OnceLock<()> = OnceLock::new();

const PREFIX: &str = "recents_t_";

impl TestDb {
    /// A fresh migrated database on `backend`, or `None` when that backend is
    /// not reachable and not required.
    ///
    /// # Panics
    /// When the backend is required but not reachable, or migration fails:
    /// both mean the test run itself is broken.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        let name = format!(
            "{PREFIX}{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        );
        let (url, admin_url) = match backend.admin_url() {
            None => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                (format!("sqlite://{}?mode=rwc", path.display()), None)
            }
            Some(admin_url) => {
                let admin = match connect(&admin_url, 1).await {
                    Ok(admin) => admin,
                    Err(err) => {
                        absent(backend, &admin_url, &err);
                        return None;
                    }
                };
                if SWEPT.set(()).is_ok() {
                    sweep_stale(&admin).await;
                }
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
                let _ = admin.close().await;
                (with_database(&admin_url, &name), Some(admin_url))
            }
        };
        let conn = connect(&url, 8)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test database {name}: {e}"));
        Migrator::up(&conn, None)
            .await
            .unwrap_or_else(|e| panic!("migrations fail on {}: {e}", backend.name()));
        Some(TestDb {
            conn,
            backend,
            url,
            admin_url,
            name,
        })
    }

    /// Closes the pool and drops the database. A test that panics skips this
    /// and leaves its database for inspection; the next run sweeps it.
    pub async fn drop_database(self) {
        let _ = self.conn.close().await;
        match self.admin_url {
            None => {
                let path = std::env::temp_dir().join(format!("{}.db", self.name));
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Some(admin_url) => {
                if let Ok(admin) = connect(&admin_url, 1).await {
                    let _ = admin
                        .execute_unprepared(&drop_statement(self.backend, &self.name))
                        .await;
                    let _ = admin.close().await;
                }
            }
        }
    }

    /// A second, independent pool on the same database.
    pub async fn connect_again(&self, max_connections: u32) -> DatabaseConnection {
        connect(&self.url, max_connections)
            .await
            .expect("a second pool on the test database")
    }

    /// The SeaORM backend of this database.
    pub fn db_backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }
}

/// Runs `scenario` on a fresh database of `backend`, then drops the database.
pub async fn run_on(backend: Backend, scenario: impl AsyncFnOnce(&TestDb)) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    scenario(&db).await;
    db.drop_database().await;
}

/// Makes one `#[tokio::test]` per backend for each named scenario
/// (`async fn name(db: &TestDb)`): `sqlite::name`, `postgres::name`, `mysql::name`.
/// `backend_tests!(servers: name, ...)` makes only the PostgreSQL and MySQL
/// ones, for behaviour a server has and SQLite has not (row locks, cut connections).
#[macro_export]
macro_rules! backend_tests {
    (servers: $($name:ident),+ $(,)?) => {
        $crate::backend_tests!(@backend postgres, Postgres, $($name),+);
        $crate::backend_tests!(@backend mysql, MySql, $($name),+);
    };
    ($($name:ident),+ $(,)?) => {
        $crate::backend_tests!(@backend sqlite, Sqlite, $($name),+);
        $crate::backend_tests!(@backend postgres, Postgres, $($name),+);
        $crate::backend_tests!(@backend mysql, MySql, $($name),+);
    };
    (@backend $module:ident, $variant:ident, $($name:ident),+) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::run_on($crate::Backend::$variant, super::$name).await;
                }
            )+
        }
    };
}

pub(crate) async fn connect(
    url: &str,
    max_connections: u32,
) -> Result<DatabaseConnection, sea_orm::DbErr> {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(max_connections)
        .min_connections(0)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    Database::connect(options).await
}

fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (admin_url, String::new()),
    };
    let base = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(base);
    format!("{base}/{name}{query}")
}

fn drop_statement(backend: Backend, name: &str) -> String {
    match backend {
        Backend::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        _ => format!("DROP DATABASE IF EXISTS {name}"),
    }
}

fn absent(backend: Backend, url: &str, err: &sea_orm::DbErr) {
    if backend.required() {
        panic!(
            "{} is required (RECENTS_REQUIRE_BACKENDS) but does not answer at {}: {err}",
            backend.name(),
            redact(url)
        );
    }
    let mut said = SAID_ABSENT.lock().unwrap_or_else(|p| p.into_inner());
    if !said.contains(&backend) {
        said.push(backend);
        // Straight to the process's stderr: libtest captures `eprintln!`, and
        // a skipped backend must be visible in a passing run.
        let _ = writeln!(
            std::io::stderr(),
            "recents-testkit: {} does not answer at {}; its tests are skipped ({err})",
            backend.name(),
            redact(url)
        );
    }
}

/// The URL with any password replaced, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Drops the databases of earlier test processes that are gone (a test that
/// panicked leaves its database behind for inspection until then).
async fn sweep_stale(admin: &DatabaseConnection) {
    let list = match admin.get_database_backend() {
        DbBackend::Postgres => {
            "SELECT datname AS name FROM pg_database WHERE datname LIKE 'recents\\_t\\_%'"
        }
        _ => {
            "SELECT schema_name AS name FROM information_schema.schemata \
             WHERE schema_name LIKE 'recents\\_t\\_%'"
        }
    };
    let Ok(rows) = admin
        .query_all_raw(sea_orm::Statement::from_string(
            admin.get_database_backend(),
            list,
        ))
        .await
    else {
        return;
    };
    let backend = match admin.get_database_backend() {
        DbBackend::Postgres => Backend::Postgres,
        _ => Backend::MySql,
    };
    for row in rows {
        let Ok(name) = row.try_get::<String>("", "name") else {
            continue;
        };
        let pid = name[PREFIX.len()..].split('_').next().unwrap_or("");
        let alive = !pid.is_empty() && std::path::Path::new(&format!("/proc/{pid}")).exists();
        if !alive {
            let _ = admin
                .execute_unprepared(&drop_statement(backend, &name))
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(redact("mysql://root@h/test"), "mysql://root@h/test");
        assert_eq!(redact("sqlite://x.db?mode=rwc"), "sqlite://x.db?mode=rwc");
    }

    #[test]
    fn with_database_swaps_the_path_and_keeps_the_query() {
        assert_eq!(
            with_database("postgres://p@h:5432/postgres?sslmode=disable", "t1"),
            "postgres://p@h:5432/t1?sslmode=disable"
        );
        assert_eq!(
            with_database("mysql://root@h/test", "t2"),
            "mysql://root@h/t2"
        );
    }
}
