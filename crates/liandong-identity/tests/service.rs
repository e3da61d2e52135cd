//! `IdentityService` against real databases: each scenario runs once on PostgreSQL (a fresh
//! database per test, from `LIANDONG_TEST_DATABASE_URL`) and once on a temporary SQLite file.
//! Without the env var PostgreSQL runs are skipped, unless `CI` is set, where they fail.

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;

use liandong_identity::{Binding, IdentityError, IdentityService, OpenidKind};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{ConnectOptions, Connection, Executor};
use tokio::sync::Barrier;

const PG_URL_VAR: &str = "LIANDONG_TEST_DATABASE_URL";

/// One database shared by every service a scenario creates.
#[derive(Clone)]
enum Db {
    Postgres(Box<PgConnectOptions>),
    Sqlite(String),
}

impl Db {
    /// A new service over a new pool: a fresh process as far as caching is concerned.
    async fn service(&self) -> IdentityService {
        match self {
            Db::Postgres(opts) => {
                let pool = PgPoolOptions::new()
                    .max_connections(4)
                    .connect_with((**opts).clone())
                    .await
                    .expect("connect to test database");
                IdentityService::postgres(pool)
                    .await
                    .expect("postgres service")
            }
            Db::Sqlite(url) => {
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect(url)
                    .await
                    .expect("open sqlite file");
                IdentityService::sqlite(pool).await.expect("sqlite service")
            }
        }
    }

    async fn exec(&self, sql: &str) {
        match self {
            Db::Postgres(opts) => {
                let mut conn = opts.connect().await.expect("connect");
                conn.execute(sql).await.expect(sql);
                conn.close().await.expect("close");
            }
            Db::Sqlite(url) => {
                let mut conn = sqlx::SqliteConnection::connect(url).await.expect("open");
                conn.execute(sql).await.expect(sql);
                conn.close().await.expect("close");
            }
        }
    }
}

async fn run_postgres<F, Fut>(scenario: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Ok(url) = std::env::var(PG_URL_VAR) else {
        if std::env::var_os("CI").is_some() {
            panic!("PostgreSQL is required in CI: set {PG_URL_VAR} (e.g. postgres://postgres:postgres@127.0.0.1:5432/postgres)");
        }
        eprintln!("skipping PostgreSQL test: {PG_URL_VAR} is not set");
        return;
    };
    let admin_opts = PgConnectOptions::from_str(&url).expect("valid postgres url");
    let name = format!("liandong_identity_{}", uuid::Uuid::new_v4().simple());
    let mut admin = admin_opts.connect().await.expect("connect to postgres");
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create test database");

    // Run on its own task so a failing assertion still reaches the DROP below.
    let outcome = tokio::spawn(scenario(Db::Postgres(Box::new(admin_opts.database(&name))))).await;

    // FORCE: the scenario's pools may still hold connections.
    let dropped = admin
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic.into_panic());
    }
    dropped.expect("drop test database");
}

async fn run_sqlite<F, Fut>(scenario: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("identity.db");
    scenario(Db::Sqlite(format!("sqlite://{}?mode=rwc", path.display()))).await;
}

/// Runs a scenario as `<name>::postgres` and `<name>::sqlite`.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::run_postgres(super::$name).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::run_sqlite(super::$name).await;
            }
        }
    )*};
}

on_both!(
    bind_rebind_and_conflict,
    cold_cache_sees_old_binding,
    conflict_found_before_binding_binds_nothing,
    cached_binding_needs_no_io,
    concurrent_binds_exactly_one_wins,
    forget_deletes_the_bindings_and_lets_them_start_over,
    erased_identifiers_are_never_bound_again,
    a_batch_binds_in_batch_order,
    concurrent_batches_agree_on_every_openid,
    a_binding_committed_elsewhere_meanwhile_wins,
    binds_cancelled_anywhere_leave_no_transaction_open,
);

fn expect_conflict(
    result: Result<(), IdentityError>,
    kind: OpenidKind,
    openid: &str,
    bound_to: &str,
    attempted: &str,
) {
    match result {
        Err(IdentityError::Conflict {
            kind: k,
            openid: o,
            bound_to: b,
            attempted: a,
        }) => {
            assert_eq!(
                (k, o.as_str(), b.as_str(), a.as_str()),
                (kind, openid, bound_to, attempted)
            );
        }
        other => panic!("expected conflict on {kind} {openid}, got {other:?}"),
    }
}

