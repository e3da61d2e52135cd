//! Decisions for the apps that act on a member in real time (METRICS.md, "Decisions"), and the
//! member's interests: answers computed from the read models, for keys of role `decide` (the OA
//! server, the MP backend) — never metrics, profiles or personal data.
//!
//! - `GET /v1/members/{member_key}/follow-prompt`: may the MP show its follow-the-OA prompt now
//!   (二(六): "同一用户 24 小时内仅推荐 1 次关注公众号")? Never to a follower; at most once in 24
//!   hours: a prompt shown at `t` blocks it while `now < t + 24 h`, so at `t + 23:59:59` the
//!   answer is no and at `t + 24:00:00` yes (`allowed_again_at` says when).
//! - `GET /v1/members/{member_key}/channel?purpose=activity|service&urgent=true|false`: which
//!   channel reaches the member (二(三), 二(四)).
//! - `GET /v1/members/{member_key}/interests`: the member's strongest content categories.
//!
//! An unknown member gets the answer of a member with no events: not following, never
//! prompted, activity notifications on. The one thing its key tells is its identifier: a key
//! `mp:<openid>` names an MP openid, so such a member can get a service notification.
//!
//! The answers read one `member_profile` row (or the member's `member_interest` rows) by key:
//! they reflect an event as soon as the projector has applied it (`/v1/status` `lag`).

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use liandong_auth::{authorize, Role};
use liandong_projections::member_profile::MemberProfile;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{audit, ApiError, ApiState};

/// Who may ask for decisions: the apps' `decide` keys (and admins).
pub(crate) const DECIDERS: &[Role] = &[Role::Decide];
/// Who may read a member's interests: the apps, and support (audited).
pub(crate) const INTEREST_READERS: &[Role] = &[Role::Decide, Role::Support];

/// How long a shown follow prompt keeps the next one away.
pub const PROMPT_INTERVAL: Duration = Duration::hours(24);

/// What a decision needs of a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberFacts {
    pub following: bool,
    pub last_prompt_at: Option<DateTime<Utc>>,
    pub activity_notifications: bool,
    pub has_mp_openid: bool,
}

impl MemberFacts {
    /// The facts of `member_key`: its profile's, or those of a member with no events.
    pub fn of(member_key: &str, profile: Option<&MemberProfile>) -> MemberFacts {
        match profile {
            Some(p) => MemberFacts {
                following: p.following,
                last_prompt_at: p.last_prompt_at,
                activity_notifications: p.activity_notifications,
                has_mp_openid: p.mp_openid.is_some(),
            },
            None => MemberFacts {
                following: false,
                last_prompt_at: None,
                activity_notifications: true,
                has_mp_openid: member_key.starts_with("mp:"),
            },
        }
    }
}

/// Why the follow prompt may or may not be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PromptReason {
    /// The member follows the OA already: never prompt.
    Following,
    /// A prompt was shown less than 24 hours ago.
    #[serde(rename = "prompted_within_24h")]
    PromptedWithin24h,
    /// Neither: show it.
    Eligible,
}

/// The follow-prompt decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FollowPrompt {
    pub member_key: String,
    /// Whether to show the prompt now.
    pub show: bool,
    /// The first reason that applies: `following`, `prompted_within_24h`, `eligible`.
    pub reason: PromptReason,
    /// With `prompted_within_24h`: when a prompt is allowed again (the last prompt + 24 h).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_again_at: Option<String>,
}

/// METRICS.md's follow-prompt rule, at `now`.
pub fn follow_prompt(member_key: &str, facts: &MemberFacts, now: DateTime<Utc>) -> FollowPrompt {
    let decide = |show, reason, again: Option<DateTime<Utc>>| FollowPrompt {
        member_key: member_key.to_owned(),
        show,
        reason,
        allowed_again_at: again.map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true)),
    };
    if facts.following {
        return decide(false, PromptReason::Following, None);
    }
    match facts.last_prompt_at.map(|t| t + PROMPT_INTERVAL) {
        Some(again) if now < again => decide(false, PromptReason::PromptedWithin24h, Some(again)),
        _ => decide(true, PromptReason::Eligible, None),
    }
}

