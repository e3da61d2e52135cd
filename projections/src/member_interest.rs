//! `member_interest` (METRICS.md, "Interests"): for each member and each non-empty content
//! `category`, how many of its `oa.article.read` and `mp.page_view` events carried it, and when
//! the latest of them happened — what the OA server and the MP backend read to put a member's
//! interests first (二(六)).
//!
//! Part of the core projection. A member's rows are its whole state: counts and a latest time
//! per category, merged with the categories of its new events ([`fold`]: sums and a maximum,
//! independent of arrival order), so an event costs one row, whatever the member's history.
//! A member a late binding emptied, or an erasure touched, is reset and its remaining events
//! merged again (see `members.rs`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use liandong_event::EventType;
use liandong_store::StoreError;
use serde::Serialize;

use crate::member_profile::{ts, ProfileEvent};
use crate::sql::{self, json, Db, Statement, Ty};

/// One category of a member's interests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interest {
    pub article_reads: i64,
    pub page_views: i64,
    /// The latest `occurred_at` of either.
    pub last_at: Option<DateTime<Utc>>,
}

/// A member's interests by category.
pub type Interests = BTreeMap<String, Interest>;

/// The category an event counts for, if it counts: an `oa.article.read` or `mp.page_view` with
/// a non-empty string `props.category`.
pub fn category_of(e: &ProfileEvent) -> Option<&str> {
    matches!(
        e.event_type,
        EventType::OaArticleRead | EventType::MpPageView
    )
    .then(|| e.props.get("category").and_then(|c| c.as_str()))
    .flatten()
    .filter(|c| !c.is_empty())
}

/// Adds `events` to `interests`: counts add up, the latest time wins. Order-independent.
pub fn fold<'e>(interests: &mut Interests, events: impl IntoIterator<Item = &'e ProfileEvent>) {
    for e in events {
        let Some(category) = category_of(e) else {
            continue;
        };
        let i = interests.entry(category.to_owned()).or_default();
        match e.event_type {
            EventType::OaArticleRead => i.article_reads += 1,
            _ => i.page_views += 1,
        }
        i.last_at = i.last_at.max(Some(e.occurred_at));
    }
}

#[derive(Serialize)]
struct Row<'a> {
    member_key: &'a str,
    category: &'a str,
    article_reads: i64,
    page_views: i64,
    last_at: String,
}

const COLUMNS: sql::Columns = &[
    ("member_key", Ty::Text),
    ("category", Ty::Text),
    ("article_reads", Ty::Int),
    ("page_views", Ty::Int),
    ("last_at", Ty::Ts),
];

static MERGE: Statement = Statement::new(|d| {
    format!(
        "{} ON CONFLICT (member_key, category) DO UPDATE SET
            article_reads = member_interest.article_reads + excluded.article_reads,
            page_views = member_interest.page_views + excluded.page_views,
            last_at = {}",
        sql::insert(d, "member_interest", COLUMNS),
        sql::greatest(d, "member_interest.last_at", "excluded.last_at")
    )
});
static DELETE: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM member_interest WHERE member_key IN {}",
        sql::values(d, 1)
    )
});

/// Drops the rows of the members in `keys` (a JSON array), before their events are merged again.
pub(crate) async fn reset<C: Db + ?Sized>(db: &mut C, keys: &str) -> Result<(), StoreError> {
    db.exec(&DELETE, &[keys]).await.map(drop)
}

