//! `recents`: exact recent-use summaries and a fair job queue for SeaORM backends.
//!
//! One dependency for a backend service crate: the service API at the root,
//! the entities under [`entity`] and the schema under [`migration`].

pub use recents_entity as entity;
pub use recents_migration as migration;
pub use recents_service::*;

// Every Rust block of the README compiles, and runs, as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
