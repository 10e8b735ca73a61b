//! The benchmark at scale 0.01 on every backend: it runs, its fast and slow
//! answers agree (the run fails otherwise: the reads' two answers, the three
//! dequeue heads), and every figure is filled in. Timings are not checked.

use recents_bench::{ALL_FIGURES, Options, run};
use recents_testkit::{TestDb, backend_tests};

async fn the_benchmark_runs_at_one_hundredth_scale(db: &TestDb) {
    let report = run(
        &db.conn,
        &Options {
            scale: 0.01,
            repetitions: 3,
            saves_per_writer: 3,
            figures: ALL_FIGURES.to_vec(),
            drain_jobs: 100,
            explain: true,
            reuse_history: false,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("bench on {}: {e:#}", db.backend.name()));
    let history = report.history.as_ref().unwrap();
    assert_eq!(history.heavy[0].1, 17_806, "1,780,569 runs scaled by 0.01");
    assert!(history.runs >= 74_000, "7.4M runs scaled: {}", history.runs);
    // The migration's fill, backfill and verify, 5 heavy workspaces × 2 scopes × (p50, p99), 16 save
    // figures (hot and cold, exact and a 1 s window, kept by the service and
    // by triggers, autocommitted and with the caller's 2 ms of work), then per
    // user count (20, 2,000, 20,000) p50 and p99 against the seed after, p50
    // against the seed before, FIFO, fair and fair in tens, and for the two
    // larger counts p50 against the 20 users'.
    assert_eq!(report.figures.len(), 39 + 3 * 6 + 2);
    assert_eq!(report.reads.len(), 10);
    // 3 user counts at the seed's 240 waiting jobs, every head agreed on by
    // the seed's queries, dequeue and next_in_line.
    assert_eq!(
        report
            .dequeues
            .iter()
            .map(|d| (d.users, d.waiting))
            .collect::<Vec<_>>(),
        [(20, 240), (2_000, 240), (20_000, 240)]
    );
    assert!(report.dequeues.iter().all(|d| d.head > 0));
    // The claim's plan is captured on PostgreSQL only.
    let expected_plans = if db.backend.name() == "postgres" {
        3
    } else {
        0
    };
    assert_eq!(report.plans.len(), expected_plans, "{:?}", report.plans);
    for (_, plan) in &report.plans {
        assert!(plan.contains("Update on execution_jobs"), "{plan}");
    }
    let mut ids: Vec<&str> = report.figures.iter().map(|f| f.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        report.figures.len(),
        "figure ids repeat: {ids:?}"
    );
    for figure in &report.figures {
        assert!(figure.recents > 0.0, "{} measured nothing", figure.figure);
        // Backfill, verify and the queue's throughput are recents' own work:
        // they have no baseline.
        let own_work = figure.figure.starts_with("backfill")
            || figure.figure.starts_with("verify")
            || figure.id.starts_with("queue.drain.fifo");
        assert!(
            own_work || figure.baseline.is_some_and(|b| b > 0.0),
            "{} has no baseline",
            figure.figure
        );
    }
}

/// The plots of a run are SVG documents with a line per series.
async fn the_benchmark_writes_its_plots(db: &TestDb) {
    let report = run(
        &db.conn,
        &Options {
            scale: 0.002,
            repetitions: 2,
            saves_per_writer: 1,
            figures: vec![1, 4],
            drain_jobs: 10,
            explain: false,
            reuse_history: false,
        },
    )
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!(
        "recents-plots-{}-{}",
        std::process::id(),
        db.backend.name()
    ));
    let written = recents_bench::write_plots(&report, &dir).unwrap();
    assert_eq!(written.len(), 2);
    let svg = std::fs::read_to_string(dir.join("reads.svg")).unwrap();
    assert!(svg.starts_with("<svg"), "{svg}");
    assert_eq!(svg.matches("<polyline").count(), 4);
    assert_eq!(
        svg.matches("<circle").count(),
        4 * 5,
        "5 heavy workspaces per series"
    );
    let svg = std::fs::read_to_string(dir.join("dequeue.svg")).unwrap();
    assert!(svg.starts_with("<svg"), "{svg}");
    assert_eq!(svg.matches("<polyline").count(), 3, "3 queries");
    assert_eq!(svg.matches("<circle").count(), 3 * 3, "3 user counts");
    let _ = std::fs::remove_dir_all(dir);
}

backend_tests!(
    the_benchmark_writes_its_plots,
    the_benchmark_runs_at_one_hundredth_scale
);
