//! Bad input, table-driven, over the public entry points of the library on
//! every backend: unknown ids, limits of 0 and of a million, empty, 10 KB,
//! NUL-holding and SQL-looking uids, timestamps outside the calendar the
//! backends share, bad durations and batch sizes. Each must return the typed
//! error named in the table, and the data must be exactly what it was.
//! (URLs and schema versions: `tests/config.rs`; the binary's subcommands:
//! `tui/tests/cli.rs`.)

mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use recents::admin::{WorkspaceListing, list_workspaces, workspace_members, workspace_overview};
use recents::entity::prelude::*;
use recents::queue::{self, NewJob, QueueOptions};
use recents::{
    BackfillOptions, BackfillScope, Error, JobId, PublishedRunId, RunSave, SaveOptions, SavedRunId,
    Scope, UserId, VerifyOptions, VerifyScope, VersionId, WorkspaceId, backfill,
    delete_published_run, delete_saved_run, delete_version, home_recent_workflows,
    recent_workflows, recent_workflows_from_history, repair, retract, save_run, touch, verify,
    verify_last_dequeues,
};
use recents_testkit::{TestDb, backend_tests};
use sea_orm::{ConnectionTrait, EntityTrait};
use support::{at, new_run as run, published_run, version, workspace};

/// Every row of every table, as text: what "changes nothing" compares.
async fn everything<C: ConnectionTrait>(c: &C) -> Vec<String> {
    let mut all = Vec::new();
    macro_rules! dump {
        ($($entity:ty),+) => {$(
            for row in <$entity>::find().all(c).await.unwrap() {
                all.push(format!("{row:?}"));
            }
        )+};
    }
    dump!(
        Workspace,
        PublishedRun,
        PublishedRunVersion,
        SavedRun,
        WorkspaceRecentWorkflow,
        ExecutionJob,
        ExecutionLastDequeue
    );
    all.sort();
    all
}

