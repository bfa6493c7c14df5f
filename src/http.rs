//! Each replicator's HTTP endpoints, on the version's `http` address (loopback by default):
//!
//! - `GET /metrics`: Prometheus text exposition (see `telemetry.rs` for every metric).
//! - `GET /health/live`: 200 while the replicator runs or retries; 503 once it has failed
//!   for good (restart it).
//! - `GET /health/ready`: 200 when streaming, every target reachable and lag under the
//!   threshold; else 503 with the reasons as JSON.
//! - `GET /status`: the version's status as JSON ([`crate::report::VersionStatus`]).

use crate::monitor::Monitor;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use strata_pipeline::CancellationToken;
use tokio::net::TcpListener;

/// The content type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The endpoints' routes.
pub fn router(monitor: Arc<Monitor>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/status", get(status))
        .fallback(not_found)
        .with_state(monitor)
}

/// Serves `listener` until `stop` is cancelled.
pub fn serve(listener: TcpListener, monitor: Arc<Monitor>, stop: CancellationToken) {
    let app = router(monitor);
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the metrics and status endpoint stopped");
        }
    });
}

async fn metrics(State(monitor): State<Arc<Monitor>>) -> Response {
    (
        [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
        monitor.metrics_text(),
    )
        .into_response()
}

async fn live(State(monitor): State<Arc<Monitor>>) -> Response {
    if monitor.live() {
        (StatusCode::OK, Json(serde_json::json!({ "live": true }))).into_response()
    } else {
        let status = monitor.status();
        let body = serde_json::json!({ "live": false, "last_error": status.last_error });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

async fn ready(State(monitor): State<Arc<Monitor>>) -> Response {
    let (ready, reasons) = monitor.ready();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({ "ready": ready, "reasons": reasons });
    (code, Json(body)).into_response()
}

async fn status(State(monitor): State<Arc<Monitor>>) -> Response {
    Json(monitor.status()).into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "not found; strata serves /metrics, /health/live, /health/ready and /status\n",
    )
        .into_response()
}
