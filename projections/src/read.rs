//! Reads of the core read models in one shape for both dialects, for the query API and for
//! tests that compare the two stores. Times come back as `DateTime<Utc>` whatever the store.

use chrono::{DateTime, Utc};
use liandong_store::sql::{text, ts_text, Arg, Statement};
use liandong_store::{Dialect, ReadStore, StoreError};
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

/// The columns of `member_profile`, times as the canonical text of the SQLite store.
fn profile_columns(d: Dialect) -> String {
    let ts = |col: &str| format!("{} AS {col}", ts_text(d, col));
    format!(
        "member_key, unionid, oa_openid, mp_openid, {}, {}, first_from, following, {}, follow_via,
         orders_paid, revenue_fen, {}, {}, coupons_claimed, coupons_redeemed, activity_notifications, {}",
        ts("first_seen_at"),
        ts("last_seen_at"),
        ts("followed_at"),
        ts("first_paid_at"),
        ts("last_paid_at"),
        ts("last_prompt_at"),
    )
}

static PROFILES: Statement = Statement::new(|d| {
    format!(
        "SELECT {} FROM member_profile ORDER BY member_key",
        profile_columns(d)
    )
});
static PROFILE: Statement = Statement::new(|d| {
    format!(
        "SELECT {} FROM member_profile WHERE member_key = $1",
        profile_columns(d)
    )
});

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
    let rows: Vec<ProfileText> = store.fetch_all(PROFILES.text(store.dialect()), &[]).await?;
    rows.into_iter().map(MemberProfile::try_from).collect()
}

/// One member's profile.
pub async fn member_profile(
    store: &ReadStore,
    member_key: &str,
) -> Result<Option<MemberProfile>, StoreError> {
    let row: Option<ProfileText> = store
        .fetch_optional(PROFILE.text(store.dialect()), &[member_key.into()])
        .await?;
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

static EVENT_IDENTITIES: Statement = Statement::new(|d| {
    format!(
        "SELECT {} AS event_id, type, member_key, unionid, oa_openid, mp_openid, source_from, {} AS day
         FROM events ORDER BY 1",
        text(d, "event_id"),
        text(d, "day")
    )
});

/// Every row of `events` (identity columns), ordered by event_id.
pub async fn event_identities(store: &ReadStore) -> Result<Vec<EventIdentity>, StoreError> {
    store
        .fetch_all(EVENT_IDENTITIES.text(store.dialect()), &[])
        .await
}

/// A date range, both ends inclusive; `None` is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Range {
    pub from: Option<chrono::NaiveDate>,
    pub to: Option<chrono::NaiveDate>,
}

/// A row of `metric_menu_entry_daily`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, sqlx::FromRow)]
pub struct MenuEntryDay {
    pub day: String,
    pub entry: String,
    pub variant: String,
    pub exposures: i64,
    pub clicks: i64,
}

/// A row of `metric_article_daily`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, sqlx::FromRow)]
pub struct ArticleDay {
    pub day: String,
    pub article_id: String,
    pub reads: i64,
    pub clicks: i64,
}

/// One article's counts of `metric_article_daily` summed over a range.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, sqlx::FromRow)]
pub struct ArticleTotal {
    pub article_id: String,
    pub reads: i64,
    pub clicks: i64,
}

/// A row of `metric_linkage_daily`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, sqlx::FromRow)]
pub struct LinkageDay {
    pub day: String,
    pub mp_users: i64,
    pub oa_guided_users: i64,
    pub prompt_follows: i64,
    pub core_users: i64,
    pub guided_order_users: i64,
    pub guided_converted_7d: i64,
}

/// A row of `retention_repurchase_30d` or `retention_follower_30d`: a cohort, its size, how
/// many of it repurchased / were retained, and whether the 30 days are over.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, sqlx::FromRow)]
pub struct Cohort30d {
    pub cohort_day: String,
    pub size: i64,
    pub kept: i64,
    pub mature: bool,
}

/// A row of `retention_weekly`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, sqlx::FromRow)]
pub struct WeeklyRetention {
    pub cohort_week: String,
    pub week_offset: i32,
    pub cohort_size: i64,
    pub active: i64,
}

/// A row of `metric_message_daily`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, sqlx::FromRow)]
pub struct MessageDay {
    pub day: String,
    pub channel: String,
    pub template_id: String,
    pub sent_users: i64,
    pub delivered_users: i64,
    pub clicked_users: i64,
    pub visit_users: i64,
    pub converted_users: i64,
}

/// A row of `metric_activity`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, sqlx::FromRow)]
pub struct ActivityRow {
    pub activity_id: String,
    pub reserved_users: i64,
    pub joined_users: i64,
    pub reserved_joined_users: i64,
    pub guided_joined_users: i64,
    pub groups_started: i64,
    pub groups_completed: i64,
    pub orders_paid: i64,
    pub order_users: i64,
    pub revenue_fen: i64,
}

