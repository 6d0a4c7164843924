//! The HTTP API (described in `docs/openapi.json`): submit, list, inspect, read the logs of and
//! cancel jobs. Every route but `/health` and `/openapi.json` wants `Authorization: Bearer
//! <token>`, compared in constant time with each configured token. Responses never carry a
//! credential: connection strings are shown with their passwords removed.

use super::crypto::JobKey;
use super::runner::{progress_view, Runner};
use super::store::{new_record, JobRecord, Store};
use super::JobSpec;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// The OpenAPI document served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

/// What the handlers share.
pub struct ApiState {
    /// The job store.
    pub store: Arc<Store>,
    /// Starts and cancels children.
    pub runner: Arc<Runner>,
    /// Seals submitted credentials.
    pub key: Arc<JobKey>,
    /// Accepted bearer tokens; `None` accepts any request (`--insecure-no-auth`).
    pub tokens: Option<Vec<String>>,
    /// A job's timeout when it asks for none.
    pub default_timeout: Duration,
}

/// The API's routes.
pub fn router(state: Arc<ApiState>) -> Router {
    let authenticated = Router::new()
        .route("/jobs", post(submit).get(list))
        .route("/jobs/{id}", get(status))
        .route("/jobs/{id}/logs", get(logs))
        .route("/jobs/{id}/cancel", post(cancel))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .route("/health", get(|| async { Json(json!({"ok": true})) }))
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .merge(authenticated)
        .with_state(state)
}

/// An error response: `{"error": message}`.
fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (code, Json(json!({"error": message.into()}))).into_response()
}

fn internal(e: anyhow::Error) -> Response {
    tracing::error!("{e:#}");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error; see the server's log",
    )
}

/// Whether `given` equals one of `tokens`, each compared in constant time (only a length
/// mismatch returns early, which tells nothing about a token's bytes).
pub fn token_matches(tokens: &[String], given: &str) -> bool {
    let mut ok = subtle::Choice::from(0);
    for t in tokens {
        if t.len() == given.len() {
            ok |= t.as_bytes().ct_eq(given.as_bytes());
        }
    }
    ok.into()
}

async fn auth(State(state): State<Arc<ApiState>>, request: Request, next: Next) -> Response {
    if let Some(tokens) = &state.tokens {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if !given.is_some_and(|g| token_matches(tokens, g)) {
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token (Authorization: Bearer <token>)",
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    next.run(request).await
}

async fn submit(State(state): State<Arc<ApiState>>, body: axum::body::Bytes) -> Response {
    let spec: JobSpec = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => {
            let message = super::scrub::redact_urls(&e.to_string());
            return error(StatusCode::BAD_REQUEST, format!("invalid job: {message}"));
        }
    };
    if let Err(message) = spec.validate() {
        let scrubbed = super::scrub::Scrubber::new(&[&spec.source, &spec.target]).scrub(&message);
        return error(StatusCode::BAD_REQUEST, format!("invalid job: {scrubbed}"));
    }
    let record = new_record(&spec, &state.key, state.default_timeout);
    if let Err(e) = state.store.insert(&record).await {
        return internal(e);
    }
    tracing::info!(job = %record.id, trace_id = %record.trace_id, "job submitted");
    if !spec.workers {
        state.runner.start(record.id.clone());
    }
    (StatusCode::CREATED, Json(summary(&record))).into_response()
}

/// The short form of a job, as `GET /jobs` lists it.
fn summary(j: &JobRecord) -> Value {
    json!({
        "id": j.id,
        "trace_id": j.trace_id,
        "status": j.status,
        "exit_code": j.exit_code,
        "created_at": j.created_at,
        "finished_at": j.finished_at,
        "source": j.source_shown,
        "target": j.target_shown,
    })
}

/// The whole of a job, as `GET /jobs/{id}` shows it.
fn detail(j: &JobRecord) -> Value {
    let mut v = summary(j);
    let extra = json!({
        "attempts": j.attempts,
        "started_at": j.started_at,
        "timeout_seconds": j.timeout_seconds,
        "cancel_requested": j.cancel_requested,
        "options": options(&j.options),
        "progress": progress_view(j),
        "result": j.result,
        "error": j.error,
    });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    v
}

/// A job's options as submitted, without `source` and `target`.
fn options(spec: &JobSpec) -> Value {
    let mut v = serde_json::to_value(spec).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("source");
        o.remove("target");
    }
    v
}

async fn list(State(state): State<Arc<ApiState>>) -> Response {
    match state.store.list().await {
        Ok(jobs) => {
            Json(json!({"jobs": jobs.iter().map(summary).collect::<Vec<_>>()})).into_response()
        }
        Err(e) => internal(e),
    }
}

/// Job `id`, or the response saying why not (boxed: a `Response` is big).
async fn find(state: &ApiState, id: &str) -> Result<JobRecord, Box<Response>> {
    match state.store.get(id).await {
        Ok(Some(j)) => Ok(j),
        Ok(None) => Err(Box::new(error(
            StatusCode::NOT_FOUND,
            format!("no job {id}"),
        ))),
        Err(e) => Err(Box::new(internal(e))),
    }
}

async fn status(State(state): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    match find(&state, &id).await {
        Ok(j) if j.options.workers => match state.store.workers(&id).await {
            Ok(workers) => {
                let mut v = detail(&j);
                v["workers"] = Value::from(workers);
                Json(v).into_response()
            }
            Err(e) => internal(e),
        },
        Ok(j) => Json(detail(&j)).into_response(),
        Err(r) => *r,
    }
}

/// `GET /jobs/{id}/logs` query: lines after `after`, at most `limit`.
#[derive(serde::Deserialize)]
struct LogQuery {
    #[serde(default)]
    after: i64,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    1000
}

async fn logs(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Response {
    let job = match find(&state, &id).await {
        Ok(j) => j,
        Err(r) => return *r,
    };
    match state
        .store
        .logs(&id, q.after, q.limit.clamp(1, 10_000))
        .await
    {
        Ok(lines) => {
            let next = lines.last().map_or(q.after, |l| l.seq);
            Json(json!({"id": id, "status": job.status, "lines": lines, "next": next}))
                .into_response()
        }
        Err(e) => internal(e),
    }
}

async fn cancel(State(state): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    let job = match find(&state, &id).await {
        Ok(j) => j,
        Err(r) => return *r,
    };
    if job.status.is_finished() {
        return error(
            StatusCode::CONFLICT,
            format!("job {id} is already {}", job.status.as_str()),
        );
    }
    if let Err(e) = state.store.request_cancel(&id).await {
        return internal(e);
    }
    state.runner.cancel(&id);
    // Workers stop themselves when they see the request (at their next heartbeat, 2 s).
    if job.options.workers {
        if let Err(e) = state
            .store
            .finish(&id, super::JobStatus::Cancelled, None, None)
            .await
        {
            return internal(e);
        }
    }
    tracing::info!(job = %id, trace_id = %job.trace_id, "cancel requested");
    (
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "status": job.status, "cancel_requested": true})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::token_matches;

    #[test]
    fn tokens() {
        let t = vec!["abc".to_string(), "secret-token".to_string()];
        assert!(token_matches(&t, "secret-token"));
        assert!(token_matches(&t, "abc"));
        assert!(!token_matches(&t, "secret-tokem"));
        assert!(!token_matches(&t, ""));
        assert!(!token_matches(&[], "abc"));
    }
}
