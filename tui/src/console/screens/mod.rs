//! One module per screen, each with its state and a `render(state, frame, area)`.
//! Backfill and Queue screens join here when their services land.

pub mod workspace;
pub mod workspaces;
