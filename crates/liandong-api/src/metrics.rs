//! The metric relations of METRICS.md as JSON for dashboards: each relation's rows in a date
//! range, narrowed by its dimensions, with the rates next to the counts they are computed from.
//!
//! Rates are computed here from the stored counts, never stored themselves, so a rate and its
//! counts can never disagree; a rate over a zero denominator is `null`, not 0 (a day without
//! exposures has no click rate, which is different from a click rate of 0).
//!
//! Every endpoint takes the `analyst` role. The key is checked before the query string, so a
//! caller without a valid key learns nothing about which parameters exist.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use chrono::{Days, NaiveDate, Utc};
use liandong_auth::{authorize, Role};
use liandong_projections::read::{self, Cohort30d, Range};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, IntoResponses, ToSchema};

use crate::{ApiError, ApiState, ErrorBody};

/// Days in the default range: the last 30 days, today included.
pub const DEFAULT_DAYS: u64 = 30;

const ANALYST: &[Role] = &[Role::Analyst];

/// The answers other than 200 that every metric endpoint gives, for the OpenAPI document.
#[derive(IntoResponses)]
#[allow(dead_code)] // Only read by the OpenAPI derive; the real errors are `ApiError`.
pub enum Refusals {
    /// A malformed date, `from` after `to`, or an unknown parameter; `parameter` names it.
    #[response(status = 400)]
    BadRequest(#[to_schema] ErrorBody),
    /// No `Authorization: Bearer <key>` header, or an unknown key.
    #[response(status = 401)]
    Unauthorized(#[to_schema] ErrorBody),
    /// A valid key whose role is neither `analyst` nor `admin`.
    #[response(status = 403)]
    Forbidden(#[to_schema] ErrorBody),
    /// The read store did not answer.
    #[response(status = 503)]
    Unavailable(#[to_schema] ErrorBody),
}

// ---------------------------------------------------------------------------------------------
// Parameters

/// A date range. Unknown parameters are refused (400) rather than ignored, so a misspelt
/// filter cannot silently return unfiltered numbers.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RangeParams {
    /// First day, inclusive, as YYYY-MM-DD in the configured time zone. Default: 29 days
    /// before `to`.
    #[param(format = Date, example = "2026-10-01")]
    pub from: Option<String>,
    /// Last day, inclusive, as YYYY-MM-DD. Default: today in the configured time zone.
    #[param(format = Date, example = "2026-10-30")]
    pub to: Option<String>,
}

/// A date range and the menu's dimensions.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MenuParams {
    /// First day, inclusive (YYYY-MM-DD). Default: 29 days before `to`.
    #[param(format = Date)]
    pub from: Option<String>,
    /// Last day, inclusive (YYYY-MM-DD). Default: today.
    #[param(format = Date)]
    pub to: Option<String>,
    /// Only this menu entry.
    pub entry: Option<String>,
    /// Only this variant; empty (`variant=`) selects exposures and clicks without a variant.
    pub variant: Option<String>,
}

/// A date range, an article, and whether to answer per article or per day and article.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ArticleParams {
    /// First day, inclusive (YYYY-MM-DD). Default: 29 days before `to`.
    #[param(format = Date)]
    pub from: Option<String>,
    /// Last day, inclusive (YYYY-MM-DD). Default: today.
    #[param(format = Date)]
    pub to: Option<String>,
    /// Only this article.
    pub article: Option<String>,
    /// `total` (default): one row per article over the range, in `totals`. `day`: one row per
    /// day and article, in `rows`.
    #[param(value_type = Option<String>, pattern = "^(total|day)$", example = "day")]
    pub granularity: Option<String>,
    /// Rows per page, 1 to 5000. Default: 1000.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 5000)]
    pub limit: Option<String>,
    /// Where the page starts: the `next_cursor` of the previous page (with the same other
    /// parameters). Absent: the first page.
    pub cursor: Option<String>,
}

/// Articles or article-days per page unless `limit` says otherwise.
pub const ARTICLES_DEFAULT_LIMIT: u32 = 1000;
/// Most articles or article-days per page.
pub const ARTICLES_MAX_LIMIT: u32 = 5000;

/// A date range, a message channel and a template.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessageParams {
    /// First day, inclusive (YYYY-MM-DD). Default: 29 days before `to`.
    #[param(format = Date)]
    pub from: Option<String>,
    /// Last day, inclusive (YYYY-MM-DD). Default: today.
    #[param(format = Date)]
    pub to: Option<String>,
    /// Only this channel: `oa_template` (公众号模板消息) or `mp_notify` (小程序服务通知).
    pub channel: Option<String>,
    /// Only this template (`template_id`).
    pub template: Option<String>,
}

/// A campaign.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActivityParams {
    /// Only this campaign (`activity_id`).
    pub activity: Option<String>,
}

