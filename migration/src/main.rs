//! `recents-migration up|down|status|fresh|refresh|reset` against `DATABASE_URL`,
//! the same CLI that `sea-orm-cli migrate -d migration` runs.

use sea_orm_migration::prelude::*;

#[tokio::main]
async fn main() {
    cli::run_cli(recents_migration::Migrator).await;
}
