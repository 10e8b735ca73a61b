//! Wake-ups of an idle worker: on PostgreSQL, LISTEN on the channel that
//! migration 10's trigger notifies on each enqueue; elsewhere nothing, and
//! the worker polls. A notification is a hint: the worker claims on it, and
//! polls anyway, so a lost one delays a job to the next poll only.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The channel `execution_jobs`' insert trigger notifies.
pub const WAKEUP_CHANNEL: &str = "recents_queue";

/// A listener's task and what it signals.
pub(super) struct Wakeups {
    pub(super) notify: Arc<Notify>,
    task: Option<JoinHandle<()>>,
}

impl Wakeups {
    /// Listens when `enabled` and the connection is PostgreSQL's; polling
    /// alone otherwise, or when LISTEN fails (said once, as a warning).
    pub(super) async fn start(conn: &DatabaseConnection, enabled: bool) -> Wakeups {
        let notify = Arc::new(Notify::new());
        let task = if enabled {
            listen(conn, notify.clone()).await
        } else {
            None
        };
        Wakeups { notify, task }
    }

    /// Whether a listener runs.
    pub(super) fn listening(&self) -> bool {
        self.task.is_some()
    }
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(feature = "postgres")]
async fn listen(conn: &DatabaseConnection, notify: Arc<Notify>) -> Option<JoinHandle<()>> {
    use sea_orm::DatabaseConnectionType;
    use sea_orm::sqlx::postgres::{PgListener, PgPoolOptions};

    if !matches!(
        conn.inner,
        DatabaseConnectionType::SqlxPostgresPoolConnection(_)
    ) {
        return None;
    }
    // A pool of one of its own, from the caller's connect options: the
    // listener holds its connection for the worker's life, and must not
    // take it from the pool the handlers share. Its pool reconnects it.
    let options = conn.get_postgres_connection_pool().connect_options();
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy_with((*options).clone());
    let listener = async {
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(WAKEUP_CHANNEL).await?;
        Ok::<_, sea_orm::sqlx::Error>(listener)
    };
    let mut listener = match listener.await {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!(error = %e, "cannot LISTEN for queue wake-ups; polling only");
            return None;
        }
    };
    Some(tokio::spawn(async move {
        loop {
            match listener.recv().await {
                Ok(_) => notify.notify_one(),
                Err(e) => {
                    // The listener reconnects by itself; a lost notification
                    // only delays a job to the next poll.
                    tracing::debug!(error = %e, "queue wake-up listener");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    }))
}

#[cfg(not(feature = "postgres"))]
async fn listen(_conn: &DatabaseConnection, _notify: Arc<Notify>) -> Option<JoinHandle<()>> {
    None
}
