//! One module per screen, each with its state and a `render(state, frame, area)`.

pub mod backfill;
pub mod queue;
pub mod workspace;
pub mod workspaces;