/// A surface and an experiment.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AbParams {
    /// Only experiments of this surface: `menu`, `article`, `template`, `follow_prompt` or
    /// `notify`.
    pub surface: Option<String>,
    /// Only this experiment.
    pub experiment: Option<String>,
}

/// The range a response covers, after defaults were applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DateRange {
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
}

impl From<DateRange> for Range {
    fn from(r: DateRange) -> Range {
        Range {
            from: Some(r.from),
            to: Some(r.to),
        }
    }
}

/// A strict `YYYY-MM-DD` (chrono alone also takes `2026-1-5` or a five-digit year).
fn parse_day(name: &'static str, value: &str) -> Result<NaiveDate, ApiError> {
    let bad = || {
        // Echo a bounded prefix only: the value is the caller's, and may be anything.
        let shown: String = value.chars().take(32).collect();
        ApiError::BadParameter {
            name,
            reason: format!("expected a date as YYYY-MM-DD, got {shown:?}"),
        }
    };
    let b = value.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return Err(bad());
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| bad())
}

/// The range asked for: `to` defaults to `today`, `from` to [`DEFAULT_DAYS`] days ending at
/// `to`, so `?to=` alone moves the whole default window.
pub fn date_range(
    from: Option<&str>,
    to: Option<&str>,
    today: NaiveDate,
) -> Result<DateRange, ApiError> {
    let to = match to {
        Some(t) => parse_day("to", t)?,
        None => today,
    };
    let from = match from {
        Some(f) => parse_day("from", f)?,
        None => to
            .checked_sub_days(Days::new(DEFAULT_DAYS - 1))
            .unwrap_or(NaiveDate::MIN),
    };
    if from > to {
        return Err(ApiError::BadParameter {
            name: "from",
            reason: format!("{from} is after to ({to})"),
        });
    }
    Ok(DateRange { from, to })
}

/// Today in the configured zone: `day` in every relation is a date in that zone.
pub(crate) fn today(s: &ApiState) -> NaiveDate {
    Utc::now().with_timezone(&s.timezone).date_naive()
}

/// `numerator / denominator`, or `None` when the denominator is 0.
pub fn rate(numerator: i64, denominator: i64) -> Option<f64> {
    (denominator != 0).then(|| numerator as f64 / denominator as f64)
}

// ---------------------------------------------------------------------------------------------
// Menu entries

/// One day of one menu entry and variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MenuEntryRow {
    #[schema(format = Date)]
    pub day: String,
    pub entry: String,
    /// `""` for exposures and clicks without a variant.
    pub variant: String,
    pub exposures: i64,
    pub clicks: i64,
    /// clicks / exposures (菜单栏入口点击率); null when exposures = 0.
    #[schema(required = true)]
    pub click_rate: Option<f64>,
}

/// One menu entry and variant over the whole range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MenuEntryTotal {
    pub entry: String,
    pub variant: String,
    pub exposures: i64,
    pub clicks: i64,
    /// clicks / exposures over the range; null when exposures = 0.
    #[schema(required = true)]
    pub click_rate: Option<f64>,
}

/// `metric_menu_entry_daily` in a range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MenuEntries {
    pub range: DateRange,
    /// Ordered by day, entry, variant.
    pub rows: Vec<MenuEntryRow>,
    /// One per (entry, variant) present in `rows`, ordered by entry, variant.
    pub totals: Vec<MenuEntryTotal>,
}

/// Menu-entry exposures, clicks and click rate per day, and per entry and variant over the range.
#[utoipa::path(
    get,
    path = "/v1/metrics/menu-entries",
    tag = "metrics",
    params(MenuParams),
    responses((status = 200, description = "The rows, with their rates", body = MenuEntries), Refusals),
    security(("bearer" = []))
)]
pub async fn menu_entries(
    State(s): State<ApiState>,
    headers: HeaderMap,
    params: Result<Query<MenuParams>, QueryRejection>,
) -> Result<Json<MenuEntries>, ApiError> {
    authorize(&s.keys, &headers, ANALYST)?;
    let Query(p) = params?;
    let range = date_range(p.from.as_deref(), p.to.as_deref(), today(&s))?;
    let days = read::menu_entry_daily_filtered(
        &s.store,
        range.into(),
        p.entry.as_deref(),
        p.variant.as_deref(),
    )
    .await?;
    let mut totals: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    let rows = days
        .into_iter()
        .map(|d| {
            let t = totals
                .entry((d.entry.clone(), d.variant.clone()))
                .or_default();
            t.0 += d.exposures;
            t.1 += d.clicks;
            MenuEntryRow {
                click_rate: rate(d.clicks, d.exposures),
                day: d.day,
                entry: d.entry,
                variant: d.variant,
                exposures: d.exposures,
                clicks: d.clicks,
            }
        })
        .collect();
    let totals = totals
        .into_iter()
        .map(|((entry, variant), (exposures, clicks))| MenuEntryTotal {
            entry,
            variant,
            exposures,
            clicks,
            click_rate: rate(clicks, exposures),
        })
        .collect();
    Ok(Json(MenuEntries {
        range,
        rows,
        totals,
    }))
}

