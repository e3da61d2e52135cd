//! `liandong dead-letter list | replay`: the dead-letter stream read back.
//!
//! `list` reads every record of the stream (Kafka: a consumer group of its own, from the
//! earliest offset to the end offsets taken when it starts; embedded: the file, with `serve`
//! stopped, as the embedded log is one process's) and shows the ones the filters select.
//!
//! `replay` sends the selected dead letters' events again through today's validation, identity
//! binding, erasure and sealing, and appends those that pass to the events stream — the path of
//! `POST /v1/events` ([`IngestState::replay`]). Each keeps its `event_id`, and the read models
//! count an event id once. What a replay did with each dead letter is kept in the read store
//! (`liandong_dead_letter_replays`), so replaying again appends nothing twice; an event that
//! still fails is not written to the dead-letter stream again (it is there already) and can be
//! replayed after the next fix. Never replayed: events refused because of the key that sent them
//! (`client_scope`: a replay would lift the key's limits) and events whose personal data the
//! dead letter holds redacted (replaying `[redacted]` would overwrite the member's real values).

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use clap::{Args, Subcommand};
use liandong_auth::{ApiKeys, Caller, Role as KeyRole};
use liandong_event::Schemas;
use liandong_identity::IdentityService;
use liandong_ingest::dead_letter::{RejectReason, REDACTED};
use liandong_ingest::IngestState;
use liandong_log::{Delivered, EventLog, Stream};
use liandong_store::dead_letters::{self as replays, Replay};
use liandong_store::ReadStore;
use liandong_vault::{DataKeys, Vault};
use serde::Serialize;
use serde_json::Value;

use crate::{Config, Role};

/// Most events handed to ingestion at once (a `POST /v1/events` batch's limit).
const REPLAY_BATCH: usize = 500;
/// How long reading the stream may go without a record before giving up on the rest.
const IDLE_LIMIT: Duration = Duration::from_secs(30);

/// `liandong dead-letter …`
#[derive(Debug, Subcommand)]
pub enum DeadLetterCommand {
    /// Lists dead letters, oldest first: id, when received, reason, type, event id, what a
    /// replay did with it, and the error (a table, or every field with --json).
    List(Filter),
    /// Sends the selected dead letters again through today's validation: an event that passes is
    /// appended (once, however often it is replayed); one that still fails stays a dead letter.
    Replay(Filter),
}

/// Which dead letters a command takes (all of them without a filter).
#[derive(Debug, Clone, Default, Args)]
pub struct Filter {
    /// Only dead letters received at or after TIME: an RFC 3339 time
    /// (2026-11-24T10:00:00+08:00), a day (2026-11-24, from midnight in LIANDONG_TIMEZONE) or
    /// a span back from now (30m, 24h, 7d).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only dead letters rejected for this reason.
    #[arg(long, value_parser = reason_parser())]
    pub reason: Option<RejectReason>,
    /// Only events of this type, as the sender wrote it (e.g. mp.visit).
    #[arg(long = "type", value_name = "TYPE")]
    pub event_type: Option<String>,
    /// Only the dead letter with this id (PARTITION:OFFSET, as `list` shows it); repeatable.
    #[arg(long = "id", value_name = "ID")]
    pub ids: Vec<String>,
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn reason_parser() -> impl clap::builder::TypedValueParser<Value = RejectReason> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(RejectReason::ALL.map(|r| r.as_str()))
        .map(|s| s.parse::<RejectReason>().expect("a possible value"))
}

/// A record of the dead-letter stream, as `list --json` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// `PARTITION:OFFSET`: where it is in the stream.
    pub id: String,
    pub partition: i32,
    pub offset: i64,
    /// When ingestion received the event (RFC 3339, UTC).
    pub received_at: Option<String>,
    pub reason: RejectReason,
    /// 403 when the key that sent it was not allowed to.
    pub status: Option<u64>,
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    pub event_id: Option<String>,
    pub error: String,
    /// What `replay` did with it, when it did.
    pub replay: Option<ReplayShown>,
    /// The event as sent, personal data redacted.
    pub event: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplayShown {
    pub outcome: String,
    pub at: String,
    pub error: Option<String>,
}

