//! Figure 5: recents on a three-node MariaDB Galera cluster beside the single
//! MariaDB server, on the same workload: cold saves by 6 clients, then a
//! queue drain by 6 workers, with every client on node 0 and spread over the
//! three nodes. The cluster is started for the figure on loopback
//! (`recents_testkit::galera::Cluster`); all three nodes share this machine's
//! cores, so the ratios are the cost of certification and replication, not a
//! speed-up.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use recents::entity::{published_run, published_run_version, workspace};
use recents::queue::{NewJob, complete, dequeue, enqueue_many};
use recents::{
    RunSave, SaveOptions, UserId, VerifyOptions, VerifyScope, VersionId, WorkspaceId, save_run,
    verify,
};
use recents_testkit::galera::{self, Cluster, GaleraDb, NODES};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Statement, TransactionTrait,
};

use crate::figure::Figure;

/// Its number in `--figures`.
pub const FIGURE: u32 = 5;

/// Clients in every setup: a multiple of the nodes, so that spread over
/// three they are two per node.
pub const CLIENTS: usize = 2 * NODES;

/// Users whose jobs the drain serves, as figure 4's smaller queue.
const USERS: u64 = 20;

/// How long a worker holding a ticket may find the queue empty before the
/// drain fails: each ticket is one job, so an empty queue means a job was
/// handed out twice.
const DRY_TIMEOUT: Duration = Duration::from_secs(10);

/// The setups, in the order they are measured: (id key, label).
const SETUPS: [(&str, &str); 3] = [
    ("single", "single MariaDB server"),
    (
        "one_node",
        "Galera, 3 nodes on this machine, all clients on node 0",
    ),
    (
        "three_nodes",
        "Galera, 3 nodes on this machine, clients spread over the 3 nodes",
    ),
];

const ONE_MACHINE: &str = "one machine: the cost of certification and replication, not a speed-up";

/// The workloads, each measured in every setup.
const WORKLOADS: [&str; 2] = ["saves", "drain"];

fn id(workload: &str, setup: &str) -> String {
    format!("galera.{workload}.{setup}")
}

/// The ids of the figures, in the order they are reported.
pub fn ids() -> Vec<String> {
    WORKLOADS
        .iter()
        .flat_map(|what| SETUPS.iter().map(move |(key, _)| id(what, key)))
        .collect()
}

/// What figure 5 gave: its figures and what they measured, in words; or why
/// it did not run.
pub enum Outcome {
    Measured { figures: Vec<Figure>, note: String },
    Skipped(String),
}

/// Where one setup's clients connect: client `c` uses `pools[c % len]`.
struct Setup {
    pools: Vec<DatabaseConnection>,
    /// On a cluster, a reader on every node that waits until the node has
    /// applied what the cluster committed (`wsrep_sync_wait = 1`).
    synced: Vec<DatabaseConnection>,
}

/// One setup's rates and retries.
struct Rates {
    saves: f64,
    save_retries: u64,
    jobs: f64,
    drain_retries: u64,
}

