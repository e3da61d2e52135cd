//! Segments (the playbook's 二(六)): members counted — or, for an admin's export, listed — by
//! interest (`member_interest.category`), following, last activity and first `from`, read from
//! `member_profile` and `member_interest`. Every filter is optional; one statement serves every
//! combination.

use chrono::{DateTime, Utc};
use liandong_store::{ReadStore, StoreError};

use crate::member_profile::ts;
use crate::sql::{Arg, Statement};

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
    fn args(&self) -> [String; 4] {
        [
            self.interest.clone().unwrap_or_default(),
            self.following.map(|f| f.to_string()).unwrap_or_default(),
            self.active_since.map(|t| ts(&t)).unwrap_or_default(),
            self.first_from.clone().unwrap_or_default(),
        ]
    }
}

fn filter(d: liandong_store::Dialect) -> String {
    let since = match d {
        liandong_store::Dialect::Postgres => "NULLIF($3, '')::timestamptz",
        liandong_store::Dialect::Sqlite => "$3",
    };
    format!(
        "FROM member_profile p
         WHERE ($1 = '' OR EXISTS (SELECT 1 FROM member_interest i
                                   WHERE i.member_key = p.member_key AND i.category = $1))
           AND ($2 = '' OR p.following = ($2 = 'true'))
           AND ($3 = '' OR p.last_seen_at >= {since})
           AND ($4 = '' OR p.first_from = $4)"
    )
}

static COUNT: Statement = Statement::new(|d| format!("SELECT count(*) {}", filter(d)));
static KEYS: Statement = Statement::new(|d| {
    format!(
        "SELECT p.member_key {} ORDER BY p.member_key LIMIT CAST($5 AS BIGINT)",
        filter(d)
    )
});

/// How many members are in `segment`.
pub async fn count(store: &ReadStore, segment: &Segment) -> Result<i64, StoreError> {
    let args = segment.args().map(Arg::from);
    let rows: Vec<(i64,)> = store.fetch_all(COUNT.text(store.dialect()), &args).await?;
    Ok(rows.first().map_or(0, |(n,)| *n))
}

/// The member keys of `segment`, at most `limit`, in key order.
pub async fn member_keys(
    store: &ReadStore,
    segment: &Segment,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let [a, b, c, d] = segment.args().map(Arg::from);
    let args = [a, b, c, d, limit.to_string().into()];
    let rows: Vec<(String,)> = store.fetch_all(KEYS.text(store.dialect()), &args).await?;
    Ok(rows.into_iter().map(|(k,)| k).collect())
}