// ---------------------------------------------------------------------------------------------
// Articles

/// One day of one article.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ArticleRow {
    #[schema(format = Date)]
    pub day: String,
    pub article_id: String,
    pub reads: i64,
    pub clicks: i64,
    /// clicks / reads (图文链接点击率); null when reads = 0.
    #[schema(required = true)]
    pub click_rate: Option<f64>,
}

/// One article over the whole range: the sums of its days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ArticleTotal {
    pub article_id: String,
    pub reads: i64,
    pub clicks: i64,
    /// clicks / reads over the range; null when reads = 0.
    #[schema(required = true)]
    pub click_rate: Option<f64>,
}

/// `metric_article_daily` in a range: a page of per-article totals (`granularity=total`, the
/// default) or of daily rows (`granularity=day`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Articles {
    pub range: DateRange,
    /// `total` or `day`: which of `totals` and `rows` holds the page.
    pub granularity: String,
    /// `granularity=total`: one per article with a row in the range, ordered by article.
    /// Empty for `granularity=day`.
    pub totals: Vec<ArticleTotal>,
    /// `granularity=day`: ordered by day, article. Empty for `granularity=total`.
    pub rows: Vec<ArticleRow>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// Per-article totals over the range by default (reads, link clicks, click rate); per day and
/// article with `granularity=day`. Paged: `limit` rows, then `next_cursor`.
#[utoipa::path(
    get,
    path = "/v1/metrics/articles",
    tag = "metrics",
    params(ArticleParams),
    responses((status = 200, description = "A page of totals or rows, with their rates", body = Articles), Refusals),
    security(("bearer" = []))
)]
pub async fn articles(
    State(s): State<ApiState>,
    headers: HeaderMap,
    params: Result<Query<ArticleParams>, QueryRejection>,
) -> Result<Json<Articles>, ApiError> {
    authorize(&s.keys, &headers, ANALYST)?;
    let Query(p) = params?;
    let range = date_range(p.from.as_deref(), p.to.as_deref(), today(&s))?;
    let limit = match p.limit.as_deref() {
        None => ARTICLES_DEFAULT_LIMIT,
        Some(v) => match v.trim().parse::<u32>() {
            Ok(n) if (1..=ARTICLES_MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::BadParameter {
                    name: "limit",
                    reason: format!(
                        "expected an integer from 1 to {ARTICLES_MAX_LIMIT}, got {:?}",
                        v.chars().take(32).collect::<String>()
                    ),
                })
            }
        },
    };
    let article = p.article.as_deref();
    // One more row than the page tells whether another page follows.
    let fetch = limit + 1;
    match p.granularity.as_deref().unwrap_or("total") {
        "total" => {
            let mut totals =
                read::article_totals(&s.store, range.into(), article, p.cursor.as_deref(), fetch)
                    .await?;
            let next_cursor = (totals.len() > limit as usize).then(|| {
                totals.truncate(limit as usize);
                totals
                    .last()
                    .map(|t| t.article_id.clone())
                    .unwrap_or_default()
            });
            Ok(Json(Articles {
                range,
                granularity: "total".to_owned(),
                totals: totals
                    .into_iter()
                    .map(|t| ArticleTotal {
                        click_rate: rate(t.clicks, t.reads),
                        article_id: t.article_id,
                        reads: t.reads,
                        clicks: t.clicks,
                    })
                    .collect(),
                rows: Vec::new(),
                next_cursor,
            }))
        }
        "day" => {
            let after = match p.cursor.as_deref() {
                None => None,
                Some(c) => Some(day_cursor(c)?),
            };
            let mut days = read::article_daily_page(
                &s.store,
                range.into(),
                article,
                after.as_ref().map(|(d, a)| (*d, a.as_str())),
                fetch,
            )
            .await?;
            let next_cursor = (days.len() > limit as usize).then(|| {
                days.truncate(limit as usize);
                days.last()
                    .map(|d| format!("{}|{}", d.day, d.article_id))
                    .unwrap_or_default()
            });
            Ok(Json(Articles {
                range,
                granularity: "day".to_owned(),
                totals: Vec::new(),
                rows: days
                    .into_iter()
                    .map(|d| ArticleRow {
                        click_rate: rate(d.clicks, d.reads),
                        day: d.day,
                        article_id: d.article_id,
                        reads: d.reads,
                        clicks: d.clicks,
                    })
                    .collect(),
                next_cursor,
            }))
        }
        other => Err(ApiError::BadParameter {
            name: "granularity",
            reason: format!(
                "expected total or day, got {:?}",
                other.chars().take(32).collect::<String>()
            ),
        }),
    }
}

