//! `GET /v1/reports/review?from&to`: the monthly or quarterly review of the playbook's 四(二) —
//! each KPI of `/v1/metrics/summary` against the previous period of the same length, the
//! biggest movers among menu entries, articles and message templates, the campaigns by revenue,
//! and the A/B experiments that concluded (a significant difference from the control).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use liandong_auth::{authorize, Role};
use liandong_projections::read::{self, Range};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

use crate::metrics::{date_range, today, DateRange, RangeParams};
use crate::summary::{counts, kpis, previous_range, Kpi};
use crate::{ApiError, ApiState};

/// How many movers of each kind, and campaigns, the review lists.
pub const TOP: usize = 5;
/// An experiment has concluded when a variant's two-sided p-value is below this.
pub const SIGNIFICANCE: f64 = 0.05;

/// One menu entry, article or template: its count in the period and in the previous one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Mover {
    /// The entry, the article id, or `<channel>/<template_id>`.
    pub key: String,
    pub current: i64,
    pub previous: i64,
    /// `current - previous`.
    pub change: i64,
}

/// A variant that differs significantly from its experiment's control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Concluded {
    pub surface: String,
    pub experiment: String,
    pub variant: String,
    pub ctr: Option<f64>,
    pub lift: Option<f64>,
    pub p_value: Option<f64>,
    /// `better` or `worse` than the control.
    pub verdict: String,
}

/// A campaign's results (over all time, as `metric_activity`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CampaignResult {
    pub activity_id: String,
    pub joined_users: i64,
    pub orders_paid: i64,
    pub revenue_fen: i64,
}

/// The answer of `/v1/reports/review`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Review {
    pub range: DateRange,
    pub previous_range: DateRange,
    /// The eight KPIs, as `/v1/metrics/summary`.
    pub kpis: Vec<Kpi>,
    /// Menu entries by clicks, the largest changes (either way) first.
    pub menu_entries: Vec<Mover>,
    /// Articles by reads, the largest changes first.
    pub articles: Vec<Mover>,
    /// Message templates by clicked members (member-days), the largest changes first.
    pub templates: Vec<Mover>,
    /// Campaigns by revenue, highest first.
    pub campaigns: Vec<CampaignResult>,
    /// Variants significantly better or worse than their control (p < 0.05).
    pub concluded_experiments: Vec<Concluded>,
}

/// The movers among `rows` (key, day, count): sums per key in each period, sorted by the size
/// of the change (then by key), the first [`TOP`].
pub fn movers(
    rows: impl IntoIterator<Item = (String, String, i64)>,
    range: DateRange,
    previous: DateRange,
) -> Vec<Mover> {
    let mut sums: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (key, day, n) in rows {
        let Ok(d) = day.parse::<chrono::NaiveDate>() else {
            continue;
        };
        let s = sums.entry(key).or_default();
        if range.from <= d && d <= range.to {
            s.0 += n;
        } else if previous.from <= d && d <= previous.to {
            s.1 += n;
        }
    }
    let mut out: Vec<Mover> = sums
        .into_iter()
        .map(|(key, (current, previous))| Mover {
            key,
            current,
            previous,
            change: current - previous,
        })
        .filter(|m| m.current != 0 || m.previous != 0)
        .collect();
    out.sort_by(|a, b| {
        b.change
            .abs()
            .cmp(&a.change.abs())
            .then_with(|| a.key.cmp(&b.key))
    });
    out.truncate(TOP);
    out
}

/// The monthly (or quarterly) review of a period.
#[utoipa::path(
    get,
    path = "/v1/reports/review",
    tag = "metrics",
    params(RangeParams),
    responses(
        (status = 200, description = "KPIs against the previous period, movers, campaigns, concluded experiments", body = Review),
        (status = 400, description = "A malformed date, or from after to"),
        (status = 401, description = "No valid key"),
        (status = 403, description = "Not an analyst (or admin) key"),
    ),
    security(("bearer" = []))
)]
pub async fn review(
    State(s): State<ApiState>,
    headers: HeaderMap,
    params: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Json<Review>, ApiError> {
    authorize(&s.keys, &headers, &[Role::Analyst])?;
    let Query(p) = params?;
    let range = date_range(p.from.as_deref(), p.to.as_deref(), today(&s))?;
    let previous = previous_range(range);
    let [cur, prev] = counts(&s, [range, previous]).await?;
    let both = Range {
        from: Some(previous.from),
        to: Some(range.to),
    };
    let menu = read::menu_entry_daily(&s.store, both, None).await?;
    let articles = read::article_daily(&s.store, both, None).await?;
    let messages = read::message_daily(&s.store, both, None, None).await?;
    let mut campaigns: Vec<CampaignResult> = read::activities(&s.store, None)
        .await?
        .into_iter()
        .map(|a| CampaignResult {
            activity_id: a.activity_id,
            joined_users: a.joined_users,
            orders_paid: a.orders_paid,
            revenue_fen: a.revenue_fen,
        })
        .collect();
    campaigns.sort_by(|a, b| {
        b.revenue_fen
            .cmp(&a.revenue_fen)
            .then_with(|| a.activity_id.cmp(&b.activity_id))
    });
    campaigns.truncate(TOP);
    let concluded_experiments = read::ab_readout(&s.store, None, None)
        .await?
        .into_iter()
        .filter(|r| r.p_value.is_some_and(|p| p < SIGNIFICANCE))
        .map(|r| Concluded {
            verdict: if r.lift.unwrap_or(0.0) >= 0.0 {
                "better"
            } else {
                "worse"
            }
            .to_owned(),
            surface: r.surface,
            experiment: r.experiment,
            variant: r.variant,
            ctr: r.ctr,
            lift: r.lift,
            p_value: r.p_value,
        })
        .collect();
    Ok(Json(Review {
        range,
        previous_range: previous,
        kpis: kpis(&cur, &prev),
        menu_entries: movers(
            menu.into_iter().map(|r| (r.entry, r.day, r.clicks)),
            range,
            previous,
        ),
        articles: movers(
            articles.into_iter().map(|r| (r.article_id, r.day, r.reads)),
            range,
            previous,
        ),
        templates: movers(
            messages.into_iter().map(|r| {
                (
                    format!("{}/{}", r.channel, r.template_id),
                    r.day,
                    r.clicked_users,
                )
            }),
            range,
            previous,
        ),
        campaigns,
        concluded_experiments,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> chrono::NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn given_two_periods_when_summed_then_the_biggest_changes_either_way_first() {
        let range = DateRange {
            from: d("2026-11-01"),
            to: d("2026-11-30"),
        };
        let previous = previous_range(range);
        let row = |k: &str, day: &str, n: i64| (k.to_owned(), day.to_owned(), n);
        let m = movers(
            [
                row("立即点餐", "2026-11-03", 10),
                row("立即点餐", "2026-11-04", 5),
                row("立即点餐", "2026-10-10", 3),
                row("会员中心", "2026-10-12", 30),
                row("门店", "2026-11-05", 1),
                row("门店", "2026-09-01", 99), // before the previous period
            ],
            range,
            previous,
        );
        let got: Vec<(&str, i64, i64, i64)> = m
            .iter()
            .map(|m| (m.key.as_str(), m.current, m.previous, m.change))
            .collect();
        assert_eq!(
            got,
            [
                ("会员中心", 0, 30, -30),
                ("立即点餐", 15, 3, 12),
                ("门店", 1, 0, 1)
            ]
        );
    }
}
