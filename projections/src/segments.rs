//! Segments (the playbook's 二(六)): members counted — or, for an admin's export, listed — by
//! interest (`member_interest.category`), following, last activity and first `from`, read from
//! `member_profile` and `member_interest`. Every filter is optional.

use chrono::{DateTime, Utc};
use liandong_store::{Dialect, ReadStore, StoreError};

use crate::member_profile::ts;
use crate::sql::Arg;

/// Who is in a segment. `None` leaves a dimension open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Segment {
    /// Members with a `member_interest` row of this category.
    pub interest: Option<String>,
    /// Followers (`true`) or not (`false`).
    pub following: Option<bool>,
    /// Members whose last event is at or after this time.
    pub active_since: Option<DateTime<Utc>>,
    /// Members whose first resolved `from` is this.
    pub first_from: Option<String>,
}

impl Segment {
    /// The `FROM … WHERE …` of the members in the segment, with only the filters it sets, and
    /// their arguments (`$1…`). Each combination of filters is its own statement, so the
    /// planner knows which apply (one statement of `($1 = '' OR …)` for every combination
    /// read 3.5 times slower at 1 M members: `benches/reads.rs`).
    fn from_where(&self, d: Dialect) -> (String, Vec<Arg>) {
        let mut conds = Vec::new();
        let mut args: Vec<Arg> = Vec::new();
        let mut param = |v: String| {
            args.push(v.into());
            format!("${}", args.len())
        };
        if let Some(c) = &self.interest {
            conds.push(format!(
                "EXISTS (SELECT 1 FROM member_interest i WHERE i.member_key = p.member_key AND i.category = {})",
                param(c.clone())
            ));
        }
        if let Some(f) = self.following {
            conds.push(if f { "p.following" } else { "NOT p.following" }.to_owned());
        }
        if let Some(t) = self.active_since {
            let p = param(ts(&t));
            conds.push(match d {
                Dialect::Postgres => format!("p.last_seen_at >= {p}::timestamptz"),
                // Times are canonical RFC 3339 text: they compare as text.
                Dialect::Sqlite => format!("p.last_seen_at >= {p}"),
            });
        }
        if let Some(f) = &self.first_from {
            conds.push(format!("p.first_from = {}", param(f.clone())));
        }
        let mut sql = "FROM member_profile p".to_owned();
        if !conds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conds.join(" AND "));
        }
        (sql, args)
    }
}

/// How many members are in `segment`.
pub async fn count(store: &ReadStore, segment: &Segment) -> Result<i64, StoreError> {
    let (from_where, args) = segment.from_where(store.dialect());
    let rows: Vec<(i64,)> = store
        .fetch_all(&format!("SELECT count(*) {from_where}"), &args)
        .await?;
    Ok(rows.first().map_or(0, |(n,)| *n))
}

/// The member keys of `segment`, at most `limit`, in key order.
pub async fn member_keys(
    store: &ReadStore,
    segment: &Segment,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let (from_where, mut args) = segment.from_where(store.dialect());
    args.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
    let sql = format!(
        "SELECT p.member_key {from_where} ORDER BY p.member_key LIMIT ${}",
        args.len()
    );
    let rows: Vec<(String,)> = store.fetch_all(&sql, &args).await?;
    Ok(rows.into_iter().map(|(k,)| k).collect())
}