/// A `granularity=day` cursor: `<day>|<article_id>` of the previous page's last row.
fn day_cursor(cursor: &str) -> Result<(NaiveDate, String), ApiError> {
    let bad = || ApiError::BadParameter {
        name: "cursor",
        reason: "expected the next_cursor of the previous page".to_owned(),
    };
    let (day, article) = cursor.split_once('|').ok_or_else(bad)?;
    let day = parse_day("cursor", day).map_err(|_| bad())?;
    Ok((day, article.to_owned()))
}

// ---------------------------------------------------------------------------------------------
// Linkage

/// The counts of `metric_linkage_daily`: on a row, distinct members of that day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LinkageCounts {
    pub mp_users: i64,
    pub oa_guided_users: i64,
    pub prompt_follows: i64,
    pub core_users: i64,
    pub guided_order_users: i64,
    pub guided_converted_7d: i64,
}

impl LinkageCounts {
    fn add(&mut self, o: &LinkageCounts) {
        self.mp_users += o.mp_users;
        self.oa_guided_users += o.oa_guided_users;
        self.prompt_follows += o.prompt_follows;
        self.core_users += o.core_users;
        self.guided_order_users += o.guided_order_users;
        self.guided_converted_7d += o.guided_converted_7d;
    }

    fn rates(&self) -> LinkageRates {
        LinkageRates {
            follow_conversion: rate(self.prompt_follows, self.mp_users),
            core_usage: rate(self.core_users, self.mp_users),
            cross_platform_rate: rate(self.guided_order_users, self.oa_guided_users),
            linkage_conversion: rate(self.guided_converted_7d, self.oa_guided_users),
        }
    }
}

/// The linkage rates; each is null when its denominator is 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LinkageRates {
    /// prompt_follows / mp_users (小程序引导关注转化率).
    #[schema(required = true)]
    pub follow_conversion: Option<f64>,
    /// core_users / mp_users (核心功能使用率).
    #[schema(required = true)]
    pub core_usage: Option<f64>,
    /// guided_order_users / oa_guided_users (跨平台操作率).
    #[schema(required = true)]
    pub cross_platform_rate: Option<f64>,
    /// guided_converted_7d / oa_guided_users (联动用户转化率).
    #[schema(required = true)]
    pub linkage_conversion: Option<f64>,
}

/// One day of `metric_linkage_daily` with its rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LinkageRow {
    #[schema(format = Date)]
    pub day: String,
    #[serde(flatten)]
    pub counts: LinkageCounts,
    #[serde(flatten)]
    pub rates: LinkageRates,
}

/// The daily counts summed over the days of the range. These are member-days, NOT distinct
/// members of the range: a member active on three days counts three times. Its rates are ratios
/// of these sums, i.e. the daily rates weighted by their daily denominators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LinkageSumOfDaily {
    /// Days of the range that have a row.
    pub days: i64,
    #[serde(flatten)]
    pub counts: LinkageCounts,
    #[serde(flatten)]
    pub rates: LinkageRates,
}

/// `metric_linkage_daily` in a range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Linkage {
    pub range: DateRange,
    /// Ordered by day; a day without any `mp.visit` or `oa.follow` has no row.
    pub rows: Vec<LinkageRow>,
    pub sum_of_daily: LinkageSumOfDaily,
}

/// OA ↔ MP linkage per day: the distinct-member counts and the four linkage rates.
#[utoipa::path(
    get,
    path = "/v1/metrics/linkage",
    tag = "metrics",
    params(RangeParams),
    responses((status = 200, description = "The rows, with their rates", body = Linkage), Refusals),
    security(("bearer" = []))
)]
pub async fn linkage(
    State(s): State<ApiState>,
    headers: HeaderMap,
    params: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Json<Linkage>, ApiError> {
    authorize(&s.keys, &headers, ANALYST)?;
    let Query(p) = params?;
    let range = date_range(p.from.as_deref(), p.to.as_deref(), today(&s))?;
    let days = read::linkage_daily(&s.store, range.into()).await?;
    let mut sum = LinkageCounts::default();
    let rows: Vec<LinkageRow> = days
        .into_iter()
        .map(|d| {
            let counts = LinkageCounts {
                mp_users: d.mp_users,
                oa_guided_users: d.oa_guided_users,
                prompt_follows: d.prompt_follows,
                core_users: d.core_users,
                guided_order_users: d.guided_order_users,
                guided_converted_7d: d.guided_converted_7d,
            };
            sum.add(&counts);
            LinkageRow {
                day: d.day,
                rates: counts.rates(),
                counts,
            }
        })
        .collect();
    let sum_of_daily = LinkageSumOfDaily {
        days: rows.len() as i64,
        rates: sum.rates(),
        counts: sum,
    };
    Ok(Json(Linkage {
        range,
        rows,
        sum_of_daily,
    }))
}

// ---------------------------------------------------------------------------------------------
// Retention

/// One cohort of `retention_repurchase_30d`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RepurchaseRow {
    /// The day of the members' linkage conversion time `t0`.
    #[schema(format = Date)]
    pub cohort_day: String,
    pub converted: i64,
    /// Of `converted`, those with another order paid within 30 days after `t0`.
    pub repurchased: i64,
    /// True once the 30 days are over for the whole cohort; until then the rate can still rise.
    pub mature: bool,
    /// repurchased / converted (联动用户复购率); null when converted = 0.
    #[schema(required = true)]
    pub repurchase_rate: Option<f64>,
}