/// What a notification is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// A campaign, a promotion: off for a member who turned activity notifications off.
    Activity,
    /// Service: an order, a delivery, a booking.
    Service,
}

/// A channel that reaches a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A Mini Program service notification (小程序服务通知): needs the MP openid.
    MpNotify,
    /// An OA template message (公众号模板消息): needs a follower.
    OaTemplate,
}

/// Why a channel was chosen, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelReason {
    /// An activity notification to a member who turned them off: none.
    NotificationsOff,
    /// Urgent, and the member has an MP openid: the short-lived service notification.
    UrgentMpOpenid,
    /// Urgent, no MP openid, but the member follows the OA.
    UrgentFollowing,
    /// Not urgent, and the member follows the OA: the long-lived template message.
    Following,
    /// Not urgent, not following, but the member has an MP openid.
    MpOpenid,
    /// Neither a follower nor an MP openid: none.
    Unreachable,
}

/// The channel decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChannelAnswer {
    pub member_key: String,
    pub purpose: Purpose,
    pub urgent: bool,
    /// `mp_notify`, `oa_template`, or null: send nothing.
    pub channel: Option<Channel>,
    pub reason: ChannelReason,
}

/// METRICS.md's channel rule.
pub fn channel(
    member_key: &str,
    facts: &MemberFacts,
    purpose: Purpose,
    urgent: bool,
) -> ChannelAnswer {
    use ChannelReason as R;
    let (channel, reason) = if purpose == Purpose::Activity && !facts.activity_notifications {
        (None, R::NotificationsOff)
    } else if urgent {
        if facts.has_mp_openid {
            (Some(Channel::MpNotify), R::UrgentMpOpenid)
        } else if facts.following {
            (Some(Channel::OaTemplate), R::UrgentFollowing)
        } else {
            (None, R::Unreachable)
        }
    } else if facts.following {
        (Some(Channel::OaTemplate), R::Following)
    } else if facts.has_mp_openid {
        (Some(Channel::MpNotify), R::MpOpenid)
    } else {
        (None, R::Unreachable)
    };
    ChannelAnswer {
        member_key: member_key.to_owned(),
        purpose,
        urgent,
        channel,
        reason,
    }
}

async fn facts(s: &ApiState, member_key: &str) -> Result<MemberFacts, ApiError> {
    let profile = liandong_projections::read::member_profile(&s.store, member_key).await?;
    Ok(MemberFacts::of(member_key, profile.as_ref()))
}

/// May the MP show its follow-the-OA prompt to this member now?
#[utoipa::path(
    get,
    path = "/v1/members/{member_key}/follow-prompt",
    tag = "decisions",
    params(("member_key" = String, Path, description = "The member: a unionid, `oa:<openid>` or `mp:<openid>`; an unknown member is answered as one with no events")),
    responses(
        (status = 200, description = "The decision", body = FollowPrompt),
        (status = 401, description = "No valid key"),
        (status = 403, description = "Not a decide (or admin) key"),
    ),
    security(("bearer" = []))
)]
pub async fn get_follow_prompt(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Path(member_key): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&s.keys, &headers, DECIDERS)?;
    let facts = facts(&s, &member_key).await?;
    Ok(Json(follow_prompt(&member_key, &facts, Utc::now())).into_response())
}

/// The query of `/v1/members/{member_key}/channel`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ChannelQuery {
    /// `activity` or `service`.
    pub purpose: Option<String>,
    /// `true` for a short-lived message (default `false`).
    pub urgent: Option<String>,
}

