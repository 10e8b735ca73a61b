//! Newtypes for the ids that would otherwise be easy to swap.

use std::fmt;

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, sea_orm::DeriveValueType)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<i64> for $name {
            fn from(id: i64) -> Self {
                Self(id)
            }
        }
    };
}

id!(
    /// `workspaces.id`.
    WorkspaceId
);
id!(
    /// `published_runs.id`: a workflow.
    PublishedRunId
);
id!(
    /// `published_run_versions.id`.
    VersionId
);
id!(
    /// `saved_runs.id`.
    SavedRunId
);
id!(
    /// `execution_jobs.id`.
    JobId
);
id!(
    /// `execution_jobs.user_id`: the owner of a job.
    UserId
);
