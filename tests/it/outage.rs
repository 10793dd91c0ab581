//! A database outage, for real: a throwaway PostgreSQL cluster that the test stops and starts
//! (the machine's own server is untouched), and a SQLite file another process holds locked.
//! The gateway keeps passing tokens it verified just before; everything else answers 503 at
//! once; recovery needs no restart and loses nothing that was queued.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

use apitokens::domain::Role;
use reqwest::StatusCode;
use serde_json::json;
use time::Duration;

use crate::helpers::{token_id, Acme, TestApp, ACME_ADMIN, PASSWORD};
use crate::smtp::SmtpServer;

/// How long the database stays down.
const OUTAGE: StdDuration = StdDuration::from_secs(15);
/// "At once": well under the old 10 s pool wait, with room for a loaded CI machine.
const FAST: StdDuration = StdDuration::from_millis(2000);

/// A PostgreSQL cluster of the test's own, in a temporary directory.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    /// `None` (with the reason printed) where PostgreSQL's server programs aren't installed;
    /// in CI that is a failure, not a skip.
    fn create() -> Option<Cluster> {
        let Some(bin) = postgres_bindir() else {
            let why = "PostgreSQL's initdb/pg_ctl are not installed";
            assert!(
                std::env::var_os("CI").is_none(),
                "{why}; CI must run the outage test"
            );
            eprintln!("skipping the PostgreSQL outage test: {why}");
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let cluster = Cluster { bin, dir, port };
        if is_root() {
            // initdb refuses to run as root: the cluster belongs to the postgres user.
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(cluster.dir.path()));
        }
        run(&mut cluster.tool(
            "initdb",
            &[
                "-D",
                &cluster.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        ));
        cluster.start();
        Some(cluster)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    fn tool(&self, name: &str, args: &[&str]) -> Command {
        let program = self.bin.join(name);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        cmd.args(args);
        cmd
    }

    fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        run(&mut self.tool(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "start",
            ],
        ));
    }

    fn stop(&self) {
        run(&mut self.tool("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .tool("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn postgres_bindir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BINDIR") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn readyz(app: &TestApp) -> (StatusCode, StdDuration) {
    let started = Instant::now();
    let status = reqwest::get(format!("{}/readyz", app.base))
        .await
        .expect("readyz answers")
        .status();
    (status, started.elapsed())
}

#[tokio::test]
async fn a_postgres_outage_costs_the_gateway_nothing_and_the_rest_a_fast_503() {
    if crate::helpers::postgres_url().is_none() {
        eprintln!("the PostgreSQL outage test runs in the PostgreSQL pass (TEST_DATABASE_URL)");
        return;
    }
    let Some(cluster) = Cluster::create() else {
        return;
    };
    let smtp = SmtpServer::start();
    let (db_url, smtp_url) = (cluster.url(), smtp.url());
    let app = TestApp::spawn_with(move |s| {
        s.database_url = db_url;
        s.smtp_url = Some(smtp_url);
        s.notify_interval = StdDuration::from_secs(1);
    })
    .await;
    let Acme { app, admin } = Acme::on(app).await;
    let acct = admin.account_id;
    let tokens = format!("/iam/clients/{acct}/tokens");

    let used = app.token_for(&admin, Role::Administrators).await;
    let deleted = app.token_for(&admin, Role::Engineers).await;
    let never_seen = app.token_for(&admin, Role::Users).await;
    let engineer = app.token_for(&admin, Role::Engineers).await;
    let engineer_api = app.api(&format!("APIKey {engineer}"));
    let api = app.api(&format!("APIKey {used}"));
    let exp = apitokens::web::api::model::rfc3339(app.clock().now() + Duration::days(8));
    let due = api
        .post(
            &tokens,
            json!({"name": "due soon", "exp_date": exp, "client_user": {"role": {"id": 2}}}),
        )
        .await;
    assert_eq!(due.status, StatusCode::OK, "{}", due.json);
    let due_id = token_id(due.json["token"].as_str().unwrap());
    for token in [&used, &deleted, &engineer] {
        let check = app
            .api(&format!("APIKey {token}"))
            .get("/iam/auth/check")
            .await;
        assert_eq!(check.status, StatusCode::NO_CONTENT);
        assert_eq!(header(&check.headers, "x-auth-stale"), None);
    }
    let gone = api
        .delete(&format!("{tokens}/{}", token_id(&deleted)))
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let browser = app.signed_in(ACME_ADMIN).await;
    assert_eq!(readyz(&app).await.0, StatusCode::OK);
    assert!(
        smtp.received().is_empty(),
        "nothing was due before the outage"
    );

    // The outage. Two days pass meanwhile: the "due soon" token's 7-day notice falls due, and
    // the next use of `used` is queued for writing while nothing can be written.
    let mut open_connection = apitokens::db::establish_postgres(&cluster.url()).unwrap();
    cluster.stop();
    let down_at = Instant::now();
    // A connection that was open when the server went is told apart from a failed query.
    let lost = {
        use diesel::RunQueryDsl;
        diesel::sql_query("SELECT 1")
            .execute(&mut open_connection)
            .unwrap_err()
    };
    assert_eq!(
        apitokens::db::trouble(&lost),
        Some(apitokens::db::Trouble::ConnectionLost),
        "{lost:?}"
    );
    app.clock().advance(Duration::days(2));
    let used_during = app.clock().now();

    let (status, took) = readyz(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(took < FAST, "/readyz took {took:?}");

    let started = Instant::now();
    let unknown = app
        .api(&format!("APIKey {never_seen}"))
        .get("/iam/auth/check")
        .await;
    assert_eq!(
        unknown.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "never verified here"
    );
    assert!(started.elapsed() < FAST, "took {:?}", started.elapsed());
    assert!(header(&unknown.headers, "retry-after").is_some());
    assert!(unknown.json["message"]
        .as_str()
        .unwrap()
        .contains("database"));

    let refused = app
        .api(&format!("APIKey {deleted}"))
        .get("/iam/auth/check")
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "deleted before the outage"
    );

    // Everything that needs the database answers 503 at once: the API and the pages.
    let started = Instant::now();
    let listed = api.get(&tokens).await;
    assert_eq!(listed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(header(&listed.headers, "retry-after").is_some());
    let page = browser.get("/profile/api-tokens").await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.has_text("can't reach its database"), "{}", page.body);
    let login = app
        .api("")
        .post(
            "/iam/auth/jwt/login",
            json!({"username": ACME_ADMIN, "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        login.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        login.json
    );
    assert!(started.elapsed() < FAST * 2, "took {:?}", started.elapsed());
    let health = reqwest::get(format!("{}/healthz", app.base)).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK, "the process is alive");

    // The token in use passes the gateway for the whole outage, marked as stale, and still
    // with its role: min_role above it is refused.
    let mut checks = 0;
    while down_at.elapsed() < OUTAGE {
        let check = api.get("/iam/auth/check").await;
        assert_eq!(
            check.status,
            StatusCode::NO_CONTENT,
            "after {:?} of outage",
            down_at.elapsed()
        );
        assert_eq!(header(&check.headers, "x-auth-stale"), Some("1"));
        assert_eq!(header(&check.headers, "x-auth-role"), Some("1"));
        checks += 1;
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    }
    assert!(checks > 20, "{checks} checks");
    let at_least_admin = engineer_api.get("/iam/auth/check?min_role=1").await;
    assert_eq!(
        at_least_admin.status,
        StatusCode::FORBIDDEN,
        "min_role holds on stale data"
    );
    let plain = engineer_api.get("/iam/auth/check").await;
    assert_eq!(header(&plain.headers, "x-auth-role"), Some("5"));

    // Back: ready again within a second or two, no restart.
    cluster.start();
    let back_at = Instant::now();
    loop {
        let (status, _) = readyz(&app).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(
            back_at.elapsed() < StdDuration::from_secs(5),
            "/readyz still {status} after {:?}",
            back_at.elapsed()
        );
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    eprintln!(
        "ready again {:?} after the database came back",
        back_at.elapsed()
    );
    // The outage is told once when it starts and once when it ends, not once per attempt.
    let logs = crate::helpers::captured_logs();
    let told = |what: &str| logs.lines().filter(|l| l.contains(what)).count();
    // Once each — or twice when a connection begun while the server was still starting up is
    // refused ("the database system is starting up") just after another got through: a real
    // second short outage, told as such. Logging per attempt would be dozens here.
    let (down, up) = (
        told("the database is unreachable"),
        told("the database is reachable again"),
    );
    assert!((1..=2).contains(&down) && down == up, "{logs}");
    assert_eq!(told("r2d2"), 0, "{logs}");
    let fresh = api.get("/iam/auth/check").await;
    assert_eq!(fresh.status, StatusCode::NO_CONTENT);
    assert_eq!(
        header(&fresh.headers, "x-auth-stale"),
        None,
        "checked for real again"
    );
    let created = api
        .post(
            &tokens,
            json!({"name": "after", "exp_date": null, "client_user": {"role": {"id": 5}}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.json);
    let new_token = created.json["token"].as_str().unwrap().to_string();
    let check = app
        .api(&format!("APIKey {new_token}"))
        .get("/iam/auth/check")
        .await;
    assert_eq!(check.status, StatusCode::NO_CONTENT);

    // The notice that fell due during the outage is delivered once the sweeps get through,
    // exactly once; the use queued during the outage is written, with its own time.
    let deadline = Instant::now() + StdDuration::from_secs(20);
    while smtp.received().is_empty() {
        assert!(Instant::now() < deadline, "the due notice was never sent");
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    let (recorded, delivery) = app.state.sweep(app.clock().now()).await.unwrap();
    assert_eq!((recorded, delivery.sent), (0, 0), "nothing left to send");
    let mails = smtp.received();
    assert_eq!(mails.len(), 1, "exactly one e-mail");
    assert_eq!(mails[0].to, vec![ACME_ADMIN.to_string()]);
    assert!(mails[0].data.contains("due soon"));
    let sent = app
        .db(move |c| {
            use apitokens::db::schema::notices::dsl::*;
            use diesel::prelude::*;
            notices
                .filter(token_id.eq(due_id))
                .count()
                .get_result::<i64>(c)
                .unwrap()
        })
        .await;
    assert_eq!(sent, 1);
    let used_id = token_id(&used);
    let deadline = Instant::now() + StdDuration::from_secs(10);
    loop {
        // Flushed here rather than waited for: after a long outage the background flusher
        // backs off (up to 30 s), and what this asks is that the use is still queued, not
        // when the flusher wakes.
        let _ = app.state.gateway.flush_uses().await;
        let row = app
            .db(move |c| apitokens::repo::Token::find(c, used_id))
            .await
            .unwrap()
            .unwrap();
        if row.last_used_at.map(|at| at.assume_utc()) >= Some(used_during) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the use queued during the outage was lost: {:?}",
            row.last_used_at
        );
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
}

/// A SQLite file that another connection holds locked: writes answer 503 (not 500) and
/// write nothing; when the lock is released the same request succeeds.
#[tokio::test]
async fn a_locked_sqlite_file_gives_503_and_loses_nothing() {
    if crate::helpers::postgres_url().is_some() {
        eprintln!("the SQLite lock test runs in the SQLite pass");
        return;
    }
    let app = TestApp::spawn_with(|s| s.db_wait = StdDuration::from_millis(200)).await;
    let Acme { app, admin } = Acme::on(app).await;
    let api = app.api_as(&admin, Role::Administrators).await;
    let tokens = format!("/iam/clients/{}/tokens", admin.account_id);
    let count = || async {
        app.db(|c| {
            use apitokens::db::schema::tokens::dsl::*;
            use diesel::prelude::*;
            tokens.count().get_result::<i64>(c).unwrap()
        })
        .await
    };
    let before = count().await;

    let path = app.dir.path().join("test.db");
    let locker = hold_write_lock(&path);
    let body =
        json!({"name": "while locked", "exp_date": null, "client_user": {"role": {"id": 2}}});
    let refused = api.post(&tokens, body.clone()).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.json
    );
    assert!(header(&refused.headers, "retry-after").is_some());
    assert!(refused.json["message"]
        .as_str()
        .unwrap()
        .contains("nothing was changed"));
    // Reads go on beside the lock (WAL).
    assert_eq!(api.get(&tokens).await.status, StatusCode::OK);
    assert_eq!(count().await, before, "no half-written row");
    drop(locker);

    let created = api.post(&tokens, body).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.json);
    assert_eq!(count().await, before + 1);
    let ready = reqwest::get(format!("{}/readyz", app.base)).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
}

/// Another connection to the file, inside `BEGIN EXCLUSIVE` until dropped.
fn hold_write_lock(path: &Path) -> diesel::SqliteConnection {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let mut conn = diesel::SqliteConnection::establish(&path.display().to_string()).unwrap();
    conn.batch_execute("BEGIN EXCLUSIVE").unwrap();
    conn
}

/// An instance whose database lacks a migration it needs (another instance is still applying
/// it, say) is not ready; it is as soon as the migration is there.
#[tokio::test]
async fn readyz_is_503_while_a_migration_is_pending() {
    use diesel::connection::SimpleConnection;
    let app = TestApp::spawn().await;
    // Ready means 200 within a second; a suite-loaded machine may miss that once, so a check
    // expecting 200 looks again (bounded).
    let ready = || async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let status = reqwest::get(format!("{}/readyz", app.base))
                .await
                .unwrap()
                .status();
            if status == StatusCode::OK || std::time::Instant::now() > deadline {
                return status;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    assert_eq!(ready().await, StatusCode::OK);
    app.db(|c| {
        c.batch_execute(
            "CREATE TABLE saved_migrations AS SELECT * FROM __diesel_schema_migrations; \
             DELETE FROM __diesel_schema_migrations \
             WHERE version = (SELECT MAX(version) FROM saved_migrations)",
        )
        .unwrap()
    })
    .await;
    let once = reqwest::get(format!("{}/readyz", app.base))
        .await
        .unwrap()
        .status();
    assert_eq!(once, StatusCode::SERVICE_UNAVAILABLE);
    app.db(|c| {
        c.batch_execute(
            "INSERT INTO __diesel_schema_migrations SELECT * FROM saved_migrations \
             WHERE version = (SELECT MAX(version) FROM saved_migrations)",
        )
        .unwrap()
    })
    .await;
    assert_eq!(ready().await, StatusCode::OK);
}