async fn bind_rebind_and_conflict(db: Db) {
    // The read model owns a table called `events`; the identity store must not touch it.
    db.exec("CREATE TABLE events (id integer PRIMARY KEY)")
        .await;
    let svc = db.service().await;

    svc.bind("u1", &[(OpenidKind::Oa, "oa-1"), (OpenidKind::Mp, "mp-1")])
        .await
        .expect("first bind");
    assert_eq!(svc.cached(OpenidKind::Oa, "oa-1").as_deref(), Some("u1"));
    assert_eq!(svc.cached(OpenidKind::Mp, "mp-1").as_deref(), Some("u1"));
    // OA and MP openids are separate namespaces.
    assert_eq!(svc.cached(OpenidKind::Mp, "oa-1"), None);

    svc.bind("u1", &[(OpenidKind::Oa, "oa-1")])
        .await
        .expect("rebinding the same unionid is ok");
    svc.bind("u1", &[]).await.expect("nothing to bind");

    let err = svc
        .bind("u2", &[(OpenidKind::Mp, "mp-1")])
        .await
        .expect_err("bound to u1 already");
    assert_eq!(
        err.to_string(),
        "identity conflict: mp openid mp-1 is bound to unionid u1, not u2"
    );
    expect_conflict(Err(err), OpenidKind::Mp, "mp-1", "u1", "u2");
    assert_eq!(svc.cached(OpenidKind::Mp, "mp-1").as_deref(), Some("u1"));

    // Migration is idempotent: a second service on the same database starts fine.
    db.service().await;
}

async fn cold_cache_sees_old_binding(db: Db) {
    let first = db.service().await;
    first
        .bind("u1", &[(OpenidKind::Oa, "oa-1")])
        .await
        .expect("bind");

    let fresh = db.service().await;
    assert_eq!(fresh.cached(OpenidKind::Oa, "oa-1"), None);
    expect_conflict(
        fresh.bind("u2", &[(OpenidKind::Oa, "oa-1")]).await,
        OpenidKind::Oa,
        "oa-1",
        "u1",
        "u2",
    );
    // The conflict taught the cache the real binding.
    assert_eq!(fresh.cached(OpenidKind::Oa, "oa-1").as_deref(), Some("u1"));

    let another = db.service().await;
    another
        .bind("u1", &[(OpenidKind::Oa, "oa-1")])
        .await
        .expect("same unionid from a cold cache");
    assert_eq!(
        another.cached(OpenidKind::Oa, "oa-1").as_deref(),
        Some("u1")
    );
}

async fn conflict_found_before_binding_binds_nothing(db: Db) {
    let svc = db.service().await;
    svc.bind("u1", &[(OpenidKind::Mp, "mp-1")])
        .await
        .expect("bind");

    // Conflict known from the cache.
    expect_conflict(
        svc.bind("u2", &[(OpenidKind::Oa, "oa-a"), (OpenidKind::Mp, "mp-1")])
            .await,
        OpenidKind::Mp,
        "mp-1",
        "u1",
        "u2",
    );
    // Conflict found in the store by a cold service.
    let cold = db.service().await;
    expect_conflict(
        cold.bind("u2", &[(OpenidKind::Oa, "oa-b"), (OpenidKind::Mp, "mp-1")])
            .await,
        OpenidKind::Mp,
        "mp-1",
        "u1",
        "u2",
    );

    // Neither rejected call bound its other openid.
    let check = db.service().await;
    check
        .bind("u3", &[(OpenidKind::Oa, "oa-a"), (OpenidKind::Oa, "oa-b")])
        .await
        .expect("oa-a and oa-b are still unbound");
}

async fn cached_binding_needs_no_io(db: Db) {
    let svc = db.service().await;
    svc.bind("u1", &[(OpenidKind::Oa, "oa-1")])
        .await
        .expect("bind");

    // Take the store away: cached bindings still answer, anything else is retryable.
    db.exec("ALTER TABLE identity_events RENAME TO gone").await;
    svc.bind("u1", &[(OpenidKind::Oa, "oa-1")])
        .await
        .expect("cached binding answered without the store");
    expect_conflict(
        svc.bind("u2", &[(OpenidKind::Oa, "oa-1")]).await,
        OpenidKind::Oa,
        "oa-1",
        "u1",
        "u2",
    );
    let err = svc
        .bind("u1", &[(OpenidKind::Mp, "mp-new")])
        .await
        .expect_err("uncached openid needs the store");
    assert!(
        matches!(err, IdentityError::Unavailable(_)) && err.is_retryable(),
        "{err:?}"
    );
}

