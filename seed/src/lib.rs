//! `recents-seed`: data sets for trying and measuring `recents`.
//!
//! [`seed_demo`] makes the console's demo (`recents seed --demo`,
//! `recents --demo`). [`bulk`] holds the set-based generators it uses for its
//! heavy workspace: one `INSERT … SELECT` per hundred thousand rows, made by
//! the database. [`scale`] generates the benchmark's history, shaped like the
//! production table of the first seed at a scale factor; [`queue`] the
//! execution jobs, shaped like the second seed's queue (and the demo's).
//!
//! ```no_run
//! # async fn example(db: &sea_orm::DatabaseConnection) -> Result<(), recents_service::Error> {
//! let report = recents_seed::seed_demo(db, &recents_seed::DemoOptions::default()).await?;
//! println!("{} runs in {} workspaces", report.runs, report.workspaces.len());
//! # Ok(()) }
//! ```

pub mod bulk;
pub mod demo;
pub mod queue;
pub mod scale;
pub mod statistics;

pub use demo::{
    DEFAULT_HEAVY_RUNS, DEMO_JOB_USERS, DEMO_JOBS, DemoOptions, DemoReport, HEAVY_WORKSPACE,
    seed_demo, seed_demo_with_progress,
};
