//! The workspace directory, on every backend: keyset pages add up to the
//! whole ordered listing, filters match names literally, counts match history.

mod support;

use recents::admin::{
    WorkspaceListing, WorkspaceOrder, list_workspaces, workspace_members, workspace_overview,
};
use recents::{Error, RunSave, SaveOptions, VersionId, WorkspaceId, save_run};
use recents_testkit::{TestDb, backend_tests};
use sea_orm::ConnectionTrait;
use support::{at, published_run, version, workspace};

async fn save(db: &TestDb, ws: WorkspaceId, uid: &str, v: Option<VersionId>, seconds: i64) {
    save_run(
        &db.conn,
        &RunSave {
            id: None,
            workspace_id: ws,
            uid: uid.into(),
            parent_version_id: v,
            run_status: "completed".into(),
            updated_at: at(seconds, 0),
        },
        &SaveOptions::exact(),
    )
    .await
    .unwrap();
}

async fn all_pages(db: &TestDb, order: WorkspaceOrder, filter: Option<&str>) -> Vec<String> {
    let mut listing = WorkspaceListing {
        name_contains: filter.map(str::to_owned),
        order,
        after: None,
        limit: 2,
    };
    let mut names = Vec::new();
    loop {
        let page = list_workspaces(&db.conn, &listing).await.unwrap();
        assert!(page.workspaces.len() <= 2);
        names.extend(page.workspaces.into_iter().map(|w| w.name));
        match page.next {
            Some(next) => listing.after = Some(next),
            None => return names,
        }
    }
}

