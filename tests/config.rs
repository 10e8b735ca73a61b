//! Connecting: URLs are validated and redacted, an absent database is
//! `DatabaseUnavailable`, and the schema is checked against this version's
//! migrations (behind, new, beside a team's) on every backend.

use recents::Error;
use recents::admin::{self as config, Migrate, connect, connect_and_migrate, schema_status};
use recents::migration::{Migrator, MigratorTrait};
use recents_testkit::{TestDb, backend_tests};
use sea_orm::ConnectionTrait;

#[tokio::test]
async fn a_database_that_does_not_answer_is_unavailable_and_its_password_stays_hidden() {
    for url in [
        "postgres://app:s3cret-pw@127.0.0.1:1/recents",
        "mysql://app:s3cret-pw@127.0.0.1:1/recents",
    ] {
        let err = connect(url).await.unwrap_err();
        assert!(matches!(err, Error::DatabaseUnavailable(_)), "{err:?}");
        assert!(err.is_unavailable());
        assert!(!format!("{err} {err:?}").contains("s3cret-pw"), "{err:?}");
    }
}

#[tokio::test]
async fn a_refused_port_says_nothing_answers_there_not_that_a_pool_timed_out() {
    for url in [
        "postgres://app@127.0.0.1:1/recents",
        "mysql://app@127.0.0.1:1/recents",
    ] {
        let err = connect(url).await.unwrap_err();
        assert!(err.is_unavailable(), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains("nothing answers at 127.0.0.1:1"),
            "{message}"
        );
        assert!(!message.contains("timed out"), "{message}");
    }
}

#[tokio::test]
async fn a_sqlite_file_that_does_not_exist_needs_mode_rwc_and_is_not_created() {
    let path = std::env::temp_dir().join(format!("recents-missing-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let url = format!("sqlite://{}", path.display());
    match connect(&url).await {
        Err(Error::DatabaseNotFound(message)) => {
            assert!(message.contains("mode=rwc"), "{message}");
            assert!(message.contains(&path.display().to_string()), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!path.exists(), "nothing was created");
    let created = connect_and_migrate(&format!("{url}?mode=rwc"))
        .await
        .unwrap();
    created.close().await.unwrap();
    assert!(path.exists());
    let _ = std::fs::remove_file(&path);
}

async fn a_database_that_does_not_exist_on_a_live_server_is_named(db: &TestDb) {
    if db.backend == recents_testkit::Backend::Sqlite {
        return;
    }
    let (base, _) = db.url.rsplit_once('/').unwrap();
    let url = format!("{base}/recents_no_such_database");
    match connect(&url).await {
        Err(err @ Error::DatabaseNotFound(_)) => {
            assert!(
                err.to_string().contains("recents_no_such_database"),
                "{err}"
            );
            assert_eq!(err.kind(), "database_not_found");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_malformed_url_is_refused_before_connecting() {
    for url in [
        "",
        "recents.db",
        "ftp://h/x",
        "postgres://u:s3cret@h:port/x",
    ] {
        match connect(url).await {
            Err(Error::InvalidDatabaseUrl(message)) => assert!(!message.contains("s3cret")),
            other => panic!("{url}: {other:?}"),
        }
    }
}

async fn a_migrated_database_connects(db: &TestDb) {
    let conn = connect(&db.url).await.unwrap();
    let status = schema_status(&conn).await.unwrap();
    assert!(status.is_current() && !status.is_new(), "{status:?}");
    // recents' own migrations: the optional history set is not counted.
    assert_eq!(
        status.applied.len(),
        recents::migration::migrations(&recents::Schema::default()).len(),
        "{status:?}"
    );
}

async fn a_schema_behind_is_refused_until_migrated(db: &TestDb) {
    Migrator::down(&db.conn, Some(1)).await.unwrap();
    let last = Migrator::migrations().last().unwrap().name().to_owned();
    match connect(&db.url).await {
        Err(Error::MigrationsBehind(pending)) => assert_eq!(pending, [last.as_str()]),
        other => panic!("{other:?}"),
    }
    // Not new: IfNew leaves a database behind alone.
    assert!(matches!(
        config::open(&db.url, Migrate::IfNew).await,
        Err(Error::MigrationsBehind(_))
    ));
    let conn = connect_and_migrate(&db.url).await.unwrap();
    assert!(schema_status(&conn).await.unwrap().is_current());
}

async fn a_new_database_is_migrated_when_asked(db: &TestDb) {
    Migrator::reset(&db.conn).await.unwrap();
    let status = schema_status(&db.conn).await.unwrap();
    assert!(status.is_new(), "{status:?}");
    // The history tables' migration is recents' optional set: not counted.
    assert_eq!(status.pending.len(), Migrator::migrations().len() - 1);
    assert!(matches!(
        connect(&db.url).await,
        Err(Error::MigrationsBehind(_))
    ));
    let conn = config::open(&db.url, Migrate::IfNew).await.unwrap();
    assert!(schema_status(&conn).await.unwrap().is_current());
}

async fn a_migration_recents_does_not_know_is_a_teams_and_never_ahead(db: &TestDb) {
    db.conn
        .execute_unprepared(
            "INSERT INTO seaql_migrations (version, applied_at) \
             VALUES ('m20240101_000001_team_users', 0)",
        )
        .await
        .unwrap();
    connect(&db.url).await.unwrap();
    connect_and_migrate(&db.url).await.unwrap();
    config::open(&db.url, Migrate::IfNew).await.unwrap();
    let status = schema_status(&db.conn).await.unwrap();
    assert!(status.is_current(), "{status:?}");
    assert!(
        !status
            .applied
            .iter()
            .any(|name| name == "m20240101_000001_team_users")
    );
}

backend_tests!(
    a_database_that_does_not_exist_on_a_live_server_is_named,
    a_migrated_database_connects,
    a_schema_behind_is_refused_until_migrated,
    a_new_database_is_migrated_when_asked,
    a_migration_recents_does_not_know_is_a_teams_and_never_ahead,
);
