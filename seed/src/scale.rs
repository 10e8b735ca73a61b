//! The benchmark's data: a `saved_runs` history shaped like the first seed's
//! table at a scale factor (1 = production's 7.4M runs), bulk-loaded
//! with set-based SQL: `generate_series` on PostgreSQL, a numbers table on
//! MySQL/MariaDB and SQLite. Deterministic: the same scale gives the same rows.

use std::time::Instant;

use recents_service::Error;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

/// The seed's five heaviest workspaces: (runs with a version, distinct workflows).
pub const HEAVY: [(u64, u64); 5] = [
    (1_780_569, 1),
    (231_343, 3),
    (69_119, 1),
    (53_981, 3),
    (52_471, 10),
];
const TOTAL_RUNS: f64 = 7_400_000.0;
const TAIL_WORKSPACES: f64 = 100_000.0;
const TEAM_MEMBERS: u64 = 2_000;
const TEAM_WORKFLOWS: u64 = 3;
const TEAM_RUNS: f64 = 200_000.0;
const CATALOGUE: f64 = 20_000.0;
const USERS_PER_HEAVY: u64 = 20;
const CHUNK: u64 = 1_000_000;

/// What was generated, for the measurements to address.
#[derive(Clone, Debug)]
pub struct History {
    /// (workspace id, runs, distinct workflows) of the heavy workspaces.
    pub heavy: Vec<(i64, u64, u64)>,
    /// The 2,000-member team workspace.
    pub team: i64,
    /// Tail workspaces are `first_tail..first_tail + tail_workspaces`.
    pub first_tail: i64,
    pub tail_workspaces: u64,
    /// Published runs of the shared catalogue: `first_catalogue..+catalogue`.
    pub first_catalogue: i64,
    pub catalogue: u64,
    /// Rows in `saved_runs`.
    pub runs: u64,
    /// Seconds the load took.
    pub load_seconds: f64,
}

fn scaled(value: f64, scale: f64, min: u64) -> u64 {
    ((value * scale).round() as u64).max(min)
}

