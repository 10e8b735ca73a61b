//! One module per screen, each with its state and a `render(state, frame, area)`.
//! The Queue screen joins here when its service lands.

pub mod backfill;
pub mod workspace;
pub mod workspaces;
