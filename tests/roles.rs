//! Who may do what, over real HTTP against a real `liandong serve` (the embedded SQLite store,
//! and PostgreSQL), with keys made by the real `liandong keys` command line:
//!
//! - every route the server serves is in [`endpoints`], and every row there is served: a new
//!   route fails this test until its access is declared;
//! - each endpoint × {no key, a bad key, a revoked key, each role's configured key, each role's
//!   stored key} answers 401, 403 or its success status as the table says;
//! - `keys create` makes a key that works, `keys revoke` makes it 401 after the refresh,
//!   `keys list` never prints a key, and the audit trail holds every key change and member
//!   read (with the member's keyed hash, never its key), and refuses UPDATE and DELETE.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use chrono::Utc;
use liandong::{start, Config, Role as ProcessRole, Running};
use liandong_auth::Role;
use liandong_store::ReadStore;
use liandong_testkit::{server, TestStore};
use liandong_vault::{MasterKey, Purpose, Vault};
use reqwest::Method;
use serde_json::{json, Value};

const KEYS: [(Role, &str); 6] = [
    (Role::Ingest, "roles-ingest-key-0123456789"),
    (Role::Client, "roles-client-key-0123456789"),
    (Role::Analyst, "roles-analyst-key-0123456789"),
    (Role::Support, "roles-support-key-0123456789"),
    (Role::Decide, "roles-decide-key-0123456789"),
    (Role::Admin, "roles-admin-key-0123456789"),
];
/// The OS user the command line runs as: the audit trail names it.
const CLI_USER: &str = "roles-tester";
/// How often the server re-reads the stored keys in this test (5 s in production).
const REFRESH: Duration = Duration::from_millis(200);
const READ_MEMBER: &str = "o_roles_read";
const ERASE_MEMBERS: usize = 3;

fn configured(role: Role) -> &'static str {
    KEYS.iter().find(|(r, _)| *r == role).unwrap().1
}

fn erase_member(n: usize) -> String {
    format!("o_roles_erase_{n}")
}

