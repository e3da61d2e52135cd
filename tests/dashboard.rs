//! The dashboard in a real browser: liandong `serve` on the embedded defaults, seeded through
//! its HTTP ingestion with a month of the simulator's traffic, and Debian's headless Chromium driven
//! through chromedriver (WebDriver). It signs in as each role and checks what the page shows
//! against the query API: every KPI value equals `/v1/metrics/summary` for the page's range,
//! numbers move without a reload when events arrive, the English switch changes the labels,
//! a support key sees the member lookup (without identifiers, codes in words) and no metric,
//! an ingest key is refused. Switching the language twice keeps the eight KPI sparklines; in
//! English a Latin font draws the text and the trend legends show every series; the weekly
//! heat map marks the weeks still in progress; the A/B panel and the traffic tables say what
//! range and unit they show. A table's CSV download holds the API's rows under the page's column
//! titles; the review (`#review`), printed to PDF, shows each of its sections with the API's data
//! and none of the page's controls. It saves `target/dashboard.png` (and `dashboard-en.png`,
//! `dashboard-support.png`, `review.pdf`).
//!
//! Needs `chromedriver` and `chromium`: `LIANDONG_TEST_CHROMEDRIVER` / `LIANDONG_TEST_CHROMIUM`,
//! or Debian's `/usr/bin/chromedriver` and `/usr/bin/chromium`. Without them the test is
//! skipped with a `SKIPPED:` line, except under `CI`, where it fails.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use fantoccini::{Client, ClientBuilder, Locator};
use liandong::{Config, Role};
use liandong_projections::read;
use liandong_sim::{Sender, SimConfig, Simulation};
use liandong_store::ReadStore;
use serde_json::{json, Value};

const INGEST: &str = "dash-ingest-key-0123456789";
const ANALYST: &str = "dash-analyst-key-0123456789";
const SUPPORT: &str = "dash-support-key-0123456789";
const ADMIN: &str = "dash-admin-key-0123456789";

const KPIS: [&str; 8] = [
    "menu_click_rate",
    "article_click_rate",
    "follow_conversion",
    "core_usage",
    "cross_platform_rate",
    "linkage_conversion",
    "repurchase_30d",
    "follower_retention_30d",
];

/// The browser's pieces, or `None` (outside CI) when they are not installed.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let find = |var: &str, default: &str| -> Option<PathBuf> {
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => Some(PathBuf::from(v)),
            _ => Some(PathBuf::from(default)).filter(|p| p.exists()),
        }
    };
    let driver = find("LIANDONG_TEST_CHROMEDRIVER", "/usr/bin/chromedriver");
    let chromium = find("LIANDONG_TEST_CHROMIUM", "/usr/bin/chromium");
    match (driver, chromium) {
        (Some(d), Some(c)) => Some((d, c)),
        _ if std::env::var_os("CI").is_some() => panic!(
            "chromedriver and chromium are required in CI: install Debian's chromium and \
             chromium-driver, or set LIANDONG_TEST_CHROMEDRIVER and LIANDONG_TEST_CHROMIUM \
             (scripts/test does)"
        ),
        _ => {
            eprintln!("SKIPPED: the dashboard browser test (no chromedriver/chromium; set LIANDONG_TEST_CHROMEDRIVER)");
            None
        }
    }
}

/// chromedriver on a free port; killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver and the Chromium it started share a process group of their own: kill the
        // group, so a test that failed half-way leaves no browser behind.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

async fn start_driver(path: &Path, log: &Path) -> Driver {
    let port = free_port();
    let log = std::fs::File::create(log).expect("a log file");
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(log.try_clone().expect("a log file"))
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{} runs: {e}", path.display()));
    let mut driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if let Ok(Some(status)) = driver.child.try_wait() {
            panic!("chromedriver exited with {status}");
        }
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    driver
}

/// A headless Chromium session; its downloads land in `downloads`, without asking.
async fn open_browser(
    driver: &Driver,
    chromium: &Path,
    profile: &Path,
    downloads: &Path,
) -> Client {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1440,3000",
        "--lang=zh-CN",
        &format!("--user-data-dir={}", profile.display()),
    ];
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": chromium, "args": args, "prefs": {
            "download.default_directory": downloads,
            "download.prompt_for_download": false,
        }},
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!("an object")
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session with headless Chromium")
}