async fn concurrent_binds_exactly_one_wins(db: Db) {
    let left = db.service().await;
    let right = db.service().await;
    for round in 0..8 {
        let openid = format!("racy-{round}");
        let barrier = Arc::new(Barrier::new(2));
        let race = |svc: IdentityService, unionid: &'static str| {
            let (barrier, openid) = (barrier.clone(), openid.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                svc.bind(unionid, &[(OpenidKind::Mp, &openid)]).await
            })
        };
        let a = race(left.clone(), "ua");
        let b = race(right.clone(), "ub");
        let (a, b) = (a.await.expect("task a"), b.await.expect("task b"));

        let winner = match (&a, &b) {
            (Ok(()), Err(_)) => "ua",
            (Err(_), Ok(())) => "ub",
            other => panic!("round {round}: expected exactly one winner, got {other:?}"),
        };
        let (loser_result, loser) = if winner == "ua" { (b, "ub") } else { (a, "ua") };
        expect_conflict(loser_result, OpenidKind::Mp, &openid, winner, loser);

        let fresh = db.service().await;
        fresh
            .bind(winner, &[(OpenidKind::Mp, &openid)])
            .await
            .expect("the winner's binding is the stored one");
        assert_eq!(
            left.cached(OpenidKind::Mp, &openid).as_deref(),
            Some(winner)
        );
        assert_eq!(
            right.cached(OpenidKind::Mp, &openid).as_deref(),
            Some(winner)
        );
    }
}

async fn forget_deletes_the_bindings_and_lets_them_start_over(db: Db) {
    let svc = db.service().await;
    svc.bind("u1", &[(OpenidKind::Oa, "oa-1"), (OpenidKind::Mp, "mp-1")])
        .await
        .expect("bind u1");
    svc.bind("u2", &[(OpenidKind::Oa, "oa-2")])
        .await
        .expect("bind u2");

    let forgotten = svc
        .forget(&[
            (OpenidKind::Oa, "oa-1"),
            (OpenidKind::Mp, "mp-1"),
            (OpenidKind::Mp, "never-bound"),
        ])
        .await
        .expect("forget");
    assert_eq!(forgotten, 2, "two of the three openids were bound");
    assert_eq!(
        svc.cached(OpenidKind::Oa, "oa-1"),
        None,
        "the cache forgot it"
    );

    // Not in the store either: a fresh process binds the openid anew, to another unionid.
    let fresh = db.service().await;
    fresh
        .bind("u3", &[(OpenidKind::Oa, "oa-1")])
        .await
        .expect("an erased openid binds again");
    svc.bind("u3", &[(OpenidKind::Mp, "mp-1")])
        .await
        .expect("and in the erasing process too");
    // Others are untouched; forgetting again is harmless.
    expect_conflict(
        fresh.bind("u9", &[(OpenidKind::Oa, "oa-2")]).await,
        OpenidKind::Oa,
        "oa-2",
        "u2",
        "u9",
    );
    assert_eq!(
        svc.forget(&[(OpenidKind::Mp, "never-bound")])
            .await
            .unwrap(),
        0
    );
}

async fn erased_identifiers_are_never_bound_again(db: Db) {
    use liandong_vault::{MasterKey, Purpose, Vault};
    let vault = Arc::new(Vault::new(MasterKey::generate()));
    // The registry as the read store holds it: keyed hashes of `<unionid>` and `oa:`/`mp:<openid>`.
    db.exec("CREATE TABLE liandong_erasures (id_hash TEXT PRIMARY KEY, erased_at TEXT NOT NULL)")
        .await;
    for id in ["u-erased", "oa:oa-erased"] {
        let h = vault.keyed_hash(Purpose::Erasure, id);
        db.exec(&format!(
            "INSERT INTO liandong_erasures VALUES ('{h}', '2026-01-01T00:00:00Z')"
        ))
        .await;
    }
    let svc = db.service().await.with_erasure_registry(vault.clone());

    svc.bind("u-erased", &[(OpenidKind::Mp, "mp-1")])
        .await
        .expect("accepted, nothing bound");
    svc.bind(
        "u2",
        &[(OpenidKind::Oa, "oa-erased"), (OpenidKind::Mp, "mp-2")],
    )
    .await
    .expect("the erased openid is left out, the other bound");
    assert_eq!(svc.cached(OpenidKind::Mp, "mp-1"), None);
    assert_eq!(svc.cached(OpenidKind::Oa, "oa-erased"), None);
    assert_eq!(svc.cached(OpenidKind::Mp, "mp-2").as_deref(), Some("u2"));

    // Nothing of the erased identifiers reached the store: a service without the registry
    // binds them freely.
    let plain = db.service().await;
    plain
        .bind(
            "u3",
            &[(OpenidKind::Mp, "mp-1"), (OpenidKind::Oa, "oa-erased")],
        )
        .await
        .expect("never bound before");
    expect_conflict(
        plain.bind("u9", &[(OpenidKind::Mp, "mp-2")]).await,
        OpenidKind::Mp,
        "mp-2",
        "u2",
        "u9",
    );
}

