//! `liandong demo`: liandong on the embedded defaults, in its own data directory, filled with a
//! simulated OA + MP audience (`liandong-sim`) through the real ingestion endpoint — the history
//! first, with a progress bar, then live traffic until Ctrl-C — so a newcomer sees the dashboard
//! with believable data after one command.
//!
//! Every run starts fresh: the directory's log and read store are removed (only a directory the
//! demo made is ever emptied, and its `api-keys` file is kept, so a signed-in browser stays
//! signed in).

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use indicatif::{HumanCount, ProgressBar, ProgressStyle};
use liandong::{start, Config, Role};
use liandong_auth::ApiKeys;
use liandong_sim::{Sender, SimConfig, Simulation};

/// Names the directory as the demo's own: only such a directory is emptied.
const MARKER: &str = ".liandong-demo";
/// Kept across runs.
const KEEP: &[&str] = &[MARKER, "api-keys"];
/// Settings the demo takes from the environment; the others would point it at a real
/// deployment's store, broker or keys.
const PASSED_THROUGH: &[&str] = &[
    "LIANDONG_LISTEN",
    "LIANDONG_TIMEZONE",
    "LIANDONG_TOPIC_PREFIX",
    "LIANDONG_PROJECTOR_BATCH",
];

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// People in the simulated audience by the end of the history.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub users: u64,
    /// Days of history backfilled before now. 60 by default: the dashboard's default range is
    /// the last 30 days, and its trends compare them with the 30 days before.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=365))]
    pub days: u32,
    /// Seed of the simulation: the same seed makes the same audience.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The demo's own data directory (log, read store, keys), recreated on every run.
    #[arg(long, default_value = "liandong-demo")]
    pub data_dir: PathBuf,
    /// Pace of the live traffic after the backfill, relative to the audience's real pace.
    #[arg(long, default_value_t = 100.0)]
    pub live_speed: f64,
    /// Seconds between two live batches.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub interval: u64,
}

/// Runs the demo until `shutdown` resolves or liandong stops.
pub async fn run(args: DemoArgs, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let started = Instant::now();
    prepare_dir(&args.data_dir)?;
    let dir = args.data_dir.display().to_string();
    let cfg = Config::from_lookup(|k| {
        if k == "LIANDONG_DATA_DIR" {
            Some(dir.clone())
        } else if PASSED_THROUGH.contains(&k) {
            std::env::var(k).ok().filter(|v| !v.trim().is_empty())
        } else {
            None
        }
    })
    .map_err(|e| anyhow::anyhow!("configuration error: {e}"))?;
    let running = start(Role::Serve, cfg).await.context("cannot start")?;
    let (addr, keys) = (running.addr, running.keys.clone());
    let mut outcome = Ok(());
    let stopped = running
        .run_until(async {
            tokio::select! {
                _ = shutdown => {}
                r = fill(&args, addr, keys, started) => outcome = r,
            }
        })
        .await;
    outcome.and(stopped)
}