async fn keyset_pages_add_up_to_the_ordered_listing_in_every_order(db: &TestDb) {
    let c = &db.conn;
    // Two workspaces share a name: the id breaks the tie, in both directions.
    for name in ["delta", "alpha", "echo", "charlie", "bravo", "alpha"] {
        workspace(c, name, false).await;
    }
    assert_eq!(
        all_pages(db, WorkspaceOrder::IdAscending, None).await,
        ["delta", "alpha", "echo", "charlie", "bravo", "alpha"]
    );
    assert_eq!(
        all_pages(db, WorkspaceOrder::IdDescending, None).await,
        ["alpha", "bravo", "charlie", "echo", "alpha", "delta"]
    );
    assert_eq!(
        all_pages(db, WorkspaceOrder::NameAscending, None).await,
        ["alpha", "alpha", "bravo", "charlie", "delta", "echo"]
    );
    assert_eq!(
        all_pages(db, WorkspaceOrder::NameDescending, None).await,
        ["echo", "delta", "charlie", "bravo", "alpha", "alpha"]
    );
    // Ties on the name resume on the id: the two "alpha" rows come in id
    // order ascending and in reverse descending.
    let asc = list_workspaces(
        c,
        &WorkspaceListing {
            order: WorkspaceOrder::NameAscending,
            limit: 2,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(asc.workspaces[0].id < asc.workspaces[1].id);
    assert!(asc.next.is_some());
}

async fn name_filter_is_a_case_insensitive_literal_substring(db: &TestDb) {
    let c = &db.conn;
    for name in ["Team_A", "teamXa", "other", "100% team", "a-team_a"] {
        workspace(c, name, false).await;
    }
    assert_eq!(
        all_pages(db, WorkspaceOrder::IdAscending, Some("TEAM_A")).await,
        ["Team_A", "a-team_a"]
    );
    assert_eq!(
        all_pages(db, WorkspaceOrder::IdAscending, Some("100%")).await,
        ["100% team"]
    );
    assert_eq!(
        all_pages(db, WorkspaceOrder::IdAscending, Some("  "))
            .await
            .len(),
        5,
        "a blank filter lists everything"
    );
    assert!(
        all_pages(db, WorkspaceOrder::IdAscending, Some("nobody"))
            .await
            .is_empty()
    );
}

async fn counts_come_from_history_and_summary(db: &TestDb) {
    let c = &db.conn;
    let team = workspace(c, "team", false).await;
    let empty = workspace(c, "empty", true).await;
    let (a, b) = (
        published_run(c, team, "A").await,
        published_run(c, team, "B").await,
    );
    let (va, vb) = (version(c, a).await, version(c, b).await);
    save(db, team, "ann", Some(va), 10).await;
    save(db, team, "ann", Some(vb), 20).await;
    save(db, team, "bob", Some(va), 30).await;
    save(db, team, "bob", None, 99).await; // history, but no summary row

    let overview = workspace_overview(c, team).await.unwrap();
    assert_eq!(overview.history_runs, 4);
    // ann×{A,B}, bob×{A}, workspace×{A,B}
    assert_eq!(overview.summary_rows, 5);
    assert_eq!(overview.last_used_at, Some(at(30, 0)));
    assert!(!overview.is_personal);

    let nothing = workspace_overview(c, empty).await.unwrap();
    assert_eq!(
        (
            nothing.history_runs,
            nothing.summary_rows,
            nothing.last_used_at
        ),
        (0, 0, None)
    );
    assert!(matches!(
        workspace_overview(c, WorkspaceId(999_999)).await,
        Err(Error::WorkspaceNotFound(WorkspaceId(999_999)))
    ));
    let page = list_workspaces(c, &WorkspaceListing::default())
        .await
        .unwrap();
    assert_eq!(page.workspaces, vec![overview, nothing]);
    assert_eq!(page.next, None);
}

async fn members_are_distinct_uids_in_order_page_by_page(db: &TestDb) {
    let c = &db.conn;
    let team = workspace(c, "team", false).await;
    let (a, b) = (
        published_run(c, team, "A").await,
        published_run(c, team, "B").await,
    );
    let (va, vb) = (version(c, a).await, version(c, b).await);
    for (uid, v, t) in [
        ("carol", va, 1),
        ("ann", va, 2),
        ("ann", vb, 3),
        ("bob", vb, 4),
        ("Ann", va, 5),
    ] {
        save(db, team, uid, Some(v), t).await;
    }
    assert_eq!(
        workspace_members(c, team, None, 10).await.unwrap(),
        ["Ann", "ann", "bob", "carol"]
    );
    assert_eq!(
        workspace_members(c, team, None, 2).await.unwrap(),
        ["Ann", "ann"]
    );
    assert_eq!(
        workspace_members(c, team, Some("ann"), 2).await.unwrap(),
        ["bob", "carol"]
    );
    assert!(matches!(
        workspace_members(c, team, None, 0).await,
        Err(Error::InvalidLimit { got: 0, .. })
    ));
    assert!(matches!(
        workspace_members(c, WorkspaceId(424_242), None, 5).await,
        Err(Error::WorkspaceNotFound(_))
    ));
    c.execute_unprepared(&format!(
        "UPDATE workspaces SET deleted_at = created_at WHERE id = {team}"
    ))
    .await
    .unwrap();
    assert!(matches!(
        workspace_members(c, team, None, 5).await,
        Err(Error::WorkspaceDeleted(_))
    ));
    // Deleted workspaces stay listed, marked.
    assert!(
        workspace_overview(c, team)
            .await
            .unwrap()
            .deleted_at
            .is_some()
    );
}

async fn bad_listing_arguments_are_refused_before_any_query(db: &TestDb) {
    let c = &db.conn;
    for limit in [0, 1001] {
        assert!(matches!(
            list_workspaces(
                c,
                &WorkspaceListing {
                    limit,
                    ..Default::default()
                }
            )
            .await,
            Err(Error::InvalidLimit { .. })
        ));
    }
    assert!(matches!(
        list_workspaces(
            c,
            &WorkspaceListing {
                name_contains: Some("x".repeat(300)),
                ..Default::default()
            }
        )
        .await,
        Err(Error::InvalidArgument { .. })
    ));
}

backend_tests!(
    keyset_pages_add_up_to_the_ordered_listing_in_every_order,
    name_filter_is_a_case_insensitive_literal_substring,
    counts_come_from_history_and_summary,
    members_are_distinct_uids_in_order_page_by_page,
    bad_listing_arguments_are_refused_before_any_query,
);