/// `retention_repurchase_30d` for cohorts in a range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Repurchase {
    pub range: DateRange,
    /// Ordered by cohort_day.
    pub rows: Vec<RepurchaseRow>,
}

/// 30-day repurchase of linkage-converted members, per cohort day in the range.
#[utoipa::path(
    get,
    path = "/v1/metrics/repurchase",
    tag = "metrics",
    params(RangeParams),
    responses((status = 200, description = "The rows, with their rates", body = Repurchase), Refusals),
    security(("bearer" = []))
)]
pub async fn repurchase(
    State(s): State<ApiState>,
    headers: HeaderMap,
    params: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Json<Repurchase>, ApiError> {
    authorize(&s.keys, &headers, ANALYST)?;
    let Query(p) = params?;
    let range = date_range(p.from.as_deref(), p.to.as_deref(), today(&s))?;
    let rows = read::repurchase_30d(&s.store, range.into())
        .await?
        .into_iter()
        .map(|c: Cohort30d| RepurchaseRow {
            repurchase_rate: rate(c.kept, c.size),
            cohort_day: c.cohort_day,
            converted: c.size,
            repurchased: c.kept,
            mature: c.mature,
        })
        .collect();
    Ok(Json(Repurchase { range, rows }))
}

/// One cohort of `retention_follower_30d`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FollowerRetentionRow {
    /// The day of the members' first `oa.follow` via `mp_prompt`.
    #[schema(format = Date)]
    pub cohort_day: String,
    pub followers: i64,
    /// Of `followers`, those still following 30 days later.
    pub retained: i64,
    /// True once the 30 days are over for the whole cohort.
    pub mature: bool,
    /// retained / followers (公众号粉丝留存率); null when followers = 0.
    #[schema(required = true)]
    pub retention_rate: Option<f64>,
}

/// `retention_follower_30d` for cohorts in a range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FollowerRetention {
    pub range: DateRange,
    /// Ordered by cohort_day.
    pub rows: Vec<FollowerRetentionRow>,
}

/// 30-day retention of OA followers won by the MP follow prompt, per cohort day in the range.
#[utoipa::path(
    get,
    path = "/v1/metrics/follower-retention",
    tag = "metrics",
    params(RangeParams),
    responses((status = 200, description = "The rows, with their rates", body = FollowerRetention), Refusals),
    security(("bearer" = []))
)]
pub async fn follower_retention(
    State(s): State<ApiState>,
    headers: HeaderMap,
    params: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Json<FollowerRetention>, ApiError> {
    authorize(&s.keys, &headers, ANALYST)?;
    let Query(p) = params?;
    let range = date_range(p.from.as_deref(), p.to.as_deref(), today(&s))?;
    let rows = read::follower_30d(&s.store, range.into())
        .await?
        .into_iter()
        .map(|c: Cohort30d| FollowerRetentionRow {
            retention_rate: rate(c.kept, c.size),
            cohort_day: c.cohort_day,
            followers: c.size,
            retained: c.kept,
            mature: c.mature,
        })
        .collect();
    Ok(Json(FollowerRetention { range, rows }))
}

/// One (cohort week, week offset) of `retention_weekly`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WeeklyRetentionRow {
    /// The Monday starting the cohort's week.
    #[schema(format = Date)]
    pub cohort_week: String,
    /// 0..12; only weeks that have begun have a row.
    pub week_offset: i32,
    pub cohort_size: i64,
    pub active: i64,
    /// active / cohort_size; null when cohort_size = 0.
    #[schema(required = true)]
    pub active_rate: Option<f64>,
    /// The week `cohort_week + week_offset` holds today: it has begun but not ended, so
    /// `active` can still rise (a rate that reads low, not a drop).
    pub in_progress: bool,
    /// The cohort's own week (offset 0) holds today: people who first show up later this week
    /// still join it, so `cohort_size` can still grow.
    pub cohort_filling: bool,
}

/// `retention_weekly` for cohort weeks starting in a range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WeeklyRetention {
    pub range: DateRange,
    /// Ordered by cohort_week, week_offset.
    pub rows: Vec<WeeklyRetentionRow>,
}

