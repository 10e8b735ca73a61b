//! A backend's web handlers on recents, with axum: the home page's recent
//! workflows, read from the summary, and an endpoint that enqueues a job on
//! the fair queue. `cargo run --example web` serves it on the embedded SQLite
//! database (or `DATABASE_URL`) at http://127.0.0.1:3000; `cargo test
//! --example web` drives both endpoints in-process.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use recents::queue::{self, NewJob};
use recents::{Error, UserId, WorkspaceId, home_recent_workflows};
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};

/// The routes, over one pooled connection shared by every request.
fn app(db: DatabaseConnection) -> Router {
    Router::new()
        .route("/workspaces/{id}/home/{uid}", get(home))
        .route("/users/{id}/jobs", post(enqueue))
        .with_state(db)
}

/// `GET /workspaces/5/home/alice`: the four workflows the home page shows
/// (the workspace's own on a personal workspace, the member's on a team one).
async fn home(
    State(db): State<DatabaseConnection>,
    Path((id, uid)): Path<(i64, String)>,
) -> Result<Json<Value>, (StatusCode, String)> {
    let workflows = home_recent_workflows(&db, WorkspaceId(id), &uid, 4)
        .await
        .map_err(status)?;
    let cards: Vec<Value> = workflows
        .iter()
        .map(|w| json!({ "workflow": w.published_run_id.0, "title": w.title, "last_used_at": w.last_used_at }))
        .collect();
    Ok(Json(json!({ "recent": cards })))
}

/// `POST /users/7/jobs` with a JSON body: the job's id and its place in line.
async fn enqueue(
    State(db): State<DatabaseConnection>,
    Path(user): Path<i64>,
    Json(payload): Json<Value>,
) -> Result<(StatusCode, Json<Value>), (StatusCode, String)> {
    let id = queue::enqueue(&db, &NewJob::now(UserId(user), payload))
        .await
        .map_err(status)?;
    let place = queue::place_in_queue(&db, id).await.map_err(status)?;
    let place = place.map(|p| p.place_in_global_queue);
    Ok((
        StatusCode::CREATED,
        Json(json!({ "job": id.0, "place": place })),
    ))
}

/// recents' errors as HTTP: the caller's mistakes are 4xx, the rest 5xx.
fn status(err: Error) -> (StatusCode, String) {
    let code = match &err {
        Error::WorkspaceNotFound(_) => StatusCode::NOT_FOUND,
        Error::WorkspaceDeleted(_) => StatusCode::GONE,
        Error::InvalidUid(_) | Error::InvalidLimit { .. } | Error::InvalidArgument { .. } => {
            StatusCode::BAD_REQUEST
        }
        e if e.is_unavailable() || e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (code, err.to_string())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| recents::admin::DEFAULT_DATABASE_URL.into());
    let db = recents::admin::connect_and_migrate(&url).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!(
        "serving on http://127.0.0.1:3000 (try /workspaces/1/home/ada after `recents seed --demo`)"
    );
    axum::serve(listener, app(db)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use chrono::Utc;
    use recents::entity::{published_run, published_run_version, workspace};
    use recents::{RunSave, SaveOptions, VersionId, save_run};
    use sea_orm::{ActiveModelTrait, Set};
    use tower::ServiceExt;

    async fn call(app: &Router, request: Request<Body>) -> (StatusCode, Value) {
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn the_home_page_and_the_queue_endpoint_answer() {
        let db = recents::admin::connect_and_migrate("sqlite::memory:")
            .await
            .unwrap();
        let now = Utc::now();
        let ws = workspace::ActiveModel {
            name: Set("acme".into()),
            is_personal: Set(false),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&db)
        .await
        .unwrap();
        let workflow = published_run::ActiveModel {
            workspace_id: Set(ws.id),
            title: Set("Deploy".into()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&db)
        .await
        .unwrap();
        let version = published_run_version::ActiveModel {
            published_run_id: Set(workflow.id),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&db)
        .await
        .unwrap();
        let run = RunSave {
            id: None,
            workspace_id: WorkspaceId(ws.id),
            uid: "alice".into(),
            parent_version_id: Some(VersionId(version.id)),
            run_status: "done".into(),
            updated_at: now,
        };
        save_run(&db, &run, &SaveOptions::exact()).await.unwrap();
        let app = app(db);

        let home = Request::get(format!("/workspaces/{}/home/alice", ws.id))
            .body(Body::empty())
            .unwrap();
        let (code, body) = call(&app, home).await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body["recent"][0]["title"], "Deploy");
        let missing = Request::get("/workspaces/987654/home/alice")
            .body(Body::empty())
            .unwrap();
        assert_eq!(call(&app, missing).await.0, StatusCode::NOT_FOUND);

        for (user, place) in [(7, 1), (7, 2), (8, 2)] {
            let post = Request::post(format!("/users/{user}/jobs"))
                .header("content-type", "application/json")
                .body(Body::from(r#"{"workspace": 5}"#))
                .unwrap();
            let (code, body) = call(&app, post).await;
            assert_eq!(code, StatusCode::CREATED);
            assert_eq!(body["place"], place, "{body}");
        }
    }
}
