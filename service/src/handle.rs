//! [`Recents`]: the library over one schema mapping. Each summary adds its
//! operations to it in its own module (`recent_workflows/`, `queue/`,
//! `backfill/`, `verify/`); the free functions of the crate root are the same
//! operations on recents' own table names.

use std::sync::{Arc, LazyLock};

use recents_schema::{MaintainedBy, Schema};
use sea_orm::ConnectionTrait;

use crate::error::Result;

/// Every operation of recents, on the backend's tables as a [`Schema`]
/// mapping names them. Cheap to clone; build one at startup and share it.
///
/// ```no_run
/// # async fn example(db: &sea_orm::DatabaseConnection) -> Result<(), recents_service::Error> {
/// use recents_service::{Recents, Schema, Scope, WorkspaceId};
///
/// let schema = Schema::from_toml(r#"
///     [tables]
///     saved_runs = "bots_savedrun"
///     versions = "bots_publishedrunversion"
/// "#)?;
/// let recents = Recents::connect(db, schema).await?;   // checks the mapping against the database
/// let recent = recents.recent_workflows(db, WorkspaceId(5), &Scope::Workspace, 4).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recents {
    schema: Arc<Schema>,
}

static STANDARD: LazyLock<Recents> = LazyLock::new(Recents::default);

impl Recents {
    /// recents over `schema`, not checked against a database (see
    /// [`Recents::connect`]).
    pub fn new(schema: Schema) -> Self {
        Self {
            schema: Arc::new(schema),
        }
    }

    /// recents over `schema`, checked against the database `conn` reaches:
    /// every mapped table and column exists with a type recents can use, and
    /// the summary is kept the way the mapping says (`maintained_by`).
    ///
    /// # Errors
    /// [`crate::Error::Schema`] naming the key of what is missing or wrong;
    /// [`crate::Error::SummaryModeMismatch`] for a trigger-mode mapping over a
    /// database without the triggers; nothing is written.
    pub async fn connect<C: ConnectionTrait>(conn: &C, schema: Schema) -> Result<Self> {
        let schema = schema.check(conn).await?;
        crate::recent_workflows::check_mode(conn, &schema).await?;
        Ok(Self::new(schema))
    }

    /// The schema this handle works on.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Whether database triggers keep the recent-workflows summary
    /// (`[recent_workflows] maintained_by = "triggers"`): the write path
    /// then writes history only.
    pub fn summary_kept_by_triggers(&self) -> bool {
        self.schema.maintained_by() == MaintainedBy::Triggers
    }

    /// recents' own table names: what the crate's free functions use.
    pub(crate) fn standard() -> &'static Recents {
        &STANDARD
    }
}
