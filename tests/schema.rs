//! The schema on every backend: migrations go up, down to zero and up again,
//! and every entity survives a round trip with microseconds intact.

use chrono::{DateTime, TimeZone, Utc};
use recents::entity::prelude::*;
use recents::entity::{
    execution_job, execution_last_dequeue, published_run, published_run_version, saved_run,
    workspace, workspace_recent_workflow,
};
use recents::migration::{Migrator, MigratorTrait};
use recents_testkit::{TestDb, backend_tests};
use sea_orm::{ActiveValue::Set, EntityTrait, NotSet};

fn at(micros: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(1_700_000_000_000_000 + micros)
        .unwrap()
}

async fn migrations_go_up_down_and_up_again(db: &TestDb) {
    let conn = &db.conn;
    assert!(
        Migrator::get_pending_migrations(conn)
            .await
            .unwrap()
            .is_empty()
    );
    Migrator::down(conn, None).await.unwrap();
    assert_eq!(
        Migrator::get_applied_migrations(conn).await.unwrap().len(),
        0,
        "down to zero"
    );
    assert!(
        Workspace::find().all(conn).await.is_err(),
        "tables are gone after down"
    );
    Migrator::up(conn, None).await.unwrap();
    assert_eq!(
        Migrator::get_applied_migrations(conn).await.unwrap().len(),
        Migrator::migrations().len()
    );
    assert!(Workspace::find().all(conn).await.unwrap().is_empty());
}

