//! The history tables, shaped as the production backend has them: `recents`
//! reads them and, through the service, writes saved runs and jobs. They
//! belong to the backend: this is the optional set (`history_migrations`)
//! for a team starting from nothing, the demo and the tests.
//!
//! Every step is `IF NOT EXISTS`: on a database that already has these
//! tables it creates nothing and changes nothing.
//!
//! (Uids and worker names on MySQL/MariaDB are created with a NO PAD binary
//! collation; databases made before that got it from migration 6.)

use sea_orm_migration::prelude::*;

use crate::columns::{byte_collation, id, timestamp, uid};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub(crate) enum Workspaces {
    Table,
    Id,
    Name,
    IsPersonal,
    CreatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
pub(crate) enum PublishedRuns {
    Table,
    Id,
    WorkspaceId,
    Title,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub(crate) enum PublishedRunVersions {
    Table,
    Id,
    PublishedRunId,
    CreatedAt,
}

#[derive(DeriveIden)]
pub(crate) enum SavedRuns {
    Table,
    Id,
    WorkspaceId,
    Uid,
    ParentVersionId,
    RunStatus,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub(crate) enum ExecutionJobs {
    Table,
    Id,
    UserId,
    State,
    Payload,
    CreatedAt,
    StartedAt,
    FinishedAt,
    ProcessAfter,
    NumResets,
    NumFailures,
    FailureMessage,
    WorkerHostname,
    LastHeartbeatAt,
    Cancel,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_database_backend();
        let collation = byte_collation(manager).await?;
        manager
            .create_table(
                Table::create()
                    .if_not_exists()
                    .table(Workspaces::Table)
                    .col(id(Workspaces::Id))
                    .col(ColumnDef::new(Workspaces::Name).string().not_null())
                    .col(ColumnDef::new(Workspaces::IsPersonal).boolean().not_null())
                    .col(timestamp(db, Workspaces::CreatedAt).not_null())
                    .col(timestamp(db, Workspaces::DeletedAt).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .if_not_exists()
                    .table(PublishedRuns::Table)
                    .col(id(PublishedRuns::Id))
                    .col(
                        ColumnDef::new(PublishedRuns::WorkspaceId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(PublishedRuns::Title).string().not_null())
                    .col(timestamp(db, PublishedRuns::CreatedAt).not_null())
                    .col(timestamp(db, PublishedRuns::UpdatedAt).not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_published_runs_workspace")
                            .from(PublishedRuns::Table, PublishedRuns::WorkspaceId)
                            .to(Workspaces::Table, Workspaces::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_published_runs_workspace")
                    .table(PublishedRuns::Table)
                    .col(PublishedRuns::WorkspaceId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .if_not_exists()
                    .table(PublishedRunVersions::Table)
                    .col(id(PublishedRunVersions::Id))
                    .col(
                        ColumnDef::new(PublishedRunVersions::PublishedRunId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(timestamp(db, PublishedRunVersions::CreatedAt).not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_published_run_versions_published_run")
                            .from(
                                PublishedRunVersions::Table,
                                PublishedRunVersions::PublishedRunId,
                            )
                            .to(PublishedRuns::Table, PublishedRuns::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_published_run_versions_published_run")
                    .table(PublishedRunVersions::Table)
                    .col(PublishedRunVersions::PublishedRunId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .if_not_exists()
                    .table(SavedRuns::Table)
                    .col(id(SavedRuns::Id))
                    .col(
                        ColumnDef::new(SavedRuns::WorkspaceId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(uid(db, SavedRuns::Uid, collation).not_null())
                    .col(
                        ColumnDef::new(SavedRuns::ParentVersionId)
                            .big_integer()
                            .null(),
                    )
                    .col(ColumnDef::new(SavedRuns::RunStatus).string().not_null())
                    .col(timestamp(db, SavedRuns::CreatedAt).not_null())
                    .col(timestamp(db, SavedRuns::UpdatedAt).not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_saved_runs_workspace")
                            .from(SavedRuns::Table, SavedRuns::WorkspaceId)
                            .to(Workspaces::Table, Workspaces::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_saved_runs_parent_version")
                            .from(SavedRuns::Table, SavedRuns::ParentVersionId)
                            .to(PublishedRunVersions::Table, PublishedRunVersions::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        // The two indexes the production table has; nothing more, so that the
        // benchmark's plain-save baseline pays what production pays.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_saved_runs_workspace")
                    .table(SavedRuns::Table)
                    .col(SavedRuns::WorkspaceId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_saved_runs_parent_version")
                    .table(SavedRuns::Table)
                    .col(SavedRuns::ParentVersionId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .if_not_exists()
                    .table(ExecutionJobs::Table)
                    .col(id(ExecutionJobs::Id))
                    .col(
                        ColumnDef::new(ExecutionJobs::UserId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ExecutionJobs::State)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(ColumnDef::new(ExecutionJobs::Payload).json().not_null())
                    .col(timestamp(db, ExecutionJobs::CreatedAt).not_null())
                    .col(timestamp(db, ExecutionJobs::StartedAt).null())
                    .col(timestamp(db, ExecutionJobs::FinishedAt).null())
                    .col(timestamp(db, ExecutionJobs::ProcessAfter).null())
                    .col(
                        ColumnDef::new(ExecutionJobs::NumResets)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(ExecutionJobs::NumFailures)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new(ExecutionJobs::FailureMessage).text().null())
                    .col(uid(db, ExecutionJobs::WorkerHostname, collation).null())
                    .col(timestamp(db, ExecutionJobs::LastHeartbeatAt).null())
                    .col(
                        ColumnDef::new(ExecutionJobs::Cancel)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_execution_jobs_state")
                    .table(ExecutionJobs::Table)
                    .col(ExecutionJobs::State)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ExecutionJobs::Table.into_iden(),
            SavedRuns::Table.into_iden(),
            PublishedRunVersions::Table.into_iden(),
            PublishedRuns::Table.into_iden(),
            Workspaces::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
