//! Starts the real app on port 0 against a fresh database and talks to it over HTTP.
//!
//! The database is a temp SQLite file, or, when `TEST_DATABASE_URL` points at PostgreSQL,
//! a fresh schema in that database (dropped at the end).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use apitokens::config::{JwtKeyFiles, SecretKey, Settings};
use apitokens::db::DbConn;
use apitokens::domain::input::{Email, NewPassword, PersonName};
use apitokens::domain::{Clock, Role};
use apitokens::repo::User;
use apitokens::services::people::accounts::{add_user, AddUser};
use apitokens::startup::Application;
use apitokens::web::AppState;
use diesel::RunQueryDsl;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub base: String,
    pub state: AppState,
    pub dir: tempfile::TempDir,
    pg_schema: Option<(String, String)>,
    /// Where `/metrics` is served, when the settings asked for it.
    pub metrics_port: Option<u16>,
    /// One HTTP client for every `api()` of this app: building one loads the TLS roots (its
    /// reqwest has TLS, for single sign-on's providers), too slow to do per request.
    http: reqwest::Client,
}

/// Everything the app logs during the tests, so tests can check that no secret is logged.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| Arc::new(Mutex::new(Vec::new())))
}

#[derive(Clone)]
struct BufWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for BufWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logging() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let buf = log_buffer().clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_ansi(false)
            .with_writer(move || BufWriter(buf.clone()))
            .try_init();
    });
}

/// One JWT signing key for every app of the test run (generating RSA keys is slow).
pub fn test_jwt_keys() -> JwtKeyFiles {
    static PEM: OnceLock<String> = OnceLock::new();
    JwtKeyFiles {
        current_pem: PEM
            .get_or_init(|| apitokens::config::generate_rsa_pem().unwrap())
            .clone(),
        previous: None,
    }
}

/// The PostgreSQL server to test against, if any. In CI it must be set and reachable.
pub fn postgres_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    /// Like `spawn`, with settings changed by `change` first.
    pub async fn spawn_with(change: impl FnOnce(&mut Settings)) -> TestApp {
        init_logging();
        let dir = tempfile::tempdir().expect("temp dir");
        let (database_url, pg_schema) = match postgres_url() {
            Some(base) => {
                let schema = format!(
                    "t_{}",
                    &apitokens::domain::Secret::generate().expose()[..16]
                );
                let mut conn = apitokens::db::establish_postgres(&base).unwrap_or_else(|e| {
                    panic!("TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}")
                });
                diesel::sql_query(format!("CREATE SCHEMA {schema}"))
                    .execute(&mut conn)
                    .expect("create schema");
                let sep = if base.contains('?') { '&' } else { '?' };
                (
                    format!("{base}{sep}options=-csearch_path%3D{schema}"),
                    Some((base, schema)),
                )
            }
            None => (
                format!("sqlite://{}", dir.path().join("test.db").display()),
                None,
            ),
        };
        let settings = Settings {
            database_url,
            data_dir: dir.path().to_path_buf(),
            bind: "127.0.0.1:0".into(),
            base_url: "http://127.0.0.1".into(),
            secret_key: SecretKey::from_text(&"test-key-".repeat(8)).unwrap(),
            jwt_keys: test_jwt_keys(),
            smtp_url: None,
            mail_from: "apitokens <no-reply@localhost>".into(),
            notify_interval: Duration::from_secs(3600),
            create_demo: false,
            workers: Some(2),
            db_pool_size: 8,
            db_wait: Duration::from_millis(1000),
            outage_grace: Duration::from_secs(60),
            trusted_proxies: vec![],
            metrics_bind: None,
            dkim: None,
            secret_scanning_keys: None,
            drain: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(5),
            sudo_window: Duration::from_secs(900),
            insecure_issuers: vec![],
            webhook_allow_hosts: vec!["127.0.0.1".into()],
        };
        let mut settings = settings;
        change(&mut settings);

        let app = Application::build(settings, Clock::default())
            .await
            .expect("app builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        let state = app.state.clone();
        let metrics_port = app.metrics_port();
        tokio::spawn(app.run_until_stopped());
        TestApp {
            base,
            state,
            dir,
            pg_schema,
            metrics_port,
            http: reqwest::Client::new(),
        }
    }

    pub fn clock(&self) -> &Clock {
        self.state.clock()
    }

    /// Runs `f` on a pooled connection (for setup and for looking at what was stored).
    pub async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut DbConn) -> T + Send + 'static,
    ) -> T {
        let pool = self.state.pool().clone();
        tokio::task::spawn_blocking(move || f(&mut pool.get().expect("connection")))
            .await
            .expect("db task")
    }

    /// The database's plan for `SELECT {query}` (SQLite's `EXPLAIN QUERY PLAN` details, or
    /// PostgreSQL's `EXPLAIN` lines), after `setup` (SQL run first, e.g. `ANALYZE`). On
    /// PostgreSQL sequential scans are off, so a tiny test table can't hide a missing index.
    pub async fn plan(&self, setup: &'static str, query: String) -> String {
        self.db(move |conn| {
            use diesel::connection::SimpleConnection;
            use diesel::prelude::*;
            #[derive(QueryableByName)]
            struct Line {
                #[diesel(sql_type = diesel::sql_types::Text)]
                detail: String,
            }
            #[derive(QueryableByName)]
            struct PgLine {
                #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
                line: String,
            }
            match conn {
                DbConn::Sqlite(c) => {
                    c.batch_execute(setup).unwrap();
                    diesel::sql_query(format!("EXPLAIN QUERY PLAN SELECT {query}"))
                        .load::<Line>(c)
                        .unwrap()
                        .into_iter()
                        .map(|l| l.detail)
                        .collect::<Vec<_>>()
                        .join("\n")
                }
                DbConn::Postgres(c) => {
                    c.batch_execute(setup).unwrap();
                    c.batch_execute("SET enable_seqscan = off").unwrap();
                    let lines = diesel::sql_query(format!("EXPLAIN SELECT {query}"))
                        .load::<PgLine>(c)
                        .unwrap();
                    c.batch_execute("SET enable_seqscan = on").unwrap();
                    lines
                        .into_iter()
                        .map(|l| l.line)
                        .collect::<Vec<_>>()
                        .join("\n")
                }
            }
        })
        .await
    }

    /// Adds a user with `PASSWORD` (creating the account if it is new).
    pub async fn add_user(&self, account: &str, email: &str, role: Role) -> User {
        let input = AddUser {
            account: account.into(),
            email: Email::parse(email).unwrap(),
            name: PersonName::parse(email.split('@').next().unwrap()).unwrap(),
            role,
            password: NewPassword::parse(PASSWORD).unwrap(),
        };
        let now = self.clock().now();
        self.db(move |c| add_user(c, &input, now))
            .await
            .expect("user added")
    }

    /// A browser-like client with its own cookie jar.
    pub fn client(&self) -> Client {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        Client {
            http: reqwest::Client::builder()
                .cookie_provider(jar.clone())
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: self.base.clone(),
            jar,
        }
    }

    /// A client signed in as `email`.
    pub async fn signed_in(&self, email: &str) -> Client {
        let client = self.client();
        let page = client.sign_in(email, PASSWORD).await;
        assert_eq!(
            page.status,
            StatusCode::SEE_OTHER,
            "sign-in of {email} failed: {}",
            page.body
        );
        client
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((base, schema)) = self.pg_schema.take() {
            if let Ok(mut conn) = apitokens::db::establish_postgres(&base) {
                let _ =
                    diesel::sql_query(format!("DROP SCHEMA {schema} CASCADE")).execute(&mut conn);
            }
        }
    }
}

pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The body parsed as HTML.
    pub fn html(&self) -> scraper::Html {
        scraper::Html::parse_document(&self.body)
    }

    /// The text of every element matching the CSS `selector`, whitespace collapsed.
    pub fn texts(&self, selector: &str) -> Vec<String> {
        let selector = scraper::Selector::parse(selector).expect("a valid CSS selector");
        self.html()
            .select(&selector)
            .map(|e| {
                e.text()
                    .collect::<String>()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    /// The text of the first element matching `selector`.
    pub fn text(&self, selector: &str) -> Option<String> {
        self.texts(selector).into_iter().next()
    }

    /// Whether the page's visible text (markup removed, entities decoded, whitespace
    /// collapsed) contains `needle`.
    pub fn has_text(&self, needle: &str) -> bool {
        let text = self.text("html").unwrap_or_default();
        let needle = needle.split_whitespace().collect::<Vec<_>>().join(" ");
        text.contains(&needle)
    }

    /// Whether an element matches the CSS `selector`.
    pub fn has(&self, selector: &str) -> bool {
        let selector = scraper::Selector::parse(selector).expect("a valid CSS selector");
        self.html().select(&selector).next().is_some()
    }

    /// The value of `attribute` of every element matching `selector`.
    pub fn attrs(&self, selector: &str, attribute: &str) -> Vec<String> {
        let selector = scraper::Selector::parse(selector).expect("a valid CSS selector");
        self.html()
            .select(&selector)
            .filter_map(|e| e.value().attr(attribute).map(str::to_owned))
            .collect()
    }

    /// The value of the first input named `name`.
    pub fn input_value(&self, name: &str) -> Option<String> {
        self.attrs(&format!("input[name=\"{name}\"]"), "value")
            .into_iter()
            .next()
    }

    /// The text of the element with `id`.
    pub fn text_of(&self, id: &str) -> Option<String> {
        self.text(&format!("#{id}"))
    }

    /// Ids and statuses of the token rows in the table, in order.
    pub fn token_rows(&self) -> Vec<(i64, String)> {
        let selector = scraper::Selector::parse("tr[data-token-id]").unwrap();
        self.html()
            .select(&selector)
            .map(|row| {
                let id = row.value().attr("data-token-id").unwrap().parse().unwrap();
                let status = row.value().attr("data-status").unwrap().to_owned();
                (id, status)
            })
            .collect()
    }
}

#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub jar: Arc<reqwest::cookie::Jar>,
}

impl Client {
    /// The `Cookie` header this client would send.
    pub fn cookie_header(&self) -> String {
        use reqwest::cookie::CookieStore;
        self.jar
            .cookies(&self.base.parse().unwrap())
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    pub async fn get(&self, path: &str) -> Page {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET");
        page(r).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .expect("POST");
        page(r).await
    }

    /// A POST with the CSRF token of the page at `from`.
    pub async fn post_from(&self, from: &str, path: &str, form: &[(&str, &str)]) -> Page {
        let csrf = self
            .get(from)
            .await
            .input_value("csrf_token")
            .expect("page has a CSRF token");
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        fields.push(("csrf_token", &csrf));
        self.post(path, &fields).await
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Page {
        self.post_from(
            "/login",
            "/login",
            &[("email", email), ("password", password)],
        )
        .await
    }

    /// Creates a token through the form; returns the page that answers the POST.
    pub async fn create_token(&self, fields: &[(&str, &str)]) -> Page {
        let form = self.get("/profile/api-tokens/new").await;
        assert_eq!(form.status, StatusCode::OK);
        let mut all: Vec<(&str, String)> = vec![
            ("csrf_token", form.input_value("csrf_token").unwrap()),
            ("form_id", form.input_value("form_id").unwrap()),
        ];
        for (k, v) in fields {
            all.retain(|(key, _)| key != k);
            all.push((k, v.to_string()));
        }
        let r = self
            .http
            .post(format!("{}/profile/api-tokens", self.base))
            .form(&all)
            .send()
            .await
            .expect("POST");
        page(r).await
    }

    /// Creates a token that never expires and returns its revealed value.
    pub async fn new_token(&self, name: &str, role: Role) -> String {
        let role = role.id().to_string();
        let page = self
            .create_token(&[("name", name), ("role", &role), ("expiration", "never")])
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.text_of("new-token-value").expect("token revealed")
    }
}

async fn page(r: reqwest::Response) -> Page {
    let status = r.status();
    let headers = r.headers().clone();
    let body = r.text().await.unwrap_or_default();
    Page {
        status,
        headers,
        body,
    }
}

/// The id part of a `<id>_<secret>` token.
pub fn token_id(token: &str) -> i64 {
    token.split(['_', '$']).next().unwrap().parse().unwrap()
}

/// Undoes askama's HTML escaping, for comparing visible text.
pub fn unescape(s: &str) -> String {
    s.replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&lt;", "<")
        .replace("&#60;", "<")
        .replace("&gt;", ">")
        .replace("&#62;", ">")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

impl TestApp {
    /// A second app instance on the same database (a second server behind a balancer), on the
    /// same clock (moving one moves both, as the wall clock would).
    pub async fn spawn_sibling(&self) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = (*self.state.settings).clone();
        settings.data_dir = dir.path().to_path_buf();
        let app = Application::build(settings, self.clock().clone())
            .await
            .expect("app builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        let state = app.state.clone();
        let metrics_port = app.metrics_port();
        tokio::spawn(app.run_until_stopped());
        TestApp {
            base,
            state,
            dir,
            pg_schema: None,
            metrics_port,
            http: reqwest::Client::new(),
        }
    }

    /// A Users-role token of `issuer` expiring `after` from now (through the service); its id
    /// and secret.
    pub async fn expiring_token(
        &self,
        issuer: &User,
        name: &str,
        after: time::Duration,
    ) -> (i64, String) {
        use apitokens::domain::input::{Expiry, TokenDescription, TokenName};
        use apitokens::services::tokens::{create, CreateOutcome, NewTokenRequest};
        let actor = apitokens::services::Actor::of_user(issuer);
        let now = self.clock().now();
        let req = NewTokenRequest {
            name: TokenName::parse(name).unwrap(),
            description: TokenDescription::parse(None).unwrap(),
            role: Role::Users,
            expiry: Expiry::at(now + after, now).unwrap(),
            form_id: None,
            parent: None,
            allowed_ips: vec![],
            allowed_routes: vec![],
            rate_limit: None,
            usage_limit: None,
        };
        match self
            .db(move |c| create(c, &actor, &req, now))
            .await
            .unwrap()
        {
            CreateOutcome::Created { token, secret } => {
                (token.id.get(), secret.expose().to_string())
            }
            CreateOutcome::AlreadyCreated { .. } => unreachable!(),
        }
    }

    /// The account's recorded events of one kind (`token.revoked`, ...), newest first.
    pub async fn events_of(
        &self,
        account: i64,
        kind: &'static str,
    ) -> Vec<apitokens::repo::events::AccountEvent> {
        self.db(move |c| {
            apitokens::repo::events::AccountEvent::recent(c, account, 100)
                .unwrap()
                .into_iter()
                .map(|(e, _)| e)
                .filter(|e| e.kind == kind)
                .collect()
        })
        .await
    }

    /// Creates a never-expiring token for `user` through the service; returns `<id>_<secret>`.
    pub async fn token_for(&self, user: &User, role: Role) -> String {
        use apitokens::domain::input::{Expiry, TokenDescription, TokenName};
        use apitokens::services::tokens::{create, CreateOutcome, NewTokenRequest};
        let actor = apitokens::services::Actor::of_user(user);
        let req = NewTokenRequest {
            name: TokenName::parse("api test").unwrap(),
            description: TokenDescription::parse(None).unwrap(),
            role,
            expiry: Expiry::NEVER,
            form_id: None,
            parent: None,
            allowed_ips: vec![],
            allowed_routes: vec![],
            rate_limit: None,
            usage_limit: None,
        };
        let now = self.clock().now();
        match self
            .db(move |c| create(c, &actor, &req, now))
            .await
            .expect("token created")
        {
            CreateOutcome::Created { token, secret } => apitokens::domain::token::wire_form(
                token.id,
                apitokens::domain::token::Separator::Underscore,
                &secret,
            ),
            CreateOutcome::AlreadyCreated { .. } => unreachable!(),
        }
    }

    /// A JSON client sending `Authorization: <auth>` (e.g. `APIKey 1_ab...` or `Bearer ...`).
    pub fn api(&self, auth: &str) -> Api {
        Api {
            http: self.http.clone(),
            base: self.base.clone(),
            auth: auth.to_string(),
        }
    }
}

#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub auth: String,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: serde_json::Value,
}

impl Api {
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Reply {
        self.send_with(method, path, body, &[]).await
    }

    /// Like `send`, with extra headers.
    pub async fn send_with(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if !self.auth.is_empty() {
            req = req.header("authorization", &self.auth);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = req.send().await.expect("request");
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let json = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
        };
        Reply {
            status,
            headers,
            json,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> Reply {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: serde_json::Value) -> Reply {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(reqwest::Method::DELETE, path, None).await
    }
}

/// The account most tests start from, so that a test states only what matters to it:
/// `let Acme { app, admin } = Acme::start().await;` gives a fresh app whose account "Acme"
/// has one Administrator, `admin@acme.test` (password `PASSWORD`).
pub struct Acme {
    pub app: TestApp,
    pub admin: User,
}

pub const ACME_ADMIN: &str = "admin@acme.test";

impl Acme {
    pub async fn start() -> Acme {
        Acme::on(TestApp::spawn().await).await
    }

    /// Acme on an app started with other settings.
    pub async fn on(app: TestApp) -> Acme {
        let admin = app.add_user("Acme", ACME_ADMIN, Role::Administrators).await;
        Acme { app, admin }
    }
}

impl TestApp {
    /// Another person of Acme: `<name>@acme.test` with `role`.
    pub async fn acme_member(&self, name: &str, role: Role) -> User {
        self.add_user("Acme", &format!("{name}@acme.test"), role)
            .await
    }

    /// An API client with an access JWT of `email` (password `PASSWORD`): the person
    /// themselves, as a script that logged in acts, rather than one of their tokens.
    pub async fn api_jwt(&self, email: &str) -> Api {
        let r = self
            .api("")
            .post(
                "/iam/auth/jwt/login",
                serde_json::json!({"username": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "JWT login of {email}: {}", r.json);
        self.api(&format!("Bearer {}", r.json["access"].as_str().unwrap()))
    }

    /// An API client authenticated with a fresh never-expiring token of `role` issued by
    /// `user`.
    pub async fn api_as(&self, user: &User, role: Role) -> Api {
        let token = self.token_for(user, role).await;
        self.api(&format!("APIKey {token}"))
    }
}

/// A helper process started in its own process group (`process_group(0)`), ended with the
/// whole group when dropped: an OpenID provider's or a SAML IdP's workers, chromedriver's
/// Chromium (a killed parent alone leaves them running, and a machine that runs the suite many
/// times fills up with them).
pub struct ProcessGroup(pub std::process::Child);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &group])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port free right now (for a server whose URL must be known before it starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
