//! Every request's id, access-log line and metrics, in one middleware outside all others.
//!
//! The id comes from `X-Request-Id` when a trusted proxy sent one (so a trace spans nginx and
//! us), else it is made here; it is returned in `X-Request-Id` and is a field of the
//! request's span, so every log line written while serving the request carries it, the
//! database work on the blocking pool included (`services::database`).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use std::future::{ready, Ready};

use actix_web::body::MessageBody;
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::web;
use futures_util::future::LocalBoxFuture;
use tracing::Instrument;

use super::client::{client_address, peer_is_trusted};
use super::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

use crate::metrics::GATEWAY_ROUTE;

/// Longest id taken from a proxy; longer or odd ones are replaced.
const MAX_ID: usize = 64;

/// A request's id, kept on the stack (every request has one; only a logged request's span
/// needs it as a string).
struct RequestId {
    bytes: [u8; MAX_ID],
    len: usize,
}

impl RequestId {
    /// `id` must be at most `MAX_ID` bytes of `acceptable` characters.
    fn from_str(id: &str) -> RequestId {
        let mut bytes = [0u8; MAX_ID];
        let len = id.len().min(MAX_ID);
        bytes[..len].copy_from_slice(&id.as_bytes()[..len]);
        RequestId { bytes, len }
    }

    fn push(&mut self, part: &[u8]) {
        let end = (self.len + part.len()).min(MAX_ID);
        self.bytes[self.len..end].copy_from_slice(&part[..end - self.len]);
        self.len = end;
    }

    fn as_str(&self) -> &str {
        // Only ever ASCII (`acceptable` or `new_id`'s hex).
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

/// An id of ours: this process's random prefix, the thread's number and the thread's own
/// counter — unique, and free to make: no counter is shared between the workers (one shared
/// atomic was a cache line passed between the cores on every request).
fn new_id() -> RequestId {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static THREADS: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static NEXT: Cell<(u64, u64)> = const { Cell::new((u64::MAX, 0)) };
    }
    let prefix = PREFIX.get_or_init(|| crate::domain::Secret::generate().expose()[..12].to_owned());
    let (thread, n) = NEXT.with(|next| {
        let (mut thread, n) = next.get();
        if thread == u64::MAX {
            thread = THREADS.fetch_add(1, Ordering::Relaxed);
        }
        next.set((thread, n + 1));
        (thread, n)
    });
    // 12 + 2 × (1 + at most 16) = 46 bytes: it fits. Written by hand: `write!` costs more
    // than the rest of making the id.
    let mut id = RequestId {
        bytes: [0u8; MAX_ID],
        len: 0,
    };
    id.push(prefix.as_bytes());
    for part in [thread, n] {
        id.push(b"-");
        let digits = (64 - part.leading_zeros()).div_ceil(4).max(1);
        for shift in (0..digits).rev() {
            id.push(&[b"0123456789abcdef"[(part >> (shift * 4)) as usize & 0xf]]);
        }
    }
    id
}

/// A proxy's id is kept only if it is short and plain (letters, digits, `-_.:`), so a log line
/// can't be forged or bloated through it.
fn acceptable(id: &str) -> bool {
    (1..=MAX_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The middleware (`App::wrap(Observe)`). Written as a `Transform` rather than with
/// `middleware::from_fn`, which boxes the inner call's future as well as its own: one
/// allocation and one dynamic call less on every request.
pub struct Observe;

impl<S, B> Transform<S, ServiceRequest> for Observe
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = ObserveService<S>;
    type InitError = ();
    type Future = Ready<Result<ObserveService<S>, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ObserveService { service }))
    }
}

pub struct ObserveService<S> {
    service: S,
}