/// Merges the categories of the members' new events into their rows: one statement for the
/// batch, a commutative update of each (member, category) row.
pub(crate) async fn update<C: Db + ?Sized>(
    db: &mut C,
    added: &BTreeMap<String, Vec<ProfileEvent>>,
) -> Result<(), StoreError> {
    let mut merged: BTreeMap<&str, Interests> = BTreeMap::new();
    for (key, events) in added {
        let mut interests = Interests::new();
        fold(&mut interests, events);
        if !interests.is_empty() {
            merged.insert(key, interests);
        }
    }
    let rows: Vec<Row> = merged
        .iter()
        .flat_map(|(key, interests)| {
            interests.iter().map(move |(category, i)| Row {
                member_key: key,
                category,
                article_reads: i.article_reads,
                page_views: i.page_views,
                last_at: i.last_at.map(|t| ts(&t)).unwrap_or_default(),
            })
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    db.exec(&MERGE, &[&json(&rows)]).await.map(drop)
}

/// A row of `member_interest`, as the read side shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct InterestRow {
    pub member_key: String,
    pub category: String,
    pub article_reads: i64,
    pub page_views: i64,
    /// RFC 3339, UTC, microseconds.
    pub last_at: String,
}

static SELECT: Statement = Statement::new(|d| {
    format!(
        "SELECT member_key, category, article_reads, page_views, {} FROM member_interest
         WHERE $1 = '' OR member_key = $1
         ORDER BY member_key, article_reads + page_views DESC, last_at DESC, category",
        sql::ts_text(d, "last_at")
    )
});

/// The rows of `member_interest`: one member's (`Some`), its strongest interests first (most
/// reads and views, then the most recent), or every member's.
pub async fn read(
    store: &liandong_store::ReadStore,
    member_key: Option<&str>,
) -> Result<Vec<InterestRow>, StoreError> {
    type Tuple = (String, String, i64, i64, String);
    let key = member_key.unwrap_or("");
    let rows: Vec<Tuple> = store
        .fetch_all(SELECT.text(store.dialect()), &[key.into()])
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(member_key, category, article_reads, page_views, last_at)| InterestRow {
                member_key,
                category,
                article_reads,
                page_views,
                last_at,
            },
        )
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(id: &str, t: EventType, at: &str, category: Option<&str>) -> ProfileEvent {
        ProfileEvent {
            event_id: id.into(),
            event_type: t,
            occurred_at: at.parse().unwrap(),
            source_from: None,
            props: match category {
                Some(c) => json!({ "category": c }),
                None => json!({}),
            },
        }
    }

    #[test]
    fn given_reads_and_views_when_folded_in_any_order_then_counts_and_latest_time() {
        let events = [
            event(
                "1",
                EventType::OaArticleRead,
                "2026-11-01T10:00:00Z",
                Some("烘焙"),
            ),
            event(
                "2",
                EventType::MpPageView,
                "2026-11-03T10:00:00Z",
                Some("烘焙"),
            ),
            event(
                "3",
                EventType::MpPageView,
                "2026-11-02T10:00:00Z",
                Some("玩具"),
            ),
            event(
                "4",
                EventType::OaArticleRead,
                "2026-11-04T10:00:00Z",
                Some(""),
            ),
            event("5", EventType::OaArticleRead, "2026-11-05T10:00:00Z", None),
            event(
                "6",
                EventType::OaArticleClick,
                "2026-11-06T10:00:00Z",
                Some("烘焙"),
            ),
        ];
        let mut forward = Interests::new();
        fold(&mut forward, &events);
        let mut backward = Interests::new();
        fold(&mut backward, events.iter().rev());
        assert_eq!(forward, backward);
        assert_eq!(
            forward.keys().collect::<Vec<_>>(),
            ["烘焙", "玩具"],
            "empty and missing categories, and other types, count nowhere"
        );
        let baking = &forward["烘焙"];
        assert_eq!((baking.article_reads, baking.page_views), (1, 1));
        assert_eq!(
            baking.last_at,
            Some("2026-11-03T10:00:00Z".parse().unwrap())
        );
    }

    #[test]
    fn given_two_batches_when_merged_then_equal_to_one() {
        let a = [event(
            "1",
            EventType::MpPageView,
            "2026-11-03T10:00:00Z",
            Some("玩具"),
        )];
        let b = [event(
            "2",
            EventType::MpPageView,
            "2026-11-01T10:00:00Z",
            Some("玩具"),
        )];
        let mut once = Interests::new();
        fold(&mut once, a.iter().chain(&b));
        let mut twice = Interests::new();
        fold(&mut twice, &b);
        fold(&mut twice, &a);
        assert_eq!(once, twice);
        assert_eq!(once["玩具"].page_views, 2);
    }
}
