//! The stylesheet, the script and the icon, compiled into the binary so it runs from any directory.

use actix_web::{get, http::header, HttpResponse};

#[get("/static/app.css")]
pub async fn stylesheet() -> HttpResponse {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../static/app.css"),
    )
}

#[get("/static/app.js")]
pub async fn script() -> HttpResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../static/app.js"),
    )
}

/// The icon: an SVG, also at `/favicon.ico`, where browsers and tools ask for one whatever
/// the page says (they get the SVG with its own type; every current browser takes it).
#[get("/static/favicon.svg")]
pub async fn icon() -> HttpResponse {
    asset("image/svg+xml", include_str!("../../static/favicon.svg"))
}

#[get("/favicon.ico")]
pub async fn favicon() -> HttpResponse {
    asset("image/svg+xml", include_str!("../../static/favicon.svg"))
}

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(body)
}