// ---------------------------------------------------------------------------------------------
// The table

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy)]
enum Access {
    /// No key needed; a key changes nothing.
    Public,
    /// Authenticated by its own signature (WeChat's), not by an API key: no API key opens it.
    Signature,
    /// These roles (`admin` is listed wherever it may go: everywhere).
    Roles(&'static [Role]),
    /// These roles, with the key in the URL (`?token=<key>`: clients that cannot set headers).
    UrlKey(&'static [Role]),
}

struct Endpoint {
    method: Method,
    /// The route as the router declares it.
    route: &'static str,
    access: Access,
    request: Request,
    /// What an allowed call answers.
    ok: u16,
}

/// A valid request to an endpoint.
#[derive(Clone, Copy)]
enum Request {
    /// This path (and query), no body.
    Path(&'static str),
    /// The path and JSON body made for the `n`-th allowed call, so an endpoint with effects
    /// (erasure) acts on a fresh member each time.
    Build(fn(n: usize) -> (String, Option<Value>)),
}

impl Request {
    fn make(self, n: usize) -> (String, Option<Value>) {
        match self {
            Request::Path(p) => (p.to_owned(), None),
            Request::Build(f) => f(n),
        }
    }
}

const ANALYST: &[Role] = &[Role::Analyst, Role::Admin];
const SUPPORT: &[Role] = &[Role::Support, Role::Admin];
const ADMIN: &[Role] = &[Role::Admin];
const READERS: &[Role] = &[Role::Analyst, Role::Support, Role::Admin];
const ANY_KEY: &[Role] = &[
    Role::Ingest,
    Role::Client,
    Role::Analyst,
    Role::Support,
    Role::Decide,
    Role::Admin,
];
/// The apps acting on a member in real time: decisions only.
const DECIDE: &[Role] = &[Role::Decide, Role::Admin];
/// A member's interests: the apps, and support.
const INTERESTS: &[Role] = &[Role::Decide, Role::Support, Role::Admin];
/// Who sends events: a client key too (within its scope: client-observable events only).
const INGEST: &[Role] = &[Role::Ingest, Role::Client, Role::Admin];

fn visit(user: &str) -> Value {
    json!({
        "event_id": uuid::Uuid::new_v4().to_string(),
        "type": "mp.visit",
        "occurred_at": Utc::now().to_rfc3339(),
        "user": {"mp_openid": user},
        "source": "from=menu&type=home",
        "props": {"page": "pages/index/index"}
    })
}

/// Every route `liandong serve` serves, with who may call it. Add a row with a new route.
fn endpoints() -> Vec<Endpoint> {
    let row = |method: Method, route, access, request, ok| Endpoint {
        method,
        route,
        access,
        request,
        ok,
    };
    let metric = |route: &'static str| {
        row(
            Method::GET,
            route,
            Access::Roles(ANALYST),
            Request::Path(route),
            200,
        )
    };
    vec![
        row(
            Method::GET,
            "/health/live",
            Access::Public,
            Request::Path("/health/live"),
            200,
        ),
        row(
            Method::GET,
            "/health/ready",
            Access::Public,
            Request::Path("/health/ready"),
            200,
        ),
        row(
            Method::GET,
            "/openapi.json",
            Access::Public,
            Request::Path("/openapi.json"),
            200,
        ),
        // Prometheus' scrape: no member data; its own key (LIANDONG_METRICS_KEY) when one is set,
        // none in this test.
        row(
            Method::GET,
            "/metrics",
            Access::Public,
            Request::Path("/metrics"),
            200,
        ),
        row(Method::GET, "/", Access::Public, Request::Path("/"), 200),
        row(
            Method::GET,
            "/assets/{*path}",
            Access::Public,
            Request::Path("/assets/app.js"),
            200,
        ),
        // Unconfigured in this test (no LIANDONG_WECHAT_TOKEN): 404 whatever the key.
        row(
            Method::GET,
            "/v1/wechat/oa/callback",
            Access::Signature,
            Request::Path("/v1/wechat/oa/callback"),
            404,
        ),
        row(
            Method::POST,
            "/v1/events",
            Access::Roles(INGEST),
            Request::Build(|_| {
                (
                    "/v1/events".into(),
                    Some(json!({"events": [visit(READ_MEMBER)]})),
                )
            }),
            200,
        ),
        row(
            Method::POST,
            "/v1/beacon",
            Access::UrlKey(INGEST),
            Request::Build(|_| {
                (
                    "/v1/beacon?x=1".into(),
                    Some(json!({"events": [visit(READ_MEMBER)]})),
                )
            }),
            200,
        ),
        // The Sensors intake: `e30` is base64 of `{}`, a record without a counterpart (200, one
        // rejection).
        row(
            Method::GET,
            "/sa",
            Access::UrlKey(INGEST),
            Request::Path("/sa?project=default&data=e30"),
            200,
        ),
        row(
            Method::GET,
            "/sa.gif",
            Access::UrlKey(INGEST),
            Request::Path("/sa.gif?data=e30"),
            200,
        ),
        row(
            Method::GET,
            "/v1/status",
            Access::Roles(READERS),
            Request::Path("/v1/status"),
            200,
        ),
        row(
            Method::GET,
            "/v1/whoami",
            Access::Roles(ANY_KEY),
            Request::Path("/v1/whoami"),
            200,
        ),
        row(
            Method::GET,
            "/v1/members/{member_key}",
            Access::Roles(SUPPORT),
            Request::Build(|_| (format!("/v1/members/mp:{READ_MEMBER}"), None)),
            200,
        ),
        row(
            Method::GET,
            "/v1/members/{member_key}/follow-prompt",
            Access::Roles(DECIDE),
            Request::Build(|_| (format!("/v1/members/mp:{READ_MEMBER}/follow-prompt"), None)),
            200,
        ),
        row(
            Method::GET,
            "/v1/members/{member_key}/channel",
            Access::Roles(DECIDE),
            Request::Build(|_| {
                (
                    format!("/v1/members/mp:{READ_MEMBER}/channel?purpose=service&urgent=true"),
                    None,
                )
            }),
            200,
        ),
        row(
            Method::GET,
            "/v1/members/{member_key}/interests",
            Access::Roles(INTERESTS),
            Request::Build(|_| (format!("/v1/members/mp:{READ_MEMBER}/interests"), None)),
            200,
        ),
        row(
            Method::POST,
            "/v1/members/{member_key}/erase",
            Access::Roles(ADMIN),
            Request::Build(|n| (format!("/v1/members/mp:{}/erase", erase_member(n)), None)),
            202,
        ),
        metric("/v1/metrics/menu-entries"),
        metric("/v1/metrics/articles"),
        metric("/v1/metrics/linkage"),
        metric("/v1/metrics/repurchase"),
        metric("/v1/metrics/follower-retention"),
        metric("/v1/metrics/weekly-retention"),
        metric("/v1/metrics/ab"),
        metric("/v1/metrics/messages"),
        metric("/v1/metrics/activities"),
        metric("/v1/metrics/summary"),
        metric("/v1/reports/review"),
        row(
            Method::GET,
            "/v1/segments/count",
            Access::Roles(ANALYST),
            Request::Path("/v1/segments/count?following=false"),
            200,
        ),
        row(
            Method::GET,
            "/v1/segments/members",
            Access::Roles(ADMIN),
            Request::Path("/v1/segments/members?active_within_days=30"),
            200,
        ),
        row(
            Method::GET,
            "/v1/audit",
            Access::Roles(ADMIN),
            Request::Path("/v1/audit?limit=5"),
            200,
        ),
    ]
}

/// The routes of the server's router. axum's `Debug` of a router lists each path as
/// `RouteId(n): "/path"`; the fallback's private catch-all is left out.
fn served_routes(running: &Running) -> BTreeSet<String> {
    let shown = format!("{:?}", running.router);
    let mut routes = BTreeSet::new();
    for piece in shown.split("RouteId(").skip(1) {
        let Some(rest) = piece
            .split_once("): \"")
            .filter(|(n, _)| n.chars().all(|c| c.is_ascii_digit()))
            .map(|(_, rest)| rest)
        else {
            continue;
        };
        let path = rest.split('"').next().unwrap_or_default();
        if !path.contains("__private__") {
            routes.insert(path.to_owned());
        }
    }
    assert!(
        routes.contains("/v1/events") && routes.contains("/v1/status"),
        "could not read the routes from the router's Debug output (has axum changed it?): {routes:?}"
    );
    routes
}

// ---------------------------------------------------------------------------------------------
// The server and the command line

struct Setup {
    dir: tempfile::TempDir,
    database_url: Option<String>,
    master_key: String,
}

impl Setup {
    fn new(database_url: Option<String>) -> Setup {
        Setup {
            dir: tempfile::tempdir().expect("a temporary data directory"),
            database_url,
            master_key: MasterKey::generate().to_base64(),
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        let keys = KEYS
            .iter()
            .map(|(r, k)| format!("{r}:{k}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut env = vec![
            ("LIANDONG_DATA_DIR", self.dir.path().display().to_string()),
            ("LIANDONG_API_KEYS", keys),
            ("LIANDONG_MASTER_KEY", self.master_key.clone()),
        ];
        // Without it, the command line and the server both use the embedded SQLite default.
        if let Some(url) = &self.database_url {
            env.push(("LIANDONG_DATABASE_URL", url.clone()));
        }
        env
    }

    async fn start(&self) -> Running {
        let mut env = self.env();
        env.push(("LIANDONG_LISTEN", "127.0.0.1:0".into()));
        let mut cfg =
            Config::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
                .expect("a valid configuration");
        cfg.key_refresh = REFRESH;
        start(ProcessRole::Serve, cfg)
            .await
            .expect("liandong starts")
    }

    /// `liandong keys <args>` as an operator runs it.
    fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_liandong"))
            .arg("keys")
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("USER", CLI_USER)
            .envs(self.env())
            .output()
            .expect("the liandong binary runs")
    }

    fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!("sqlite://{}", self.dir.path().join("liandong.db").display())
        })
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `keys create`: the key (stdout, alone) and its id.
fn create_key(setup: &Setup, role: Role, label: &str) -> (String, String) {
    let out = setup.cli(&["create", "--role", role.as_str(), "--label", label]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "keys create failed: {stderr}");
    let key = stdout.trim().to_owned();
    assert!(
        !key.contains(char::is_whitespace) && key.len() >= 32,
        "stdout holds the key alone: {stdout:?}"
    );
    let key_id = liandong_auth::key_id(&liandong_auth::digest(&key));
    assert!(
        stderr.contains(&key_id) && stderr.contains(role.as_str()),
        "stderr names the key id and role: {stderr}"
    );
    assert!(!stderr.contains(&key), "the key is printed once, on stdout");
    (key, key_id)
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = r.status().as_u16();
        let bytes = r.bytes().await.expect("a body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        self.call(Method::GET, path, Some(key), None).await
    }

    /// Polls `/v1/whoami` with `key` until it answers `status`; how long that took.
    async fn until_whoami(&self, key: &str, status: u16, within: Duration) -> Duration {
        let began = Instant::now();
        loop {
            if self.get("/v1/whoami", key).await.0 == status {
                return began.elapsed();
            }
            assert!(
                began.elapsed() < within,
                "/v1/whoami did not answer {status} within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_caught_up(&self) {
        let key = configured(Role::Support);
        server::wait_caught_up(&self.http, &self.base, key, Duration::from_secs(60)).await;
    }
}

async fn exec(store: &ReadStore, sql: &str) -> Result<u64, liandong_store::StoreError> {
    Ok(match store {
        ReadStore::Postgres(p) => sqlx::query(sql).execute(p).await?.rows_affected(),
        ReadStore::Sqlite(p) => sqlx::query(sql).execute(p).await?.rows_affected(),
    })
}

// ---------------------------------------------------------------------------------------------
// The test

/// A caller of the matrix.
#[derive(Debug, Clone)]
enum Caller {
    NoKey,
    BadKey,
    Revoked(String),
    Configured(Role),
    Stored(Role, String),
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Caller::NoKey => f.write_str("no key"),
            Caller::BadKey => f.write_str("an unknown key"),
            Caller::Revoked(_) => f.write_str("a revoked admin key"),
            Caller::Configured(r) => write!(f, "the configured {r} key"),
            Caller::Stored(r, _) => write!(f, "a stored {r} key"),
        }
    }
}

impl Caller {
    fn key(&self) -> Option<&str> {
        match self {
            Caller::NoKey => None,
            Caller::BadKey => Some("not-a-key-of-this-server-0123456789"),
            Caller::Revoked(k) | Caller::Stored(_, k) => Some(k),
            Caller::Configured(r) => Some(configured(*r)),
        }
    }

    fn role(&self) -> Option<Role> {
        match self {
            Caller::Configured(r) | Caller::Stored(r, _) => Some(*r),
            _ => None,
        }
    }
}

async fn roles_and_keys(database_url: Option<String>) {
    let setup = Setup::new(database_url);
    let running = setup.start().await;
    let api = Client {
        http: reqwest::Client::new(),
        base: format!("http://{}", running.addr),
    };

    // The table and the router agree, both ways.
    let table = endpoints();
    let declared: BTreeSet<String> = table.iter().map(|e| e.route.to_owned()).collect();
    let served = served_routes(&running);
    let undeclared: Vec<&String> = served.difference(&declared).collect();
    let stale: Vec<&String> = declared.difference(&served).collect();
    assert!(
        undeclared.is_empty(),
        "routes served without a row in endpoints() (declare who may call them): {undeclared:?}"
    );
    assert!(
        stale.is_empty(),
        "rows of endpoints() that are not served: {stale:?}"
    );
    for e in &table {
        if let Access::Roles(roles) | Access::UrlKey(roles) = e.access {
            assert!(
                roles.contains(&Role::Admin),
                "{}: admin may do everything",
                e.route
            );
        }
    }

    // keys create: one stored key per role, and one admin key to revoke; each works within the
    // refresh, under its own id.
    let mut stored = BTreeMap::new();
    for role in Role::ALL {
        let (key, key_id) = create_key(&setup, role, &format!("roles test {role}"));
        stored.insert(role, (key, key_id));
    }
    let (revoked_key, revoked_id) = create_key(&setup, Role::Admin, "to be revoked");
    for (role, (key, key_id)) in &stored {
        api.until_whoami(key, 200, Duration::from_secs(10)).await;
        let (_, who) = api.get("/v1/whoami", key).await;
        assert_eq!(who, json!({"role": role.as_str(), "key_id": key_id}));
    }
    api.until_whoami(&revoked_key, 200, Duration::from_secs(10))
        .await;

    // keys revoke: refused (401) within the refresh interval, not before the command ran.
    let out = setup.cli(&["revoke", &revoked_id]);
    assert!(out.status.success(), "revoke: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains(&revoked_id));
    let took = api
        .until_whoami(&revoked_key, 401, Duration::from_secs(10))
        .await;
    // Within the refresh, give or take a loaded machine; well under the production 5 s.
    assert!(
        took < REFRESH + Duration::from_secs(3),
        "revocation took {took:?} with a refresh every {REFRESH:?}"
    );
    let again = setup.cli(&["revoke", &revoked_id]);
    assert!(again.status.success());
    assert!(
        text(&again.stderr).contains("revoked already"),
        "{}",
        text(&again.stderr)
    );
    let unknown = setup.cli(&["revoke", "ffffffffffff"]);
    assert!(!unknown.status.success());
    assert!(
        text(&unknown.stderr).contains("no stored key"),
        "{}",
        text(&unknown.stderr)
    );
    let config_id = liandong_auth::key_id(&liandong_auth::digest(configured(Role::Admin)));
    let config = setup.cli(&["revoke", &config_id]);
    assert!(!config.status.success());
    assert!(
        text(&config.stderr).contains("configured"),
        "{}",
        text(&config.stderr)
    );
    assert_eq!(api.get("/v1/whoami", configured(Role::Admin)).await.0, 200);

    // The members the table's requests are about.
    let mut events = vec![visit(READ_MEMBER)];
    events.extend((0..ERASE_MEMBERS).map(|n| visit(&erase_member(n))));
    let (status, body) = api
        .call(
            Method::POST,
            "/v1/events",
            Some(configured(Role::Ingest)),
            Some(&json!({"events": events})),
        )
        .await;
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (200, Some(1 + ERASE_MEMBERS as u64)),
        "{body}"
    );
    api.wait_caught_up().await;

    // The matrix.
    let mut callers = vec![
        Caller::NoKey,
        Caller::BadKey,
        Caller::Revoked(revoked_key.clone()),
    ];
    callers.extend(Role::ALL.map(Caller::Configured));
    callers.extend(
        stored
            .iter()
            .map(|(r, (k, _))| Caller::Stored(*r, k.clone())),
    );
    let mut allowed_calls: BTreeMap<&str, Vec<&Caller>> = BTreeMap::new();
    let mut failures = Vec::new();
    for e in &table {
        for caller in &callers {
            let n = allowed_calls.get(e.route).map_or(0, Vec::len);
            let (mut path, body) = e.request.make(n);
            let mut bearer = caller.key();
            if let Access::UrlKey(_) = e.access {
                if let Some(key) = bearer.take() {
                    path = format!("{path}&token={key}");
                }
            }
            let (status, answer) = api
                .call(e.method.clone(), &path, bearer, body.as_ref())
                .await;
            let expected = match (e.access, caller.role()) {
                (Access::Public | Access::Signature, _) => e.ok,
                (Access::Roles(_) | Access::UrlKey(_), None) => 401,
                (Access::Roles(roles) | Access::UrlKey(roles), Some(role))
                    if roles.contains(&role) =>
                {
                    e.ok
                }
                (Access::Roles(_) | Access::UrlKey(_), Some(_)) => 403,
            };
            if status != expected {
                failures.push(format!(
                    "{} {path} with {caller}: {status}, expected {expected} ({answer})",
                    e.method
                ));
            }
            if expected == e.ok {
                allowed_calls.entry(e.route).or_default().push(caller);
            }
            // What a member lookup shows depends on the role too: support never sees an
            // identifier in full, admin does.
            if e.route == "/v1/members/{member_key}" && status == 200 {
                let shown = answer["mp_openid"].as_str().unwrap_or_default().to_owned();
                let full = caller.role() == Some(Role::Admin);
                if (shown == READ_MEMBER) != full {
                    failures.push(format!("{path} with {caller}: mp_openid {shown:?}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} answers were wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The audit trail, read as an admin, a page of 4 at a time.
    let admin = configured(Role::Admin);
    let mut trail: Vec<Value> = Vec::new();
    let mut next = String::new();
    loop {
        let (status, page) = api.get(&format!("/v1/audit?limit=4{next}"), admin).await;
        assert_eq!(status, 200, "{page}");
        let entries = page["entries"].as_array().expect("entries").clone();
        assert!(entries.len() <= 4);
        trail.extend(entries);
        match page["next_before_id"].as_i64() {
            Some(id) => next = format!("&before_id={id}"),
            None => break,
        }
    }
    let ids: Vec<i64> = trail.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats: {ids:?}"
    );

    let of =
        |action: &str| -> Vec<&Value> { trail.iter().filter(|e| e["action"] == action).collect() };
    // Key changes: five creations and one revocation, by the command line's user.
    let creations = of("key.create");
    assert_eq!(creations.len(), Role::ALL.len() + 1);
    let mut created: BTreeSet<String> = stored.values().map(|(_, id)| id.clone()).collect();
    created.insert(revoked_id.clone());
    for e in &creations {
        assert_eq!(e["key_id"], format!("cli:{CLI_USER}"));
        assert_eq!(e["endpoint"], "liandong keys create");
        let detail = e["detail"].as_str().unwrap();
        assert!(created.iter().any(|id| detail.contains(id.as_str())), "{e}");
    }
    let revocations = of("key.revoke");
    assert_eq!(
        revocations.len(),
        1,
        "a repeated or refused revocation changes nothing"
    );
    assert!(revocations[0]["detail"]
        .as_str()
        .unwrap()
        .contains(&revoked_id));

    // Member reads: one entry per allowed read, by that caller's key, about the member's keyed
    // hash; refused reads left none.
    let vault = Vault::new(MasterKey::parse_base64(&setup.master_key).unwrap());
    let read_ref = vault.keyed_hash(Purpose::Audit, &format!("mp:{READ_MEMBER}"));
    let reads: Vec<&Value> = of("member.read")
        .into_iter()
        .filter(|e| e["endpoint"] == "GET /v1/members/{member_key}")
        .collect();
    let readers = &allowed_calls["/v1/members/{member_key}"];
    // A person reading a member's interests is recorded too; the apps' own calls are not.
    let interest_reads = of("member.read")
        .into_iter()
        .filter(|e| e["endpoint"] == "GET /v1/members/{member_key}/interests")
        .count();
    let people = allowed_calls["/v1/members/{member_key}/interests"]
        .iter()
        .filter(|c| c.role() != Some(Role::Decide))
        .count();
    assert_eq!(interest_reads, people);
    assert_eq!(reads.len(), readers.len());
    let mut expected_readers: Vec<String> = readers
        .iter()
        .map(|c| liandong_auth::key_id(&liandong_auth::digest(c.key().unwrap())))
        .collect();
    let mut actual_readers: Vec<String> = reads
        .iter()
        .map(|e| e["key_id"].as_str().unwrap().to_owned())
        .collect();
    expected_readers.sort();
    actual_readers.sort();
    assert_eq!(actual_readers, expected_readers);
    for e in &reads {
        assert_eq!(e["member_ref"], read_ref.as_str());
        assert_eq!(e["endpoint"], "GET /v1/members/{member_key}");
        assert_eq!(e["detail"], "found");
    }
    // Erasures are audited too, each about its own member.
    let erasures = of("member.erase");
    let erased = allowed_calls["/v1/members/{member_key}/erase"].len();
    assert_eq!(erasures.len(), erased);
    let erase_refs: BTreeSet<String> = (0..erased)
        .map(|n| vault.keyed_hash(Purpose::Audit, &format!("mp:{}", erase_member(n))))
        .collect();
    let recorded: BTreeSet<String> = erasures
        .iter()
        .map(|e| e["member_ref"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recorded, erase_refs);
    // A member's entries are found by the member key; the key itself is nowhere in the trail.
    let (_, page) = api
        .get(
            &format!("/v1/audit?member=mp:{READ_MEMBER}&limit=1000"),
            admin,
        )
        .await;
    assert_eq!(
        page["entries"].as_array().unwrap().len(),
        reads.len() + interest_reads
    );
    let shown = serde_json::to_string(&trail).unwrap();
    assert!(
        !shown.contains("o_roles_"),
        "a member key in the audit trail: {shown}"
    );
    let (status, bad) = api.get("/v1/audit?limit=0", admin).await;
    assert_eq!((status, bad["parameter"].as_str()), (400, Some("limit")));

    // keys list: ids, roles, labels, dates — never a key.
    let out = setup.cli(&["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    for (role, (key, key_id)) in &stored {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(key_id.as_str()))
            .unwrap_or_else(|| panic!("{key_id} is listed: {stdout}"));
        assert!(
            line.contains(role.as_str()) && line.contains(&format!("roles test {role}")),
            "{line}"
        );
        assert!(!stdout.contains(key.as_str()) && !stderr.contains(key.as_str()));
    }
    let line = stdout
        .lines()
        .find(|l| l.starts_with(revoked_id.as_str()))
        .unwrap();
    assert!(
        line.contains("to be revoked") && line.matches("T").count() >= 2,
        "created and revoked dates: {line}"
    );
    assert!(!stdout.contains(&revoked_key));
    for (role, key) in KEYS {
        let id = liandong_auth::key_id(&liandong_auth::digest(key));
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&id) && l.contains(role.as_str()) && l.contains("config")),
            "the configured {role} key is listed by id: {stdout}"
        );
        assert!(
            !stdout.contains(key) && !stderr.contains(key),
            "a configured key was printed"
        );
    }

    // Nothing changes or removes an audit entry, whoever holds the database.
    let store = ReadStore::connect(&setup.database_url())
        .await
        .expect("the read store");
    for sql in [
        "UPDATE liandong_audit SET key_id = 'nobody'",
        "UPDATE liandong_audit SET member_ref = NULL WHERE action = 'member.read'",
        "DELETE FROM liandong_audit",
        "DELETE FROM liandong_audit WHERE action = 'key.revoke'",
    ] {
        let err = exec(&store, sql).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    let (_, after) = api.get("/v1/audit?limit=1000", admin).await;
    assert_eq!(after["entries"].as_array().unwrap().len(), trail.len());

    running.stop().await.expect("liandong stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_checks_its_roles_on_sqlite() {
    roles_and_keys(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_checks_its_roles_on_postgres() {
    if let Some(db) = TestStore::postgres().await {
        roles_and_keys(Some(db.url().to_owned())).await;
    }
}

/// `liandong keys` in a directory where no server ran, with the server's settings missing.
fn keys_elsewhere(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_liandong"))
        .arg("keys")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("USER", CLI_USER)
        .envs(env.iter().copied())
        .output()
        .expect("the liandong binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_never_create_a_store() {
    // The default store, in a directory where no server ran: refused, naming the file looked
    // for and the settings that chose it, with nothing printed as a key and nothing created.
    let dir = tempfile::tempdir().expect("a temporary folder");
    for args in [&["create", "--role", "analyst"][..], &["list"]] {
        let out = keys_elsewhere(dir.path(), &[], args);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "keys {args:?} succeeded: {err}");
        assert!(
            text(&out.stdout).is_empty(),
            "keys {args:?} printed {:?}",
            text(&out.stdout)
        );
        for named in [
            "no liandong read store at liandong-data/liandong.db",
            &dir.path()
                .join("liandong-data/liandong.db")
                .display()
                .to_string(),
            "LIANDONG_DATABASE_URL",
            "LIANDONG_DATA_DIR",
            "Nothing was created",
        ] {
            assert!(err.contains(named), "keys {args:?}: {named:?} in {err}");
        }
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "keys {args:?} left files behind"
        );
    }
    // LIANDONG_DATA_DIR pointing where no server ran: the message names it.
    let out = keys_elsewhere(dir.path(), &[("LIANDONG_DATA_DIR", "srv-data")], &["list"]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("srv-data/liandong.db") && err.contains("LIANDONG_DATA_DIR (srv-data)"),
        "{err}"
    );
    assert!(!dir.path().join("srv-data").exists());

    // A PostgreSQL database liandong never ran on: refused, its password not shown, no table
    // made in it.
    let Some(db) = TestStore::postgres().await else {
        return;
    };
    let out = keys_elsewhere(
        dir.path(),
        &[("LIANDONG_DATABASE_URL", db.url())],
        &["create", "--role", "analyst"],
    );
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(text(&out.stdout).is_empty());
    assert!(
        err.contains("is not a liandong read store") && err.contains("LIANDONG_DATABASE_URL"),
        "{err}"
    );
    if let Some(password) = db
        .url()
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(credentials, _)| credentials.split_once(':'))
        .map(|(_, p)| p)
    {
        assert!(
            !err.contains(&format!(":{password}@")),
            "the password is shown: {err}"
        );
    }
    let relations = liandong_testkit::catalog::relations(db.store()).await;
    assert!(relations.is_empty(), "keys made {relations:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn careless_requests_get_errors_in_the_documented_shape() {
    let setup = Setup::new(None);
    let running = setup.start().await;
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();

    // A GET where POST is meant: 405, a JSON error naming the method to use, and `Allow`.
    let res = http
        .get(format!("{base}/v1/events"))
        .bearer_auth(configured(Role::Ingest))
        .send()
        .await
        .expect("an answer");
    assert_eq!(res.status(), 405);
    assert_eq!(
        res.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    let body: Value = res.json().await.expect("a JSON body");
    assert_eq!(
        body,
        json!({"error": "method GET is not allowed on /v1/events: use POST"})
    );

    // A misspelt parameter: 400 with the parameter named, in the API's own words.
    let res = http
        .get(format!("{base}/v1/metrics/menu-entries?form=2026-11-01"))
        .bearer_auth(configured(Role::Analyst))
        .send()
        .await
        .expect("an answer");
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.expect("a JSON body");
    assert_eq!(body["parameter"], json!("form"), "{body}");
    assert_eq!(
        body["error"],
        json!("form: unknown parameter; expected one of from, to, entry, variant"),
        "{body}"
    );

    // An openid typed without its prefix: the 404 says what member keys look like.
    let res = http
        .get(format!("{base}/v1/members/o_demo"))
        .bearer_auth(configured(Role::Support))
        .send()
        .await
        .expect("an answer");
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.expect("a JSON body");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("no member \"o_demo\"") && error.contains("mp:o_demo"),
        "{body}"
    );
    running.stop().await.expect("liandong stops");
}
