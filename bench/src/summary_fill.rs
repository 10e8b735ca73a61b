//! Fills `workspace_recent_workflows` from the generated history in one
//! set-based pass per scope, so the reads have their summary.

use anyhow::Result;
use sea_orm::{ConnectionTrait, DatabaseConnection};

/// Inserts every member row and every workspace row (uid '') as the history
/// aggregate: the latest (updated_at, id) per group.
pub async fn fill(conn: &DatabaseConnection) -> Result<()> {
    for (uid, partition) in [("s.uid", "s.workspace_id, s.uid"), ("''", "s.workspace_id")] {
        conn.execute_unprepared(&format!(
            "INSERT INTO workspace_recent_workflows \
                 (workspace_id, uid, published_run_id, last_saved_run_id, last_used_at) \
             SELECT workspace_id, uid, published_run_id, id, updated_at FROM (\
                 SELECT s.workspace_id, {uid} AS uid, v.published_run_id, s.id, s.updated_at, \
                     ROW_NUMBER() OVER (PARTITION BY {partition}, v.published_run_id \
                                        ORDER BY s.updated_at DESC, s.id DESC) AS nth \
                 FROM saved_runs s JOIN published_run_versions v ON v.id = s.parent_version_id\
             ) t WHERE nth = 1"
        ))
        .await?;
    }
    Ok(())
}