impl DeadLetter {
    fn of(d: &Delivered) -> DeadLetter {
        let id = format!("{}:{}", d.partition, d.offset);
        let payload: Value = serde_json::from_slice(&d.payload).unwrap_or_else(|e| {
            serde_json::json!({
                "error": format!("not a dead letter liandong wrote (not JSON: {e})"),
                "event": String::from_utf8_lossy(&d.payload),
            })
        });
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let error = text(&payload["error"]).unwrap_or_default();
        let status = payload["status"].as_u64();
        let reason = payload["reason"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .unwrap_or_else(|| RejectReason::of_legacy(status, &error));
        let event = payload.get("event").cloned().unwrap_or(Value::Null);
        DeadLetter {
            id,
            partition: d.partition,
            offset: d.offset,
            received_at: text(&payload["received_at"]),
            reason,
            status,
            event_type: text(&event["type"]),
            event_id: text(&payload["event_id"]).or_else(|| text(&event["event_id"])),
            error,
            replay: None,
            event,
        }
    }

    fn received(&self) -> Option<DateTime<Utc>> {
        self.received_at
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    }

    /// Why it is never replayed, if it is not.
    fn not_replayable(&self) -> Option<String> {
        if self.reason == RejectReason::ClientScope {
            return Some(
                "refused because of the key that sent it (403): a replay would lift the key's limits; the sender must send it with a key allowed to"
                    .to_owned(),
            );
        }
        let props = &self.event["props"];
        let redacted = props == REDACTED
            || ["phone", "address"]
                .iter()
                .any(|p| props[p].as_str() == Some(REDACTED))
            || self.event == REDACTED;
        if redacted {
            return Some(format!(
                "its personal data is {REDACTED} in the dead letter: replaying it would store that instead of the real values; the sender must send it again"
            ));
        }
        None
    }
}

/// The selection, parsed.
struct Selection {
    since: Option<DateTime<Utc>>,
    reason: Option<RejectReason>,
    event_type: Option<String>,
    ids: HashSet<(i32, i64)>,
}

impl Selection {
    fn parse(f: &Filter, cfg: &Config, now: DateTime<Utc>) -> anyhow::Result<Selection> {
        let since = f
            .since
            .as_deref()
            .map(|s| parse_since(s, cfg.timezone, now))
            .transpose()?;
        let mut ids = HashSet::new();
        for id in &f.ids {
            let parsed = id
                .split_once(':')
                .and_then(|(p, o)| Some((p.trim().parse().ok()?, o.trim().parse().ok()?)));
            match parsed {
                Some(pair) => {
                    ids.insert(pair);
                }
                None => bail!(
                    "--id: expected PARTITION:OFFSET as `liandong dead-letter list` shows it (e.g. 0:17), got {id:?}"
                ),
            }
        }
        Ok(Selection {
            since,
            reason: f.reason,
            event_type: f.event_type.clone(),
            ids,
        })
    }

    fn takes(&self, d: &DeadLetter) -> bool {
        self.since
            .is_none_or(|since| d.received().is_some_and(|r| r >= since))
            && self.reason.is_none_or(|r| r == d.reason)
            && self
                .event_type
                .as_deref()
                .is_none_or(|t| d.event_type.as_deref() == Some(t))
            && (self.ids.is_empty() || self.ids.contains(&(d.partition, d.offset)))
    }
}

/// `--since`: an RFC 3339 time, a day in `tz`, or a span back from `now`.
fn parse_since(s: &str, tz: chrono_tz::Tz, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(day) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(t) = tz
            .from_local_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight"))
            .earliest()
        {
            return Ok(t.with_timezone(&Utc));
        }
    }
    let span = s
        .char_indices()
        .last()
        .and_then(|(at, unit)| Some((s[..at].parse::<u32>().ok()?, unit)))
        .and_then(|(n, unit)| match unit {
            'm' => Some(chrono::Duration::minutes(n.into())),
            'h' => Some(chrono::Duration::hours(n.into())),
            'd' => Some(chrono::Duration::days(n.into())),
            _ => None,
        });
    match span {
        Some(d) => Ok(now - d),
        None => bail!(
            "--since: expected an RFC 3339 time (2026-11-24T10:00:00+08:00), a day (2026-11-24) or a span back from now (30m, 24h, 7d), got {s:?}"
        ),
    }
}

