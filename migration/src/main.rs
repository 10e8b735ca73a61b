//! `recents-migration up|down|status|fresh|refresh|reset` against `DATABASE_URL`,
//! the same CLI that `sea-orm-cli migrate -d migration` runs, with three
//! differences: a database that does not answer is one line on stderr and exit
//! code 1 (not a panic); a missing `DATABASE_URL` says so (exit 2); and `fresh`,
//! `refresh` and `reset`, which drop every table of the database (a team's own
//! too), run only with `RECENTS_MIGRATION_DROP_ALL_TABLES=yes`.
//!
//! Without `RECENTS_SCHEMA` it migrates a database recents makes whole (the
//! history tables and recents' own, under recents' names). With
//! `RECENTS_SCHEMA=mapping.toml` it runs recents' own migrations only, over
//! the backend's tables as the mapping names them; a team whose
//! `seaql_migrations` also records its own migrations runs recents' from its
//! own migrator instead (see the README), or with `recents migrate`.

use std::process::exit;
use std::time::Duration;

use recents_migration::reach::{cause_of, redact, someone_listens};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectOptions, Database, DatabaseConnection};

/// The environment variable that must say `yes` for the commands that drop
/// every table of the database.
const DROP_ALL_TABLES: &str = "RECENTS_MIGRATION_DROP_ALL_TABLES";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let destructive = args
        .iter()
        .find(|a| matches!(a.as_str(), "fresh" | "refresh" | "reset"));
    if let Some(command) = destructive
        && std::env::var(DROP_ALL_TABLES).as_deref() != Ok("yes")
    {
        eprintln!(
            "recents-migration: `{command}` drops every table of the database, your own tables \
             too, not only recents'; run it with {DROP_ALL_TABLES}=yes if that is what you want"
        );
        exit(2);
    }
    let url_given = args
        .iter()
        .any(|a| a == "-u" || a.starts_with("--database-url"))
        || std::env::var_os("DATABASE_URL").is_some()
        || std::fs::read_to_string(".env").is_ok_and(|env| env.contains("DATABASE_URL"));
    let needs_database = !args.iter().any(|a| {
        matches!(
            a.as_str(),
            "-h" | "--help" | "-V" | "--version" | "init" | "generate" | "help"
        )
    });
    if needs_database && !url_given {
        eprintln!(
            "recents-migration: set DATABASE_URL (e.g. sqlite://recents.db?mode=rwc, \
             postgres://user@host/db, mysql://user@host/db) or pass -u URL"
        );
        exit(2);
    }
    match recents_migration::Schema::from_file_or_env(None) {
        Err(err) => {
            eprintln!("recents-migration: {err}");
            exit(2);
        }
        Ok(_) if std::env::var_os(recents_schema::SCHEMA_ENV).is_none_or(|v| v.is_empty()) => {
            cli::run_cli_with_connection(recents_migration::Migrator, async |options| {
                connect(options, None).await
            })
            .await
        }
        Ok(schema) => {
            let check = schema.clone();
            cli::run_cli_with_connection(Mapped(schema), async move |options| {
                connect(options, Some(&check)).await
            })
            .await
        }
    }
}

/// recents' own migrations over a mapped schema.
struct Mapped(recents_migration::Schema);

#[async_trait::async_trait]
impl sea_orm_migration::MigratorTraitSelf for Mapped {
    fn migrations(&self) -> Vec<Box<dyn MigrationTrait>> {
        recents_migration::migrations(&self.0)
    }
}

/// Connects, or says why not and exits; with a mapping, checks it against the
/// database before any migration runs.
async fn connect(
    mut options: ConnectOptions,
    schema: Option<&recents_migration::Schema>,
) -> Result<DatabaseConnection, DbErr> {
    {
        {
            let url = options.get_url().to_owned();
            let fail = |why: String| -> ! {
                eprintln!("recents-migration: {why}");
                exit(1)
            };
            if let Err(why) = someone_listens(&url, CONNECT_TIMEOUT).await {
                fail(why);
            }
            options
                .connect_timeout(CONNECT_TIMEOUT)
                .acquire_timeout(CONNECT_TIMEOUT)
                .sqlx_logging(false);
            let connected = match Database::connect(options).await {
                Ok(db) => db.ping().await.map(|()| db),
                Err(err) => Err(err),
            };
            match connected {
                Ok(db) => {
                    if let Some(schema) = schema
                        && let Err(err) = schema.check(&db).await
                    {
                        fail(err.to_string());
                    }
                    Ok(db)
                }
                Err(err) => fail(format!(
                    "cannot connect to {}: {}",
                    redact(&url),
                    cause_of(&err)
                )),
            }
        }
    }
}
