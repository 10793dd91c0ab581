//! `GET /healthz` → `ok`, and nothing else. Listens on `HELLO_BIND` (default 127.0.0.1:8090).

use actix_web::{get, App, HttpResponse, HttpServer};

#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let bind = std::env::var("HELLO_BIND").unwrap_or_else(|_| "127.0.0.1:8090".into());
    HttpServer::new(|| App::new().service(healthz))
        .bind(bind)?
        .run()
        .await
}