/// Runs a `dead-letter` command with the settings of `cfg`, writing what it shows to `out`.
pub async fn run(
    command: DeadLetterCommand,
    cfg: Config,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        DeadLetterCommand::List(filter) => list(&cfg, &filter, out).await,
        DeadLetterCommand::Replay(filter) => replay(cfg, &filter, out).await,
    }
}

/// The read store and the log a command works on, and the name replays are kept under.
struct Opened {
    store: ReadStore,
    log: Arc<dyn EventLog>,
    log_name: String,
}

async fn open(cfg: &Config) -> anyhow::Result<Opened> {
    let store = crate::keys::open_existing(cfg).await?;
    store
        .init()
        .await
        .context("preparing the read store's bookkeeping tables")?;
    let (log_name, log) = match &cfg.kafka {
        Some(_) => (
            format!("kafka:{}.{}", cfg.topic_prefix, Stream::DeadLetter.name()),
            crate::open_log(Role::Serve, cfg).await?,
        ),
        None => {
            let dir = cfg.data_dir.join("log");
            if !dir.is_dir() {
                bail!(
                    "no embedded log at {} (LIANDONG_KAFKA_BROKERS unset; the data directory is chosen by LIANDONG_DATA_DIR): run it with the server's settings",
                    dir.display()
                );
            }
            let log = crate::open_log(Role::Serve, cfg).await.map_err(|e| {
                if format!("{e:#}").contains("in use by another process") {
                    e.context(
                        "stop `liandong serve` first: the embedded log is one process's (with Kafka, dead-letter commands run beside the servers)",
                    )
                } else {
                    e
                }
            })?;
            ("embedded".to_owned(), log)
        }
    };
    Ok(Opened {
        store,
        log,
        log_name,
    })
}

/// The records of the dead-letter stream up to its end when called that `keep` keeps, in
/// stream order (only those are held in memory).
async fn read_all<T>(
    log: &dyn EventLog,
    group_prefix: &str,
    keep: impl Fn(&Delivered) -> Option<T>,
) -> anyhow::Result<Vec<(i32, i64, T)>> {
    let ends: HashMap<i32, i64> = log
        .end_offsets(Stream::DeadLetter)
        .await
        .context("reading the dead-letter stream's end offsets")?
        .into_iter()
        .filter(|&(_, end)| end > 0)
        .collect();
    let mut pending = ends.clone();
    let mut out = Vec::new();
    if pending.is_empty() {
        return Ok(out);
    }
    // A group of its own, never committed: it starts at the earliest record of each partition
    // and takes every partition, whatever else reads the stream.
    let group = format!(
        "{group_prefix}.dead-letter-reader.{}",
        uuid::Uuid::new_v4().simple()
    );
    let mut consumer = log
        .consumer(&group, Stream::DeadLetter)
        .await
        .context("reading the dead-letter stream")?;
    let mut last_record = Instant::now();
    while !pending.is_empty() {
        let batch = consumer
            .poll(1000, Duration::from_millis(500))
            .await
            .context("reading the dead-letter stream")?;
        if batch.is_empty() {
            if last_record.elapsed() > IDLE_LIMIT {
                let mut left: Vec<String> = pending
                    .iter()
                    .map(|(p, end)| format!("partition {p} (end {end})"))
                    .collect();
                left.sort();
                bail!(
                    "the dead-letter stream delivered nothing for {}s before its end: {} (records deleted by the topic's retention?)",
                    IDLE_LIMIT.as_secs(),
                    left.join(", ")
                );
            }
            continue;
        }
        last_record = Instant::now();
        for d in batch {
            let Some(&end) = ends.get(&d.partition) else {
                continue;
            };
            if d.offset + 1 >= end {
                pending.remove(&d.partition);
            }
            if d.offset < end {
                if let Some(kept) = keep(&d) {
                    out.push((d.partition, d.offset, kept));
                }
            }
        }
    }
    out.sort_by_key(|(p, o, _)| (*p, *o));
    out.dedup_by_key(|(p, o, _)| (*p, *o));
    Ok(out)
}