/// Weekly activity retention, for cohort weeks whose Monday is in the range.
#[utoipa::path(
    get,
    path = "/v1/metrics/weekly-retention",
    tag = "metrics",
    params(RangeParams),
    responses((status = 200, description = "The rows, with their rates", body = WeeklyRetention), Refusals),
    security(("bearer" = []))
)]
pub async fn weekly_retention(
    State(s): State<ApiState>,
    headers: HeaderMap,
    params: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Json<WeeklyRetention>, ApiError> {
    authorize(&s.keys, &headers, ANALYST)?;
    let Query(p) = params?;
    let today = today(&s);
    let range = date_range(p.from.as_deref(), p.to.as_deref(), today)?;
    let rows = read::weekly_retention(&s.store, range.into())
        .await?
        .into_iter()
        .map(|w| WeeklyRetentionRow {
            in_progress: week_holds(&w.cohort_week, w.week_offset, today),
            cohort_filling: week_holds(&w.cohort_week, 0, today),
            active_rate: rate(w.active, w.cohort_size),
            cohort_week: w.cohort_week,
            week_offset: w.week_offset,
            cohort_size: w.cohort_size,
            active: w.active,
        })
        .collect();
    Ok(Json(WeeklyRetention { range, rows }))
}

/// Whether the week `offset` weeks after the Monday `cohort_week` holds `today` (has begun and
/// not ended). A malformed week (never: the store writes them) counts as ended.
fn week_holds(cohort_week: &str, offset: i32, today: NaiveDate) -> bool {
    let Ok(monday) = cohort_week.parse::<NaiveDate>() else {
        return false;
    };
    let start = monday + chrono::Duration::weeks(i64::from(offset));
    start <= today && today < start + chrono::Duration::weeks(1)
}

// ---------------------------------------------------------------------------------------------
// A/B tests

/// One variant of an experiment, as `ab_readout` holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AbVariant {
    pub variant: String,
    pub exposed_users: i64,
    pub clicked_users: i64,
    /// clicked_users / exposed_users.
    #[schema(required = true)]
    pub ctr: Option<f64>,
    /// ctr / control ctr − 1; null for the control.
    #[schema(required = true)]
    pub lift: Option<f64>,
    /// Two-sided pooled two-proportion z-test against the control; null for the control.
    #[schema(required = true)]
    pub p_value: Option<f64>,
    /// 95 % interval of ctr − control ctr (unpooled); null for the control.
    #[schema(required = true)]
    pub ci_low: Option<f64>,
    #[schema(required = true)]
    pub ci_high: Option<f64>,
}

/// One experiment and its variants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AbExperiment {
    /// The surface it lives on: `menu`, `article`, `template`, `follow_prompt` or `notify`.
    pub surface: String,
    pub experiment: String,
    /// Ordered by variant.
    pub variants: Vec<AbVariant>,
}

/// `ab_readout`, grouped by experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AbReadout {
    /// Ordered by surface, then experiment.
    pub experiments: Vec<AbExperiment>,
}

/// The A/B surfaces (METRICS.md, "A/B tests").
pub const AB_SURFACES: &[&str] = &["menu", "article", "template", "follow_prompt", "notify"];

/// The A/B readout of the experiments of the five surfaces (over all time: exposures are
/// counted per member, not per day), grouped by surface and experiment.
#[utoipa::path(
    get,
    path = "/v1/metrics/ab",
    tag = "metrics",
    params(AbParams),
    responses((status = 200, description = "The rows, with their rates", body = AbReadout), Refusals),
    security(("bearer" = []))
)]
pub async fn ab(
    State(s): State<ApiState>,
    headers: HeaderMap,
    params: Result<Query<AbParams>, QueryRejection>,
) -> Result<Json<AbReadout>, ApiError> {
    authorize(&s.keys, &headers, ANALYST)?;
    let Query(p) = params?;
    if let Some(surface) = p.surface.as_deref() {
        if !AB_SURFACES.contains(&surface) {
            // Echo a bounded prefix only: the value is the caller's.
            let shown: String = surface.chars().take(32).collect();
            return Err(ApiError::BadParameter {
                name: "surface",
                reason: format!("expected one of {}, got {shown:?}", AB_SURFACES.join(", ")),
            });
        }
    }
    let mut experiments: Vec<AbExperiment> = Vec::new();
    // Rows come ordered by surface and experiment, so each experiment's rows are consecutive.
    for r in read::ab_readout(&s.store, p.surface.as_deref(), p.experiment.as_deref()).await? {
        let variant = AbVariant {
            variant: r.variant,
            exposed_users: r.exposed_users,
            clicked_users: r.clicked_users,
            ctr: r.ctr,
            lift: r.lift,
            p_value: r.p_value,
            ci_low: r.ci_low,
            ci_high: r.ci_high,
        };
        match experiments.last_mut() {
            Some(e) if e.surface == r.surface && e.experiment == r.experiment => {
                e.variants.push(variant)
            }
            _ => experiments.push(AbExperiment {
                surface: r.surface,
                experiment: r.experiment,
                variants: vec![variant],
            }),
        }
    }
    Ok(Json(AbReadout { experiments }))
}

