//! Reads of the core read models in one shape for both dialects, for the query API and for
//! tests that compare the two stores. Times come back as `DateTime<Utc>` whatever the store.

use chrono::{DateTime, Utc};
use liandong_store::{ReadStore, StoreError};
use serde::Serialize;

use crate::member_profile::MemberProfile;

#[derive(sqlx::FromRow)]
struct ProfileText {
    member_key: String,
    unionid: Option<String>,
    oa_openid: Option<String>,
    mp_openid: Option<String>,
    first_seen_at: String,
    last_seen_at: String,
    first_from: Option<String>,
    following: bool,
    followed_at: Option<String>,
    follow_via: Option<String>,
    orders_paid: i64,
    revenue_fen: i64,
    first_paid_at: Option<String>,
    last_paid_at: Option<String>,
    coupons_claimed: i64,
    coupons_redeemed: i64,
    activity_notifications: bool,
    last_prompt_at: Option<String>,
}

/// PostgreSQL renders a `timestamptz` in the canonical text form of the SQLite store.
macro_rules! pg_ts {
    ($col:literal) => {
        concat!(
            "to_char(",
            $col,
            " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS ",
            $col
        )
    };
}

const PG_PROFILE: &str = concat!(
    "SELECT member_key, unionid, oa_openid, mp_openid, ",
    pg_ts!("first_seen_at"),
    ", ",
    pg_ts!("last_seen_at"),
    ", first_from, following, ",
    pg_ts!("followed_at"),
    ", follow_via, orders_paid, revenue_fen, ",
    pg_ts!("first_paid_at"),
    ", ",
    pg_ts!("last_paid_at"),
    ", coupons_claimed, coupons_redeemed, activity_notifications, ",
    pg_ts!("last_prompt_at"),
    " FROM member_profile"
);
const SQLITE_PROFILE: &str = "SELECT member_key, unionid, oa_openid, mp_openid, first_seen_at, last_seen_at, \
    first_from, following, followed_at, follow_via, orders_paid, revenue_fen, first_paid_at, last_paid_at, \
    coupons_claimed, coupons_redeemed, activity_notifications, last_prompt_at FROM member_profile";

fn time(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Db(sqlx::Error::Decode(format!("time {s:?}: {e}").into())))
}

fn opt_time(s: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    s.as_deref().map(time).transpose()
}

impl TryFrom<ProfileText> for MemberProfile {
    type Error = StoreError;
    fn try_from(r: ProfileText) -> Result<Self, StoreError> {
        Ok(MemberProfile {
            first_seen_at: time(&r.first_seen_at)?,
            last_seen_at: time(&r.last_seen_at)?,
            followed_at: opt_time(r.followed_at)?,
            first_paid_at: opt_time(r.first_paid_at)?,
            last_paid_at: opt_time(r.last_paid_at)?,
            last_prompt_at: opt_time(r.last_prompt_at)?,
            member_key: r.member_key,
            unionid: r.unionid,
            oa_openid: r.oa_openid,
            mp_openid: r.mp_openid,
            first_from: r.first_from,
            following: r.following,
            follow_via: r.follow_via,
            orders_paid: r.orders_paid,
            revenue_fen: r.revenue_fen,
            coupons_claimed: r.coupons_claimed,
            coupons_redeemed: r.coupons_redeemed,
            activity_notifications: r.activity_notifications,
        })
    }
}

/// Every row of `member_profile`, ordered by member_key.
pub async fn member_profiles(store: &ReadStore) -> Result<Vec<MemberProfile>, StoreError> {
    let rows: Vec<ProfileText> = match store {
        ReadStore::Postgres(p) => {
            sqlx::query_as(&format!("{PG_PROFILE} ORDER BY member_key"))
                .fetch_all(p)
                .await?
        }
        ReadStore::Sqlite(p) => {
            sqlx::query_as(&format!("{SQLITE_PROFILE} ORDER BY member_key"))
                .fetch_all(p)
                .await?
        }
    };
    rows.into_iter().map(MemberProfile::try_from).collect()
}

/// One member's profile.
pub async fn member_profile(
    store: &ReadStore,
    member_key: &str,
) -> Result<Option<MemberProfile>, StoreError> {
    let row: Option<ProfileText> = match store {
        ReadStore::Postgres(p) => {
            sqlx::query_as(&format!("{PG_PROFILE} WHERE member_key = $1"))
                .bind(member_key)
                .fetch_optional(p)
                .await?
        }
        ReadStore::Sqlite(p) => {
            sqlx::query_as(&format!("{SQLITE_PROFILE} WHERE member_key = $1"))
                .bind(member_key)
                .fetch_optional(p)
                .await?
        }
    };
    row.map(MemberProfile::try_from).transpose()
}

/// The identity-relevant columns of one `events` row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, sqlx::FromRow)]
pub struct EventIdentity {
    pub event_id: String,
    #[sqlx(rename = "type")]
    #[serde(rename = "type")]
    pub event_type: String,
    pub member_key: String,
    pub unionid: Option<String>,
    pub oa_openid: Option<String>,
    pub mp_openid: Option<String>,
    pub source_from: Option<String>,
    pub day: String,
}

/// Every row of `events` (identity columns), ordered by event_id.
pub async fn event_identities(store: &ReadStore) -> Result<Vec<EventIdentity>, StoreError> {
    Ok(match store {
        ReadStore::Postgres(p) => sqlx::query_as(
            "SELECT event_id::text AS event_id, type, member_key, unionid, oa_openid, mp_openid, source_from,
                    day::text AS day FROM events ORDER BY event_id::text",
        )
        .fetch_all(p)
        .await?,
        ReadStore::Sqlite(p) => sqlx::query_as(
            "SELECT event_id, type, member_key, unionid, oa_openid, mp_openid, source_from, day
             FROM events ORDER BY event_id",
        )
        .fetch_all(p)
        .await?,
    })
}