/// The dead letters `filter` selects, each with what a replay did with it.
async fn select(
    opened: &Opened,
    cfg: &Config,
    selection: &Selection,
) -> anyhow::Result<(Vec<DeadLetter>, HashMap<(i32, i64), Replay>)> {
    let done: HashMap<(i32, i64), Replay> = replays::replays(&opened.store, &opened.log_name)
        .await
        .context("reading the replays recorded in the read store")?
        .into_iter()
        .map(|r| ((r.partition, r.log_offset), r))
        .collect();
    let mut letters: Vec<DeadLetter> = read_all(opened.log.as_ref(), &cfg.topic_prefix, |d| {
        Some(DeadLetter::of(d)).filter(|d| selection.takes(d))
    })
    .await?
    .into_iter()
    .map(|(_, _, d)| d)
    .collect();
    for d in &mut letters {
        d.replay = done.get(&(d.partition, d.offset)).map(shown);
    }
    // Oldest first; records of one partition are in the order they were received.
    letters.sort_by(|a, b| {
        (a.received(), a.partition, a.offset).cmp(&(b.received(), b.partition, b.offset))
    });
    Ok((letters, done))
}

fn shown(r: &Replay) -> ReplayShown {
    ReplayShown {
        outcome: r.outcome.clone(),
        at: r
            .replayed_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        error: r.error.clone(),
    }
}

fn count(n: usize) -> String {
    format!("{n} dead letter{}", if n == 1 { "" } else { "s" })
}

