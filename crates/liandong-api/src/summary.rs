//! The eight headline KPIs of the OA + MP playbook for a period, next to the same KPIs for the
//! period of the same length just before it: what a dashboard's KPI cards show.
//!
//! Each KPI carries its numerator and denominator, not only the rate, so a reader can see how
//! much traffic a rate stands on; rates are computed here from those counts (null over a zero
//! denominator), exactly as the per-relation endpoints of `metrics` compute theirs.
//!
//! - Traffic KPIs sum `metric_menu_entry_daily` / `metric_article_daily` over the period's days
//!   (every entry, variant and article).
//! - Linkage KPIs sum the daily distinct-member counts of `metric_linkage_daily`: member-days,
//!   not distinct members of the period (a member active on three days counts three times), so
//!   each rate is the daily rates weighted by their daily denominators.
//! - The 30-day KPIs sum the cohorts whose cohort day is in the period, mature or not: the
//!   default period (the last 30 days) holds no mature cohort at all, and a dashboard that shows
//!   nothing there is of no use. How many of the cohorts are still inside their 30 days is
//!   reported beside the rate (`immature_cohorts`, `immature_size`): their rate can still rise.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use chrono::{Days, NaiveDate};
use liandong_auth::{authorize, Role};
use liandong_projections::read::{self, Cohort30d, Range};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::metrics::{date_range, rate, today, DateRange, RangeParams, Refusals};
use crate::{ApiError, ApiState};

/// The KPIs, in the order of the playbook (and of the answer's `kpis`).
pub const KPI_NAMES: [&str; 8] = [
    "menu_click_rate",
    "article_click_rate",
    "follow_conversion",
    "core_usage",
    "cross_platform_rate",
    "linkage_conversion",
    "repurchase_30d",
    "follower_retention_30d",
];

/// One KPI in one period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KpiValue {
    pub numerator: i64,
    pub denominator: i64,
    /// numerator / denominator; null when the denominator is 0.
    #[schema(required = true)]
    pub rate: Option<f64>,
}

impl KpiValue {
    fn new(numerator: i64, denominator: i64) -> KpiValue {
        KpiValue {
            numerator,
            denominator,
            rate: rate(numerator, denominator),
        }
    }
}

/// For the two 30-day KPIs: the cohorts the period's value stands on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CohortCoverage {
    /// Cohort days in the period that have a row.
    pub cohorts: i64,
    /// Of those, cohorts still inside their 30 days (`mature = false`).
    pub immature_cohorts: i64,
    /// Members (of the denominator) in those immature cohorts.
    pub immature_size: i64,
}

/// One KPI: the period, the previous period, and the change between them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Kpi {
    /// One of `menu_click_rate`, `article_click_rate`, `follow_conversion`, `core_usage`,
    /// `cross_platform_rate`, `linkage_conversion`, `repurchase_30d`, `follower_retention_30d`.
    pub name: String,
    /// What the numerator counts, e.g. `clicks`.
    pub numerator_of: String,
    /// What the denominator counts, e.g. `exposures`.
    pub denominator_of: String,
    #[serde(flatten)]
    pub current: KpiValue,
    pub previous: KpiValue,
    /// rate − previous rate (a difference of rates: 0.012 is 1.2 percentage points); null when
    /// either rate is null.
    #[schema(required = true)]
    pub change: Option<f64>,
    /// rate / previous rate − 1; null when either rate is null or the previous rate is 0.
    #[schema(required = true)]
    pub relative_change: Option<f64>,
    /// For `repurchase_30d` and `follower_retention_30d` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohorts: Option<CohortCoverage>,
    /// Same, for the previous period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_cohorts: Option<CohortCoverage>,
}

/// The answer of `/v1/metrics/summary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Summary {
    pub range: DateRange,
    /// The same number of days, ending the day before `range.from`.
    pub previous_range: DateRange,
    /// The eight KPIs, in a fixed order.
    pub kpis: Vec<Kpi>,
}

