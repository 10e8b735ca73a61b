//! `recents recent --workspace ID [--uid U] [--limit N]`: a workspace's (or
//! one member's) recent workflows, from the summary, as the home page reads them.

use recents_service::{RecentWorkflow, Scope, WorkspaceId};
use serde::Serialize;

use super::timestamp;
use crate::Target;

#[derive(Serialize)]
struct Row<'a> {
    published_run_id: i64,
    title: &'a str,
    last_used_at: String,
    last_saved_run_id: i64,
}

/// Prints the `limit` most recently used workflows of `workspace`, in
/// workspace scope or, with `uid`, in that member's scope.
///
/// # Errors
/// Bad input (limit 0 or over 1000, an empty uid), an unknown or deleted
/// workspace, an unreachable database or one whose schema is not current.
pub async fn run(
    target: &Target,
    workspace: i64,
    uid: Option<String>,
    limit: u32,
    json: bool,
) -> anyhow::Result<()> {
    let scope = match uid {
        Some(uid) => Scope::Member(uid),
        None => Scope::Workspace,
    };
    let session = target.connect().await?;
    let workflows = session
        .recents
        .recent_workflows(&session.db, WorkspaceId(workspace), &scope, limit)
        .await?;
    if json {
        let rows: Vec<Row> = workflows.iter().map(row).collect();
        return super::print_json(&rows);
    }
    if workflows.is_empty() {
        println!("no recent workflows");
        return Ok(());
    }
    println!(
        "{:<27}  {:>10}  {:>10}  title",
        "last used (UTC)", "workflow", "last run"
    );
    for w in &workflows {
        println!(
            "{:<27}  {:>10}  {:>10}  {}",
            timestamp(w.last_used_at),
            w.published_run_id,
            w.last_saved_run_id,
            w.title
        );
    }
    Ok(())
}

fn row(w: &RecentWorkflow) -> Row<'_> {
    Row {
        published_run_id: w.published_run_id.0,
        title: &w.title,
        last_used_at: timestamp(w.last_used_at),
        last_saved_run_id: w.last_saved_run_id.0,
    }
}