/// At most `n` characters of `s` on one line.
fn cell(s: &str, n: usize) -> String {
    let one_line = s.replace(['\n', '\r', '\t'], " ");
    if one_line.chars().count() <= n {
        one_line
    } else {
        let cut: String = one_line.chars().take(n.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

async fn list(cfg: &Config, filter: &Filter, out: &mut impl Write) -> anyhow::Result<()> {
    let selection = Selection::parse(filter, cfg, Utc::now())?;
    let opened = open(cfg).await?;
    let (letters, _) = select(&opened, cfg, &selection).await?;
    if filter.json {
        serde_json::to_writer_pretty(&mut *out, &letters)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<10} {:<24} {:<17} {:<26} {:<36} {:<14} ERROR",
        "ID", "RECEIVED", "REASON", "TYPE", "EVENT_ID", "REPLAY"
    )?;
    for d in &letters {
        writeln!(
            out,
            "{:<10} {:<24} {:<17} {:<26} {:<36} {:<14} {}",
            d.id,
            d.received_at.as_deref().unwrap_or("-"),
            d.reason.as_str(),
            cell(d.event_type.as_deref().unwrap_or("-"), 26),
            cell(d.event_id.as_deref().unwrap_or("-"), 36),
            d.replay.as_ref().map_or("-", |r| r.outcome.as_str()),
            cell(&d.error, 160),
        )?;
    }
    writeln!(out, "{}", count(letters.len()))?;
    Ok(())
}

/// What a replay did with one dead letter.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub id: String,
    pub event_id: Option<String>,
    /// `appended`, `duplicate`, `still_failing`, `skipped`.
    pub outcome: &'static str,
    pub detail: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct ReplaySummary {
    pub appended: usize,
    pub duplicate: usize,
    pub still_failing: usize,
    pub skipped: usize,
    pub results: Vec<Outcome>,
}

async fn replay(cfg: Config, filter: &Filter, out: &mut impl Write) -> anyhow::Result<()> {
    let selection = Selection::parse(filter, &cfg, Utc::now())?;
    let opened = open(&cfg).await?;
    let master_key = match cfg.master_key.clone() {
        Some(k) => k,
        None => {
            let path = cfg.data_dir.join("master-key");
            if !path.exists() {
                bail!(
                    "LIANDONG_MASTER_KEY: required to replay (it seals the personal data of replayed events: the servers' key; `serve` keeps it in {}, which does not exist)",
                    path.display()
                );
            }
            crate::read_master_key_file(&path)?
        }
    };
    let store = opened.store.clone();
    let vault = Arc::new(Vault::new(master_key));
    liandong_vault::migrate(&store, &vault)
        .await
        .context("opening the data keys of personal data")?;
    let data_keys = DataKeys::new(store.clone(), vault.clone());
    let identity = match &store {
        ReadStore::Postgres(p) => IdentityService::postgres(p.clone()).await,
        ReadStore::Sqlite(p) => IdentityService::sqlite(p.clone()).await,
    }
    .context("opening the identity store")?
    .with_erasure_registry(vault.clone());
    let schemas = Arc::new(Schemas::load().context("compiling the event schemas")?);
    // The keys of this state are never used: replay is not an HTTP request.
    let ingest = IngestState::new(
        schemas,
        opened.log.clone(),
        identity,
        Arc::new(ApiKeys::generate()),
        data_keys,
    );
    let caller = Caller {
        role: KeyRole::Admin,
        key_id: crate::keys::actor(),
    };

    let (letters, done) = select(&opened, &cfg, &selection).await?;
    let mut appended_ids: HashSet<String> = done
        .values()
        .filter(|r| r.outcome == "appended")
        .filter_map(|r| r.event_id.clone())
        .collect();
    let mut summary = ReplaySummary::default();
    let mut to_send: Vec<&DeadLetter> = Vec::new();
    for d in &letters {
        let skip = |detail: String| Outcome {
            id: d.id.clone(),
            event_id: d.event_id.clone(),
            outcome: "skipped",
            detail: Some(detail),
        };
        if let Some(r) = done
            .get(&(d.partition, d.offset))
            .filter(|r| r.outcome != "still_failing")
        {
            summary.results.push(skip(format!(
                "already replayed ({}) at {}",
                r.outcome,
                shown(r).at
            )));
        } else if let Some(why) = d.not_replayable() {
            summary.results.push(skip(why));
        } else if d
            .event_id
            .as_ref()
            .is_some_and(|id| appended_ids.contains(id))
        {
            record(&opened, d, "duplicate", None).await?;
            summary.results.push(Outcome {
                id: d.id.clone(),
                event_id: d.event_id.clone(),
                outcome: "duplicate",
                detail: Some(
                    "its event id was appended by the replay of another dead letter".into(),
                ),
            });
        } else {
            to_send.push(d);
        }
    }
    for chunk in to_send.chunks(REPLAY_BATCH) {
        let events = chunk.iter().map(|d| d.event.clone()).collect();
        let answer = ingest
            .replay(&caller, events, Utc::now())
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "replaying: {e} (nothing of this batch counts; run the replay again)"
                )
            })?;
        let failed: HashMap<usize, String> = answer
            .rejected
            .into_iter()
            .map(|r| (r.index, r.error))
            .collect();
        for (i, d) in chunk.iter().enumerate() {
            let outcome = match failed.get(&i) {
                Some(error) => {
                    record(&opened, d, "still_failing", Some(error.clone())).await?;
                    Outcome {
                        id: d.id.clone(),
                        event_id: d.event_id.clone(),
                        outcome: "still_failing",
                        detail: Some(error.clone()),
                    }
                }
                None => {
                    record(&opened, d, "appended", None).await?;
                    if let Some(id) = &d.event_id {
                        appended_ids.insert(id.clone());
                    }
                    Outcome {
                        id: d.id.clone(),
                        event_id: d.event_id.clone(),
                        outcome: "appended",
                        detail: None,
                    }
                }
            };
            summary.results.push(outcome);
        }
    }
    for r in &summary.results {
        match r.outcome {
            "appended" => summary.appended += 1,
            "duplicate" => summary.duplicate += 1,
            "still_failing" => summary.still_failing += 1,
            _ => summary.skipped += 1,
        }
    }
    if filter.json {
        serde_json::to_writer_pretty(&mut *out, &summary)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<10} {:<14} {:<36} DETAIL",
        "ID", "OUTCOME", "EVENT_ID"
    )?;
    for r in &summary.results {
        writeln!(
            out,
            "{:<10} {:<14} {:<36} {}",
            r.id,
            r.outcome,
            cell(r.event_id.as_deref().unwrap_or("-"), 36),
            cell(r.detail.as_deref().unwrap_or("-"), 160)
        )?;
    }
    writeln!(
        out,
        "{}: {} appended, {} duplicate (counted once), {} still failing (they stay dead letters), {} skipped",
        count(summary.results.len()),
        summary.appended,
        summary.duplicate,
        summary.still_failing,
        summary.skipped
    )?;
    Ok(())
}