/// Runs `script` (a function body) in the page until it returns something other than null /
/// false, and returns that; panics with `what` after `secs` seconds.
async fn wait_for(c: &Client, script: &str, secs: u64, what: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = c.execute(script, vec![]).await.expect("the script runs");
        if !v.is_null() && v != Value::Bool(false) {
            return v;
        }
        if Instant::now() > deadline {
            let text = c
                .execute("return document.body.innerText", vec![])
                .await
                .unwrap_or_default();
            panic!("timed out waiting for {what}; the page shows:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Lets the charts' animations end before a screenshot.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1200)).await;
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.expect("the script runs")
}

async fn sign_in(c: &Client, key: &str) {
    wait_for(
        c,
        "const e = document.getElementById('signin'); return !!e && !e.hidden",
        20,
        "the sign-in form",
    )
    .await;
    let input = c
        .find(Locator::Css("#signin-key"))
        .await
        .expect("the key input");
    input.clear().await.expect("clear");
    input.send_keys(key).await.expect("type the key");
    c.find(Locator::Css("#signin-submit"))
        .await
        .expect("the button")
        .click()
        .await
        .expect("click");
}

async fn sign_out(c: &Client) {
    c.find(Locator::Css("#signout"))
        .await
        .expect("the sign-out button")
        .click()
        .await
        .expect("click");
}

/// The page's KPI values: name → the raw rate in `data-rate` (`None` for an empty one), once
/// all eight are there.
async fn page_kpis(c: &Client) -> Vec<(String, Option<f64>)> {
    let v = wait_for(
        c,
        "const els = [...document.querySelectorAll('[data-kpi]')];
         if (els.length !== 8 || els.some(e => e.dataset.rate === undefined)) return null;
         return els.map(e => [e.dataset.kpi, e.dataset.rate]);",
        60,
        "the eight KPI cards",
    )
    .await;
    v.as_array()
        .expect("a list")
        .iter()
        .map(|pair| {
            let name = pair[0].as_str().expect("a name").to_owned();
            let raw = pair[1].as_str().expect("a string");
            let rate = (!raw.is_empty()).then(|| {
                raw.parse::<f64>()
                    .unwrap_or_else(|e| panic!("{name}: {raw:?}: {e}"))
            });
            (name, rate)
        })
        .collect()
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn get(&self, path: &str, key: &str) -> Value {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(key)
            .send()
            .await
            .expect("the API answers");
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().await.expect("JSON")
    }

    async fn send(&self, events: &[Value]) {
        for chunk in events.chunks(500) {
            let mut tries = 0;
            loop {
                let res = self
                    .http
                    .post(format!("{}/v1/events", self.base))
                    .bearer_auth(INGEST)
                    .json(&json!({ "events": chunk }))
                    .send()
                    .await
                    .expect("ingestion answers");
                if res.status() == 503 && tries < 20 {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                assert_eq!(res.status(), 200, "ingestion");
                let body: Value = res.json().await.expect("JSON");
                assert_eq!(body["rejected"], json!([]), "every seeded event is valid");
                break;
            }
        }
    }

    /// Waits until the projections have applied everything accepted.
    async fn caught_up(&self) {
        liandong_testkit::server::wait_caught_up(
            &self.http,
            &self.base,
            SUPPORT,
            Duration::from_secs(120),
        )
        .await;
    }

    async fn summary(&self, from: &str, to: &str) -> Vec<(String, Option<f64>)> {
        let s = self
            .get(&format!("/v1/metrics/summary?from={from}&to={to}"), ANALYST)
            .await;
        s["kpis"]
            .as_array()
            .expect("kpis")
            .iter()
            .map(|k| {
                (
                    k["name"].as_str().expect("a name").to_owned(),
                    k["rate"].as_f64(),
                )
            })
            .collect()
    }
}

/// Clicks the CSV button `[data-csv="<name>"]` and returns the downloaded file's records, the
/// header first; checks the byte-order mark that makes Excel read it as UTF-8.
async fn download_csv(c: &Client, downloads: &Path, name: &str, file: &str) -> Vec<Vec<String>> {
    let path = downloads.join(file);
    let _ = std::fs::remove_file(&path);
    c.find(Locator::Css(&format!("[data-csv=\"{name}\"]")))
        .await
        .unwrap_or_else(|e| panic!("the CSV button of {name}: {e}"))
        .click()
        .await
        .expect("click");
    let deadline = Instant::now() + Duration::from_secs(20);
    let bytes = loop {
        // Chromium writes `<file>.crdownload` and renames it when done.
        if let Ok(bytes) = std::fs::read(&path) {
            break bytes;
        }
        assert!(
            Instant::now() < deadline,
            "{file} was not downloaded into {}: {:?}",
            downloads.display(),
            std::fs::read_dir(downloads)
                .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let text = bytes
        .strip_prefix("\u{feff}".as_bytes())
        .unwrap_or_else(|| panic!("{file} starts with a UTF-8 byte-order mark"));
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text)
        .records()
        .map(|r| r.expect("a CSV record").iter().map(str::to_owned).collect())
        .collect()
}

/// The cells of a JSON value as the CSV writes them: text as it is, numbers as JavaScript
/// prints them, null as nothing.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// Menu traffic happening now, on an entry of its own: moves the menu-entry click rate.
fn live_menu_traffic() -> Vec<Value> {
    let now = Utc::now().to_rfc3339();
    (0..60)
        .map(|i| {
            let ty = if i < 40 { "oa.menu.exposure" } else { "oa.menu.click" };
            json!({"event_id": uuid::Uuid::new_v4().to_string(), "type": ty, "occurred_at": now,
                   "user": {"oa_openid": format!("live_{}", i % 40)}, "props": {"entry": "领优惠券"}})
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_apis_numbers_to_the_right_roles() {
    let Some((driver_path, chromium)) = browser() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary folder");
    let data_dir = dir.path().join("data");
    let keys = format!("ingest:{INGEST},analyst:{ANALYST},support:{SUPPORT},admin:{ADMIN}");
    let lookup = |name: &str| -> Option<String> {
        match name {
            "LIANDONG_DATA_DIR" => Some(data_dir.display().to_string()),
            "LIANDONG_LISTEN" => Some("127.0.0.1:0".into()),
            "LIANDONG_API_KEYS" => Some(keys.clone()),
            _ => None,
        }
    };
    let cfg = Config::from_lookup(lookup).expect("a valid configuration");
    let db_url = cfg.database_url.clone();
    let running = liandong::start(Role::Serve, cfg)
        .await
        .expect("liandong serve starts");
    let api = Api {
        base: format!("http://{}", running.addr),
        http: reqwest::Client::new(),
    };

    // Two months of the simulated audience, ending now: the default range (the last 30 days)
    // and the period before it, which the cards compare with.
    let mut sim = Simulation::new(
        SimConfig {
            users: 800,
            days: 60,
            seed: 4,
            ..SimConfig::default()
        },
        Utc::now(),
    );
    let history = sim.history();
    let sender = Sender::new(&api.base, INGEST).status_key(SUPPORT);
    let report = sender.send(&history).await.expect("the history is sent");
    assert!(report.rejected.is_empty(), "{:?}", report.rejected.first());
    assert_eq!(report.accepted, history.len());
    api.caught_up().await;

    let driver = start_driver(&driver_path, &dir.path().join("chromedriver.log")).await;
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).expect("the downloads folder");
    let c = open_browser(&driver, &chromium, &dir.path().join("profile"), &downloads).await;
    c.goto(&format!("{}/", api.base))
        .await
        .expect("open the page");

    // The sign-in form says where this server's keys are: configured here, so no file.
    wait_for(
        &c,
        "return document.getElementById('signin-hint').textContent",
        20,
        "the sign-in hint",
    )
    .await;
    let hint = js(
        &c,
        "return document.getElementById('signin-hint').textContent",
    )
    .await;
    assert!(
        hint.as_str()
            .is_some_and(|h| h.contains("LIANDONG_API_KEYS") && !h.contains("liandong-data")),
        "the sign-in hint of a server with configured keys: {hint}"
    );

    // --- analyst: the KPI cards hold exactly the API's numbers ---------------------------------
    sign_in(&c, ANALYST).await;
    let shown = page_kpis(&c).await;
    let range = js(
        &c,
        "return [document.getElementById('range-from').value, document.getElementById('range-to').value]",
    )
    .await;
    let (from, to) = (
        range[0].as_str().expect("from").to_owned(),
        range[1].as_str().expect("to").to_owned(),
    );
    let summary = api.summary(&from, &to).await;
    assert_eq!(
        shown.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        KPIS,
        "one card per KPI, in order"
    );
    assert_eq!(shown, summary, "the page's KPI values for {from}..{to}");
    assert!(
        summary.iter().filter(|(_, r)| r.is_some()).count() >= 6,
        "the seeded month gives most KPIs a value: {summary:?}"
    );
    // The default range is the server's last 30 days.
    let default = api.get("/v1/metrics/summary", ANALYST).await;
    assert_eq!(
        (
            default["range"]["from"].as_str(),
            default["range"]["to"].as_str()
        ),
        (Some(from.as_str()), Some(to.as_str()))
    );
    // Every part of the page rendered: charts, tables, the heat map, the A/B verdict.
    wait_for(
        &c,
        "return ['chart-clicks','chart-linkage','chart-users','chart-weekly','chart-repurchase','chart-follower']
           .every(id => document.querySelector('#' + id + ' canvas'))
         && document.querySelectorAll('#kpis .spark canvas').length === 8
         && document.querySelectorAll('#table-menu tbody tr').length > 0
         && document.querySelectorAll('#table-articles tbody tr').length > 0
         && document.querySelectorAll('[data-ab-verdict]').length > 0",
        30,
        "charts, tables and the A/B verdict",
    )
    .await;
    // The message funnel, the campaign board and A/B tests grouped by surface, with data.
    wait_for(
        &c,
        "return document.querySelector('#chart-messages canvas')
         && document.querySelectorAll('#table-messages tbody tr').length > 0
         && document.querySelectorAll('#table-activities tbody tr').length > 0
         && !!document.querySelector('[data-ab-surface=\"template\"] [data-ab-verdict]')",
        30,
        "the message funnel, the campaign board and the template A/B test",
    )
    .await;
    let messages = api
        .get(
            &format!("/v1/metrics/messages?from={from}&to={to}"),
            ANALYST,
        )
        .await;
    let shown_messages = js(
        &c,
        "return [...document.querySelectorAll('#table-messages tbody tr')].map(tr =>
           [tr.querySelector('[data-message]').dataset.message, tr.children[2].textContent, tr.children[6].textContent])",
    )
    .await;
    let totals = messages["totals"].as_array().expect("totals");
    assert!(
        totals.iter().any(|m| m["channel"] == "oa_template")
            && totals.iter().any(|m| m["channel"] == "mp_notify")
            && totals.iter().any(|m| m["clicked_users"].as_i64() > Some(0)),
        "the simulated audience receives both kinds of message: {messages}"
    );
    for row in shown_messages.as_array().expect("rows") {
        let key = row[0].as_str().expect("a key");
        let api_row = totals
            .iter()
            .find(|m| {
                format!(
                    "{}/{}",
                    m["channel"].as_str().unwrap(),
                    m["template_id"].as_str().unwrap()
                ) == key
            })
            .unwrap_or_else(|| panic!("{key} is not in the API's answer"));
        let n = |v: &Value| v.as_str().unwrap().replace(',', "");
        assert_eq!(n(&row[1]), api_row["sent_users"].to_string(), "{key} sent");
        assert_eq!(
            n(&row[2]),
            api_row["converted_users"].to_string(),
            "{key} converted"
        );
    }
    let activities = api.get("/v1/metrics/activities", ANALYST).await;
    let campaigns = activities["activities"].as_array().expect("activities");
    assert!(
        campaigns.iter().any(
            |a| a["groups_completed"].as_i64() > Some(0) && a["orders_paid"].as_i64() > Some(0)
        ),
        "the simulated audience runs group-buys: {activities}"
    );
    let revenue = |id: &str| {
        format!("return document.querySelector('[data-revenue=\"{id}\"]')?.textContent ?? null")
    };
    for a in campaigns.iter().take(5) {
        let id = a["activity_id"].as_str().expect("an id");
        let fen = a["revenue_fen"].as_i64().expect("revenue");
        let shown = js(&c, &revenue(id)).await;
        if let Some(text) = shown.as_str() {
            assert_eq!(
                text.replace([',', '¥'], ""),
                format!("{}.{:02}", fen / 100, fen % 100),
                "{id}'s revenue on the board"
            );
        }
    }
    let verdict = js(
        &c,
        "return document.querySelector('[data-ab-verdict]').textContent",
    )
    .await;
    assert!(
        verdict.as_str().is_some_and(|v| v.contains("对照组")),
        "a plain-language verdict in Chinese: {verdict}"
    );
    // The A/B panel says it counts people over the whole experiment, not the period; the
    // traffic tables say their period and that they count events.
    let scope = js(
        &c,
        "return document.querySelector('[data-ab-scope]').textContent",
    )
    .await;
    assert!(
        scope
            .as_str()
            .is_some_and(|s| s.contains("按人") && s.contains("不受上方统计区间影响")),
        "the A/B panel's range and unit: {scope}"
    );
    let headers = js(
        &c,
        "return [...document.querySelectorAll('#ab th, #table-menu th')].map(th => th.textContent)",
    )
    .await;
    for h in ["点击率（按人）", "点击率（按次）"] {
        assert!(
            headers.as_array().unwrap().contains(&json!(h)),
            "{h} in {headers}"
        );
    }
    for table in ["menu", "articles"] {
        let text = js(
            &c,
            &format!("return document.querySelector('[data-table-scope=\"{table}\"]').textContent"),
        )
        .await;
        assert!(
            text.as_str()
                .is_some_and(|t| t.contains(&from) && t.contains(&to) && t.contains("按次")),
            "the {table} table's period and unit: {text}"
        );
    }
    // The weekly heat map draws the weeks that hold today apart (grey, dashed, "…"), and marks
    // the cohort still filling: exactly the rows the API says are in progress.
    let weekly = api
        .get(
            &format!("/v1/metrics/weekly-retention?from={from}&to={to}"),
            ANALYST,
        )
        .await;
    let cells = |pick: &str| -> Vec<(i64, String)> {
        let mut v: Vec<(i64, String)> = weekly["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .filter(|r| r["in_progress"].as_bool() == Some(pick == "open"))
            .map(|r| {
                (
                    r["week_offset"].as_i64().unwrap(),
                    r["cohort_week"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let (open, done) = (cells("open"), cells("done"));
    assert!(
        !open.is_empty() && !done.is_empty(),
        "the seeded history ends now: {weekly}"
    );
    let drawn = js(
        &c,
        "const c = echarts.getInstanceByDom(document.getElementById('chart-weekly'));
         const o = c.getOption();
         const pick = (id) => o.series.find(s => s.id === id).data
           .map(d => [d.row.week_offset, d.row.cohort_week]).sort();
         return { open: pick('weekly-in-progress'), done: pick('weekly-done'), weeks: o.yAxis[0].data };",
    )
    .await;
    let as_cells = |v: &Value| -> Vec<(i64, String)> {
        let mut out: Vec<(i64, String)> = v
            .as_array()
            .expect("cells")
            .iter()
            .map(|p| (p[0].as_i64().unwrap(), p[1].as_str().unwrap().to_owned()))
            .collect();
        out.sort();
        out
    };
    assert_eq!(
        as_cells(&drawn["open"]),
        open,
        "the weeks drawn as in progress"
    );
    assert_eq!(as_cells(&drawn["done"]), done, "the weeks drawn as over");
    let filling: Vec<&str> = weekly["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["cohort_filling"] == json!(true) && r["week_offset"] == json!(0))
        .map(|r| r["cohort_week"].as_str().unwrap())
        .collect();
    assert_eq!(filling.len(), 1, "this week's cohort is filling: {weekly}");
    for label in drawn["weeks"].as_array().expect("labels") {
        let label = label.as_str().unwrap();
        assert_eq!(
            label.ends_with('*'),
            label.starts_with(filling[0]),
            "only the cohort still filling is marked: {label}"
        );
    }

    let live = js(
        &c,
        "return document.getElementById('live-text').textContent",
    )
    .await;
    assert!(
        live.as_str().is_some_and(|t| t.starts_with("实时")),
        "the live indicator: {live}"
    );

    // The screenshot of the Chinese page, as a person sees it.
    settle().await;
    let png = c.screenshot().await.expect("a screenshot");
    let target = target_dir();
    std::fs::create_dir_all(&target).expect("the target folder");
    std::fs::write(target.join("dashboard.png"), &png).expect("save the screenshot");

    // --- CSV: a table downloads every row it stands on, raw numbers under its titles -----------
    let menu = api
        .get(
            &format!("/v1/metrics/menu-entries?from={from}&to={to}"),
            ANALYST,
        )
        .await;
    let records = download_csv(
        &c,
        &downloads,
        "menu-entries",
        &format!("liandong-menu-entries-{from}_{to}.csv"),
    )
    .await;
    assert_eq!(
        records[0],
        ["入口", "变体", "曝光", "点击", "点击率（按次）"],
        "the header: the table's column titles"
    );
    let mut from_csv: Vec<Vec<String>> = records[1..].to_vec();
    let mut from_api: Vec<Vec<String>> = menu["totals"]
        .as_array()
        .expect("totals")
        .iter()
        .map(|r| {
            ["entry", "variant", "exposures", "clicks", "click_rate"]
                .iter()
                .map(|k| cell(&r[k]))
                .collect()
        })
        .collect();
    from_csv.sort();
    from_api.sort();
    assert!(!from_api.is_empty());
    assert_eq!(from_csv, from_api, "the menu CSV holds the API's rows");

    // --- the review: a printable page of the period, its sections filled -----------------------
    // An experiment that concludes: the variant's members all tap the prompt, the control's none.
    let concluded = format!("review-prompt-{}", uuid::Uuid::new_v4().simple());
    let now = Utc::now().to_rfc3339();
    let prompts: Vec<Value> = (0..120)
        .flat_map(|i| {
            let variant = if i % 2 == 0 { "control" } else { "b" };
            let user = json!({"mp_openid": format!("review_{i}")});
            let props = json!({"placement": "home", "experiment": concluded, "variant": variant});
            let shown = json!({"event_id": uuid::Uuid::new_v4().to_string(), "type": "mp.follow_prompt.shown",
                               "occurred_at": now, "user": user, "props": props});
            let click = json!({"event_id": uuid::Uuid::new_v4().to_string(), "type": "mp.follow_prompt.click",
                               "occurred_at": now, "user": user, "props": props});
            if variant == "b" { vec![shown, click] } else { vec![shown] }
        })
        .collect();
    api.send(&prompts).await;
    api.caught_up().await;
    let review = api
        .get(&format!("/v1/reports/review?from={from}&to={to}"), ANALYST)
        .await;
    let keys = |list: &str| -> Vec<String> {
        review[list]
            .as_array()
            .unwrap_or_else(|| panic!("{list}"))
            .iter()
            .map(|m| m["key"].as_str().expect("a key").to_owned())
            .collect()
    };
    assert!(
        review["concluded_experiments"]
            .as_array()
            .expect("concluded")
            .iter()
            .any(|e| e["experiment"] == concluded.as_str() && e["verdict"] == "better"),
        "the prompt experiment concluded: {review}"
    );
    c.find(Locator::Css("#open-review"))
        .await
        .expect("the review link")
        .click()
        .await
        .expect("click");
    let sections = [
        "kpis",
        "menu",
        "articles",
        "templates",
        "campaigns",
        "experiments",
    ];
    wait_for(
        &c,
        &format!(
            "return document.getElementById('board').hidden
               && {sections:?}.every(s => document.querySelector(`[data-review-section=\"${{s}}\"] tbody tr`))
               && document.querySelectorAll('[data-review-section=\"kpis\"] tbody tr').length === 8
               && document.querySelector('[data-review-section=\"experiments\"]').textContent.includes({})",
            json!(concluded)
        ),
        30,
        "the review's six sections with rows",
    )
    .await;
    let column = |section: &str| {
        format!(
            "return [...document.querySelectorAll('[data-review-section=\"{section}\"] tbody tr')].map(tr => tr.children[0].textContent)"
        )
    };
    for (section, list) in [
        ("menu", "menu_entries"),
        ("articles", "articles"),
        ("templates", "templates"),
    ] {
        assert_eq!(
            js(&c, &column(section)).await,
            json!(keys(list)),
            "the review's {section} movers, in the API's order"
        );
    }
    let campaigns: Vec<&str> = review["campaigns"]
        .as_array()
        .expect("campaigns")
        .iter()
        .map(|a| a["activity_id"].as_str().expect("an id"))
        .collect();
    assert_eq!(js(&c, &column("campaigns")).await, json!(campaigns));
    assert!(
        !keys("articles").is_empty() && !campaigns.is_empty(),
        "{review}"
    );

    // Printed to PDF (A4, as the print button would): every section is there with its data, and
    // nothing of the page's controls.
    let pdf = c
        .print(fantoccini::wd::PrintConfiguration::default())
        .await
        .expect("the page printed to PDF");
    std::fs::write(target.join("review.pdf"), &pdf).expect("save the PDF");
    let text = pdf_extract::extract_text_from_mem(&pdf).expect("the PDF's text");
    let flat: String = text.split_whitespace().collect();
    let want = [
        "经营复盘",
        "核心指标对比",
        "菜单入口：变化最大",
        "图文文章：变化最大",
        "消息模板：变化最大",
        "活动：按收入",
        "已有结论的实验",
        "菜单栏入口点击率",
        "优于对照",
    ];
    for w in want.iter().map(|w| w.to_string()).chain([
        keys("articles")[0].clone(),
        campaigns[0].to_owned(),
        concluded.clone(),
    ]) {
        assert!(
            flat.contains(&w.split_whitespace().collect::<String>()),
            "the printed review shows {w:?}; its text:\n{text}"
        );
    }
    for hidden in ["统计区间", "下载CSV", "打印/存为PDF"] {
        assert!(
            !flat.contains(hidden),
            "the printed review leaves out {hidden:?}; its text:\n{text}"
        );
    }

    // The review's tables download too: the article movers as the API ranks them.
    let records = download_csv(
        &c,
        &downloads,
        "review-articles",
        &format!("liandong-review-articles-{from}_{to}.csv"),
    )
    .await;
    assert_eq!(records[0], ["文章", "本期", "上期", "变化"]);
    let want: Vec<Vec<String>> = review["articles"]
        .as_array()
        .expect("articles")
        .iter()
        .map(|m| {
            ["key", "current", "previous", "change"]
                .iter()
                .map(|k| cell(&m[k]))
                .collect()
        })
        .collect();
    assert_eq!(
        records[1..].to_vec(),
        want,
        "the review's article movers as CSV"
    );

    // Back to the dashboard: its charts are drawn again, at their size.
    c.find(Locator::Css("#review-back"))
        .await
        .expect("the way back")
        .click()
        .await
        .expect("click");
    wait_for(
        &c,
        "return !document.getElementById('board').hidden && document.getElementById('review').hidden
           && document.querySelector('#chart-clicks canvas').width > 100",
        20,
        "the dashboard again",
    )
    .await;

    // --- live: new events move the numbers without a reload ----------------------------------
    let before = shown[0].1;
    api.send(&live_menu_traffic()).await;
    api.caught_up().await;
    let after = api.summary(&from, &to).await;
    assert_ne!(
        after[0].1, before,
        "the live traffic moves the menu click rate"
    );
    let want = after[0].1.map(|r| r.to_string()).unwrap_or_default();
    wait_for(
        &c,
        &format!(
            "return document.querySelector('[data-kpi=\"menu_click_rate\"]').dataset.rate === {}",
            json!(want)
        ),
        20,
        "the menu click rate to update live",
    )
    .await;
    assert_eq!(
        page_kpis(&c).await,
        after,
        "every KPI after the live update"
    );

    // --- live: the campaign board moves within seconds of an event's acknowledgement -------
    let live_activity = format!("live-{}", uuid::Uuid::new_v4().simple());
    let joined: Vec<Value> = (0..3)
        .map(|i| {
            json!({"event_id": uuid::Uuid::new_v4().to_string(), "type": "activity.joined",
                   "occurred_at": Utc::now().to_rfc3339(), "user": {"mp_openid": format!("live_join_{i}")},
                   "props": {"activity_id": live_activity, "kind": "groupbuy", "group_id": "live-g"}})
        })
        .collect();
    let acked = std::time::Instant::now();
    api.send(&joined).await;
    let shown = wait_for(
        &c,
        &format!(
            "const r = document.querySelector('[data-activity=\"{live_activity}\"]');
             return r ? r.closest('tr').children[2].textContent : null"
        ),
        20,
        "the new campaign on the board",
    )
    .await;
    let latency = acked.elapsed();
    assert_eq!(shown, json!("3"), "three members joined");
    println!("campaign board: a join shows {latency:?} after its acknowledgement");
    assert!(
        latency < Duration::from_secs(12),
        "the board updates within seconds: {latency:?}"
    );

    // --- English --------------------------------------------------------------------------
    let label = "return document.querySelector('[data-kpi-label=\"menu_click_rate\"]').textContent";
    assert_eq!(js(&c, label).await, json!("菜单栏入口点击率"));
    c.find(Locator::Css("#lang"))
        .await
        .expect("the language switch")
        .click()
        .await
        .expect("click");
    assert_eq!(js(&c, label).await, json!("Menu-entry click rate"));
    assert_eq!(
        page_kpis(&c).await,
        after,
        "the values do not change with the language"
    );
    assert_eq!(
        js(&c, "return document.documentElement.lang").await,
        json!("en")
    );
    // Each card keeps its sparkline across the switch.
    let sparks = "return document.querySelectorAll('#kpis .spark canvas').length === 8";
    wait_for(&c, sparks, 10, "the eight sparklines in English").await;
    // English text takes a Latin font: a curly quote is narrow, not a full-width Chinese glyph.
    let quote_width = "const s = document.createElement('span');
         s.style.fontSize = '100px'; s.textContent = '“';
         document.getElementById('ab').append(s);
         const w = s.getBoundingClientRect().width; s.remove(); return w;";
    let width = js(&c, quote_width).await.as_f64().expect("a width");
    assert!(
        width < 60.0,
        "“ is {width}px wide at 100px in English: a Chinese font drew it"
    );
    let scope = js(
        &c,
        "return document.querySelector('[data-ab-scope]').textContent",
    )
    .await;
    assert!(
        scope.as_str().is_some_and(|s| s.starts_with("Per person")),
        "{scope}"
    );
    // The new panels in English, still with their data.
    let english = js(
        &c,
        "return [document.querySelector('[data-i18n=\"section.messages\"]').textContent,
                 document.querySelector('[data-i18n=\"section.activities\"]').textContent,
                 document.querySelector('[data-ab-surface=\"template\"] h3').textContent,
                 [...document.querySelectorAll('#table-activities th')].map(th => th.textContent),
                 document.querySelectorAll('#table-messages tbody tr').length,
                 document.querySelectorAll('#table-activities tbody tr').length]",
    )
    .await;
    assert_eq!(english[0], json!("Messages"));
    assert_eq!(english[1], json!("Campaigns"));
    assert_eq!(english[2], json!("Template messages"));
    assert!(
        english[3]
            .as_array()
            .unwrap()
            .contains(&json!("Group-buy success")),
        "{english}"
    );
    assert!(
        english[4].as_u64() > Some(0) && english[5].as_u64() > Some(0),
        "{english}"
    );
    // The trend charts' legends show every series (no paging) above the plot.
    for id in ["chart-clicks", "chart-linkage", "chart-users"] {
        let legend = js(
            &c,
            &format!(
                "const c = echarts.getInstanceByDom(document.getElementById('{id}'));
                 const o = c.getOption();
                 const view = c._componentsViews.find(v => v && v.__model && v.__model.mainType === 'legend');
                 if (!view) return null;
                 const r = view.group.getBoundingRect();
                 return {{ type: o.legend[0].type, bottom: view.group.y + r.y + r.height,
                          gridTop: o.grid[0].top, items: o.legend[0].data ? o.legend[0].data.length : o.series.length }};"
            ),
        )
        .await;
        assert_ne!(
            legend,
            Value::Null,
            "{id}: no legend view (has ECharts changed?)"
        );
        assert_ne!(
            legend["type"],
            json!("scroll"),
            "{id}: a paged legend: {legend}"
        );
        let (bottom, top) = (
            legend["bottom"].as_f64().expect("a number"),
            legend["gridTop"].as_f64().expect("a number"),
        );
        assert!(
            bottom <= top,
            "{id}: the legend overlaps the plot: {legend}"
        );
    }
    settle().await;
    let png = c.screenshot().await.expect("a screenshot");
    std::fs::write(target.join("dashboard-en.png"), &png).expect("save the screenshot");
    c.find(Locator::Css("#lang"))
        .await
        .expect("the language switch")
        .click()
        .await
        .expect("click");
    assert_eq!(js(&c, label).await, json!("菜单栏入口点击率"));
    wait_for(&c, sparks, 10, "the eight sparklines back in Chinese").await;

    // --- the date range: the last 7 days, then a range typed in ----------------------------
    for (how, action) in [
        (
            "the 7-day preset",
            "document.querySelector('[data-days=\"7\"]').click()",
        ),
        (
            "a typed range",
            "document.getElementById('range-from').value = '{from}';
             document.getElementById('range-to').value = '{mid}';
             document.querySelector('#range-form button').click()",
        ),
    ] {
        let mid =
            (to.parse::<chrono::NaiveDate>().expect("a date") - chrono::Days::new(10)).to_string();
        js(&c, &action.replace("{from}", &from).replace("{mid}", &mid)).await;
        let range = wait_for(
            &c,
            &format!(
                "const f = document.getElementById('range-from').value,
                       t = document.getElementById('range-to').value;
                 return f !== '{from}' || t !== '{to}' ? [f, t] : null"
            ),
            10,
            how,
        )
        .await;
        let (f, t) = (
            range[0].as_str().expect("from"),
            range[1].as_str().expect("to"),
        );
        let want = api.summary(f, t).await;
        assert_ne!(want, after, "{how}: another range, other numbers");
        let deadline = Instant::now() + Duration::from_secs(20);
        while page_kpis(&c).await != want {
            assert!(Instant::now() < deadline, "{how}: the cards for {f}..{t}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if how == "the 7-day preset" {
            assert_eq!(t, to, "the preset ends today");
            assert_eq!(
                (t.parse::<chrono::NaiveDate>().expect("a date")
                    - f.parse::<chrono::NaiveDate>().expect("a date"))
                .num_days(),
                6
            );
        } else {
            assert_eq!((f, t), (from.as_str(), mid.as_str()));
        }
    }

    // --- support: the member lookup, and no metric at all ----------------------------------
    sign_out(&c).await;
    sign_in(&c, SUPPORT).await;
    wait_for(
        &c,
        "return !document.getElementById('members').hidden",
        20,
        "the member lookup",
    )
    .await;
    assert_eq!(
        js(
            &c,
            "return document.querySelectorAll('[data-kpi], .kpi, #kpis > *').length"
        )
        .await,
        json!(0),
        "a support key sees no metric card"
    );
    assert_eq!(
        js(&c, "return document.getElementById('analytics').hidden").await,
        json!(true)
    );
    // Look a paying member up: profile, orders and follow state, never an identifier.
    let store = ReadStore::connect(&db_url).await.expect("the read store");
    let member = read::member_profiles(&store)
        .await
        .expect("profiles")
        .into_iter()
        .find(|p| {
            p.orders_paid > 0
                && p.unionid.is_some()
                && p.oa_openid.is_some()
                && p.first_from.is_some()
                && p.follow_via.is_some()
        })
        .expect("a paying, following member with a unionid in the seeded data");
    let input = c
        .find(Locator::Css("#member-key"))
        .await
        .expect("the member input");
    input
        .send_keys(&member.member_key)
        .await
        .expect("type the key");
    c.find(Locator::Css("#member-form button"))
        .await
        .expect("the button")
        .click()
        .await
        .expect("click");
    let result = wait_for(
        &c,
        "const r = document.getElementById('member-result');
         return r.querySelector('[data-member-field=\"orders_paid\"]') ? r.innerText : null",
        20,
        "the member's profile",
    )
    .await;
    let result = result.as_str().expect("text");
    for id in [
        Some(&member.member_key),
        member.unionid.as_ref(),
        member.oa_openid.as_ref(),
        member.mp_openid.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        assert!(
            !result.contains(id.as_str()),
            "the lookup shows an identifier: {result}"
        );
    }
    let orders = js(
        &c,
        "return document.querySelector('[data-member-field=\"orders_paid\"]').textContent",
    )
    .await;
    assert_eq!(orders, json!(member.orders_paid.to_string()));
    let following = js(
        &c,
        "return document.querySelector('[data-member-field=\"following\"]').textContent",
    )
    .await;
    assert_eq!(following, json!(if member.following { "是" } else { "否" }));
    // Codes (where the first visit came from, how the member followed) in Chinese words.
    for (field, code) in [
        ("first_from", member.first_from.as_deref()),
        ("follow_via", member.follow_via.as_deref()),
    ] {
        let shown = js(
            &c,
            &format!(
                "return document.querySelector('[data-member-field=\"{field}\"]').textContent"
            ),
        )
        .await;
        let shown = shown.as_str().expect("text");
        assert!(
            !shown.is_empty() && !shown.chars().any(|ch| ch.is_ascii_alphabetic()),
            "{field} = {code:?} is shown as {shown:?}"
        );
    }
    settle().await;
    let png = c.screenshot().await.expect("a screenshot");
    std::fs::write(target.join("dashboard-support.png"), &png).expect("save the screenshot");

    // --- admin: both ----------------------------------------------------------------------
    sign_out(&c).await;
    sign_in(&c, ADMIN).await;
    assert_eq!(page_kpis(&c).await, after, "an admin sees the metrics");
    assert_eq!(
        js(&c, "return document.getElementById('members').hidden").await,
        json!(false),
        "and the member lookup"
    );

    // --- ingest: refused; a wrong key: an error -------------------------------------------
    sign_out(&c).await;
    sign_in(&c, INGEST).await;
    wait_for(
        &c,
        "return !document.getElementById('denied').hidden",
        20,
        "the refusal for an ingest key",
    )
    .await;
    assert_eq!(
        js(&c, "return document.querySelectorAll('[data-kpi]').length + (document.getElementById('members').hidden ? 0 : 1)").await,
        json!(0)
    );
    sign_out(&c).await;
    sign_in(&c, "not-a-configured-key-0000").await;
    let err = wait_for(
        &c,
        "const e = document.getElementById('signin-error'); return e.hidden ? null : e.textContent",
        20,
        "the invalid-key message",
    )
    .await;
    assert_eq!(err, json!("密钥无效，请检查后重试。"));

    c.close().await.expect("close the browser");
    drop(driver);
    running.stop().await.expect("liandong stops");
}
