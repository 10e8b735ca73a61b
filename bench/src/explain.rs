//! The plan of the real dequeue statement, as PostgreSQL ran it: the claim is
//! built inside `recents_service::queue` and not public, so rather than copy
//! its SQL here (and measure a copy that drifts), `auto_explain` logs the
//! plan of every statement of one `dequeue` as a NOTICE, which sqlx reports
//! as a tracing event; a subscriber scoped to that one future collects them.

use std::sync::{Arc, Mutex};

use anyhow::Result;
use recents::queue::dequeue;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, TransactionTrait};
use tracing::instrument::WithSubscriber;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

const NOTICE_TARGET: &str = "sqlx::postgres::notice";

/// How the claim statement starts, to pick its plan out of the others.
const CLAIM: &str = "UPDATE \"execution_jobs\" SET \"state\" = 'processing'";

/// EXPLAIN ANALYZE (with buffers) of the claim statement of one
/// `dequeue`, run in a transaction that is rolled back. `None` off
/// PostgreSQL; an explanation instead of a plan when `auto_explain` cannot
/// be loaded (it needs a superuser).
///
/// # Errors
/// When the dequeue itself fails.
pub async fn dequeue_plan(conn: &DatabaseConnection) -> Result<Option<String>> {
    if conn.get_database_backend() != DbBackend::Postgres {
        return Ok(None);
    }
    let notices = Notices::default();
    let captured = notices.0.clone();
    let explained = async {
        let txn = conn.begin().await?;
        if let Err(e) = txn.execute_unprepared("LOAD 'auto_explain'").await {
            return Ok::<_, anyhow::Error>(Some(format!("auto_explain unavailable: {e}")));
        }
        for setting in [
            "SET LOCAL auto_explain.log_min_duration = 0",
            "SET LOCAL auto_explain.log_analyze = on",
            "SET LOCAL auto_explain.log_buffers = on",
            // The claim runs inside PostgreSQL's claim function.
            "SET LOCAL auto_explain.log_nested_statements = on",
            "SET LOCAL auto_explain.log_level = notice",
            "SET LOCAL client_min_messages = notice",
        ] {
            txn.execute_unprepared(setting).await?;
        }
        dequeue(&txn, "bench-explain").await?;
        txn.rollback().await?;
        Ok(None)
    }
    .with_subscriber(notices)
    .await?;
    if explained.is_some() {
        return Ok(explained);
    }
    let captured = captured.lock().map(|c| c.clone()).unwrap_or_default();
    Ok(Some(
        captured
            .into_iter()
            .find(|plan| plan.contains(CLAIM))
            .unwrap_or_else(|| "auto_explain logged no plan of the claim statement".into()),
    ))
}

/// Collects the messages of PostgreSQL notices; ignores everything else.
#[derive(Clone, Default)]
struct Notices(Arc<Mutex<Vec<String>>>);

impl Subscriber for Notices {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // Decided per event: this subscriber is scoped to one future, and a
        // callsite's cached interest is shared by every dispatcher.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == NOTICE_TARGET
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        if event.metadata().target() != NOTICE_TARGET {
            return;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        if let Ok(mut all) = self.0.lock() {
            all.push(message.0);
        }
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_owned();
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" && self.0.is_empty() {
            self.0 = format!("{value:?}");
        }
    }
}