async fn every_entity_round_trips_with_microseconds(db: &TestDb) {
    let conn = &db.conn;
    let ws = workspace::ActiveModel {
        id: NotSet,
        name: Set("Team 'α'".into()),
        is_personal: Set(false),
        created_at: Set(at(1)),
        deleted_at: Set(Some(at(2))),
    };
    let ws_id = Workspace::insert(ws)
        .exec(conn)
        .await
        .unwrap()
        .last_insert_id;
    let ws = Workspace::find_by_id(ws_id)
        .one(conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ws,
        workspace::Model {
            id: ws_id,
            name: "Team 'α'".into(),
            is_personal: false,
            created_at: at(1),
            deleted_at: Some(at(2)),
        }
    );

    let pr_id = PublishedRun::insert(published_run::ActiveModel {
        id: NotSet,
        workspace_id: Set(ws_id),
        title: Set("Summarise".into()),
        created_at: Set(at(3)),
        updated_at: Set(at(4)),
    })
    .exec(conn)
    .await
    .unwrap()
    .last_insert_id;
    let pr = PublishedRun::find_by_id(pr_id)
        .one(conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (pr.workspace_id, pr.title.as_str(), pr.updated_at),
        (ws_id, "Summarise", at(4))
    );

    let v_id = PublishedRunVersion::insert(published_run_version::ActiveModel {
        id: NotSet,
        published_run_id: Set(pr_id),
        created_at: Set(at(5)),
    })
    .exec(conn)
    .await
    .unwrap()
    .last_insert_id;
    let v = PublishedRunVersion::find_by_id(v_id)
        .one(conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((v.published_run_id, v.created_at), (pr_id, at(5)));

    let run_id = SavedRun::insert(saved_run::ActiveModel {
        id: NotSet,
        workspace_id: Set(ws_id),
        uid: Set("Alice".into()),
        parent_version_id: Set(Some(v_id)),
        run_status: Set("running".into()),
        created_at: Set(at(6)),
        updated_at: Set(at(999_999)),
    })
    .exec(conn)
    .await
    .unwrap()
    .last_insert_id;
    let run = SavedRun::find_by_id(run_id)
        .one(conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        run,
        saved_run::Model {
            id: run_id,
            workspace_id: ws_id,
            uid: "Alice".into(),
            parent_version_id: Some(v_id),
            run_status: "running".into(),
            created_at: at(6),
            updated_at: at(999_999),
        }
    );

    let summary = workspace_recent_workflow::Model {
        workspace_id: ws_id,
        uid: "Alice".into(),
        published_run_id: pr_id,
        last_saved_run_id: run_id,
        last_used_at: at(999_999),
    };
    WorkspaceRecentWorkflow::insert(workspace_recent_workflow::ActiveModel::from(
        summary.clone(),
    ))
    .exec_without_returning(conn)
    .await
    .unwrap();
    // A uid differing only in case is another user on every backend.
    WorkspaceRecentWorkflow::insert(workspace_recent_workflow::ActiveModel::from(
        workspace_recent_workflow::Model {
            uid: "alice".into(),
            ..summary.clone()
        },
    ))
    .exec_without_returning(conn)
    .await
    .unwrap();
    let found = WorkspaceRecentWorkflow::find_by_id((ws_id, "Alice".to_owned(), pr_id))
        .one(conn)
        .await
        .unwrap();
    assert_eq!(found, Some(summary));

    let job = execution_job::Model {
        id: 0,
        user_id: 42,
        state: JobState::Errored,
        payload: serde_json::json!({"batch": [1, 2, 3], "name": "x"}),
        created_at: at(10),
        started_at: Some(at(11)),
        finished_at: Some(at(12)),
        process_after: Some(at(13)),
        num_resets: 2,
        num_failures: 3,
        failure_message: Some("boom".into()),
        worker_hostname: Some("worker-1".into()),
        last_heartbeat_at: Some(at(14)),
        cancel: true,
    };
    let mut active = execution_job::ActiveModel::from(job.clone());
    active.id = NotSet;
    let job_id = ExecutionJob::insert(active)
        .exec(conn)
        .await
        .unwrap()
        .last_insert_id;
    let found = ExecutionJob::find_by_id(job_id)
        .one(conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, execution_job::Model { id: job_id, ..job });

    // The job's start reached execution_last_dequeues by trigger.
    assert_eq!(
        ExecutionLastDequeue::find_by_id(42)
            .one(conn)
            .await
            .unwrap(),
        Some(execution_last_dequeue::Model {
            user_id: 42,
            latest_dequeue: at(11),
        })
    );
    let last = execution_last_dequeue::Model {
        user_id: 43,
        latest_dequeue: at(11),
    };
    ExecutionLastDequeue::insert(execution_last_dequeue::ActiveModel::from(last.clone()))
        .exec_without_returning(conn)
        .await
        .unwrap();
    assert_eq!(
        ExecutionLastDequeue::find_by_id(43)
            .one(conn)
            .await
            .unwrap(),
        Some(last)
    );
}

async fn deleting_a_published_run_removes_its_summary_rows(db: &TestDb) {
    let conn = &db.conn;
    let ws_id = Workspace::insert(workspace::ActiveModel {
        id: NotSet,
        name: Set("w".into()),
        is_personal: Set(true),
        created_at: Set(at(0)),
        deleted_at: Set(None),
    })
    .exec(conn)
    .await
    .unwrap()
    .last_insert_id;
    let pr_id = PublishedRun::insert(published_run::ActiveModel {
        id: NotSet,
        workspace_id: Set(ws_id),
        title: Set("t".into()),
        created_at: Set(at(0)),
        updated_at: Set(at(0)),
    })
    .exec(conn)
    .await
    .unwrap()
    .last_insert_id;
    let v_id = PublishedRunVersion::insert(published_run_version::ActiveModel {
        id: NotSet,
        published_run_id: Set(pr_id),
        created_at: Set(at(0)),
    })
    .exec(conn)
    .await
    .unwrap()
    .last_insert_id;
    let run_id = SavedRun::insert(saved_run::ActiveModel {
        id: NotSet,
        workspace_id: Set(ws_id),
        uid: Set("u".into()),
        parent_version_id: Set(Some(v_id)),
        run_status: Set("ok".into()),
        created_at: Set(at(1)),
        updated_at: Set(at(1)),
    })
    .exec(conn)
    .await
    .unwrap()
    .last_insert_id;
    WorkspaceRecentWorkflow::insert(workspace_recent_workflow::ActiveModel {
        workspace_id: Set(ws_id),
        uid: Set("u".into()),
        published_run_id: Set(pr_id),
        last_saved_run_id: Set(run_id),
        last_used_at: Set(at(1)),
    })
    .exec_without_returning(conn)
    .await
    .unwrap();

    PublishedRun::delete_by_id(pr_id).exec(conn).await.unwrap();

    assert!(
        WorkspaceRecentWorkflow::find()
            .all(conn)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        PublishedRunVersion::find()
            .all(conn)
            .await
            .unwrap()
            .is_empty()
    );
    let run = SavedRun::find_by_id(run_id)
        .one(conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.parent_version_id, None, "the run stays, detached");
}

backend_tests!(
    migrations_go_up_down_and_up_again,
    every_entity_round_trips_with_microseconds,
    deleting_a_published_run_removes_its_summary_rows,
);
