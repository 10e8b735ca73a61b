//! The schema of `recents`, as sea-orm-migration migrations.
//!
//! Two sets. [`migrations`] is what recents owns: its summary tables, the
//! backfill checkpoints, the queue's lock row, and the indexes and triggers it
//! needs on the backend's tables (named by a [`Schema`] mapping). A team lists
//! it in its own `MigratorTrait::migrations()`, after the migrations that
//! create its tables. [`history_migrations`] creates the history tables
//! themselves under recents' own names, for a team starting from nothing, the
//! demo and the tests; [`Migrator`] is both, for a database recents makes whole.
//!
//! ```
//! use recents_migration::{MigrationTrait, MigratorTrait, Schema, async_trait};
//!
//! /// A team's migrator: its own tables first, then recents' (one `seaql_migrations`).
//! pub struct TeamMigrator;
//!
//! #[async_trait::async_trait]
//! impl MigratorTrait for TeamMigrator {
//!     fn migrations() -> Vec<Box<dyn MigrationTrait>> {
//!         let mut all: Vec<Box<dyn MigrationTrait>> = vec![/* Box::new(m20240101_000001_users::Migration), … */];
//!         let schema = Schema::from_toml("[tables]\nsaved_runs = \"bots_savedrun\"").expect("a valid mapping");
//!         all.extend(recents_migration::migrations(&schema));
//!         all
//!     }
//! }
//! ```
//!
//! Migrations, not the entities, are the source of truth: they carry the
//! composite and descending indexes, the per-backend column types (microsecond
//! timestamps everywhere) and the triggers.

pub use recents_schema::{Schema, SchemaError, SchemaMapping};
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
mod m20261202_000011_queue_heads;
mod m20261202_000012_summary_triggers;
mod m20261202_000013_queue_throughput;
mod m20261203_000014_queue_claim;
pub mod reach;
mod runner;

pub use m20261202_000012_summary_triggers::apply_summary_mode;
pub use runner::{OwnMigrations, Status};

/// recents' own migrations, oldest first, over the tables `schema` names:
/// what a team puts into its `MigratorTrait::migrations()`, after the
/// migrations that create the tables the mapping names.
pub fn migrations(schema: &Schema) -> Vec<Box<dyn MigrationTrait>> {
    let schema = || schema.clone();
    vec![
        summary_migration(&schema(), None),
        Box::new(m20261123_000003_execution_last_dequeues::Migration { schema: schema() }),
        Box::new(m20261123_000004_backfill_checkpoints::Migration { schema: schema() }),
        Box::new(m20261123_000005_fair_queue::Migration { schema: schema() }),
        Box::new(m20261201_000006_exact_edges::Migration { schema: schema() }),
        Box::new(m20261201_000007_summary_writes::Migration { schema: schema() }),
        Box::new(m20261202_000010_queue_wakeups::Migration { schema: schema() }),
        Box::new(m20261202_000011_queue_heads::Migration { schema: schema() }),
        Box::new(m20261202_000012_summary_triggers::Migration { schema: schema() }),
        Box::new(m20261202_000013_queue_throughput::Migration { schema: schema() }),
        Box::new(m20261203_000014_queue_claim::Migration { schema: schema() }),
    ]
}

/// The summary's migration (the first of [`migrations`]) with `fill_batch_rows`
/// saved runs per batch of its fill instead of the backend's default: for the
/// tests of a fill stopped between batches.
#[doc(hidden)]
pub fn summary_migration(schema: &Schema, fill_batch_rows: Option<i64>) -> Box<dyn MigrationTrait> {
    Box::new(m20261123_000002_workspace_recent_workflows::Migration {
        schema: schema.clone(),
        fill_batch_rows,
    })
}

/// The history tables under recents' own names (workspaces, published runs
/// and their versions, saved runs, execution jobs): optional, for a database
/// that has none yet. They belong to the backend once created.
pub fn history_migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![Box::new(m20261123_000001_history::Migration)]
}

/// The history tables and recents' own, under recents' names: the migrator
/// of a database recents makes whole (the demo, the tests, the
/// `recents-migration` binary). A team with its own tables uses
/// [`migrations`] in its own migrator instead.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = history_migrations();
        all.extend(migrations(&Schema::default()));
        all
    }
}
