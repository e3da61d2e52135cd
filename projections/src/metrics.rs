//! The metrics part of the core projection's batch: event counts for the traffic relations,
//! then, for the members the batch touched, their refolded facts replace the old ones and the
//! days, cohorts and experiments those facts (old or new) name are recounted from the facts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use async_trait::async_trait;
use chrono::NaiveDate;
use chrono_tz::Tz;
use liandong_event::{Event, EventType};
use liandong_store::{Dialect, StoreError};
use serde::Serialize;
use serde_json::Value;

use crate::ab::{readout, VariantCounts};
use crate::facts::{DayFact, MemberFacts};

/// Counts of `oa.menu.*` and `oa.article.*` events, by day and dimension, of events new to the
/// store (the caller filters duplicates through the `events` table in the same transaction).
#[derive(Debug, Default)]
pub(crate) struct TrafficCounts {
    menu: BTreeMap<(NaiveDate, String, String), (i64, i64)>,
    article: BTreeMap<(NaiveDate, String), (i64, i64)>,
}

impl TrafficCounts {
    pub(crate) fn add(&mut self, e: &Event, tz: Tz) {
        let day = e.occurred_utc().with_timezone(&tz).date_naive();
        let s = |k: &str| {
            e.props
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        match e.event_type {
            EventType::OaMenuExposure => {
                self.menu
                    .entry((day, s("entry"), s("variant")))
                    .or_default()
                    .0 += 1
            }
            EventType::OaMenuClick => {
                self.menu
                    .entry((day, s("entry"), s("variant")))
                    .or_default()
                    .1 += 1
            }
            EventType::OaArticleRead => {
                self.article.entry((day, s("article_id"))).or_default().0 += 1
            }
            EventType::OaArticleClick => {
                self.article.entry((day, s("article_id"))).or_default().1 += 1
            }
            _ => {}
        }
    }
}

#[derive(Serialize)]
struct MenuRow<'a> {
    day: NaiveDate,
    entry: &'a str,
    variant: &'a str,
    exposures: i64,
    clicks: i64,
}

#[derive(Serialize)]
struct ArticleRow<'a> {
    day: NaiveDate,
    article_id: &'a str,
    reads: i64,
    clicks: i64,
}

#[derive(Serialize)]
struct Keyed<'a, T: Serialize> {
    member_key: &'a str,
    #[serde(flatten)]
    fact: &'a T,
}

#[derive(Serialize)]
struct WeekRow<'a> {
    member_key: &'a str,
    cohort_week: NaiveDate,
    week_offset: i32,
}

#[derive(Default)]
struct Affected {
    days: BTreeSet<String>,
    conversion_days: BTreeSet<String>,
    follower_days: BTreeSet<String>,
    weeks: BTreeSet<String>,
    experiments: BTreeSet<String>,
}

fn json<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".to_owned())
}

/// Adds the traffic counts of new events.
pub(crate) async fn count_traffic<C: MetricsDb + Send + ?Sized>(
    db: &mut C,
    counts: &TrafficCounts,
) -> Result<(), StoreError> {
    if !counts.menu.is_empty() {
        let rows: Vec<MenuRow> = counts
            .menu
            .iter()
            .map(|((day, entry, variant), (exposures, clicks))| MenuRow {
                day: *day,
                entry,
                variant,
                exposures: *exposures,
                clicks: *clicks,
            })
            .collect();
        db.exec(Stmt::UpsertMenu, &[&json(&rows)]).await?;
    }
    if !counts.article.is_empty() {
        let rows: Vec<ArticleRow> = counts
            .article
            .iter()
            .map(|((day, article_id), (reads, clicks))| ArticleRow {
                day: *day,
                article_id,
                reads: *reads,
                clicks: *clicks,
            })
            .collect();
        db.exec(Stmt::UpsertArticle, &[&json(&rows)]).await?;
    }
    Ok(())
}

