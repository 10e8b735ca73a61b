//! The operator's layer: what the console, the command line, the seed and
//! the benchmark need and a backend does not. A backend keeps its own
//! connection pool and migrator and calls the crate root; these are the
//! tools around it.
//!
//! - [`connection`]: a URL checked and redacted, a pool sized for the
//!   console, the embedded default database.
//! - [`migrations`]: where recents' migrations stand, and opening a database
//!   checked or migrated.
//! - [`directory`]: the workspace directory operators browse.
//! - [`queue_stats`]: the queue per user, as the console's Queue screen
//!   shows it.
//! - [`statement`]: raw SQL with `?` placeholders on any backend, for tools
//!   that write their own (the seed, the benchmark, tests).
//!
//! ```no_run
//! # async fn example() -> Result<(), recents_service::Error> {
//! use recents_service::admin::{connect_and_migrate, list_workspaces, WorkspaceListing};
//!
//! let db = connect_and_migrate("sqlite://recents.db?mode=rwc").await?;
//! let page = list_workspaces(&db, &WorkspaceListing::default()).await?;
//! println!("{} workspaces on the first page", page.workspaces.len());
//! # Ok(()) }
//! ```

pub mod connection;
pub mod directory;
pub mod migrations;
pub mod queue_stats;

pub use crate::sql::statement;
pub use connection::{
    CONNECT_TIMEOUT, DEFAULT_DATABASE_URL, POOL_SIZE, backend_of, connect_unchecked, redact,
};
pub use directory::{
    MAX_FILTER_BYTES, WorkspaceCursor, WorkspaceListing, WorkspaceOrder, WorkspaceOverview,
    WorkspacePage, list_workspaces, workspace_members, workspace_overview,
};
pub use migrations::{
    Migrate, SchemaStatus, Tables, connect, connect_and_migrate, migrate_up, open, open_tables,
    schema_status, tables_status,
};
pub use queue_stats::{UserQueueStats, queue_stats};
