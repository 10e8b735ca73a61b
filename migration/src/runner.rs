//! recents' migrations applied, rolled back and reported on a database whose
//! `seaql_migrations` may also hold a team's own: every decision looks only
//! at recents' versions, so a team's migration is never "missing" or
//! "ahead" (sea-orm-migration's own `Migrator::up` refuses rows it does not
//! know). The same table and records as sea-orm-migration, so a team's
//! migrator that lists [`crate::migrations`] sees the same state.

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use recents_schema::{Schema, numbered};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait,
};

const TABLE: &str = "seaql_migrations";

/// recents' migrations for one schema mapping, with or without the history set.
pub struct OwnMigrations {
    schema: Schema,
    history: bool,
}

/// Where recents' migrations stand on a database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// Applied, oldest first.
    pub applied: Vec<String>,
    /// Not applied yet, in the order `up` applies them.
    pub pending: Vec<String>,
}

impl OwnMigrations {
    /// recents' own migrations over the tables `schema` names.
    pub fn new(schema: Schema) -> Self {
        Self {
            schema,
            history: false,
        }
    }

    /// Also the history tables (under recents' names), first.
    pub fn with_history(mut self, history: bool) -> Self {
        self.history = history;
        self
    }

    /// The migrations, oldest first.
    pub fn list(&self) -> Vec<Box<dyn MigrationTrait>> {
        let mut all = if self.history {
            crate::history_migrations()
        } else {
            Vec::new()
        };
        all.extend(crate::migrations(&self.schema));
        all
    }

    /// Which of recents' migrations are applied. Reads only: a database
    /// without a migration table has every one pending.
    ///
    /// # Errors
    /// The database's.
    pub async fn status(&self, db: &DatabaseConnection) -> Result<Status, DbErr> {
        let recorded = recorded(db).await?;
        let mut status = Status::default();
        for migration in self.list() {
            let name = migration.name().to_owned();
            if recorded.contains(&name) {
                status.applied.push(name);
            } else {
                status.pending.push(name);
            }
        }
        Ok(status)
    }

    /// Applies the pending migrations, `steps` of them at most, each in a
    /// transaction where it asks for one (by default on PostgreSQL only, as
    /// sea-orm-migration does). Returns the names applied.
    ///
    /// # Errors
    /// The database's; the migrations applied before the failure stay.
    pub async fn up(
        &self,
        db: &DatabaseConnection,
        steps: Option<u32>,
    ) -> Result<Vec<String>, DbErr> {
        Migrator::install(db).await?;
        let recorded = recorded(db).await?;
        let mut applied = Vec::new();
        for migration in self.list() {
            if recorded.contains(migration.name()) {
                continue;
            }
            if steps.is_some_and(|steps| applied.len() as u32 >= steps) {
                break;
            }
            tracing::info!("applying migration '{}'", migration.name());
            if in_transaction(migration.as_ref(), db.get_database_backend()) {
                let txn = db.begin().await?;
                migration.up(&SchemaManager::new(&txn)).await?;
                record(&txn, migration.name()).await?;
                txn.commit().await?;
            } else {
                migration.up(&SchemaManager::new(db)).await?;
                record(db, migration.name()).await?;
            }
            applied.push(migration.name().to_owned());
        }
        Ok(applied)
    }

    /// Rolls back the applied migrations, newest first, `steps` of them at
    /// most (`None`: all of recents'). Returns the names rolled back.
    ///
    /// # Errors
    /// The database's.
    pub async fn down(
        &self,
        db: &DatabaseConnection,
        steps: Option<u32>,
    ) -> Result<Vec<String>, DbErr> {
        Migrator::install(db).await?;
        let recorded = recorded(db).await?;
        let mut rolled_back = Vec::new();
        for migration in self.list().into_iter().rev() {
            if !recorded.contains(migration.name()) {
                continue;
            }
            if steps.is_some_and(|steps| rolled_back.len() as u32 >= steps) {
                break;
            }
            tracing::info!("rolling back migration '{}'", migration.name());
            if in_transaction(migration.as_ref(), db.get_database_backend()) {
                let txn = db.begin().await?;
                migration.down(&SchemaManager::new(&txn)).await?;
                forget(&txn, migration.name()).await?;
                txn.commit().await?;
            } else {
                migration.down(&SchemaManager::new(db)).await?;
                forget(db, migration.name()).await?;
            }
            rolled_back.push(migration.name().to_owned());
        }
        Ok(rolled_back)
    }
}

fn in_transaction(migration: &dyn MigrationTrait, backend: DbBackend) -> bool {
    migration
        .use_transaction()
        .unwrap_or(backend == DbBackend::Postgres)
}

/// Every version recorded, recents' and anyone else's.
async fn recorded(db: &DatabaseConnection) -> Result<HashSet<String>, DbErr> {
    if !SchemaManager::new(db).has_table(TABLE).await? {
        return Ok(HashSet::new());
    }
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            format!("SELECT version FROM {TABLE}"),
        ))
        .await?;
    rows.iter()
        .map(|row| row.try_get::<String>("", "version"))
        .collect()
}

async fn record<C: ConnectionTrait>(db: &C, name: &str) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let applied_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        numbered(
            backend,
            &format!("INSERT INTO {TABLE} (version, applied_at) VALUES (?, ?)"),
        ),
        [name.into(), applied_at.into()],
    ))
    .await?;
    Ok(())
}

async fn forget<C: ConnectionTrait>(db: &C, name: &str) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        numbered(backend, &format!("DELETE FROM {TABLE} WHERE version = ?")),
        [name.into()],
    ))
    .await?;
    Ok(())
}

use crate::Migrator;