// ---------------------------------------------------------------------------------------------
// Messages

/// The message channels (METRICS.md, "Messages").
pub const MESSAGE_CHANNELS: &[&str] = &["oa_template", "mp_notify"];

/// The rates of a message funnel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MessageRates {
    /// delivered_users / sent_users (送达率).
    #[schema(required = true)]
    pub delivery_rate: Option<f64>,
    /// clicked_users / delivered_users (点击率).
    #[schema(required = true)]
    pub click_rate: Option<f64>,
    /// visit_users / delivered_users (进入小程序率).
    #[schema(required = true)]
    pub visit_rate: Option<f64>,
    /// converted_users / clicked_users (转化率).
    #[schema(required = true)]
    pub conversion_rate: Option<f64>,
}

/// The counts of a message funnel (distinct members of a day, or their sum over days).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MessageCounts {
    pub sent_users: i64,
    pub delivered_users: i64,
    pub clicked_users: i64,
    pub visit_users: i64,
    pub converted_users: i64,
}

impl MessageCounts {
    fn rates(&self) -> MessageRates {
        MessageRates {
            delivery_rate: rate(self.delivered_users, self.sent_users),
            click_rate: rate(self.clicked_users, self.delivered_users),
            visit_rate: rate(self.visit_users, self.delivered_users),
            conversion_rate: rate(self.converted_users, self.clicked_users),
        }
    }

    fn add(&mut self, o: &MessageCounts) {
        self.sent_users += o.sent_users;
        self.delivered_users += o.delivered_users;
        self.clicked_users += o.clicked_users;
        self.visit_users += o.visit_users;
        self.converted_users += o.converted_users;
    }
}

/// One day of one channel and template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MessageRow {
    #[schema(format = Date)]
    pub day: String,
    pub channel: String,
    pub template_id: String,
    #[serde(flatten)]
    pub counts: MessageCounts,
    #[serde(flatten)]
    pub rates: MessageRates,
}

/// One channel and template over the range: sums of the daily counts (member-days).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MessageTotal {
    pub channel: String,
    pub template_id: String,
    #[serde(flatten)]
    pub counts: MessageCounts,
    #[serde(flatten)]
    pub rates: MessageRates,
}

/// `metric_message_daily` in a range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Messages {
    pub range: DateRange,
    /// Ordered by day, channel, template.
    pub rows: Vec<MessageRow>,
    /// One per channel and template present in `rows`, ordered by channel, template.
    pub totals: Vec<MessageTotal>,
}

/// The funnel of template messages and service notifications per day, channel and template:
/// sent → delivered → clicked (72 h) → MP visit (72 h) → converted (7 days), with its rates;
/// and per channel and template over the range.
#[utoipa::path(
    get,
    path = "/v1/metrics/messages",
    tag = "metrics",
    params(MessageParams),
    responses((status = 200, description = "The rows, with their rates", body = Messages), Refusals),
    security(("bearer" = []))
)]
pub async fn messages(
    State(s): State<ApiState>,
    headers: HeaderMap,
    params: Result<Query<MessageParams>, QueryRejection>,
) -> Result<Json<Messages>, ApiError> {
    authorize(&s.keys, &headers, ANALYST)?;
    let Query(p) = params?;
    let range = date_range(p.from.as_deref(), p.to.as_deref(), today(&s))?;
    if let Some(channel) = p.channel.as_deref() {
        if !MESSAGE_CHANNELS.contains(&channel) {
            let shown: String = channel.chars().take(32).collect();
            return Err(ApiError::BadParameter {
                name: "channel",
                reason: format!(
                    "expected one of {}, got {shown:?}",
                    MESSAGE_CHANNELS.join(", ")
                ),
            });
        }
    }
    let days = read::message_daily(
        &s.store,
        range.into(),
        p.channel.as_deref(),
        p.template.as_deref(),
    )
    .await?;
    let mut totals: BTreeMap<(String, String), MessageCounts> = BTreeMap::new();
    let rows = days
        .into_iter()
        .map(|d| {
            let counts = MessageCounts {
                sent_users: d.sent_users,
                delivered_users: d.delivered_users,
                clicked_users: d.clicked_users,
                visit_users: d.visit_users,
                converted_users: d.converted_users,
            };
            totals
                .entry((d.channel.clone(), d.template_id.clone()))
                .or_default()
                .add(&counts);
            MessageRow {
                day: d.day,
                channel: d.channel,
                template_id: d.template_id,
                rates: counts.rates(),
                counts,
            }
        })
        .collect();
    let totals = totals
        .into_iter()
        .map(|((channel, template_id), counts)| MessageTotal {
            channel,
            template_id,
            rates: counts.rates(),
            counts,
        })
        .collect();
    Ok(Json(Messages {
        range,
        rows,
        totals,
    }))
}

// ---------------------------------------------------------------------------------------------
// Campaigns

