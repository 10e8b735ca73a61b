//! The benchmark at scale 0.01 on every backend: it runs, its fast and slow
//! answers agree (the run fails otherwise), and every figure is filled in.
//! Timings are not checked.

use recents_bench::{Options, run};
use recents_testkit::{TestDb, backend_tests};

async fn the_benchmark_runs_at_one_hundredth_scale(db: &TestDb) {
    let report = run(
        &db.conn,
        &Options {
            scale: 0.01,
            repetitions: 3,
            saves_per_writer: 3,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("bench on {}: {e:#}", db.backend.name()));
    assert_eq!(
        report.history.heavy[0].1, 17_806,
        "1,780,569 runs scaled by 0.01"
    );
    assert!(
        report.history.runs >= 74_000,
        "7.4M runs scaled: {}",
        report.history.runs
    );
    // Backfill and verify, 5 heavy workspaces × 2 scopes × (p50, p99), then 4 save figures.
    assert_eq!(report.figures.len(), 26);
    assert_eq!(report.reads.len(), 10);
    for figure in &report.figures {
        assert!(figure.recents > 0.0, "{} measured nothing", figure.figure);
        // Backfill and verify are recents' own work: they have no baseline.
        let own_work = figure.figure.starts_with("backfill") || figure.figure.starts_with("verify");
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
    let svg = std::fs::read_to_string(&written[0]).unwrap();
    assert!(svg.starts_with("<svg"), "{svg}");
    assert_eq!(svg.matches("<polyline").count(), 4);
    assert_eq!(
        svg.matches("<circle").count(),
        4 * 5,
        "5 heavy workspaces per series"
    );
    let _ = std::fs::remove_dir_all(dir);
}

backend_tests!(
    the_benchmark_writes_its_plots,
    the_benchmark_runs_at_one_hundredth_scale
);