fn binding<'a>(unionid: &'a str, openids: &[(OpenidKind, &'a str)]) -> Binding<'a> {
    Binding {
        unionid,
        openids: openids.to_vec(),
    }
}

/// A batch is decided as its events would be one by one, in order: the first binding of an
/// openid wins, a later one elsewhere is a conflict that binds nothing of its event.
async fn a_batch_binds_in_batch_order(db: Db) {
    use OpenidKind::{Mp, Oa};
    let svc = db.service().await;
    svc.bind("u0", &[(Oa, "oa-old")])
        .await
        .expect("bound before");
    let answers = svc
        .bind_all(&[
            binding("u1", &[(Oa, "oa-1"), (Mp, "mp-1")]),
            binding("u2", &[(Oa, "oa-1")]),
            binding("u3", &[(Oa, "oa-2"), (Mp, "mp-1")]),
            binding("u4", &[(Oa, "oa-2")]),
            binding("u1", &[(Mp, "mp-1")]),
            binding("u5", &[(Oa, "oa-old")]),
            binding("u0", &[(Oa, "oa-old"), (Mp, "mp-0")]),
        ])
        .await
        .expect("the store answers");
    assert_eq!(answers.len(), 7);
    let mut answers = answers.into_iter();
    let mut next = || answers.next().expect("an answer per binding");
    next().expect("first binding of oa-1 and mp-1");
    expect_conflict(next(), Oa, "oa-1", "u1", "u2");
    expect_conflict(next(), Mp, "mp-1", "u1", "u3");
    next().expect("oa-2 is still free: the conflicting binding bound nothing");
    next().expect("the same binding again");
    expect_conflict(next(), Oa, "oa-old", "u0", "u5");
    next().expect("a known binding and a new one");

    // A fresh process reads the same bindings from the store.
    let fresh = db.service().await;
    for (openid, kind, unionid) in [
        ("oa-1", Oa, "u1"),
        ("mp-1", Mp, "u1"),
        ("oa-2", Oa, "u4"),
        ("mp-0", Mp, "u0"),
        ("oa-old", Oa, "u0"),
    ] {
        expect_conflict(
            fresh.bind("someone-else", &[(kind, openid)]).await,
            kind,
            openid,
            unionid,
            "someone-else",
        );
    }
    // Every binding answered from the cache: no store needed.
    svc.bind_all(&[
        binding("u1", &[(Oa, "oa-1"), (Mp, "mp-1")]),
        binding("u4", &[(Oa, "oa-2")]),
    ])
    .await
    .expect("cached")
    .into_iter()
    .for_each(|a| a.expect("cached binding"));
}

/// Two processes binding overlapping openids in opposite orders: each openid ends bound to
/// exactly one unionid, and both processes and the store agree on which.
async fn concurrent_batches_agree_on_every_openid(db: Db) {
    let left = db.service().await;
    let right = db.service().await;
    let openids: Vec<String> = (0..200).map(|i| format!("batch-racy-{i}")).collect();
    let barrier = Arc::new(Barrier::new(2));
    let race = |svc: IdentityService, unionid: &'static str, reversed: bool| {
        let (barrier, mut openids) = (barrier.clone(), openids.clone());
        if reversed {
            openids.reverse();
        }
        tokio::spawn(async move {
            barrier.wait().await;
            let bindings: Vec<Binding<'_>> = openids
                .iter()
                .map(|o| binding(unionid, &[(OpenidKind::Mp, o.as_str())]))
                .collect();
            let answers = svc.bind_all(&bindings).await.expect("the store answers");
            let won: Vec<bool> = answers.iter().map(Result::is_ok).collect();
            (openids, won)
        })
    };
    let a = race(left.clone(), "ua", false);
    let b = race(right.clone(), "ub", true);
    let (a, b) = (a.await.expect("task a"), b.await.expect("task b"));
    let fresh = db.service().await;
    for openid in &openids {
        let won_a = a.1[a.0.iter().position(|o| o == openid).expect("in a")];
        let won_b = b.1[b.0.iter().position(|o| o == openid).expect("in b")];
        assert!(
            won_a != won_b,
            "{openid}: exactly one winner, got a={won_a} b={won_b}"
        );
        let winner = if won_a { "ua" } else { "ub" };
        fresh
            .bind(winner, &[(OpenidKind::Mp, openid)])
            .await
            .expect("the winner's binding is the stored one");
        assert_eq!(left.cached(OpenidKind::Mp, openid).as_deref(), Some(winner));
        assert_eq!(
            right.cached(OpenidKind::Mp, openid).as_deref(),
            Some(winner)
        );
    }
}

/// Another process commits a binding of an openid while a batch that read it unbound is
/// writing: the batch does not overwrite it; it reads it again and reports the conflict, and
/// the rest of the batch is bound.
async fn a_binding_committed_elsewhere_meanwhile_wins(db: Db) {
    let svc = db.service().await;
    let insert = "INSERT INTO identity_events
        (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
        VALUES ('openid_binding', 'mp:contested', 1, 'OpenidBound', '1.0',
                '{\"OpenidBound\":{\"unionid\":\"u-elsewhere\"}}', '{}')";
    let bindings = |svc: IdentityService| {
        tokio::spawn(async move {
            svc.bind_all(&[
                binding("u-batch", &[(OpenidKind::Oa, "free")]),
                binding("u-batch", &[(OpenidKind::Mp, "contested")]),
            ])
            .await
        })
    };
    let answers = match &db {
        Db::Postgres(opts) => {
            let mut other = opts.connect().await.expect("connect");
            other.execute("BEGIN").await.expect("begin");
            other.execute(insert).await.expect("insert");
            let batch = bindings(svc.clone());
            // The batch reads `contested` unbound, then waits on the uncommitted row.
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            other.execute("COMMIT").await.expect("commit");
            batch.await.expect("task")
        }
        Db::Sqlite(url) => {
            let mut other = sqlx::SqliteConnection::connect(url).await.expect("open");
            other.execute("BEGIN IMMEDIATE").await.expect("begin");
            other.execute(insert).await.expect("insert");
            let batch = bindings(svc.clone());
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            other.execute("COMMIT").await.expect("commit");
            batch.await.expect("task")
        }
    }
    .expect("the store answers");
    let mut answers = answers.into_iter();
    answers.next().expect("answer").expect("free is bound");
    expect_conflict(
        answers.next().expect("answer"),
        OpenidKind::Mp,
        "contested",
        "u-elsewhere",
        "u-batch",
    );
    assert_eq!(
        svc.cached(OpenidKind::Mp, "contested").as_deref(),
        Some("u-elsewhere")
    );
    let fresh = db.service().await;
    expect_conflict(
        fresh
            .bind("u-batch", &[(OpenidKind::Mp, "contested")])
            .await,
        OpenidKind::Mp,
        "contested",
        "u-elsewhere",
        "u-batch",
    );
    fresh
        .bind("u-batch", &[(OpenidKind::Oa, "free")])
        .await
        .expect("the batch's own binding is stored");
}

/// A bind's future dropped wherever it awaits (a client that hung up, a request timeout) leaves
/// no transaction open: the next binds go through. On SQLite a transaction left open on a
/// pooled connection would hold the write lock for good and every later bind would fail: with
/// `BEGIN IMMEDIATE` (sqlx checks a custom `BEGIN` after running it) the binds after these
/// cancellations failed with "database is locked".
async fn binds_cancelled_anywhere_leave_no_transaction_open(db: Db) {
    let svc = Arc::new(db.service().await);
    let mut cancelled = 0;
    for i in 0..2000u64 {
        let svc = svc.clone();
        let task = tokio::spawn(async move {
            let (unionid, openid) = (format!("u{i}"), format!("oa-{i}"));
            svc.bind(&unionid, &[(OpenidKind::Oa, openid.as_str())])
                .await
        });
        // Spread the cancellations over the bind's awaits: 0 to 1 ms.
        tokio::time::sleep(std::time::Duration::from_micros((i * 7919) % 1_000)).await;
        task.abort();
        if matches!(task.await, Err(e) if e.is_cancelled()) {
            cancelled += 1;
        }
    }
    assert!(cancelled >= 10, "only {cancelled} binds were cancelled");
    // Every connection of the pool serves a bind again, within the busy timeout.
    for i in 0..8 {
        let fresh = db.service().await;
        tokio::time::timeout(
            std::time::Duration::from_secs(30),
            fresh.bind(
                &format!("after-{i}"),
                &[(OpenidKind::Mp, &format!("mp-after-{i}"))],
            ),
        )
        .await
        .expect("a bind after the cancellations answers")
        .expect("and binds");
        svc.bind(
            &format!("again-{i}"),
            &[(OpenidKind::Mp, &format!("mp-again-{i}"))],
        )
        .await
        .expect("the cancelled binds' service binds again");
    }
}
