use actix_web::http::header;
use actix_web::{get, web, HttpResponse};

use crate::web::error::RETRY_AFTER_SECS;
use crate::web::AppState;

/// The process is alive (whatever the database is doing).
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// Ready to serve: the database answers and is migrated. Answers within a second either way
/// (`Services::ready`), so a balancer's probe never times out.
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.ready().await {
        Ok(()) => HttpResponse::Ok().content_type("text/plain").body("ready"),
        Err(e) => {
            tracing::debug!(error = %e, "not ready");
            HttpResponse::ServiceUnavailable()
                .insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS.to_string()))
                .content_type("text/plain")
                .body("not ready: the database is unreachable or not migrated")
        }
    }
}

/// Prometheus metrics (served only on the metrics listener, `APITOKENS_METRICS_BIND`).
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(crate::metrics::CONTENT_TYPE)
        .body(state.metrics_text().await)
}