/// Replaces the facts of `members` (every touched member key, with its new facts; a key
/// without facts — merged into another member — loses its old ones) and recounts what moved.
pub(crate) async fn replace_facts<C: MetricsDb + Send + ?Sized>(
    db: &mut C,
    keys_json: &str,
    members: &[(String, MemberFacts)],
) -> Result<(), StoreError> {
    let mut affected = Affected::default();
    for (tag, value) in db.texts(Stmt::OldFactKeys, &[keys_json]).await? {
        match tag.as_str() {
            "d" => affected.days.insert(value),
            "c" => affected.conversion_days.insert(value),
            "f" => affected.follower_days.insert(value),
            "w" => affected.weeks.insert(value),
            _ => affected.experiments.insert(value),
        };
    }
    for stmt in [
        Stmt::DeleteDays,
        Stmt::DeleteConversions,
        Stmt::DeleteFollowers,
        Stmt::DeleteWeeks,
        Stmt::DeleteExperiments,
    ] {
        db.exec(stmt, &[keys_json]).await?;
    }

    let mut days: Vec<Keyed<DayFact>> = Vec::new();
    let mut conversions = Vec::new();
    let mut followers = Vec::new();
    let mut weeks = Vec::new();
    let mut experiments = Vec::new();
    for (key, f) in members {
        for d in &f.days {
            affected.days.insert(d.day.to_string());
            days.push(Keyed {
                member_key: key,
                fact: d,
            });
        }
        if let Some(c) = &f.conversion {
            affected.conversion_days.insert(c.cohort_day.to_string());
            conversions.push(Keyed {
                member_key: key,
                fact: c,
            });
        }
        if let Some(c) = &f.follower {
            affected.follower_days.insert(c.cohort_day.to_string());
            followers.push(Keyed {
                member_key: key,
                fact: c,
            });
        }
        for (cohort_week, week_offset) in &f.weeks {
            affected.weeks.insert(cohort_week.to_string());
            weeks.push(WeekRow {
                member_key: key,
                cohort_week: *cohort_week,
                week_offset: *week_offset,
            });
        }
        for x in &f.experiments {
            affected.experiments.insert(x.experiment.clone());
            experiments.push(Keyed {
                member_key: key,
                fact: x,
            });
        }
    }
    if !days.is_empty() {
        db.exec(Stmt::InsertDays, &[&json(&days)]).await?;
    }
    if !conversions.is_empty() {
        db.exec(Stmt::InsertConversions, &[&json(&conversions)])
            .await?;
    }
    if !followers.is_empty() {
        db.exec(Stmt::InsertFollowers, &[&json(&followers)]).await?;
    }
    if !weeks.is_empty() {
        db.exec(Stmt::InsertWeeks, &[&json(&weeks)]).await?;
    }
    if !experiments.is_empty() {
        db.exec(Stmt::InsertExperiments, &[&json(&experiments)])
            .await?;
    }

    for (set, delete, recount) in [
        (&affected.days, Stmt::DeleteLinkage, Stmt::RecountLinkage),
        (
            &affected.conversion_days,
            Stmt::DeleteRepurchase,
            Stmt::RecountRepurchase,
        ),
        (
            &affected.follower_days,
            Stmt::DeleteFollowerCounts,
            Stmt::RecountFollowerCounts,
        ),
        (&affected.weeks, Stmt::DeleteWeekly, Stmt::RecountWeekly),
    ] {
        if !set.is_empty() {
            let list = json(set);
            db.exec(delete, &[&list]).await?;
            db.exec(recount, &[&list]).await?;
        }
    }
    if !affected.experiments.is_empty() {
        let list = json(&affected.experiments);
        let mut by_experiment: BTreeMap<String, Vec<VariantCounts>> = BTreeMap::new();
        for (experiment, variant, exposed, clicked) in db.variant_counts(&list).await? {
            by_experiment
                .entry(experiment)
                .or_default()
                .push(VariantCounts {
                    variant,
                    exposed,
                    clicked,
                });
        }
        let rows: Vec<_> = by_experiment
            .iter()
            .flat_map(|(x, v)| readout(x, v))
            .collect();
        db.exec(Stmt::DeleteReadout, &[&list]).await?;
        if !rows.is_empty() {
            db.exec(Stmt::InsertReadout, &[&json(&rows)]).await?;
        }
    }
    Ok(())
}

