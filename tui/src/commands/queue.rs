//! `recents queue status [--limit N]`: the fair queue as a script or an
//! operator's terminal sees it: per-user counts and latest dequeue, and the
//! next jobs in fair order with their places.

use recents_service::admin::UserQueueStats;
use recents_service::queue::InLine;
use serde::Serialize;

use super::timestamp;
use crate::Target;

/// Jobs in line `queue status` lists unless told otherwise (as the console).
pub const DEFAULT_NEXT_IN_LINE: u32 = 20;

#[derive(Serialize)]
struct Status {
    users: Vec<User>,
    next_in_line: Vec<Waiting>,
}

#[derive(Serialize)]
struct User {
    user_id: i64,
    queued: u64,
    errored: u64,
    processing: u64,
    failed: u64,
    latest_dequeue: Option<String>,
}

#[derive(Serialize)]
struct Waiting {
    place_in_global_queue: u64,
    place_in_user_queue: u64,
    job_id: i64,
    user_id: i64,
    created_at: String,
    latest_dequeue: Option<String>,
}

/// Prints per-user queue counts and the next `limit` jobs in fair order.
///
/// # Errors
/// Bad input (limit 0 or over 1000), an unreachable database or one whose
/// schema is not current.
pub async fn status(target: &Target, limit: u32, json: bool) -> anyhow::Result<()> {
    let session = target.connect().await?;
    let (recents, conn) = (&session.recents, &session.db);
    // The limit first: bad input fails before any other read.
    let next = recents.next_in_line(conn, limit).await?;
    let users = recents.queue_stats(conn).await?;
    if json {
        return super::print_json(&Status {
            users: users.iter().map(user).collect(),
            next_in_line: next.iter().map(waiting).collect(),
        });
    }
    if users.is_empty() {
        println!("no jobs queued, running or failed");
    } else {
        println!(
            "{:>10}  {:>8}  {:>8}  {:>10}  {:>8}  latest dequeue (UTC)",
            "user", "queued", "errored", "processing", "failed"
        );
        for u in &users {
            println!(
                "{:>10}  {:>8}  {:>8}  {:>10}  {:>8}  {}",
                u.user_id.0,
                u.queued,
                u.errored,
                u.processing,
                u.failed,
                u.latest_dequeue
                    .map_or_else(|| "never".to_owned(), timestamp)
            );
        }
    }
    println!();
    if next.is_empty() {
        println!("nobody is waiting");
        return Ok(());
    }
    println!("next {} in line (fair order):", next.len());
    println!(
        "{:>6}  {:>9}  {:>10}  {:>10}  created (UTC)",
        "place", "in user's", "job", "user"
    );
    for job in &next {
        println!(
            "{:>6}  {:>9}  {:>10}  {:>10}  {}",
            job.place.place_in_global_queue,
            job.place.place_in_user_queue,
            job.job_id.0,
            job.user_id.0,
            timestamp(job.created_at)
        );
    }
    Ok(())
}

fn user(u: &UserQueueStats) -> User {
    User {
        user_id: u.user_id.0,
        queued: u.queued,
        errored: u.errored,
        processing: u.processing,
        failed: u.failed,
        latest_dequeue: u.latest_dequeue.map(timestamp),
    }
}

fn waiting(job: &InLine) -> Waiting {
    Waiting {
        place_in_global_queue: job.place.place_in_global_queue,
        place_in_user_queue: job.place.place_in_user_queue,
        job_id: job.job_id.0,
        user_id: job.user_id.0,
        created_at: timestamp(job.created_at),
        latest_dequeue: job.latest_dequeue.map(timestamp),
    }
}