/// A row of `ab_readout`: the statistics module's readout, as stored.
pub use crate::ab::Readout as AbRow;

/// A day column as text, and `$n` compared with it, in the store's dialect.
fn day_sql(store: &ReadStore, col: &str) -> (String, &'static str) {
    let cast = match store.dialect() {
        Dialect::Postgres => "::date",
        Dialect::Sqlite => "",
    };
    (text(store.dialect(), col), cast)
}

/// The two ends of `range` as arguments (NULL when open).
fn range_args(range: Range) -> [Arg; 2] {
    [
        range.from.map(|d| d.to_string()).into(),
        range.to.map(|d| d.to_string()).into(),
    ]
}

/// Rows of a per-day relation in `range`, filtered on text columns equal to values.
async fn by_day<T: liandong_store::sql::Row>(
    store: &ReadStore,
    select: &str,
    table: &str,
    day_col: &str,
    range: Range,
    filters: &[(&str, &str)],
    order: &str,
) -> Result<Vec<T>, StoreError> {
    let (_, cast) = day_sql(store, day_col);
    let mut sql = format!(
        "SELECT {select} FROM {table} WHERE ($1 IS NULL OR {day_col} >= $1{cast}) AND ($2 IS NULL OR {day_col} <= $2{cast})"
    );
    for (i, (col, _)) in filters.iter().enumerate() {
        sql.push_str(&format!(" AND {col} = ${}", i + 3));
    }
    sql.push_str(&format!(" ORDER BY {order}"));
    let args: Vec<Arg> = range_args(range)
        .into_iter()
        .chain(filters.iter().map(|(_, v)| Arg::from(*v)))
        .collect();
    store.fetch_all(&sql, &args).await
}

/// `metric_menu_entry_daily` in `range`, optionally for one entry.
pub async fn menu_entry_daily(
    store: &ReadStore,
    range: Range,
    entry: Option<&str>,
) -> Result<Vec<MenuEntryDay>, StoreError> {
    menu_entry_daily_filtered(store, range, entry, None).await
}

/// `metric_menu_entry_daily` in `range`, optionally for one entry and/or one variant (`""` is
/// the rows without a variant).
pub async fn menu_entry_daily_filtered(
    store: &ReadStore,
    range: Range,
    entry: Option<&str>,
    variant: Option<&str>,
) -> Result<Vec<MenuEntryDay>, StoreError> {
    let (day, _) = day_sql(store, "day");
    let filters: Vec<(&str, &str)> = [("entry", entry), ("variant", variant)]
        .into_iter()
        .filter_map(|(col, v)| Some((col, v?)))
        .collect();
    by_day(
        store,
        &format!("{day} AS day, entry, variant, exposures, clicks"),
        "metric_menu_entry_daily",
        "day",
        range,
        &filters,
        "day, entry, variant",
    )
    .await
}

/// `metric_article_daily` in `range`, optionally for one article.
pub async fn article_daily(
    store: &ReadStore,
    range: Range,
    article: Option<&str>,
) -> Result<Vec<ArticleDay>, StoreError> {
    let (day, _) = day_sql(store, "day");
    by_day(
        store,
        &format!("{day} AS day, article_id, reads, clicks"),
        "metric_article_daily",
        "day",
        range,
        article.map(|a| ("article_id", a)).as_slice(),
        "day, article_id",
    )
    .await
}