/// The statements of the metrics fold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stmt {
    UpsertMenu,
    UpsertArticle,
    OldFactKeys,
    DeleteDays,
    DeleteConversions,
    DeleteFollowers,
    DeleteWeeks,
    DeleteExperiments,
    InsertDays,
    InsertConversions,
    InsertFollowers,
    InsertWeeks,
    InsertExperiments,
    DeleteLinkage,
    RecountLinkage,
    DeleteRepurchase,
    RecountRepurchase,
    DeleteFollowerCounts,
    RecountFollowerCounts,
    DeleteWeekly,
    RecountWeekly,
    VariantCounts,
    DeleteReadout,
    InsertReadout,
}

/// A table's columns with their PostgreSQL types, for reading JSON records.
type Columns = &'static [(&'static str, &'static str)];

const MENU: Columns = &[
    ("day", "date"),
    ("entry", "text"),
    ("variant", "text"),
    ("exposures", "bigint"),
    ("clicks", "bigint"),
];
const ARTICLE: Columns = &[
    ("day", "date"),
    ("article_id", "text"),
    ("reads", "bigint"),
    ("clicks", "bigint"),
];
const DAYS: Columns = &[
    ("member_key", "text"),
    ("day", "date"),
    ("mp_visit", "boolean"),
    ("oa_guided", "boolean"),
    ("prompt_follow", "boolean"),
    ("core_user", "boolean"),
    ("guided_order", "boolean"),
    ("guided_converted_7d", "boolean"),
];
const CONVERSIONS: Columns = &[
    ("member_key", "text"),
    ("t0", "timestamptz"),
    ("cohort_day", "date"),
    ("repurchased", "boolean"),
];
const FOLLOWERS: Columns = &[
    ("member_key", "text"),
    ("t0", "timestamptz"),
    ("cohort_day", "date"),
    ("retained", "boolean"),
];
const WEEKS: Columns = &[
    ("member_key", "text"),
    ("cohort_week", "date"),
    ("week_offset", "integer"),
];
const EXPERIMENTS: Columns = &[
    ("member_key", "text"),
    ("experiment", "text"),
    ("variant", "text"),
    ("first_exposed_at", "timestamptz"),
    ("clicked", "boolean"),
];
const READOUT: Columns = &[
    ("experiment", "text"),
    ("variant", "text"),
    ("exposed_users", "bigint"),
    ("clicked_users", "bigint"),
    ("ctr", "double precision"),
    ("lift", "double precision"),
    ("p_value", "double precision"),
    ("ci_low", "double precision"),
    ("ci_high", "double precision"),
];

/// `INSERT INTO table (cols) SELECT … FROM <$1 as records>`, in the dialect's JSON reading.
fn insert(d: Dialect, table: &str, cols: Columns) -> String {
    let names: Vec<&str> = cols.iter().map(|c| c.0).collect();
    match d {
        Dialect::Postgres => {
            let typed: Vec<String> = cols.iter().map(|(n, t)| format!("{n} {t}")).collect();
            format!(
                "INSERT INTO {table} ({}) SELECT {} FROM jsonb_to_recordset($1::jsonb) AS x({})",
                names.join(", "),
                names.join(", "),
                typed.join(", ")
            )
        }
        Dialect::Sqlite => {
            let values: Vec<String> = names.iter().map(|n| format!("value ->> '{n}'")).collect();
            format!(
                "INSERT INTO {table} ({}) SELECT {} FROM json_each($1) WHERE true",
                names.join(", "),
                values.join(", ")
            )
        }
    }
}

