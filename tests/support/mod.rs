//! History fixtures and the in-memory oracle the summary is checked against.

#![allow(dead_code)]

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use recents::entity::prelude::*;
use recents::entity::{published_run, published_run_version, workspace, workspace_recent_workflow};
use recents::{PublishedRunId, VersionId, WorkspaceId};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, NotSet};

/// A time `seconds` after a fixed origin, with `micros` on top.
pub fn at(seconds: i64, micros: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(1_767_225_600_000_000 + seconds * 1_000_000 + micros)
        .unwrap()
}

pub async fn workspace<C: ConnectionTrait>(conn: &C, name: &str, personal: bool) -> WorkspaceId {
    WorkspaceId(
        Workspace::insert(workspace::ActiveModel {
            id: NotSet,
            name: Set(name.into()),
            is_personal: Set(personal),
            created_at: Set(at(0, 0)),
            deleted_at: Set(None),
        })
        .exec(conn)
        .await
        .unwrap()
        .last_insert_id,
    )
}

pub async fn published_run<C: ConnectionTrait>(
    conn: &C,
    workspace_id: WorkspaceId,
    title: &str,
) -> PublishedRunId {
    PublishedRunId(
        PublishedRun::insert(published_run::ActiveModel {
            id: NotSet,
            workspace_id: Set(workspace_id.0),
            title: Set(title.into()),
            created_at: Set(at(0, 0)),
            updated_at: Set(at(0, 0)),
        })
        .exec(conn)
        .await
        .unwrap()
        .last_insert_id,
    )
}

pub async fn version<C: ConnectionTrait>(conn: &C, published_run_id: PublishedRunId) -> VersionId {
    VersionId(
        PublishedRunVersion::insert(published_run_version::ActiveModel {
            id: NotSet,
            published_run_id: Set(published_run_id.0),
            created_at: Set(at(0, 0)),
        })
        .exec(conn)
        .await
        .unwrap()
        .last_insert_id,
    )
}

/// (workspace, uid, published run) → (last_used_at, last_saved_run_id).
pub type SummaryRows = BTreeMap<(i64, String, i64), (DateTime<Utc>, i64)>;

/// What `workspace_recent_workflows` must hold, computed in memory from
/// every saved run and version: independent of any SQL of the crate.
pub async fn expected_summary<C: ConnectionTrait>(conn: &C) -> SummaryRows {
    let versions: BTreeMap<i64, i64> = PublishedRunVersion::find()
        .all(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.id, v.published_run_id))
        .collect();
    let mut rows = SummaryRows::new();
    for run in SavedRun::find().all(conn).await.unwrap() {
        let Some(pr) = run.parent_version_id.and_then(|v| versions.get(&v)) else {
            continue;
        };
        for uid in [run.uid.clone(), String::new()] {
            let entry = rows
                .entry((run.workspace_id, uid, *pr))
                .or_insert((run.updated_at, run.id));
            if (run.updated_at, run.id) > *entry {
                *entry = (run.updated_at, run.id);
            }
        }
    }
    rows
}

/// What `workspace_recent_workflows` holds.
pub async fn actual_summary<C: ConnectionTrait>(conn: &C) -> SummaryRows {
    WorkspaceRecentWorkflow::find()
        .all(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|r: workspace_recent_workflow::Model| {
            (
                (r.workspace_id, r.uid, r.published_run_id),
                (r.last_used_at, r.last_saved_run_id),
            )
        })
        .collect()
}

/// Empties every table, children first.
pub async fn clear<C: ConnectionTrait>(conn: &C) {
    for table in [
        "workspace_recent_workflows",
        "saved_runs",
        "published_run_versions",
        "published_runs",
        "workspaces",
    ] {
        conn.execute_unprepared(&format!("DELETE FROM {table}"))
            .await
            .unwrap();
    }
}
