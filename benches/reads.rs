//! Read speed of every dashboard endpoint on PostgreSQL with a production-sized read store:
//! BENCH_MEMBERS (1,000,000) members over 90 days. Each endpoint is asked for a 30-day range
//! BENCH_REQUESTS (500) times, one request at a time, through `liandong serve`'s real HTTP
//! stack, and its p50 / p99 / max are printed beside two baselines measured in the same run:
//! `GET /health/live` (the HTTP stack alone) and the endpoint's SQL run directly (the database
//! alone). Writes `target/bench/reads.json`.
//!
//! The read store is seeded in SQL, not through the projector (a billion-event backfill does
//! not fit a benchmark run): per-member facts are generated for every member, and the metric
//! relations are then recounted from those facts with the same GROUP BY statements the
//! projector runs, so the relations are what a projector would have written.
//!
//! Needs LIANDONG_TEST_DATABASE_URL; without it the run says so and exits 0.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{Duration as Days, NaiveDate, Utc};
use liandong::{Config, Role};
use liandong_store::ReadStore;
use liandong_testkit::{TestStore, PG_URL_VAR};
use serde_json::json;

const ANALYST: &str = "bench-analyst-key-0123456789";
const SUPPORT: &str = "bench-support-key-0123456789";
const DECIDE: &str = "bench-decide-key-0123456789";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Line {
    what: String,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn line(what: &str, mut samples: Vec<Duration>) -> Line {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Line {
        what: what.into(),
        p50_ms: ms(percentile(&samples, 0.5)),
        p99_ms: ms(percentile(&samples, 0.99)),
        max_ms: ms(*samples.last().unwrap_or(&Duration::ZERO)),
    }
}

/// Generates facts for `members` members over the 90 days from `start`, and recounts every
/// metric relation from them.
async fn seed(pool: &sqlx::PgPool, members: usize, start: NaiveDate) -> anyhow::Result<()> {
    let n = members as i64;
    let s = start.to_string();
    let statements = [
        // Up to 6 active days per member, spread over the 90 days by a multiplicative hash.
        format!("INSERT INTO fact_member_day SELECT 'u' || m, DATE '{s}' + ((m * 7919 + j * 104729) % 90)::int,
            true, (m + j) % 3 = 0, (m * j) % 17 = 0, (m + j) % 5 = 0, (m + j) % 6 = 0, (m + j) % 9 = 0
            FROM generate_series(1::bigint, {n}) m, generate_series(1, 6) j ON CONFLICT DO NOTHING"),
        format!("INSERT INTO fact_conversion SELECT 'u' || m, TIMESTAMPTZ '{s} 02:00:00+00' + ((m * 7919) % 90) * INTERVAL '1 day',
            DATE '{s}' + ((m * 7919) % 90)::int, m % 4 = 0 FROM generate_series(1::bigint, {n}) m WHERE m % 5 = 0"),
        format!("INSERT INTO fact_follower SELECT 'u' || m, TIMESTAMPTZ '{s} 03:00:00+00' + ((m * 104729) % 90) * INTERVAL '1 day',
            DATE '{s}' + ((m * 104729) % 90)::int, m % 3 <> 0 FROM generate_series(1::bigint, {n}) m WHERE m % 10 = 0"),
        format!("INSERT INTO fact_member_week SELECT 'u' || m, DATE '{s}' - EXTRACT(ISODOW FROM DATE '{s}')::int + 1 + 7 * ((m % 13)::int), o
            FROM generate_series(1::bigint, {n}) m, generate_series(0, 12) o WHERE o <= 12 - (m % 13) AND (o = 0 OR (m + o) % 3 = 0)"),
        format!("INSERT INTO fact_experiment SELECT 'u' || m, 'menu', 'entry_name', CASE WHEN m % 50 = 0 THEN NULL WHEN m % 2 = 0 THEN 'control' ELSE 'b' END,
            TIMESTAMPTZ '{s} 04:00:00+00', m % 7 = 0 OR (m % 2 = 1 AND m % 11 = 0) FROM generate_series(1::bigint, {n}) m WHERE m % 3 = 0"),
        format!("INSERT INTO member_profile SELECT 'u' || m, 'u' || m, 'oa' || m, 'mp' || m, TIMESTAMPTZ '{s} 00:00:00+00', now(),
            'menu', m % 2 = 0, NULL, NULL, m % 4, (m % 4) * 1990, NULL, NULL, m % 3, m % 5, m % 11 <> 0,
            CASE WHEN m % 7 = 0 THEN now() - (m % 48) * INTERVAL '1 hour' END FROM generate_series(1::bigint, {n}) m"),
        // Interests: two content categories per member.
        format!("INSERT INTO member_interest SELECT 'u' || m, (ARRAY['烘焙','玩具','咖啡','母婴','运动'])[(m + j) % 5 + 1], (m * (j + 1)) % 9, (m + j) % 7,
            TIMESTAMPTZ '{s} 05:00:00+00' + ((m * 7919 + j) % 90) * INTERVAL '1 day' FROM generate_series(1::bigint, {n}) m, generate_series(0, 2, 2) j"),
        format!("INSERT INTO metric_menu_entry_daily SELECT DATE '{s}' + d, e, v, 5000 + (d * 37 + length(e)) % 900, 400 + (d * 13) % 300
            FROM generate_series(0, 89) d, unnest(ARRAY['立即点餐','进入小程序点餐','我的订单','领优惠券','会员中心','门店地址']) e, unnest(ARRAY['','control','b']) v"),
        format!("INSERT INTO metric_article_daily SELECT DATE '{s}' + d, 'a' || a, 100 + (d * a) % 500, 10 + (d + a) % 60
            FROM generate_series(0, 89) d, generate_series(1, 300) a"),
        // Messages: 20 templates on each channel, every day.
        format!("INSERT INTO metric_message_daily SELECT DATE '{s}' + d, c, c || '_t' || t,
            3000 + (d * 31 + t) % 700, 2900 + (d * 31 + t) % 600, 300 + (d * 7 + t) % 200, 200 + (d + t) % 100, 40 + (d + t) % 30
            FROM generate_series(0, 89) d, unnest(ARRAY['oa_template','mp_notify']) c, generate_series(1, 20) t"),
        // Campaigns: 200 of them, with group-buy groups of three members (one group per 10 members).
        format!("INSERT INTO activity_counts SELECT 'act' || a, 5000, 2000, 3000, 1500, 900, 2500, 2200, 2500 * 3990
            FROM generate_series(1, 200) a"),
        format!("INSERT INTO activity_group_counts SELECT 'act' || (g % 200 + 1), 'g' || g, 3, (g % 3 = 0)::int
            FROM generate_series(1::bigint, {n} / 10) g"),
        // Each campaign's groups started and completed, as the projector keeps them.
        "UPDATE activity_counts a SET groups_started = g.started, groups_completed = g.completed
            FROM (SELECT activity_id, count(*) FILTER (WHERE started_members > 0) AS started,
                         count(*) FILTER (WHERE started_members > 0 AND completed_members > 0) AS completed
                  FROM activity_group_counts GROUP BY activity_id) g WHERE g.activity_id = a.activity_id".into(),
        // The relations, recounted from the facts exactly as the projector does.
        "INSERT INTO metric_linkage_daily SELECT day, count(*) FILTER (WHERE mp_visit), count(*) FILTER (WHERE oa_guided),
            count(*) FILTER (WHERE prompt_follow), count(*) FILTER (WHERE core_user), count(*) FILTER (WHERE guided_order),
            count(*) FILTER (WHERE guided_converted_7d) FROM fact_member_day GROUP BY day".into(),
        "INSERT INTO retention_repurchase_30d_counts SELECT cohort_day, count(*), count(*) FILTER (WHERE repurchased) FROM fact_conversion GROUP BY cohort_day".into(),
        "INSERT INTO retention_follower_30d_counts SELECT cohort_day, count(*), count(*) FILTER (WHERE retained) FROM fact_follower GROUP BY cohort_day".into(),
        "INSERT INTO retention_weekly_counts SELECT cohort_week, week_offset, count(*) FROM fact_member_week GROUP BY cohort_week, week_offset".into(),
        "ANALYZE".into(),
    ];
    for sql in statements {
        sqlx::query(&sql)
            .execute(pool)
            .await
            .with_context(|| sql.chars().take(80).collect::<String>())?;
    }
    let counts: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT variant, count(*), count(*) FILTER (WHERE clicked) FROM fact_experiment WHERE variant IS NOT NULL GROUP BY variant",
    )
    .fetch_all(pool)
    .await?;
    let variants: Vec<_> = counts
        .into_iter()
        .map(
            |(variant, exposed, clicked)| liandong_projections::ab::VariantCounts {
                variant,
                exposed,
                clicked,
            },
        )
        .collect();
    for r in liandong_projections::ab::readout("menu", "entry_name", &variants) {
        sqlx::query("INSERT INTO ab_readout VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .bind(r.surface)
            .bind(r.experiment)
            .bind(r.variant)
            .bind(r.exposed_users)
            .bind(r.clicked_users)
            .bind(r.ctr)
            .bind(r.lift)
            .bind(r.p_value)
            .bind(r.ci_low)
            .bind(r.ci_high)
            .execute(pool)
            .await?;
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    if std::env::var(PG_URL_VAR).map_or(true, |v| v.is_empty()) {
        println!("reads: skipped, {PG_URL_VAR} is not set (a PostgreSQL admin URL)");
        return Ok(());
    }
    let members = env_usize("BENCH_MEMBERS", 1_000_000);
    let requests = env_usize("BENCH_REQUESTS", 500);
    let db = TestStore::postgres()
        .await
        .context("a fresh PostgreSQL database")?;
    let ReadStore::Postgres(pool) = db.store().clone() else {
        unreachable!("TestStore::postgres is PostgreSQL")
    };
    liandong_projections::migrate(db.store()).await?;
    // Record the projection as current, or `serve`'s projector would rebuild it — emptying the
    // seeded tables — on start.
    liandong_projector::prepare(
        db.store(),
        &liandong_projections::CoreProjection::new(
            chrono_tz::Asia::Shanghai,
            liandong_testkit::test_vault(),
        ),
    )
    .await?;

    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    let start = today - Days::days(89);
    let t = Instant::now();
    seed(&pool, members, start).await?;
    let seeded = t.elapsed();
    let facts: i64 = sqlx::query_scalar("SELECT count(*) FROM fact_member_day")
        .fetch_one(&pool)
        .await?;

    let dir = tempfile::tempdir()?;
    let pairs = [
        ("LIANDONG_LISTEN", "127.0.0.1:0".to_owned()),
        ("LIANDONG_DATA_DIR", dir.path().display().to_string()),
        ("LIANDONG_DATABASE_URL", db.url().to_owned()),
        (
            "LIANDONG_API_KEYS",
            format!("analyst:{ANALYST},support:{SUPPORT},decide:{DECIDE}"),
        ),
    ];
    let cfg = Config::from_lookup(|k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))?;
    let running = liandong::start(Role::Serve, cfg).await?;
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::new();
    let from = today - Days::days(29);
    let range = format!("from={from}&to={today}");
    let weeks_from =
        from - Days::days(from.format("%u").to_string().parse::<i64>().unwrap_or(1) - 1);
    // A member prompted within the last 48 hours (every 7th), halfway through the keys.
    let prompted = members / 2 / 7 * 7;
    let endpoints: Vec<(&str, String, String, &str)> = vec![
        ("menu entries", format!("/v1/metrics/menu-entries?{range}"),
            format!("SELECT * FROM metric_menu_entry_daily WHERE day BETWEEN '{from}' AND '{today}' ORDER BY day, entry, variant"), ANALYST),
        ("articles (per-article totals)", format!("/v1/metrics/articles?{range}"),
            format!("SELECT article_id, sum(reads), sum(clicks) FROM metric_article_daily WHERE day BETWEEN '{from}' AND '{today}' GROUP BY article_id ORDER BY article_id LIMIT 1001"), ANALYST),
        ("articles (daily, 1st page)", format!("/v1/metrics/articles?{range}&granularity=day"),
            format!("SELECT * FROM metric_article_daily WHERE day BETWEEN '{from}' AND '{today}' ORDER BY day, article_id LIMIT 1001"), ANALYST),
        ("linkage", format!("/v1/metrics/linkage?{range}"),
            format!("SELECT * FROM metric_linkage_daily WHERE day BETWEEN '{from}' AND '{today}' ORDER BY day"), ANALYST),
        ("repurchase", format!("/v1/metrics/repurchase?{range}"),
            format!("SELECT * FROM retention_repurchase_30d WHERE cohort_day BETWEEN '{from}' AND '{today}' ORDER BY cohort_day"), ANALYST),
        ("follower retention", format!("/v1/metrics/follower-retention?{range}"),
            format!("SELECT * FROM retention_follower_30d WHERE cohort_day BETWEEN '{from}' AND '{today}' ORDER BY cohort_day"), ANALYST),
        ("weekly retention", format!("/v1/metrics/weekly-retention?from={weeks_from}&to={today}"),
            format!("SELECT * FROM retention_weekly WHERE cohort_week BETWEEN '{weeks_from}' AND '{today}' ORDER BY 1, 2"), ANALYST),
        ("a/b readout", "/v1/metrics/ab?experiment=entry_name".into(),
            "SELECT * FROM ab_readout WHERE experiment = 'entry_name' ORDER BY variant".into(), ANALYST),
        ("messages", format!("/v1/metrics/messages?{range}"),
            format!("SELECT * FROM metric_message_daily WHERE day BETWEEN '{from}' AND '{today}' ORDER BY day, channel, template_id"), ANALYST),
        ("messages of one template", format!("/v1/metrics/messages?{range}&template=oa_template_t3"),
            format!("SELECT * FROM metric_message_daily WHERE template_id = 'oa_template_t3' AND day BETWEEN '{from}' AND '{today}' ORDER BY day, channel"), ANALYST),
        ("campaigns", "/v1/metrics/activities".into(),
            "SELECT * FROM metric_activity ORDER BY activity_id".into(), ANALYST),
        ("one campaign", "/v1/metrics/activities?activity=act7".into(),
            "SELECT * FROM metric_activity WHERE activity_id = 'act7'".into(), ANALYST),
        ("member lookup", format!("/v1/members/u{}", members / 2),
            format!("SELECT * FROM member_profile WHERE member_key = 'u{}'", members / 2), SUPPORT),
        // Decisions (the apps' real-time calls): one member's row; goal p99 < 5 ms.
        ("decision: follow prompt", format!("/v1/members/u{prompted}/follow-prompt"),
            format!("SELECT * FROM member_profile WHERE member_key = 'u{prompted}'"), DECIDE),
        ("decision: channel", format!("/v1/members/u{prompted}/channel?purpose=activity&urgent=true"),
            format!("SELECT * FROM member_profile WHERE member_key = 'u{prompted}'"), DECIDE),
        ("decision: unknown member", "/v1/members/mp:nobody/follow-prompt".into(),
            "SELECT * FROM member_profile WHERE member_key = 'mp:nobody'".into(), DECIDE),
        ("interests", format!("/v1/members/u{prompted}/interests"),
            format!("SELECT * FROM member_interest WHERE member_key = 'u{prompted}' ORDER BY article_reads + page_views DESC, category"), DECIDE),
        // A segment count reads every member's row (named, not a real-time call).
        ("segment count (interest, following)", format!("/v1/segments/count?interest={}&following=true", "%E7%83%98%E7%84%99"),
            "SELECT count(*) FROM member_profile p WHERE EXISTS (SELECT 1 FROM member_interest i WHERE i.member_key = p.member_key AND i.category = '烘焙') AND p.following".into(), ANALYST),
    ];

    let mut lines = Vec::new();
    let timed_http = |path: String, key: &'static str, requests: usize| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move {
            let mut samples = Vec::with_capacity(requests);
            for i in 0..requests + 20 {
                let t = Instant::now();
                let r = client.get(&url).bearer_auth(key).send().await?;
                anyhow::ensure!(r.status().is_success(), "{url}: {}", r.status());
                let _ = r.bytes().await?;
                if i >= 20 {
                    samples.push(t.elapsed());
                }
            }
            anyhow::Ok(samples)
        }
    };
    lines.push(line(
        "baseline: GET /health/live",
        timed_http("/health/live".into(), ANALYST, requests).await?,
    ));
    for (name, path, sql, key) in &endpoints {
        // A segment count scans the members: fewer samples keep the run short.
        let requests = if name.starts_with("segment") {
            requests.min(40)
        } else {
            requests
        };
        lines.push(line(
            &format!("GET {name}"),
            timed_http(path.clone(), key, requests).await?,
        ));
        let mut samples = Vec::with_capacity(requests);
        for i in 0..requests + 20 {
            let t = Instant::now();
            let _ = sqlx::query(sql).fetch_all(&pool).await?;
            if i >= 20 {
                samples.push(t.elapsed());
            }
        }
        lines.push(line(&format!("  baseline: its SQL alone"), samples));
    }
    // The answers held data, not empty tables.
    let linkage: serde_json::Value = client
        .get(format!(
            "{base}{}",
            endpoints
                .iter()
                .find(|e| e.0 == "linkage")
                .map(|e| e.1.as_str())
                .unwrap_or_default()
        ))
        .bearer_auth(ANALYST)
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(
        linkage.to_string().contains("mp_users"),
        "the linkage answer has no rows: {linkage}"
    );
    running.stop().await?;

    println!("\nreads: {members} members, 90 days ({facts} member-day facts, seeded in {:.1} s), {requests} requests each, 30-day range", seeded.as_secs_f64());
    println!("{:<34} {:>9} {:>9} {:>9}", "", "p50 ms", "p99 ms", "max ms");
    for l in &lines {
        println!(
            "{:<34} {:>9.2} {:>9.2} {:>9.2}",
            l.what, l.p50_ms, l.p99_ms, l.max_ms
        );
    }
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join("reads.json"),
        serde_json::to_vec_pretty(
            &json!({"members": members, "requests": requests, "lines": lines.iter().map(|l| json!({"what": l.what, "p50_ms": l.p50_ms, "p99_ms": l.p99_ms, "max_ms": l.max_ms})).collect::<Vec<_>>()}),
        )?,
    )?;
    Ok(())
}
