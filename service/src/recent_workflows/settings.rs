//! The settings of the trigger-kept summary, in recents' own
//! `recent_workflows_settings` table: the triggers read them there, since no
//! `SaveOptions` reach a trigger.

use std::time::Duration;

use recents_schema::{MaintainedBy, Schema};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult};

use crate::error::{Error, Result};
use crate::handle::Recents;
use crate::sql::statement;

#[derive(FromQueryResult)]
struct Window {
    freshness_window_us: i64,
}

impl Recents {
    /// Sets the freshness window the summary's triggers apply to every save
    /// (trigger mode; see [`crate::SaveOptions::freshness_window`] for what a
    /// window guarantees). Zero, the default, keeps every row exact. In
    /// service mode the window is each save's own `SaveOptions`, and this
    /// setting is only stored.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a window beyond `i64::MAX` microseconds;
    /// [`Error::Database`] (also when the summary migration has not run).
    pub async fn set_freshness_window<C: ConnectionTrait>(
        &self,
        conn: &C,
        window: Duration,
    ) -> Result<()> {
        let micros = i64::try_from(window.as_micros()).map_err(|_| Error::InvalidArgument {
            what: "freshness window",
            why: "longer than i64::MAX microseconds".into(),
        })?;
        let backend = conn.get_database_backend();
        let table = self
            .schema()
            .names(backend)
            .object("recent_workflows_settings");
        conn.execute_raw(statement(
            backend,
            &format!("UPDATE {table} SET freshness_window_us = ? WHERE id = 1"),
            vec![micros.into()],
        ))
        .await?;
        Ok(())
    }

    /// The freshness window the summary's triggers apply (zero: exact).
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn freshness_window<C: ConnectionTrait>(&self, conn: &C) -> Result<Duration> {
        let backend = conn.get_database_backend();
        let table = self
            .schema()
            .names(backend)
            .object("recent_workflows_settings");
        let row = conn
            .query_one_raw(statement(
                backend,
                &format!("SELECT freshness_window_us FROM {table} WHERE id = 1"),
                vec![],
            ))
            .await?;
        let micros = match row {
            Some(row) => Window::from_query_result(&row, "")?.freshness_window_us,
            None => 0,
        };
        Ok(Duration::from_micros(micros.max(0) as u64))
    }
}

/// Who keeps the summary on this database, as its catalog says: triggers
/// when the summary migration installed them (its trigger on version
/// deletes exists under this mapping's prefix on every backend), else the
/// service.
async fn installed_mode<C: ConnectionTrait>(conn: &C, schema: &Schema) -> Result<MaintainedBy> {
    let backend = conn.get_database_backend();
    let trigger = schema
        .names(backend)
        .unquoted_object("recents_rw_version_delete");
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT tgname AS name FROM pg_trigger WHERE tgname = ? AND NOT tgisinternal"
        }
        DbBackend::MySql => {
            "SELECT TRIGGER_NAME AS name FROM information_schema.TRIGGERS \
             WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME = ?"
        }
        _ => "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name = ?",
    };
    let found = conn
        .query_one_raw(statement(backend, sql, vec![trigger.into()]))
        .await?;
    Ok(if found.is_some() {
        MaintainedBy::Triggers
    } else {
        MaintainedBy::Service
    })
}

/// [`Error::SummaryModeMismatch`] when the mapping leaves the summary to
/// triggers the database does not have: nobody would write it. The other
/// way round (a service-mode handle over installed triggers) the summary is
/// kept twice and stays exact, which is what a switch of modes goes through
/// (see `apply_summary_mode`), so it is only logged. Nothing to check when
/// recent workflows are not installed.
pub(crate) async fn check_mode<C: ConnectionTrait>(conn: &C, schema: &Schema) -> Result<()> {
    if !schema.install().recent_workflows {
        return Ok(());
    }
    let installed = installed_mode(conn, schema).await?;
    match (schema.maintained_by(), installed) {
        (MaintainedBy::Triggers, MaintainedBy::Service) => Err(Error::SummaryModeMismatch {
            mapping: MaintainedBy::Triggers.as_str(),
            installed: MaintainedBy::Service.as_str(),
        }),
        (MaintainedBy::Service, MaintainedBy::Triggers) => {
            tracing::warn!(
                "the summary's triggers are installed and this handle is in service mode: \
                 every save writes the summary twice (exact, slower) until the switch of \
                 modes ends"
            );
            Ok(())
        }
        _ => Ok(()),
    }
}