/// The period of the same length as `r` that ends the day before it.
pub fn previous_range(r: DateRange) -> DateRange {
    let days = (r.to - r.from).num_days() as u64 + 1;
    let to = r.from.pred_opt().unwrap_or(NaiveDate::MIN);
    let from = to
        .checked_sub_days(Days::new(days - 1))
        .unwrap_or(NaiveDate::MIN);
    DateRange { from, to }
}

/// `day` (a relation's `YYYY-MM-DD` text) is in `r`.
fn within(day: &str, r: DateRange) -> bool {
    day.parse::<NaiveDate>()
        .is_ok_and(|d| r.from <= d && d <= r.to)
}

/// Numerator and denominator sums of one period.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    menu: (i64, i64),
    article: (i64, i64),
    mp_users: i64,
    oa_guided_users: i64,
    prompt_follows: i64,
    core_users: i64,
    guided_order_users: i64,
    guided_converted_7d: i64,
    repurchase: (i64, i64, CohortCoverage),
    follower: (i64, i64, CohortCoverage),
}

fn add_cohort(acc: &mut (i64, i64, CohortCoverage), c: &Cohort30d) {
    acc.0 += c.kept;
    acc.1 += c.size;
    acc.2.cohorts += 1;
    if !c.mature {
        acc.2.immature_cohorts += 1;
        acc.2.immature_size += c.size;
    }
}

/// Reads each relation once over both periods and sums its rows into the period of their day.
pub(crate) async fn counts(
    s: &ApiState,
    periods: [DateRange; 2],
) -> Result<[Counts; 2], liandong_store::StoreError> {
    let span = Range {
        from: Some(periods[1].from),
        to: Some(periods[0].to),
    };
    let mut out = [Counts::default(); 2];
    let mut each = |day: &str, f: &mut dyn FnMut(&mut Counts)| {
        for (i, p) in periods.iter().enumerate() {
            if within(day, *p) {
                f(&mut out[i]);
            }
        }
    };
    for r in read::menu_entry_daily(&s.store, span, None).await? {
        each(&r.day, &mut |c| {
            c.menu.0 += r.clicks;
            c.menu.1 += r.exposures;
        });
    }
    for r in read::article_daily(&s.store, span, None).await? {
        each(&r.day, &mut |c| {
            c.article.0 += r.clicks;
            c.article.1 += r.reads;
        });
    }
    for r in read::linkage_daily(&s.store, span).await? {
        each(&r.day, &mut |c| {
            c.mp_users += r.mp_users;
            c.oa_guided_users += r.oa_guided_users;
            c.prompt_follows += r.prompt_follows;
            c.core_users += r.core_users;
            c.guided_order_users += r.guided_order_users;
            c.guided_converted_7d += r.guided_converted_7d;
        });
    }
    for r in read::repurchase_30d(&s.store, span).await? {
        each(&r.cohort_day, &mut |c| add_cohort(&mut c.repurchase, &r));
    }
    for r in read::follower_30d(&s.store, span).await? {
        each(&r.cohort_day, &mut |c| add_cohort(&mut c.follower, &r));
    }
    Ok(out)
}

/// A KPI's (numerator, denominator, numerator_of, denominator_of, coverage) in one period.
type Parts = (i64, i64, &'static str, &'static str, Option<CohortCoverage>);

fn parts(c: &Counts) -> [Parts; 8] {
    [
        (c.menu.0, c.menu.1, "clicks", "exposures", None),
        (c.article.0, c.article.1, "clicks", "reads", None),
        (
            c.prompt_follows,
            c.mp_users,
            "prompt_follows",
            "mp_users",
            None,
        ),
        (c.core_users, c.mp_users, "core_users", "mp_users", None),
        (
            c.guided_order_users,
            c.oa_guided_users,
            "guided_order_users",
            "oa_guided_users",
            None,
        ),
        (
            c.guided_converted_7d,
            c.oa_guided_users,
            "guided_converted_7d",
            "oa_guided_users",
            None,
        ),
        (
            c.repurchase.0,
            c.repurchase.1,
            "repurchased",
            "converted",
            Some(c.repurchase.2),
        ),
        (
            c.follower.0,
            c.follower.1,
            "retained",
            "followers",
            Some(c.follower.2),
        ),
    ]
}