/// Measures the three setups on `single` (a migrated MariaDB database) and
/// on a cluster started here: `saves_per_client` cold saves by each of
/// [`CLIENTS`], then a drain of `jobs` jobs. Fails when a job is not handed
/// out exactly once or a summary is not exact; skips when Galera is not
/// installed.
pub async fn measure(
    single: &DatabaseConnection,
    saves_per_client: u64,
    jobs: u64,
) -> Result<Outcome> {
    if single.get_database_backend() != DbBackend::MySql {
        bail!(
            "figure {FIGURE} compares Galera with a single MariaDB server: \
             run it with --backend mysql"
        );
    }
    if let Some(missing) = galera::missing() {
        return Ok(Outcome::Skipped(format!(
            "figure {FIGURE} (Galera) skipped: galera is not installed ({missing}; \
             apt-get install galera-4 rsync)"
        )));
    }
    // `None` only when the tools vanished since the check above.
    let Some(cluster) = Cluster::start().await else {
        return Ok(Outcome::Skipped(format!(
            "figure {FIGURE} (Galera) skipped: galera is not installed"
        )));
    };
    let jobs = jobs.max(1);
    recents_seed::queue::clear(single).await?;
    let one_node = cluster.database(CLIENTS as u32).await;
    let three_nodes = cluster.database(CLIENTS as u32).await;
    let setups = [
        Setup {
            pools: vec![single.clone()],
            synced: Vec::new(),
        },
        Setup {
            pools: vec![one_node.nodes[0].clone()],
            synced: synced_readers(&one_node).await,
        },
        Setup {
            pools: three_nodes.nodes.clone(),
            synced: synced_readers(&three_nodes).await,
        },
    ];
    let mut rates = Vec::new();
    for (setup, (_, label)) in setups.iter().zip(SETUPS) {
        rates.push(
            measure_setup(setup, saves_per_client, jobs)
                .await
                .map_err(|e| e.context(format!("figure {FIGURE}, {label}")))?,
        );
    }
    const FLUSH: &str = "SELECT CAST(@@innodb_flush_log_at_trx_commit AS SIGNED) AS v";
    let single_flush = scalar(single, FLUSH).await?;
    let node_flush = scalar(&one_node.nodes[0], FLUSH).await?;
    drop(setups);
    one_node.close().await;
    three_nodes.close().await;
    drop(cluster);

    let saves = CLIENTS as u64 * saves_per_client;
    let mut figures = Vec::new();
    let workloads = [
        (
            "saves",
            format!("cold saves, {CLIENTS} clients, {saves} saves, exact summary"),
            "saves/s",
            (|r: &Rates| r.saves) as fn(&Rates) -> f64,
        ),
        (
            "drain",
            format!(
                "queue drain (dequeue+complete), {CLIENTS} workers, {USERS} users, {jobs} jobs"
            ),
            "jobs/s",
            |r: &Rates| r.jobs,
        ),
    ];
    for (what, label, unit, rate) in workloads {
        let baseline = rate(&rates[0]);
        for (i, (key, setup)) in SETUPS.iter().enumerate() {
            let (text, baseline) = if i == 0 {
                (format!("{label}, {setup}"), None)
            } else {
                (format!("same, {setup} ({ONE_MACHINE})"), Some(baseline))
            };
            figures.push(Figure::throughput(
                id(what, key),
                text,
                unit,
                baseline,
                rate(&rates[i]),
            ));
        }
    }
    debug_assert_eq!(
        figures.iter().map(|f| f.id.clone()).collect::<Vec<_>>(),
        ids()
    );
    let retries = |pick: fn(&Rates) -> u64| {
        rates
            .iter()
            .map(|r| pick(r).to_string())
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let note = format!(
        "figure {FIGURE}: the same workload in three setups: {CLIENTS} clients each save \
{saves_per_client} runs into a workspace of their own (save_run in a transaction, exact \
summary), then {jobs} jobs of {USERS} users are enqueued and {CLIENTS} workers dequeue and \
complete them; every operation is retried on Error::is_retryable(), every job must be handed \
out exactly once and the summary must verify exact. The baseline of both Galera rows is the \
single MariaDB server (the bench's database on it); the Galera rows run on a three-node \
cluster started on this machine, with every client on node 0, then with client c on node \
c % 3. All three nodes share this machine's cores, so on one machine this measures the cost \
of certification and replication, not a speed-up. Retried (single / node 0 / 3 nodes): saves \
{}, drain {}. The single server commits with innodb_flush_log_at_trx_commit={single_flush}, \
the cluster's nodes with {node_flush} (their durability is the other nodes).",
        retries(|r| r.save_retries),
        retries(|r| r.drain_retries),
    );
    Ok(Outcome::Measured { figures, note })
}

async fn synced_readers(db: &GaleraDb) -> Vec<DatabaseConnection> {
    let mut readers = Vec::new();
    for node in 0..NODES {
        readers.push(db.synced_reader(node).await);
    }
    readers
}

impl Setup {
    fn pool(&self, client: usize) -> DatabaseConnection {
        self.pools[client % self.pools.len()].clone()
    }

    /// Returns once every node has applied what was committed before, so
    /// that no client starts on a node that lacks its fixtures.
    async fn wait_replicated(&self) -> Result<()> {
        for reader in &self.synced {
            scalar(reader, "SELECT COUNT(*) AS v FROM execution_jobs").await?;
        }
        Ok(())
    }

    /// Where a check reads: a synced reader on a cluster.
    fn checker(&self) -> &DatabaseConnection {
        self.synced.first().unwrap_or(&self.pools[0])
    }
}

async fn measure_setup(setup: &Setup, saves_per_client: u64, jobs: u64) -> Result<Rates> {
    let (saves, save_retries) = cold_saves(setup, saves_per_client).await?;
    let (jobs, drain_retries) = drain(setup, jobs).await?;
    Ok(Rates {
        saves,
        save_retries,
        jobs,
        drain_retries,
    })
}

/// Each client saves into a workspace of its own, in a transaction each;
/// saves per second and the retries.
async fn cold_saves(setup: &Setup, saves_per_client: u64) -> Result<(f64, u64)> {
    let mut targets = Vec::new();
    for client in 0..CLIENTS {
        targets.push(fixture(&setup.pools[0], client).await?);
    }
    setup.wait_replicated().await?;
    let retries = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (client, (ws, version)) in targets.iter().copied().enumerate() {
        let pool = setup.pool(client);
        let retries = retries.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..saves_per_client {
                let save = RunSave {
                    id: None,
                    workspace_id: ws,
                    uid: format!("u{}", i % 5),
                    parent_version_id: Some(version),
                    run_status: "bench".into(),
                    updated_at: chrono::Utc::now(),
                };
                retrying(&retries, || async {
                    let txn = pool.begin().await?;
                    save_run(&txn, &save, &SaveOptions::exact()).await?;
                    txn.commit().await?;
                    Ok(())
                })
                .await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let rate = (CLIENTS as u64 * saves_per_client) as f64 / started.elapsed().as_secs_f64();
    setup.wait_replicated().await?;
    for (ws, _) in targets {
        let report = verify(
            setup.checker(),
            &VerifyScope::Workspace(ws),
            &VerifyOptions::default(),
        )
        .await?;
        if !report.is_exact() {
            bail!("the summary of workspace {} drifted: {report:?}", ws.0);
        }
    }
    Ok((rate, retries.load(Ordering::Relaxed)))
}

/// A workspace with one published run and its version, for one client.
async fn fixture(conn: &DatabaseConnection, client: usize) -> Result<(WorkspaceId, VersionId)> {
    let now = chrono::Utc::now();
    let ws = workspace::Entity::insert(workspace::ActiveModel {
        id: NotSet,
        name: Set(format!("galera bench {client}")),
        is_personal: Set(false),
        created_at: Set(now),
        deleted_at: Set(None),
    })
    .exec(conn)
    .await?
    .last_insert_id;
    let run = published_run::Entity::insert(published_run::ActiveModel {
        id: NotSet,
        workspace_id: Set(ws),
        title: Set("wf".into()),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec(conn)
    .await?
    .last_insert_id;
    let version = published_run_version::Entity::insert(published_run_version::ActiveModel {
        id: NotSet,
        published_run_id: Set(run),
        created_at: Set(now),
    })
    .exec(conn)
    .await?
    .last_insert_id;
    Ok((WorkspaceId(ws), VersionId(version)))
}

/// Enqueues `jobs` jobs through the first pool, then [`CLIENTS`] workers
/// dequeue and complete one job per ticket; jobs per second and the
/// retries. Fails unless every job was handed out exactly once and
/// completed.
async fn drain(setup: &Setup, jobs: u64) -> Result<(f64, u64)> {
    let new: Vec<NewJob> = (0..jobs)
        .map(|i| NewJob::now(UserId((i % USERS) as i64), serde_json::json!({ "i": i })))
        .collect();
    let mut enqueued: Vec<i64> = enqueue_many(&setup.pools[0], &new)
        .await?
        .into_iter()
        .map(|id| id.0)
        .collect();
    setup.wait_replicated().await?;
    let tickets = Arc::new(AtomicU64::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..CLIENTS {
        let pool = setup.pool(w);
        let (tickets, retries) = (tickets.clone(), retries.clone());
        workers.push(tokio::spawn(async move {
            let name = format!("bench-galera-worker-{w}");
            let mut served = Vec::new();
            while tickets.fetch_add(1, Ordering::Relaxed) < jobs {
                let dry = Instant::now();
                let job = loop {
                    match retrying(&retries, || dequeue(&pool, &name)).await? {
                        Some(job) => break job,
                        None if dry.elapsed() < DRY_TIMEOUT => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        None => bail!(
                            "{name}: the queue ran dry before {jobs} jobs: a job was \
                             handed out twice"
                        ),
                    }
                };
                retrying(&retries, || complete(&pool, &job)).await?;
                served.push(job.id);
            }
            Ok(served)
        }));
    }
    let mut served = Vec::new();
    for worker in workers {
        served.extend(worker.await??);
    }
    let rate = jobs as f64 / started.elapsed().as_secs_f64();
    served.sort_unstable();
    enqueued.sort_unstable();
    if served != enqueued {
        bail!(
            "the drain did not hand out every job exactly once: {} served, {} distinct, \
             {} enqueued",
            served.len(),
            {
                let mut distinct = served.clone();
                distinct.dedup();
                distinct.len()
            },
            enqueued.len()
        );
    }
    let left = scalar(
        setup.checker(),
        "SELECT COUNT(*) AS v FROM execution_jobs WHERE state <> 'completed'",
    )
    .await?;
    if left != 0 {
        bail!("{left} jobs not completed after the drain");
    }
    Ok((rate, retries.load(Ordering::Relaxed)))
}

/// Runs `op` again while it fails with a retryable error (on Galera, a
/// certification conflict reported as deadlock 1213), counting the retries.
async fn retrying<T, F, Fut>(retries: &AtomicU64, mut op: F) -> Result<T, recents::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, recents::Error>>,
{
    loop {
        match op().await {
            Err(e) if e.is_retryable() => {
                retries.fetch_add(1, Ordering::Relaxed);
            }
            result => return result,
        }
    }
}

async fn scalar(conn: &DatabaseConnection, sql: &str) -> Result<i64> {
    let row = conn
        .query_one_raw(Statement::from_string(DbBackend::MySql, sql))
        .await?;
    match row {
        Some(row) => Ok(row.try_get::<i64>("", "v")?),
        None => bail!("no row from {sql}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_figure_ids_name_each_workload_in_each_setup() {
        assert_eq!(
            ids(),
            [
                "galera.saves.single",
                "galera.saves.one_node",
                "galera.saves.three_nodes",
                "galera.drain.single",
                "galera.drain.one_node",
                "galera.drain.three_nodes",
            ]
        );
    }
}