/// The backfill, the wait for the projections, the banner, then live traffic for ever.
async fn fill(
    args: &DemoArgs,
    addr: SocketAddr,
    keys: Arc<ApiKeys>,
    started: Instant,
) -> anyhow::Result<()> {
    let key = |role: liandong_auth::Role| {
        keys.key_of(role)
            .map(str::to_owned)
            .with_context(|| format!("no {role} key in {}", args.data_dir.display()))
    };
    let (ingest, analyst, support) = (
        key(liandong_auth::Role::Ingest)?,
        key(liandong_auth::Role::Analyst)?,
        key(liandong_auth::Role::Support)?,
    );
    // A key file kept from a version before the `decide` role has none: the line is left out.
    let decide = keys.key_of(liandong_auth::Role::Decide).map(str::to_owned);
    let local = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    let base = format!("http://{local}");
    let sender = Sender::new(&base, &ingest).status_key(&analyst);

    let spinner = ProgressBar::new_spinner().with_message(format!(
        "simulating {} people over {} days",
        HumanCount(args.users),
        args.days
    ));
    spinner.enable_steady_tick(Duration::from_millis(100));
    let mut sim = Simulation::new(
        SimConfig {
            users: args.users as usize,
            days: args.days,
            seed: args.seed,
            live_speed: args.live_speed,
            ..SimConfig::default()
        },
        Utc::now(),
    );
    let history = sim.history();
    spinner.finish_and_clear();

    let bar = ProgressBar::new(history.len() as u64).with_style(
        ProgressStyle::with_template(
            "backfill {bar:40.cyan/blue} {human_pos}/{human_len} events  {per_sec:.dim}  eta {eta}",
        )
        .expect("a valid template")
        .progress_chars("█▉▊▋▌▍▎▏ "),
    );
    let sending = Instant::now();
    let report = sender
        .send_with_progress(&history, |n| bar.inc(n as u64))
        .await
        .context("sending the history")?;
    let sent_in = sending.elapsed();
    bar.finish_and_clear();
    let simulated = history.len();
    if !report.rejected.is_empty() {
        eprintln!(
            "warning: {} of {} simulated events were rejected, e.g. {}",
            report.rejected.len(),
            simulated,
            report.rejected[0].error
        );
    }
    // The live loop runs for hours: the history's memory goes back now.
    drop(history);

    // The projectors fold the log into the read models the dashboard reads.
    let total = report.accepted as u64;
    let wait = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "project  {bar:40.green/blue} {human_pos}/{human_len} events  {per_sec:.dim}  eta {eta}",
        )
        .expect("a valid template")
        .progress_chars("█▉▊▋▌▍▎▏ "),
    );
    sender
        .wait_caught_up(Duration::from_secs(3600), |lag| {
            wait.set_position(total.saturating_sub(lag.max(0) as u64))
        })
        .await
        .context("waiting for the projections")?;
    wait.finish_and_clear();

    let rate = report.accepted as f64 / sent_in.as_secs_f64().max(1e-3);
    println!(
        "\nliandong demo is ready in {:.1} s: {} people, {} days, {} events (backfill {:.1} s, {} events/s)\n",
        started.elapsed().as_secs_f64(),
        HumanCount(args.users),
        args.days,
        HumanCount(report.accepted as u64),
        sent_in.as_secs_f64(),
        HumanCount(rate as u64),
    );
    println!("  Dashboard    http://{local}/");
    println!("  Analyst key  {analyst}");
    println!("  Support key  {support}   (member lookup)");
    if let Some(decide) = decide {
        println!(
            "  Decide key   {decide}   (the apps' decisions: GET http://{local}/v1/members/<member_key>/follow-prompt)"
        );
    }
    println!(
        "  (all keys: {}; the data: {})\n",
        args.data_dir.join("api-keys").display(),
        args.data_dir.display()
    );
    println!(
        "Live traffic: a batch every {} s at {}x the audience's pace. Ctrl-C stops.",
        args.interval, args.live_speed
    );

    let status = ProgressBar::new_spinner();
    status.enable_steady_tick(Duration::from_millis(200));
    let mut tick = tokio::time::interval(Duration::from_secs(args.interval));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let (mut live_sent, mut live_rejected) = (0usize, 0usize);
    loop {
        tick.tick().await;
        let now = Utc::now();
        let events = sim.live(now, Duration::from_secs(60));
        if !events.is_empty() {
            match sender.send(&events).await {
                Ok(r) => {
                    live_sent += r.accepted;
                    live_rejected += r.rejected.len();
                }
                Err(e) => status.println(format!("a live batch was not sent: {e}")),
            }
        }
        let rejected = if live_rejected > 0 {
            format!(", {live_rejected} rejected")
        } else {
            String::new()
        };
        status.set_message(format!(
            "live: {} events sent{rejected}; last batch {} at {}",
            HumanCount(live_sent as u64),
            events.len(),
            now.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00"))
                .format("%H:%M:%S"),
        ));
    }
}

/// Empties the demo's directory but for its keys, or makes it. A directory the demo did not
/// make is left alone.
fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let entries: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("--data-dir {}: cannot list it", dir.display()))?
            .collect::<Result<_, _>>()?;
        if !entries.is_empty() && !dir.join(MARKER).exists() {
            bail!(
                "--data-dir {}: exists and is not a demo directory (no {MARKER} file); the demo \
                 empties its directory on every run, so it will not use this one — choose another",
                dir.display()
            );
        }
        for e in entries {
            if KEEP.iter().any(|k| e.file_name() == *k) {
                continue;
            }
            let path = e.path();
            let removed = if e.file_type()?.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.with_context(|| format!("removing {} of the last demo", path.display()))?;
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        "liandong demo data: emptied by every `liandong demo` run (api-keys is kept).\n",
    )
    .with_context(|| format!("writing {}", dir.join(MARKER).display()))?;
    Ok(())
}