pub(crate) fn kpis(current: &Counts, previous: &Counts) -> Vec<Kpi> {
    KPI_NAMES
        .iter()
        .zip(parts(current).into_iter().zip(parts(previous)))
        .map(
            |(name, ((n, d, num_of, den_of, cov), (pn, pd, _, _, pcov)))| {
                let cur = KpiValue::new(n, d);
                let prev = KpiValue::new(pn, pd);
                let change = cur.rate.zip(prev.rate).map(|(a, b)| a - b);
                let relative_change = cur
                    .rate
                    .zip(prev.rate)
                    .filter(|(_, b)| *b != 0.0)
                    .map(|(a, b)| a / b - 1.0);
                Kpi {
                    name: (*name).to_owned(),
                    numerator_of: num_of.to_owned(),
                    denominator_of: den_of.to_owned(),
                    current: cur,
                    previous: prev,
                    change,
                    relative_change,
                    cohorts: cov,
                    previous_cohorts: pcov,
                }
            },
        )
        .collect()
}

/// The eight KPIs of the period and of the period of the same length before it.
///
/// Traffic rates sum every menu entry (and variant) or article over the period's days. The
/// four linkage rates are ratios of daily distinct-member counts summed over the days: their
/// numerators and denominators are member-days, not distinct members of the period. The two
/// 30-day rates sum the cohorts whose cohort day is in the period, mature or not (the default
/// period, the last 30 days, has no mature cohort); `cohorts.immature_cohorts` says how many
/// are still inside their 30 days, whose rate can still rise, so a change against the previous
/// (older, more mature) period reads low.
#[utoipa::path(
    get,
    path = "/v1/metrics/summary",
    tag = "metrics",
    params(RangeParams),
    responses((status = 200, description = "The eight KPIs, this period and the previous one", body = Summary), Refusals),
    security(("bearer" = []))
)]
pub async fn summary(
    State(s): State<ApiState>,
    headers: HeaderMap,
    params: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Json<Summary>, ApiError> {
    authorize(&s.keys, &headers, &[Role::Analyst])?;
    let Query(p) = params?;
    let range = date_range(p.from.as_deref(), p.to.as_deref(), today(&s))?;
    let previous = previous_range(range);
    let [cur, prev] = counts(&s, [range, previous]).await?;
    Ok(Json(Summary {
        range,
        previous_range: previous,
        kpis: kpis(&cur, &prev),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("a date")
    }

    #[test]
    fn the_previous_period_has_the_same_length_and_ends_the_day_before() {
        let r = DateRange {
            from: d("2026-03-01"),
            to: d("2026-03-30"),
        };
        assert_eq!(
            previous_range(r),
            DateRange {
                from: d("2026-01-30"),
                to: d("2026-02-28"),
            }
        );
        let one = DateRange {
            from: d("2026-03-01"),
            to: d("2026-03-01"),
        };
        assert_eq!(
            previous_range(one),
            DateRange {
                from: d("2026-02-28"),
                to: d("2026-02-28"),
            }
        );
    }

    #[test]
    fn changes_are_null_where_a_rate_is() {
        let cur = Counts {
            menu: (3, 10),
            article: (1, 0),
            ..Counts::default()
        };
        let prev = Counts {
            menu: (1, 5),
            article: (1, 2),
            ..Counts::default()
        };
        let k = kpis(&cur, &prev);
        assert_eq!(k.len(), 8);
        assert_eq!(k[0].current.rate, Some(0.3));
        assert_eq!(k[0].previous.rate, Some(0.2));
        assert!((k[0].change.expect("a change") - 0.1).abs() < 1e-12);
        assert!((k[0].relative_change.expect("a change") - 0.5).abs() < 1e-12);
        assert_eq!((k[1].current.rate, k[1].change), (None, None));
        assert_eq!(k[2].relative_change, None, "0 / 0 both periods");
        assert!(k[6].cohorts.is_some() && k[0].cohorts.is_none());
    }
}