/// Which channel reaches this member for a notification of this purpose?
#[utoipa::path(
    get,
    path = "/v1/members/{member_key}/channel",
    tag = "decisions",
    params(("member_key" = String, Path, description = "The member; an unknown member is answered as one with no events"), ChannelQuery),
    responses(
        (status = 200, description = "The channel, or null with the reason", body = ChannelAnswer),
        (status = 400, description = "`purpose` or `urgent` missing or not one of their values"),
        (status = 401, description = "No valid key"),
        (status = 403, description = "Not a decide (or admin) key"),
    ),
    security(("bearer" = []))
)]
pub async fn get_channel(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Path(member_key): Path<String>,
    Query(q): Query<ChannelQuery>,
) -> Result<Response, ApiError> {
    authorize(&s.keys, &headers, DECIDERS)?;
    let purpose = match q.purpose.as_deref() {
        Some("activity") => Purpose::Activity,
        Some("service") => Purpose::Service,
        other => {
            return Err(ApiError::BadParameter {
                name: "purpose",
                reason: format!("expected activity or service, got {other:?}"),
            })
        }
    };
    let urgent = match q.urgent.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::BadParameter {
                name: "urgent",
                reason: format!("expected true or false, got {other:?}"),
            })
        }
    };
    let facts = facts(&s, &member_key).await?;
    Ok(Json(channel(&member_key, &facts, purpose, urgent)).into_response())
}

/// The query of `/v1/members/{member_key}/interests`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct InterestsQuery {
    /// How many categories, strongest first (1 to 100, default 10).
    pub limit: Option<String>,
}

/// One of a member's interests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Interest {
    pub category: String,
    pub article_reads: i64,
    pub page_views: i64,
    /// The latest read or view of the category (RFC 3339, UTC).
    pub last_at: String,
}

/// A member's top interests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Interests {
    pub member_key: String,
    /// Most reads and views first, then the most recent; empty for an unknown member.
    pub interests: Vec<Interest>,
}

