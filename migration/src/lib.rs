//! The schema of `recents`, as sea-orm-migration migrations.
//!
//! Migrations, not the entities, are the source of truth: they carry the
//! composite and descending indexes, the per-backend column types (microsecond
//! timestamps everywhere) and, for the queue, the triggers.

pub use sea_orm_migration::prelude::*;

mod columns;
mod m20261123_000001_history;
mod m20261123_000002_workspace_recent_workflows;
mod m20261123_000003_execution_last_dequeues;
mod m20261123_000004_backfill_checkpoints;
mod m20261123_000005_fair_queue;
mod m20261201_000006_exact_edges;
mod m20261201_000007_summary_writes;
mod m20261202_000010_queue_wakeups;
mod placeholders;
pub mod reach;

/// Every migration of `recents`, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_history::Migration),
            Box::new(m20261123_000002_workspace_recent_workflows::Migration),
            Box::new(m20261123_000003_execution_last_dequeues::Migration),
            Box::new(m20261123_000004_backfill_checkpoints::Migration),
            Box::new(m20261123_000005_fair_queue::Migration),
            Box::new(m20261201_000006_exact_edges::Migration),
            Box::new(m20261201_000007_summary_writes::Migration),
            Box::new(m20261202_000010_queue_wakeups::Migration),
        ]
    }
}