async fn record(
    opened: &Opened,
    d: &DeadLetter,
    outcome: &str,
    error: Option<String>,
) -> anyhow::Result<()> {
    replays::record(
        &opened.store,
        &Replay {
            log: opened.log_name.clone(),
            partition: d.partition,
            log_offset: d.offset,
            event_id: d.event_id.clone(),
            outcome: outcome.to_owned(),
            error,
            replayed_at: Utc::now(),
        },
    )
    .await
    .context("recording the replay in the read store")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_times_days_and_spans() {
        let now = DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let tz = chrono_tz::Asia::Shanghai;
        let at = |s: &str| parse_since(s, tz, now).unwrap().to_rfc3339();
        assert_eq!(at("2026-11-24T10:00:00+08:00"), "2026-11-24T02:00:00+00:00");
        assert_eq!(at("2026-11-24"), "2026-11-23T16:00:00+00:00");
        assert_eq!(at("30m"), "2026-11-24T09:30:00+00:00");
        assert_eq!(at("24h"), "2026-11-23T10:00:00+00:00");
        assert_eq!(at("7d"), "2026-11-17T10:00:00+00:00");
        for bad in ["yesterday", "7w", "", "2026-13-01"] {
            let e = parse_since(bad, tz, now).unwrap_err().to_string();
            assert!(e.starts_with("--since: expected"), "{e}");
        }
    }

    #[test]
    fn legacy_dead_letters_get_a_reason() {
        let legacy = |payload: Value| {
            DeadLetter::of(&Delivered {
                partition: 0,
                offset: 7,
                key: String::new(),
                event_id: String::new(),
                payload: serde_json::to_vec(&payload).unwrap(),
            })
        };
        let d = legacy(
            serde_json::json!({"index": 0, "error": "type: x", "status": 403,
            "received_at": "2026-11-24T02:00:00.000Z", "event": {"type": "order.paid"}}),
        );
        assert_eq!(d.reason, RejectReason::ClientScope);
        assert!(d.not_replayable().is_some());
        let d = legacy(
            serde_json::json!({"index": 0, "error": "identity conflict: oa openid o_x is bound to unionid u_1, not u_2", "event": {}}),
        );
        assert_eq!(d.reason, RejectReason::IdentityConflict);
        let d = legacy(
            serde_json::json!({"index": 0, "reason": "schema", "error": "props.phone: expected a string, got [redacted]",
            "event": {"type": "member.profile_updated", "props": {"phone": "[redacted]"}}}),
        );
        assert_eq!((d.reason, d.id.as_str()), (RejectReason::Schema, "0:7"));
        assert!(d.not_replayable().unwrap().contains("[redacted]"));
    }
}