/// One campaign, as `metric_activity` holds it, with its rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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
    /// reserved_joined_users / joined_users (预约转参与).
    #[schema(required = true)]
    pub reserved_join_rate: Option<f64>,
    /// guided_joined_users / joined_users (公众号导流参与占比).
    #[schema(required = true)]
    pub guided_join_rate: Option<f64>,
    /// groups_completed / groups_started (拼团成功率).
    #[schema(required = true)]
    pub group_success_rate: Option<f64>,
    /// revenue_fen / orders_paid (客单价, in fen).
    #[schema(required = true)]
    pub average_order_fen: Option<f64>,
}

/// `metric_activity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Activities {
    /// Ordered by activity_id.
    pub activities: Vec<ActivityRow>,
}

/// The campaign review: one row per campaign (over all time; it moves while a campaign runs),
/// with its rates.
#[utoipa::path(
    get,
    path = "/v1/metrics/activities",
    tag = "metrics",
    params(ActivityParams),
    responses((status = 200, description = "The rows, with their rates", body = Activities), Refusals),
    security(("bearer" = []))
)]
pub async fn activities(
    State(s): State<ApiState>,
    headers: HeaderMap,
    params: Result<Query<ActivityParams>, QueryRejection>,
) -> Result<Json<Activities>, ApiError> {
    authorize(&s.keys, &headers, ANALYST)?;
    let Query(p) = params?;
    let activities = read::activities(&s.store, p.activity.as_deref())
        .await?
        .into_iter()
        .map(|a| ActivityRow {
            reserved_join_rate: rate(a.reserved_joined_users, a.joined_users),
            guided_join_rate: rate(a.guided_joined_users, a.joined_users),
            group_success_rate: rate(a.groups_completed, a.groups_started),
            average_order_fen: rate(a.revenue_fen, a.orders_paid),
            activity_id: a.activity_id,
            reserved_users: a.reserved_users,
            joined_users: a.joined_users,
            reserved_joined_users: a.reserved_joined_users,
            guided_joined_users: a.guided_joined_users,
            groups_started: a.groups_started,
            groups_completed: a.groups_completed,
            orders_paid: a.orders_paid,
            order_users: a.order_users,
            revenue_fen: a.revenue_fen,
        })
        .collect();
    Ok(Json(Activities { activities }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("a date")
    }

    fn param_of(r: Result<DateRange, ApiError>) -> &'static str {
        match r {
            Err(ApiError::BadParameter { name, .. }) => name,
            other => panic!("expected a bad parameter, got {other:?}"),
        }
    }

    #[test]
    fn default_range_is_the_last_30_days_ending_today() {
        let today = d("2026-03-10");
        assert_eq!(
            date_range(None, None, today).ok(),
            Some(DateRange {
                from: d("2026-02-09"),
                to: today
            })
        );
        assert_eq!(
            date_range(None, Some("2026-01-31"), today).ok(),
            Some(DateRange {
                from: d("2026-01-02"),
                to: d("2026-01-31")
            })
        );
        assert_eq!(
            date_range(Some("2026-03-10"), None, today).ok(),
            Some(DateRange {
                from: today,
                to: today
            })
        );
    }

    #[test]
    fn bad_dates_name_their_parameter() {
        let today = d("2026-03-10");
        for bad in [
            "2026-1-05",
            "2026-02-30",
            "20260105",
            "",
            "12026-01-05",
            "2026-01-05T00:00",
        ] {
            assert_eq!(
                param_of(date_range(Some(bad), None, today)),
                "from",
                "{bad}"
            );
            assert_eq!(param_of(date_range(None, Some(bad), today)), "to", "{bad}");
        }
        assert_eq!(
            param_of(date_range(Some("2026-03-11"), Some("2026-03-10"), today)),
            "from"
        );
        assert_eq!(
            param_of(date_range(Some("2026-03-11"), None, today)),
            "from"
        );
    }

    #[test]
    fn a_week_is_in_progress_from_its_monday_to_its_sunday() {
        let today = d("2026-03-11"); // a Wednesday
        assert!(week_holds("2026-03-09", 0, today));
        assert!(week_holds("2026-03-02", 1, today));
        assert!(week_holds("2026-01-12", 8, today));
        assert!(
            !week_holds("2026-03-02", 0, today),
            "ended on Sunday the 8th"
        );
        assert!(!week_holds("2026-03-16", 0, today), "not begun");
        assert!(week_holds("2026-03-09", 0, d("2026-03-15")), "Sunday");
        assert!(
            !week_holds("2026-03-09", 0, d("2026-03-16")),
            "the next Monday"
        );
    }

    #[test]
    fn a_rate_over_zero_is_none() {
        assert_eq!(rate(1, 0), None);
        assert_eq!(rate(0, 4), Some(0.0));
        assert_eq!(rate(1, 4), Some(0.25));
    }
}