/// Generates the history at `scale` (1.0 = production size) into an empty,
/// migrated database.
pub async fn generate(conn: &DatabaseConnection, scale: f64) -> Result<History, Error> {
    let started = Instant::now();
    let sql = Dialect(conn.get_database_backend());
    let heavy: Vec<(i64, u64, u64)> = HEAVY
        .iter()
        .enumerate()
        .map(|(i, (runs, distinct))| (i as i64 + 1, scaled(*runs as f64, scale, 10), *distinct))
        .collect();
    let team = heavy.len() as i64 + 1;
    let first_tail = team + 1;
    let tail_workspaces = scaled(TAIL_WORKSPACES, scale, 20);
    let team_runs = scaled(TEAM_RUNS, scale, TEAM_MEMBERS);
    let heavy_runs: u64 = heavy.iter().map(|h| h.1).sum();
    let tail_runs = scaled(TOTAL_RUNS, scale, 0)
        .saturating_sub(heavy_runs + team_runs)
        .max(tail_workspaces);
    let catalogue = scaled(CATALOGUE, scale, 300);
    let workspaces = tail_workspaces + team as u64;
    let heavy_workflows: u64 = heavy.iter().map(|h| h.2).sum();
    let first_team_workflow = heavy_workflows as i64 + 1;
    let first_catalogue = first_team_workflow + TEAM_WORKFLOWS as i64;
    let published = first_catalogue as u64 - 1 + catalogue;

    let largest = [workspaces, published * 2, tail_runs, team_runs]
        .into_iter()
        .chain(heavy.iter().map(|h| h.1))
        .max()
        .unwrap_or(1)
        .min(CHUNK);
    sql.prepare_numbers(conn, largest).await?;

    // Workspaces: heavy ones personal, the team one not, the tail mixed.
    sql.insert_series(
        conn,
        workspaces,
        &format!(
            "INSERT INTO workspaces (id, name, is_personal, created_at) \
             SELECT n + 1, {}, CASE WHEN n + 1 = {team} THEN {f} WHEN n % 3 = 0 THEN {f} ELSE {t} END, {} FROM SERIES",
            sql.concat("'workspace '", "n + 1"),
            sql.timestamp("0"),
            f = sql.boolean(false),
            t = sql.boolean(true),
        ),
    )
    .await?;
    // Published runs: each heavy workspace's own, the team's, then a shared
    // catalogue published across the tail (runs may use any workspace's).
    let mut owner = String::from("CASE");
    let mut next = 1i64;
    for (ws, _, distinct) in &heavy {
        owner.push_str(&format!(
            " WHEN n + 1 < {} THEN {ws}",
            next + *distinct as i64
        ));
        next += *distinct as i64;
    }
    owner.push_str(&format!(
        " WHEN n + 1 < {first_catalogue} THEN {team} ELSE {first_tail} + (n % {tail_workspaces}) END"
    ));
    sql.insert_series(
        conn,
        published,
        &format!(
            "INSERT INTO published_runs (id, workspace_id, title, created_at, updated_at) \
             SELECT n + 1, {owner}, {}, {ts}, {ts} FROM SERIES",
            sql.concat("'workflow '", "n + 1"),
            ts = sql.timestamp("0"),
        ),
    )
    .await?;
    // Two versions per published run: 2p - 1 and 2p.
    sql.insert_series(
        conn,
        published * 2,
        &format!(
            "INSERT INTO published_run_versions (id, published_run_id, created_at) \
             SELECT n + 1, {} + 1, {} FROM SERIES",
            sql.div("n", "2"),
            sql.timestamp("0")
        ),
    )
    .await?;

    let mut offset = 0u64; // run times are spread one second apart over the whole history
    let mut first_workflow = 1i64;
    for (ws, runs, distinct) in &heavy {
        let workflow = format!("{first_workflow} + n % {distinct}");
        sql.insert_runs(
            conn,
            *runs,
            offset,
            &ws.to_string(),
            &sql.concat("'u'", &format!("n % {USERS_PER_HEAVY}")),
            &workflow,
        )
        .await?;
        offset += runs;
        first_workflow += *distinct as i64;
    }
    sql.insert_runs(
        conn,
        team_runs,
        offset,
        &team.to_string(),
        &sql.concat("'m'", &format!("n % {TEAM_MEMBERS}")),
        &format!("{first_team_workflow} + n % {TEAM_WORKFLOWS}"),
    )
    .await?;
    offset += team_runs;
    // The tail: run n goes to workspace w = n mod T; w uses k(w) workflows of
    // the catalogue, k(w) in 1..=240 and mostly small (h⁴ of a hash h in 0..1000).
    let w = format!("({first_tail} + n % {tail_workspaces})");
    let h = format!("(({w} * 2654435761) % 1000)");
    let k = format!("(1 + {h} * {h} * {h} * {h} * 239 / 1000000000000)");
    let k = if sql.0 == DbBackend::MySql {
        k.replace(" / ", " DIV ")
    } else {
        k
    };
    let round = sql.div("n", &tail_workspaces.to_string());
    sql.insert_runs(
        conn,
        tail_runs,
        offset,
        &w,
        &sql.concat("'u'", &format!("{round} % (1 + {w} % 4)")),
        &format!("{first_catalogue} + ({w} * 40503 + {round} % {k}) % {catalogue}"),
    )
    .await?;

    if sql.0 == DbBackend::Postgres {
        // Explicit ids do not move the sequences; later saves would collide.
        for table in [
            "workspaces",
            "published_runs",
            "published_run_versions",
            "saved_runs",
        ] {
            conn.execute_unprepared(&format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
            ))
            .await?;
        }
    }
    Ok(History {
        heavy,
        team,
        first_tail,
        tail_workspaces,
        first_catalogue,
        catalogue,
        runs: heavy_runs + team_runs + tail_runs,
        load_seconds: started.elapsed().as_secs_f64(),
    })
}

/// [`crate::statistics::analyze`] of the history and the summary.
///
/// # Errors
/// [`Error::Database`].
pub async fn analyze_all(conn: &DatabaseConnection) -> Result<(), Error> {
    crate::statistics::analyze(
        conn,
        &[
            "workspaces",
            "published_runs",
            "published_run_versions",
            "saved_runs",
            "workspace_recent_workflows",
        ],
    )
    .await
}