/// The JSON array in `$n` as a set of values, typed for comparison with a `ty` column.
fn list(d: Dialect, n: usize, ty: &str) -> String {
    match d {
        Dialect::Postgres => format!("(SELECT jsonb_array_elements_text(${n}::jsonb)::{ty})"),
        Dialect::Sqlite => format!("(SELECT value FROM json_each(${n}))"),
    }
}

fn build(d: Dialect) -> BTreeMap<Stmt, String> {
    use Stmt::*;
    let keys = list(d, 1, "text");
    let dates = list(d, 1, "date");
    let text = |col: &str| match d {
        Dialect::Postgres => format!("{col}::text"),
        Dialect::Sqlite => col.to_owned(),
    };
    let mut m = BTreeMap::new();
    m.insert(UpsertMenu, format!("{} ON CONFLICT (day, entry, variant) DO UPDATE SET exposures = metric_menu_entry_daily.exposures + excluded.exposures, clicks = metric_menu_entry_daily.clicks + excluded.clicks", insert(d, "metric_menu_entry_daily", MENU)));
    m.insert(UpsertArticle, format!("{} ON CONFLICT (day, article_id) DO UPDATE SET reads = metric_article_daily.reads + excluded.reads, clicks = metric_article_daily.clicks + excluded.clicks", insert(d, "metric_article_daily", ARTICLE)));
    m.insert(
        OldFactKeys,
        format!(
            "SELECT DISTINCT 'd', {} FROM fact_member_day WHERE member_key IN {keys}
         UNION ALL SELECT DISTINCT 'c', {} FROM fact_conversion WHERE member_key IN {keys}
         UNION ALL SELECT DISTINCT 'f', {} FROM fact_follower WHERE member_key IN {keys}
         UNION ALL SELECT DISTINCT 'w', {} FROM fact_member_week WHERE member_key IN {keys}
         UNION ALL SELECT DISTINCT 'x', experiment FROM fact_experiment WHERE member_key IN {keys}",
            text("day"),
            text("cohort_day"),
            text("cohort_day"),
            text("cohort_week")
        ),
    );
    for (stmt, table) in [
        (DeleteDays, "fact_member_day"),
        (DeleteConversions, "fact_conversion"),
        (DeleteFollowers, "fact_follower"),
        (DeleteWeeks, "fact_member_week"),
        (DeleteExperiments, "fact_experiment"),
    ] {
        m.insert(
            stmt,
            format!("DELETE FROM {table} WHERE member_key IN {keys}"),
        );
    }
    m.insert(InsertDays, insert(d, "fact_member_day", DAYS));
    m.insert(InsertConversions, insert(d, "fact_conversion", CONVERSIONS));
    m.insert(InsertFollowers, insert(d, "fact_follower", FOLLOWERS));
    m.insert(InsertWeeks, insert(d, "fact_member_week", WEEKS));
    m.insert(InsertExperiments, insert(d, "fact_experiment", EXPERIMENTS));
    m.insert(
        DeleteLinkage,
        format!("DELETE FROM metric_linkage_daily WHERE day IN {dates}"),
    );
    m.insert(RecountLinkage, format!(
        "INSERT INTO metric_linkage_daily (day, mp_users, oa_guided_users, prompt_follows, core_users, guided_order_users, guided_converted_7d)
         SELECT day, count(*) FILTER (WHERE mp_visit), count(*) FILTER (WHERE oa_guided), count(*) FILTER (WHERE prompt_follow),
                count(*) FILTER (WHERE core_user), count(*) FILTER (WHERE guided_order), count(*) FILTER (WHERE guided_converted_7d)
         FROM fact_member_day WHERE day IN {dates} GROUP BY day"));
    m.insert(
        DeleteRepurchase,
        format!("DELETE FROM retention_repurchase_30d_counts WHERE cohort_day IN {dates}"),
    );
    m.insert(RecountRepurchase, format!(
        "INSERT INTO retention_repurchase_30d_counts (cohort_day, converted, repurchased)
         SELECT cohort_day, count(*), count(*) FILTER (WHERE repurchased) FROM fact_conversion WHERE cohort_day IN {dates} GROUP BY cohort_day"));
    m.insert(
        DeleteFollowerCounts,
        format!("DELETE FROM retention_follower_30d_counts WHERE cohort_day IN {dates}"),
    );
    m.insert(RecountFollowerCounts, format!(
        "INSERT INTO retention_follower_30d_counts (cohort_day, followers, retained)
         SELECT cohort_day, count(*), count(*) FILTER (WHERE retained) FROM fact_follower WHERE cohort_day IN {dates} GROUP BY cohort_day"));
    m.insert(
        DeleteWeekly,
        format!("DELETE FROM retention_weekly_counts WHERE cohort_week IN {dates}"),
    );
    m.insert(RecountWeekly, format!(
        "INSERT INTO retention_weekly_counts (cohort_week, week_offset, active)
         SELECT cohort_week, week_offset, count(*) FROM fact_member_week WHERE cohort_week IN {dates} GROUP BY cohort_week, week_offset"));
    m.insert(
        VariantCounts,
        format!(
        "SELECT experiment, variant, count(*), count(*) FILTER (WHERE clicked) FROM fact_experiment
         WHERE experiment IN {keys} AND variant IS NOT NULL GROUP BY experiment, variant"),
    );
    m.insert(
        DeleteReadout,
        format!("DELETE FROM ab_readout WHERE experiment IN {keys}"),
    );
    m.insert(InsertReadout, insert(d, "ab_readout", READOUT));
    m
}

pub(crate) fn sql(d: Dialect, s: Stmt) -> &'static str {
    static PG: OnceLock<BTreeMap<Stmt, String>> = OnceLock::new();
    static LITE: OnceLock<BTreeMap<Stmt, String>> = OnceLock::new();
    let m = match d {
        Dialect::Postgres => PG.get_or_init(|| build(Dialect::Postgres)),
        Dialect::Sqlite => LITE.get_or_init(|| build(Dialect::Sqlite)),
    };
    m.get(&s).map(String::as_str).unwrap_or("")
}

/// The metrics statements run on one connection of either dialect.
#[async_trait]
pub(crate) trait MetricsDb {
    async fn exec(&mut self, s: Stmt, args: &[&str]) -> Result<(), StoreError>;
    async fn texts(&mut self, s: Stmt, args: &[&str]) -> Result<Vec<(String, String)>, StoreError>;
    async fn variant_counts(
        &mut self,
        experiments: &str,
    ) -> Result<Vec<(String, String, i64, i64)>, StoreError>;
}

macro_rules! metrics_db {
    ($conn:ty, $dialect:expr) => {
        #[async_trait]
        impl MetricsDb for $conn {
            async fn exec(&mut self, s: Stmt, args: &[&str]) -> Result<(), StoreError> {
                let mut q = sqlx::query(sql($dialect, s));
                for a in args {
                    q = q.bind(*a);
                }
                q.execute(self).await?;
                Ok(())
            }
            async fn texts(
                &mut self,
                s: Stmt,
                args: &[&str],
            ) -> Result<Vec<(String, String)>, StoreError> {
                let mut q = sqlx::query_as(sql($dialect, s));
                for a in args {
                    q = q.bind(*a);
                }
                Ok(q.fetch_all(self).await?)
            }
            async fn variant_counts(
                &mut self,
                experiments: &str,
            ) -> Result<Vec<(String, String, i64, i64)>, StoreError> {
                Ok(sqlx::query_as(sql($dialect, Stmt::VariantCounts))
                    .bind(experiments)
                    .fetch_all(self)
                    .await?)
            }
        }
    };
}

metrics_db!(sqlx::PgConnection, Dialect::Postgres);
metrics_db!(sqlx::SqliteConnection, Dialect::Sqlite);