async fn every_entry_point_refuses_bad_input_and_changes_nothing(db: &TestDb) {
    let c = &db.conn;
    let ws = workspace(c, "team", false).await;
    let pr = published_run(c, ws, "A").await;
    let v = version(c, pr).await;
    save_run(c, &run(ws, "ann", v, at(1, 0)), &SaveOptions::exact())
        .await
        .unwrap();
    let job = queue::enqueue(c, &NewJob::now(UserId(1), serde_json::json!({})))
        .await
        .unwrap();
    // The job as a worker would hold it: results are reported with the claim.
    let queued = ExecutionJob::find_by_id(job.0)
        .one(c)
        .await
        .unwrap()
        .unwrap();
    let claim_of = |id: JobId| queue::Job {
        id: id.0,
        worker_hostname: Some("w".into()),
        ..queued.clone()
    };
    let before = everything(c).await;

    let unknown_ws = WorkspaceId(987_654);
    let long_uid = "u".repeat(10 * 1024);
    let far_future = DateTime::<Utc>::MAX_UTC;
    let far_past = DateTime::<Utc>::MIN_UTC;
    let mut failures = Vec::new();
    let mut cases = 0;
    macro_rules! case {
        ($name:expr, $call:expr, $expected:pat) => {{
            cases += 1;
            let result = $call.await;
            if !matches!(result, Err($expected)) {
                failures.push(format!("{}: got {:?}", $name, result.map(|_| "Ok")));
            }
        }};
    }

    for limit in [0u32, 1_001, 1_000_000, u32::MAX] {
        case!(
            format!("recent_workflows limit {limit}"),
            recent_workflows(c, ws, &Scope::Workspace, limit),
            Error::InvalidLimit { .. }
        );
        case!(
            format!("recent_workflows_from_history limit {limit}"),
            recent_workflows_from_history(c, ws, &Scope::Workspace, limit),
            Error::InvalidLimit { .. }
        );
        case!(
            format!("home_recent_workflows limit {limit}"),
            home_recent_workflows(c, ws, "ann", limit),
            Error::InvalidLimit { .. }
        );
        case!(
            format!("workspace_members limit {limit}"),
            workspace_members(c, ws, None, limit),
            Error::InvalidLimit { .. }
        );
        case!(
            format!("list_workspaces limit {limit}"),
            list_workspaces(
                c,
                &WorkspaceListing {
                    limit,
                    ..WorkspaceListing::default()
                }
            ),
            Error::InvalidLimit { .. }
        );
        case!(
            format!("next_in_line limit {limit}"),
            queue::next_in_line(c, limit),
            Error::InvalidLimit { .. }
        );
        case!(
            format!("fair_order_from_history limit {limit}"),
            queue::fair_order_from_history(c, limit),
            Error::InvalidLimit { .. }
        );
        case!(
            format!("stalled_jobs_as_of limit {limit}"),
            recents::Recents::new(recents::Schema::default()).stalled_jobs_as_of(
                c,
                chrono::Utc::now(),
                Duration::from_secs(60),
                limit
            ),
            Error::InvalidLimit { .. }
        );
        case!(
            format!("stalled_jobs limit {limit}"),
            queue::stalled_jobs(c, Duration::from_secs(60), limit),
            Error::InvalidLimit { .. }
        );
    }
    for uid in ["", long_uid.as_str(), "nul\0byte"] {
        let shown = uid.chars().take(12).collect::<String>();
        case!(
            format!("save_run uid {shown:?}"),
            save_run(c, &run(ws, uid, v, at(2, 0)), &SaveOptions::exact()),
            Error::InvalidUid(_)
        );
        case!(
            format!("recent_workflows member {shown:?}"),
            recent_workflows(c, ws, &Scope::Member(uid.into()), 4),
            Error::InvalidUid(_)
        );
        case!(
            format!("home_recent_workflows member {shown:?}"),
            home_recent_workflows(c, ws, uid, 4),
            Error::InvalidUid(_)
        );
    }
    let recents = recents::Recents::new(recents::Schema::default());
    for at in [far_future, far_past] {
        case!(
            format!("throughput_as_of until {at}"),
            recents.throughput_as_of(c, at, Duration::from_secs(60)),
            Error::InvalidArgument { .. }
        );
        case!(
            format!("stalled_jobs_as_of {at}"),
            recents.stalled_jobs_as_of(c, at, Duration::from_secs(60), 10),
            Error::InvalidArgument { .. }
        );
        case!(
            format!("reset_stalled_as_of {at}"),
            recents.reset_stalled_as_of(c, at, Duration::from_secs(60), 3),
            Error::InvalidArgument { .. }
        );
        case!(
            format!("save_run updated_at {at}"),
            save_run(c, &run(ws, "ann", v, at), &SaveOptions::exact()),
            Error::InvalidArgument { .. }
        );
        case!(
            format!("enqueue process_after {at}"),
            queue::enqueue(
                c,
                &NewJob {
                    user_id: UserId(1),
                    payload: serde_json::json!({}),
                    process_after: Some(at),
                }
            ),
            Error::InvalidArgument { .. }
        );
    }
    case!(
        "throughput window beyond the calendar",
        queue::throughput(c, Duration::from_secs(u64::MAX)),
        Error::InvalidArgument { .. }
    );
    case!(
        "recent_workflows unknown workspace",
        recent_workflows(c, unknown_ws, &Scope::Workspace, 4),
        Error::WorkspaceNotFound(_)
    );
    case!(
        "workspace_overview unknown workspace",
        workspace_overview(c, unknown_ws),
        Error::WorkspaceNotFound(_)
    );
    case!(
        "save_run unknown workspace",
        save_run(
            c,
            &run(unknown_ws, "ann", v, at(3, 0)),
            &SaveOptions::exact()
        ),
        Error::WorkspaceNotFound(_)
    );
    case!(
        "save_run unknown version",
        save_run(
            c,
            &run(ws, "ann", VersionId(-5), at(3, 0)),
            &SaveOptions::exact()
        ),
        Error::VersionNotFound(_)
    );
    case!(
        "save_run unknown run id",
        save_run(
            c,
            &RunSave {
                id: Some(SavedRunId(i64::MAX)),
                ..run(ws, "ann", v, at(3, 0))
            },
            &SaveOptions::exact()
        ),
        Error::SavedRunNotFound(_)
    );
    // touch and retract take the backend's own row: '' is a uid history may
    // hold, NUL and over-long uids are not, on any backend.
    let saved = SavedRun::find().one(c).await.unwrap().unwrap();
    for bad in ["nul\0uid", &long_uid] {
        let shown = bad.chars().take(8).collect::<String>();
        let row = recents::entity::saved_run::Model {
            uid: bad.to_owned(),
            ..saved.clone()
        };
        case!(
            format!("touch uid {shown:?}"),
            touch(c, &(&row).into(), &SaveOptions::exact()),
            Error::InvalidUid(_)
        );
        case!(
            format!("retract uid {shown:?}"),
            retract(c, &(&row).into()),
            Error::InvalidUid(_)
        );
    }
    case!(
        "touch an unknown run",
        touch(
            c,
            &recents::SavedRun {
                id: recents::SavedRunId(987_654),
                ..recents::SavedRun::from(&saved)
            },
            &SaveOptions::exact()
        ),
        Error::SavedRunNotFound(_)
    );
    case!(
        "delete_saved_run unknown",
        delete_saved_run(c, ws, SavedRunId(-1)),
        Error::SavedRunNotFound(_)
    );
    case!(
        "delete_version unknown",
        delete_version(c, VersionId(i64::MIN)),
        Error::VersionNotFound(_)
    );
    case!(
        "delete_published_run unknown",
        delete_published_run(c, PublishedRunId(0)),
        Error::PublishedRunNotFound(_)
    );
    case!(
        "verify unknown workspace",
        verify(
            c,
            &VerifyScope::Workspace(unknown_ws),
            &VerifyOptions::default()
        ),
        Error::WorkspaceNotFound(_)
    );
    case!(
        "verify batch 0",
        verify(c, &VerifyScope::All, &VerifyOptions { batch_rows: 0 }),
        Error::InvalidArgument { .. }
    );
    case!(
        "repair batch 0",
        repair(c, &VerifyScope::All, &VerifyOptions { batch_rows: 0 }),
        Error::InvalidArgument { .. }
    );
    case!(
        "verify_last_dequeues batch 0",
        verify_last_dequeues(c, 0),
        Error::InvalidArgument { .. }
    );
    for batch_rows in [0, u32::MAX] {
        case!(
            format!("backfill batch {batch_rows}"),
            backfill(
                c,
                &BackfillScope::RecentWorkflows,
                &BackfillOptions {
                    batch_rows,
                    ..BackfillOptions::default()
                },
                |_| {}
            ),
            Error::InvalidArgument { .. }
        );
    }
    case!(
        "backfill unknown workspace",
        backfill(
            c,
            &BackfillScope::RecentWorkflowsOf(unknown_ws),
            &BackfillOptions::default(),
            |_| {}
        ),
        Error::WorkspaceNotFound(_)
    );
    for worker in ["", "nul\0worker", &"w".repeat(10 * 1024)] {
        let shown = worker.chars().take(12).collect::<String>();
        case!(
            format!("dequeue worker {shown:?}"),
            queue::dequeue(c, worker),
            Error::InvalidArgument { .. }
        );
        case!(
            format!("heartbeat worker {shown:?}"),
            queue::heartbeat(c, worker, &[job]),
            Error::InvalidArgument { .. }
        );
    }
    for id in [JobId(-1), JobId(0), JobId(i64::MAX)] {
        case!(
            format!("complete {id}"),
            queue::complete(c, &claim_of(id)),
            Error::JobNotFound(_)
        );
        case!(
            format!("fail {id}"),
            queue::fail(c, &claim_of(id), "x", &QueueOptions::default()),
            Error::JobNotFound(_)
        );
        case!(
            format!("cancel {id}"),
            queue::cancel(c, id),
            Error::JobNotFound(_)
        );
        case!(
            format!("place_in_queue {id}"),
            queue::place_in_queue(c, id),
            Error::JobNotFound(_)
        );
    }
    case!(
        "complete a queued job",
        queue::complete(c, &queued),
        Error::JobNotProcessing { .. }
    );
    case!(
        "fail with a NUL message",
        queue::fail(c, &queued, "bad\0message", &QueueOptions::default()),
        Error::InvalidArgument { .. }
    );
    case!(
        "fail with a 1 MB message",
        queue::fail(c, &queued, &"m".repeat(1 << 20), &QueueOptions::default()),
        Error::InvalidArgument { .. }
    );
    case!(
        "reset_stalled max_age beyond the calendar",
        queue::reset_stalled(c, Duration::from_secs(u64::MAX), 3),
        Error::InvalidArgument { .. }
    );
    case!(
        "reset_stalled negative max_resets",
        queue::reset_stalled(c, Duration::from_secs(1), -1),
        Error::InvalidArgument { .. }
    );
    case!(
        "heartbeat of 1,001 jobs",
        queue::heartbeat(c, "w", &[job; 1001]),
        Error::InvalidArgument { .. }
    );

    assert!(
        failures.is_empty(),
        "{} of {cases} cases on {}:\n{}",
        failures.len(),
        db.backend.name(),
        failures.join("\n")
    );
    assert_eq!(before, everything(c).await, "bad input changed data");

    // SQL-looking input is plain data: a uid and a worker name.
    let sneaky = "x'); DROP TABLE saved_runs; --";
    save_run(c, &run(ws, sneaky, v, at(4, 0)), &SaveOptions::exact())
        .await
        .unwrap();
    let mine = recent_workflows(c, ws, &Scope::Member(sneaky.into()), 4)
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    let taken = queue::dequeue(c, sneaky).await.unwrap().unwrap();
    assert_eq!(taken.worker_hostname.as_deref(), Some(sneaky));
}

backend_tests!(every_entry_point_refuses_bad_input_and_changes_nothing);
