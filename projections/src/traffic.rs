//! The traffic read models (METRICS.md, "Traffic"): `metric_menu_entry_daily` and
//! `metric_article_daily`, counts of `oa.menu.*` and `oa.article.*` events by day and dimension.
//! Only events new to the store count (the caller filters duplicates through the `events`
//! table in the same transaction); the counts are commutative `+=` updates.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use chrono_tz::Tz;
use liandong_event::{Event, EventType};
use liandong_store::StoreError;
use serde::Serialize;
use serde_json::Value;

use crate::sql::{self, json, Db, Statement, Ty};

/// Counts of `oa.menu.*` and `oa.article.*` events, by day and dimension.
#[derive(Debug, Default)]
pub(crate) struct TrafficCounts {
    menu: BTreeMap<(NaiveDate, String, String), (i64, i64)>,
    article: BTreeMap<(NaiveDate, String), (i64, i64)>,
}

impl TrafficCounts {
    /// Takes an event off the counts (an erasure deleted it from `events`).
    pub(crate) fn subtract(
        &mut self,
        t: EventType,
        day: NaiveDate,
        entry: String,
        variant: String,
        article_id: String,
    ) {
        match t {
            EventType::OaMenuExposure => self.menu.entry((day, entry, variant)).or_default().0 -= 1,
            EventType::OaMenuClick => self.menu.entry((day, entry, variant)).or_default().1 -= 1,
            EventType::OaArticleRead => self.article.entry((day, article_id)).or_default().0 -= 1,
            EventType::OaArticleClick => self.article.entry((day, article_id)).or_default().1 -= 1,
            _ => {}
        }
    }

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

static UPSERT_MENU: Statement = Statement::new(|d| {
    sql::add_counts(
        d,
        "metric_menu_entry_daily",
        &["day", "entry", "variant"],
        &[
            ("day", Ty::Date),
            ("entry", Ty::Text),
            ("variant", Ty::Text),
            ("exposures", Ty::Int),
            ("clicks", Ty::Int),
        ],
    )
});
static UPSERT_ARTICLE: Statement = Statement::new(|d| {
    sql::add_counts(
        d,
        "metric_article_daily",
        &["day", "article_id"],
        &[
            ("day", Ty::Date),
            ("article_id", Ty::Text),
            ("reads", Ty::Int),
            ("clicks", Ty::Int),
        ],
    )
});

static DROP_EMPTY_MENU: Statement = Statement::new(|_| {
    "DELETE FROM metric_menu_entry_daily WHERE exposures <= 0 AND clicks <= 0".to_owned()
});
static DROP_EMPTY_ARTICLE: Statement = Statement::new(|_| {
    "DELETE FROM metric_article_daily WHERE reads <= 0 AND clicks <= 0".to_owned()
});

/// Deletes the rows that subtractions brought down to nothing.
pub(crate) async fn drop_empty<C: Db + ?Sized>(db: &mut C) -> Result<(), StoreError> {
    db.exec(&DROP_EMPTY_MENU, &[]).await?;
    db.exec(&DROP_EMPTY_ARTICLE, &[]).await?;
    Ok(())
}

/// Adds the traffic counts of new events (or, negative, of deleted ones).
pub(crate) async fn count<C: Db + ?Sized>(
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
        db.exec(&UPSERT_MENU, &[&json(&rows)]).await?;
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
        db.exec(&UPSERT_ARTICLE, &[&json(&rows)]).await?;
    }
    Ok(())
}
