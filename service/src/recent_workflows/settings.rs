//! The settings of the trigger-kept summary, in recents' own
//! `recent_workflows_settings` table: the triggers read them there, since no
//! `SaveOptions` reach a trigger.

use std::time::Duration;

use sea_orm::{ConnectionTrait, FromQueryResult};

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