/// The member's strongest content categories (article reads and MP page views).
#[utoipa::path(
    get,
    path = "/v1/members/{member_key}/interests",
    tag = "decisions",
    params(("member_key" = String, Path, description = "The member"), InterestsQuery),
    responses(
        (status = 200, description = "Top categories", body = Interests),
        (status = 400, description = "`limit` not a number from 1 to 100"),
        (status = 401, description = "No valid key"),
        (status = 403, description = "Not a decide, support or admin key"),
    ),
    security(("bearer" = []))
)]
pub async fn get_interests(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Path(member_key): Path<String>,
    Query(q): Query<InterestsQuery>,
) -> Result<Response, ApiError> {
    let caller = authorize(&s.keys, &headers, INTEREST_READERS)?;
    let limit = match q.limit.as_deref() {
        None => 10,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                return Err(ApiError::BadParameter {
                    name: "limit",
                    reason: format!("expected a number from 1 to 100, got {l:?}"),
                })
            }
        },
    };
    if caller.role != Role::Decide {
        // A person reading a member's behaviour is recorded, like a profile lookup; the apps'
        // own calls, many per second, are not.
        audit::record(
            &s,
            &caller,
            liandong_store::audit::action::MEMBER_READ,
            "GET /v1/members/{member_key}/interests",
            Some(&member_key),
            None,
        )
        .await?;
    }
    let rows = liandong_projections::member_interest::read(&s.store, Some(&member_key)).await?;
    Ok(Json(Interests {
        member_key,
        interests: rows
            .into_iter()
            .take(limit)
            .map(|r| Interest {
                category: r.category,
                article_reads: r.article_reads,
                page_views: r.page_views,
                last_at: r.last_at,
            })
            .collect(),
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn member(following: bool, prompt: Option<&str>, notifications: bool, mp: bool) -> MemberFacts {
        MemberFacts {
            following,
            last_prompt_at: prompt.map(at),
            activity_notifications: notifications,
            has_mp_openid: mp,
        }
    }

    #[test]
    fn given_a_prompt_when_asked_at_23_59_59_and_24_00_00_after_then_no_then_yes() {
        let m = member(false, Some("2026-11-29T08:00:00Z"), true, true);
        let before = follow_prompt("u1", &m, at("2026-11-30T07:59:59Z"));
        assert!(!before.show);
        assert_eq!(before.reason, PromptReason::PromptedWithin24h);
        assert_eq!(
            before.allowed_again_at.as_deref(),
            Some("2026-11-30T08:00:00.000000Z")
        );
        let edge = follow_prompt("u1", &m, at("2026-11-30T08:00:00Z"));
        assert!(edge.show);
        assert_eq!(edge.reason, PromptReason::Eligible);
        assert_eq!(edge.allowed_again_at, None);
    }

    #[test]
    fn reasons_are_spelled_as_the_contract_names_them() {
        let names: Vec<String> = [
            PromptReason::Following,
            PromptReason::PromptedWithin24h,
            PromptReason::Eligible,
        ]
        .iter()
        .map(|r| {
            serde_json::to_value(r)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
        assert_eq!(names, ["following", "prompted_within_24h", "eligible"]);
    }

    #[test]
    fn given_a_follower_when_asked_then_never_prompted() {
        let m = member(true, None, true, true);
        let d = follow_prompt("u1", &m, at("2026-11-30T08:00:00Z"));
        assert_eq!((d.show, d.reason), (false, PromptReason::Following));
        // Following comes first, whatever the last prompt.
        let m = member(true, Some("2026-11-30T07:00:00Z"), true, true);
        let d = follow_prompt("u1", &m, at("2026-11-30T08:00:00Z"));
        assert_eq!(d.reason, PromptReason::Following);
    }

    #[test]
    fn given_an_unknown_member_when_asked_then_the_answers_of_a_member_with_no_events() {
        let now = at("2026-11-30T08:00:00Z");
        let unknown = MemberFacts::of("uNOBODY", None);
        assert!(follow_prompt("uNOBODY", &unknown, now).show);
        for urgent in [true, false] {
            let a = channel("uNOBODY", &unknown, Purpose::Activity, urgent);
            assert_eq!((a.channel, a.reason), (None, ChannelReason::Unreachable));
        }
        // Its key may name an MP openid: a service notification reaches it.
        let mp = MemberFacts::of("mp:oNOBODY", None);
        let a = channel("mp:oNOBODY", &mp, Purpose::Service, true);
        assert_eq!(a.channel, Some(Channel::MpNotify));
    }

    #[test]
    fn given_notifications_off_when_activity_then_none_in_both_channels_but_service_goes() {
        let m = member(true, None, false, true);
        for urgent in [true, false] {
            let a = channel("u1", &m, Purpose::Activity, urgent);
            assert_eq!(
                (a.channel, a.reason),
                (None, ChannelReason::NotificationsOff)
            );
        }
        let s = channel("u1", &m, Purpose::Service, false);
        assert_eq!(s.channel, Some(Channel::OaTemplate));
    }

    #[test]
    fn given_each_reachability_when_urgent_or_not_then_the_contracts_channel() {
        use Channel::*;
        use ChannelReason as R;
        // (following, has MP openid) -> (urgent answer, not urgent answer)
        let table = [
            (
                (true, true),
                (Some(MpNotify), R::UrgentMpOpenid),
                (Some(OaTemplate), R::Following),
            ),
            (
                (true, false),
                (Some(OaTemplate), R::UrgentFollowing),
                (Some(OaTemplate), R::Following),
            ),
            (
                (false, true),
                (Some(MpNotify), R::UrgentMpOpenid),
                (Some(MpNotify), R::MpOpenid),
            ),
            (
                (false, false),
                (None, R::Unreachable),
                (None, R::Unreachable),
            ),
        ];
        for ((following, mp), urgent, calm) in table {
            let m = member(following, None, true, mp);
            for purpose in [Purpose::Activity, Purpose::Service] {
                let a = channel("u1", &m, purpose, true);
                assert_eq!((a.channel, a.reason), urgent, "{m:?} urgent");
                let a = channel("u1", &m, purpose, false);
                assert_eq!((a.channel, a.reason), calm, "{m:?} not urgent");
            }
        }
    }
}