/// Per-article totals of `metric_article_daily` over `range` (one row per article with a row in
/// the range), ordered by article, optionally for one article; at most `limit` articles after
/// `after` (exclusive).
pub async fn article_totals(
    store: &ReadStore,
    range: Range,
    article: Option<&str>,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<ArticleTotal>, StoreError> {
    let (_, cast) = day_sql(store, "day");
    let sql = format!(
        "SELECT article_id, CAST(SUM(reads) AS BIGINT) AS reads, CAST(SUM(clicks) AS BIGINT) AS clicks
         FROM metric_article_daily
         WHERE ($1 IS NULL OR day >= $1{cast}) AND ($2 IS NULL OR day <= $2{cast})
           AND ($3 IS NULL OR article_id = $3) AND ($4 IS NULL OR article_id > $4)
         GROUP BY article_id ORDER BY article_id LIMIT $5"
    );
    let [from, to] = range_args(range);
    store
        .fetch_all(
            &sql,
            &[from, to, article.into(), after.into(), limit.into()],
        )
        .await
}

/// A page of `metric_article_daily` in `range`, ordered by day, article, optionally for one
/// article: at most `limit` rows after the row `after` = (day, article) (exclusive).
pub async fn article_daily_page(
    store: &ReadStore,
    range: Range,
    article: Option<&str>,
    after: Option<(chrono::NaiveDate, &str)>,
    limit: u32,
) -> Result<Vec<ArticleDay>, StoreError> {
    let (day, cast) = day_sql(store, "day");
    let sql = format!(
        "SELECT {day} AS day, article_id, reads, clicks FROM metric_article_daily
         WHERE ($1 IS NULL OR day >= $1{cast}) AND ($2 IS NULL OR day <= $2{cast})
           AND ($3 IS NULL OR article_id = $3)
           AND ($4 IS NULL OR (day, article_id) > ($4{cast}, $5))
         ORDER BY day, article_id LIMIT $6"
    );
    let [from, to] = range_args(range);
    let (after_day, after_article) = match after {
        Some((d, a)) => (Some(d.to_string()), Some(a)),
        None => (None, None),
    };
    store
        .fetch_all(
            &sql,
            &[
                from,
                to,
                article.into(),
                after_day.into(),
                after_article.into(),
                limit.into(),
            ],
        )
        .await
}

/// `metric_linkage_daily` in `range`.
pub async fn linkage_daily(store: &ReadStore, range: Range) -> Result<Vec<LinkageDay>, StoreError> {
    let (day, _) = day_sql(store, "day");
    by_day(store, &format!("{day} AS day, mp_users, oa_guided_users, prompt_follows, core_users, guided_order_users, guided_converted_7d"),
        "metric_linkage_daily", "day", range, &[], "day").await
}

/// `retention_repurchase_30d` (size = converted, kept = repurchased) for cohorts in `range`.
pub async fn repurchase_30d(store: &ReadStore, range: Range) -> Result<Vec<Cohort30d>, StoreError> {
    let (day, _) = day_sql(store, "cohort_day");
    by_day(
        store,
        &format!("{day} AS cohort_day, converted AS size, repurchased AS kept, mature"),
        "retention_repurchase_30d",
        "cohort_day",
        range,
        &[],
        "cohort_day",
    )
    .await
}

/// `retention_follower_30d` (size = followers, kept = retained) for cohorts in `range`.
pub async fn follower_30d(store: &ReadStore, range: Range) -> Result<Vec<Cohort30d>, StoreError> {
    let (day, _) = day_sql(store, "cohort_day");
    by_day(
        store,
        &format!("{day} AS cohort_day, followers AS size, retained AS kept, mature"),
        "retention_follower_30d",
        "cohort_day",
        range,
        &[],
        "cohort_day",
    )
    .await
}

/// `retention_weekly` for cohort weeks starting in `range`.
pub async fn weekly_retention(
    store: &ReadStore,
    range: Range,
) -> Result<Vec<WeeklyRetention>, StoreError> {
    let (week, _) = day_sql(store, "cohort_week");
    by_day(
        store,
        &format!("{week} AS cohort_week, week_offset, cohort_size, active"),
        "retention_weekly",
        "cohort_week",
        range,
        &[],
        "cohort_week, week_offset",
    )
    .await
}

/// `ab_readout`, optionally for one surface and/or one experiment, ordered by surface,
/// experiment and variant.
pub async fn ab_readout(
    store: &ReadStore,
    surface: Option<&str>,
    experiment: Option<&str>,
) -> Result<Vec<AbRow>, StoreError> {
    let sql = "SELECT surface, experiment, variant, exposed_users, clicked_users, ctr, lift, p_value, ci_low, ci_high
               FROM ab_readout WHERE ($1 IS NULL OR surface = $1) AND ($2 IS NULL OR experiment = $2)
               ORDER BY surface, experiment, variant";
    store
        .fetch_all(sql, &[surface.into(), experiment.into()])
        .await
}

/// `metric_message_daily` in `range`, optionally for one channel and/or one template.
pub async fn message_daily(
    store: &ReadStore,
    range: Range,
    channel: Option<&str>,
    template: Option<&str>,
) -> Result<Vec<MessageDay>, StoreError> {
    let (day, _) = day_sql(store, "day");
    let filters: Vec<(&str, &str)> = [("channel", channel), ("template_id", template)]
        .into_iter()
        .filter_map(|(col, v)| Some((col, v?)))
        .collect();
    by_day(
        store,
        &format!(
            "{day} AS day, channel, template_id, sent_users, delivered_users, clicked_users, visit_users, converted_users"
        ),
        "metric_message_daily",
        "day",
        range,
        &filters,
        "day, channel, template_id",
    )
    .await
}

/// `metric_activity`, optionally one campaign, ordered by `activity_id`.
pub async fn activities(
    store: &ReadStore,
    activity: Option<&str>,
) -> Result<Vec<ActivityRow>, StoreError> {
    let sql = "SELECT activity_id, reserved_users, joined_users, reserved_joined_users, guided_joined_users,
                      CAST(groups_started AS BIGINT) AS groups_started,
                      CAST(groups_completed AS BIGINT) AS groups_completed,
                      orders_paid, order_users, revenue_fen
               FROM metric_activity WHERE ($1 IS NULL OR activity_id = $1) ORDER BY activity_id";
    store.fetch_all(sql, &[activity.into()]).await
}