impl<S, B> Service<ServiceRequest> for ObserveService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<ServiceResponse<B>, actix_web::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        // Borrowed, not cloned: on two busy workers an `Arc` count is a contended cache line.
        let state = req.app_data::<web::Data<AppState>>();
        let trusted = state
            .map(|s| s.settings.trusted_proxies.as_slice())
            .unwrap_or_default();
        let https = state.is_some_and(|s| s.settings.secure_cookies());
        let from_proxy = peer_is_trusted(req.request(), trusted)
            .then(|| req.headers().get(&REQUEST_ID))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .filter(|id| acceptable(id))
            .map(RequestId::from_str);
        let id = from_proxy.unwrap_or_else(new_id);
        let method = req.method().clone();
        // The gateway's check is a sub-request of a proxy that logs every request itself: its
        // access line is at debug, so the hottest route doesn't format and write a line each.
        let gateway = req.method() == Method::GET && req.path() == GATEWAY_ROUTE;
        let logged = if gateway {
            tracing::enabled!(target: "access", tracing::Level::DEBUG)
        } else {
            tracing::enabled!(target: "access", tracing::Level::INFO)
        };
        // The path only: a set-password link carries its secret in the query string.
        let line = logged.then(|| {
            (
                client_address(req.request(), trusted),
                req.path().to_owned(),
            )
        });
        let span = if gateway && !logged {
            tracing::Span::none()
        } else {
            tracing::info_span!("request", id = %id.as_str())
        };
        let inner = {
            let _entered = span.enter();
            self.service.call(req)
        };
        Box::pin(async move {
            let mut res = if span.is_none() {
                inner.await?
            } else {
                inner.instrument(span.clone()).await?
            };
            let took = started.elapsed();
            let status = res.status().as_u16();
            let headers = res.headers_mut();
            if let Ok(value) = HeaderValue::from_bytes(id.as_str().as_bytes()) {
                headers.insert(REQUEST_ID, value);
            }
            // The gateway's "yes" is a bodiless 204 read only by the proxy: nothing there for
            // a browser to frame, sniff or cache, so it goes without (its 401/403 bodies don't).
            if !(gateway && status == 204) {
                add_security_headers(headers, https);
            }
            if let Some((client, path)) = line {
                let ms = took.as_secs_f64() * 1000.0;
                span.in_scope(|| {
                    if gateway {
                        tracing::debug!(target: "access", client = %client, method = %method, path = %path, status, ms, "request");
                    } else {
                        tracing::info!(target: "access", client = %client, method = %method, path = %path, status, ms, "request");
                    }
                });
            }
            if let Some(state) = res.request().app_data::<web::Data<AppState>>() {
                if gateway {
                    state.metrics().gateway_request(status, took);
                    return Ok(res);
                }
                let route = res.request().match_pattern();
                state.metrics().request(
                    method.as_str(),
                    route.as_deref().unwrap_or("(no route)"),
                    status,
                    took,
                );
            }
            Ok(res)
        })
    }
}

const SECURITY_HEADERS: [(HeaderName, HeaderValue); 5] = [
    (
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(super::CSP),
    ),
    (
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ),
    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    (
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    ),
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
];

/// Headers every response carries unless its handler set its own. Served over https (the base
/// URL says so), browsers are also told to use nothing else.
fn add_security_headers(headers: &mut HeaderMap, https: bool) {
    for (name, value) in SECURITY_HEADERS {
        if !headers.contains_key(&name) {
            headers.insert(name, value);
        }
    }
    if https && !headers.contains_key(header::STRICT_TRANSPORT_SECURITY) {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_ids_are_kept_only_when_short_and_plain() {
        assert!(acceptable("0b5e7c1a-98f4-4f1e-9d7a-3f2d9a8c1b2e"));
        assert!(acceptable("req:42.a_b"));
        for bad in ["", "a b", "x\ny", "é", &"a".repeat(MAX_ID + 1), "id\"quote"] {
            assert!(!acceptable(bad), "{bad:?}");
        }
        let id = || new_id().as_str().to_owned();
        let (a, b) = (id(), id());
        assert_ne!(a, b);
        assert!(acceptable(&a));
        // Another thread's ids differ from this one's, though each counts from zero.
        let other: Vec<String> = std::thread::spawn(move || (0..3).map(|_| id()).collect())
            .join()
            .unwrap();
        let mine: Vec<String> = (0..3).map(|_| id()).collect();
        assert!(other
            .iter()
            .all(|id| !mine.contains(id) && id != &a && id != &b));
    }
}
