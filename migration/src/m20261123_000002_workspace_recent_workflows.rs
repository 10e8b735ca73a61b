//! `workspace_recent_workflows`: the summary behind the recent-workflows read.

use sea_orm_migration::prelude::*;

use crate::columns::{timestamp, uid};
use crate::m20261123_000001_history::{PublishedRuns, Workspaces};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WorkspaceRecentWorkflows {
    Table,
    WorkspaceId,
    Uid,
    PublishedRunId,
    LastSavedRunId,
    LastUsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use WorkspaceRecentWorkflows as W;
        let db = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(W::Table)
                    .col(ColumnDef::new(W::WorkspaceId).big_integer().not_null())
                    .col(uid(db, W::Uid).not_null())
                    .col(ColumnDef::new(W::PublishedRunId).big_integer().not_null())
                    .col(ColumnDef::new(W::LastSavedRunId).big_integer().not_null())
                    .col(timestamp(db, W::LastUsedAt).not_null())
                    // The upsert's conflict target: one row per (workspace, user, workflow).
                    .primary_key(
                        Index::create()
                            .name("pk_workspace_recent_workflows")
                            .col(W::WorkspaceId)
                            .col(W::Uid)
                            .col(W::PublishedRunId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_workspace_recent_workflows_workspace")
                            .from(W::Table, W::WorkspaceId)
                            .to(Workspaces::Table, Workspaces::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_workspace_recent_workflows_published_run")
                            .from(W::Table, W::PublishedRunId)
                            .to(PublishedRuns::Table, PublishedRuns::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The read: `WHERE workspace_id = ? AND uid = ? ORDER BY last_used_at
        // DESC, published_run_id DESC LIMIT n` is a range of exactly n index
        // entries, for a member and for the workspace-wide row (uid = '') alike.
        manager
            .create_index(
                Index::create()
                    .name("idx_workspace_recent_workflows_recency")
                    .table(W::Table)
                    .col(W::WorkspaceId)
                    .col(W::Uid)
                    .col((W::LastUsedAt, IndexOrder::Desc))
                    .col((W::PublishedRunId, IndexOrder::Desc))
                    .to_owned(),
            )
            .await?;
        // Deleting a published run cascades here; without this index that
        // cascade would scan the whole summary.
        manager
            .create_index(
                Index::create()
                    .name("idx_workspace_recent_workflows_published_run")
                    .table(W::Table)
                    .col(W::PublishedRunId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(WorkspaceRecentWorkflows::Table)
                    .to_owned(),
            )
            .await
    }
}