/// The few spellings that differ between backends, in one place.
struct Dialect(DbBackend);

impl Dialect {
    fn concat(&self, a: &str, b: &str) -> String {
        match self.0 {
            DbBackend::MySql => format!("CONCAT({a}, {b})"),
            _ => format!("{a} || CAST({b} AS TEXT)"),
        }
    }

    fn div(&self, a: &str, b: &str) -> String {
        match self.0 {
            DbBackend::MySql => format!("({a} DIV {b})"),
            _ => format!("({a} / {b})"),
        }
    }

    fn boolean(&self, v: bool) -> &'static str {
        match (self.0, v) {
            (DbBackend::Postgres, true) => "TRUE",
            (DbBackend::Postgres, false) => "FALSE",
            (_, true) => "1",
            (_, false) => "0",
        }
    }

    /// `seconds` after 2024-01-01 UTC, in the column's own type; on SQLite
    /// the text sqlx writes for a whole second, so text order stays time order.
    fn timestamp(&self, seconds: &str) -> String {
        match self.0 {
            DbBackend::Postgres => {
                format!(
                    "(TIMESTAMPTZ '2024-01-01 00:00:00+00' + ({seconds}) * INTERVAL '1 second')"
                )
            }
            DbBackend::MySql => format!("TIMESTAMPADD(SECOND, {seconds}, '2024-01-01 00:00:00')"),
            _ => format!(
                "(strftime('%Y-%m-%dT%H:%M:%S', 1704067200 + ({seconds}), 'unixepoch') || '+00:00')"
            ),
        }
    }

    /// A numbers table 0..count for the backends without generate_series.
    async fn prepare_numbers(&self, conn: &DatabaseConnection, count: u64) -> Result<(), Error> {
        if self.0 == DbBackend::Postgres {
            return Ok(());
        }
        conn.execute_unprepared("DROP TABLE IF EXISTS bench_numbers")
            .await?;
        conn.execute_unprepared("CREATE TABLE bench_numbers (n BIGINT NOT NULL PRIMARY KEY)")
            .await?;
        conn.execute_unprepared("INSERT INTO bench_numbers (n) VALUES (0)")
            .await?;
        let mut have = 1u64;
        while have < count {
            conn.execute_unprepared(&format!(
                "INSERT INTO bench_numbers (n) SELECT n + {have} FROM bench_numbers WHERE n + {have} < {count}"
            ))
            .await?;
            have *= 2;
        }
        Ok(())
    }

    /// Runs `template` (which selects `FROM SERIES`, a column `n`) for
    /// n in 0..count, one chunk of at most a million rows per statement.
    async fn insert_series(
        &self,
        conn: &DatabaseConnection,
        count: u64,
        template: &str,
    ) -> Result<(), Error> {
        let mut lo = 0;
        while lo < count {
            let hi = (lo + CHUNK).min(count);
            let series = match self.0 {
                DbBackend::Postgres => {
                    format!("generate_series({lo}::bigint, {}::bigint) AS g(n)", hi - 1)
                }
                _ => format!(
                    "(SELECT n + {lo} AS n FROM bench_numbers WHERE n < {}) g",
                    hi - lo
                ),
            };
            conn.execute_raw(Statement::from_string(
                self.0,
                template.replace("SERIES", &series),
            ))
            .await?;
            lo = hi;
        }
        Ok(())
    }

    async fn insert_runs(
        &self,
        conn: &DatabaseConnection,
        count: u64,
        offset: u64,
        workspace: &str,
        uid: &str,
        workflow: &str,
    ) -> Result<(), Error> {
        let version = format!("2 * ({workflow}) - 1 + n % 2");
        let ts = self.timestamp(&format!("n + {offset}"));
        self.insert_series(
            conn,
            count,
            &format!(
                "INSERT INTO saved_runs (workspace_id, uid, parent_version_id, run_status, created_at, updated_at) \
                 SELECT {workspace}, {uid}, {version}, 'completed', {ts}, {ts} FROM SERIES"
            ),
        )
        .await
    }
}
