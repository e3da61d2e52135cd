//! The query API: liveness and readiness for orchestrators, `/v1/status` (each projection's log
//! position and lag) for operators and scripts, and the read models for dashboards. It reads
//! through `liandong-projections`; it never writes. `/openapi.json` describes the metric
//! endpoints, generated from the handlers and types below so it cannot drift from them.

pub mod audit;
pub mod decisions;
pub mod metrics;
pub mod personal;
pub mod redact;
pub mod review;
pub mod segments;
pub mod summary;

use std::sync::{Arc, LazyLock};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use liandong_auth::{authorize, ApiKeys, AuthError, Role};
use liandong_log::EventLog;
use liandong_projections::Projection;
use liandong_store::ReadStore;
use liandong_vault::{DataKeys, Vault};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::warn;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// What the query API reads.
#[derive(Clone)]
pub struct ApiState {
    pub store: ReadStore,
    pub log: Arc<dyn EventLog>,
    pub projections: Vec<Arc<dyn Projection>>,
    pub keys: Arc<ApiKeys>,
    /// The zone of `day` in the read models: "today", the end of the default date range, is
    /// taken in it.
    pub timezone: chrono_tz::Tz,
    /// Keyed hashes of identifiers (audit trail, erasure registry, pseudonyms).
    pub vault: Arc<Vault>,
    /// Opens the sealed personal data of the read models.
    pub data_keys: DataKeys,
}

/// For a member key without a `oa:`/`mp:` prefix that no member has: what keys look like. A
/// member without a unionid is known by its openid *with* the prefix, which is easy to miss.
fn member_key_hint(key: &str) -> String {
    if key.contains(':') {
        return String::new();
    }
    let shown: String = key.chars().take(128).collect();
    format!(
        " (a member key is a unionid, or oa:<openid> / mp:<openid> for a member without one: \
         try mp:{shown} or oa:{shown} if {shown:?} is an openid)"
    )
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
    /// The query parameter at fault, on a 400 about one parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
}

/// Every answer that is not a success, mapped to its status in one place.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("no member {0:?}{hint}", hint = member_key_hint(.0))]
    NoMember(String),
    /// A query parameter that is present but unusable (a malformed date, `from` after `to`).
    #[error("{name}: {reason}")]
    BadParameter { name: &'static str, reason: String },
    /// A query string that does not deserialize (an unknown parameter, a repeated one), with
    /// the parameter at fault when the message names one.
    #[error("{message}")]
    BadQuery {
        message: String,
        parameter: Option<String>,
    },
    #[error("read store unavailable: {0}")]
    Store(#[from] liandong_store::StoreError),
    #[error("event log unavailable: {0}")]
    Projector(#[from] liandong_projector::ProjectorError),
    /// Personal data that does not open: the data keys are unreachable (retryable), or a value
    /// or key was altered, or the master key is not the one they were made with.
    #[error("personal data: {0}")]
    PersonalData(#[from] liandong_vault::VaultError),
    /// A part the request needs (the log, the identity store, the data keys) failed: retry.
    #[error("{0}")]
    Unavailable(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::Auth(e) => return e.clone().into_response(),
            ApiError::NoMember(_) => StatusCode::NOT_FOUND,
            ApiError::BadParameter { .. } | ApiError::BadQuery { .. } => StatusCode::BAD_REQUEST,
            ApiError::PersonalData(e) if e.is_retryable() => {
                warn!(error = %self, "query failed");
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::PersonalData(_) => {
                tracing::error!(error = %self, "personal data does not open");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ApiError::Store(_) | ApiError::Projector(_) | ApiError::Unavailable(_) => {
                warn!(error = %self, "query failed");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        let parameter = match &self {
            ApiError::BadParameter { name, .. } => Some((*name).to_owned()),
            ApiError::BadQuery { parameter, .. } => parameter.clone(),
            _ => None,
        };
        let body = ErrorBody {
            error: self.to_string(),
            parameter,
        };
        (status, Json(body)).into_response()
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> ApiError {
        bad_query(&e.body_text())
    }
}

/// A query-string rejection in the API's own words, with the parameter it is about. axum says
/// "Failed to deserialize query string: form: unknown field `form`, expected one of `from`,
/// `to`" (or "duplicate field `from`", or "limit: invalid digit found in string"); callers read
/// `{"error": "form: unknown parameter; expected one of from, to", "parameter": "form"}`.
fn bad_query(text: &str) -> ApiError {
    let serde = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(text);
    // serde_path_to_error puts the parameter's name first, when it knows it.
    let (path, rest) = match serde.split_once(": ") {
        Some((p, rest))
            if !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            (Some(p.to_owned()), rest)
        }
        _ => (None, serde),
    };
    let field = rest
        .split_once("field `")
        .and_then(|(_, after)| after.split_once('`'))
        .map(|(name, _)| name.to_owned());
    let Some(name) = field.or(path) else {
        return ApiError::BadQuery {
            message: serde.to_owned(),
            parameter: None,
        };
    };
    // Echo a bounded prefix of the caller's name only.
    let name: String = name.chars().take(64).collect();
    let message = if rest.starts_with("unknown field") {
        match rest.split_once("expected ") {
            Some((_, expected)) => format!(
                "{name}: unknown parameter; expected {}",
                expected.replace('`', "")
            ),
            None => format!("{name}: unknown parameter; this endpoint takes none"),
        }
    } else if rest.starts_with("duplicate field") {
        format!("{name}: given more than once; expected it at most once")
    } else {
        format!("{name}: {}", rest.replace('`', ""))
    };
    ApiError::BadQuery {
        message,
        parameter: Some(name),
    }
}

/// The OpenAPI document of the metric endpoints.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "liandong query API",
        description = "The read models (docs/read-models.md) for dashboards. Every metric endpoint needs an \
            API key of role analyst (or admin) as `Authorization: Bearer <key>`. Dates are \
            YYYY-MM-DD in the configured time zone; the default range is the last 30 days \
            ending today. A rate over a zero denominator is null. In /v1/metrics/summary the \
            linkage counts are daily distinct members summed over days (member-days), and the \
            30-day rates count every cohort whose day is in the period, mature or not."
    ),
    paths(
        metrics::menu_entries,
        metrics::articles,
        metrics::linkage,
        metrics::repurchase,
        metrics::follower_retention,
        metrics::weekly_retention,
        metrics::ab,
        metrics::messages,
        metrics::activities,
        summary::summary,
        whoami,
        audit::list,
        liandong_ingest::erase::post_erase,
        decisions::get_follow_prompt,
        decisions::get_channel,
        decisions::get_interests,
        review::review,
        segments::count,
        segments::members,
    ),
    components(schemas(ErrorBody, WhoAmI, audit::AuditPage, audit::AuditEntryView, liandong_ingest::erase::Erasure, decisions::FollowPrompt, decisions::ChannelAnswer, decisions::Interests, decisions::Interest, decisions::PromptReason, decisions::Purpose, decisions::Channel, decisions::ChannelReason, review::Review, review::Mover, review::Concluded, review::CampaignResult, segments::SegmentCount, segments::SegmentMembers)),
    modifiers(&BearerAuth),
    tags(
        (name = "metrics", description = "The metric relations, with their rates"),
        (name = "keys", description = "What the caller's key is"),
        (name = "audit", description = "The audit trail: member reads, erasures, key changes"),
        (name = "members", description = "One member: erasure"),
        (name = "segments", description = "Members counted (analyst) or exported (admin, audited) by interest, following, activity, first from"),
        (name = "decisions", description = "For the apps (keys of role decide): the follow prompt, the channel, the member's interests")
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` scheme the paths' `security(("bearer" = []))` refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key of liandong (LIANDONG_API_KEYS)"))
                    .build(),
            ),
        );
    }
}

/// Built once: the document only depends on the code.
static OPENAPI: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

/// The OpenAPI document; public, like any API description, so it needs no key.
async fn openapi() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(&OPENAPI)
}

/// Health checks, status, member lookup, the metrics and their OpenAPI document.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/health/live", get(|| async { "ok" }))
        .route("/health/ready", get(ready))
        .route("/openapi.json", get(openapi))
        .route("/v1/status", get(status))
        .route("/v1/members/{member_key}", get(member))
        .route(
            "/v1/members/{member_key}/follow-prompt",
            get(decisions::get_follow_prompt),
        )
        .route(
            "/v1/members/{member_key}/channel",
            get(decisions::get_channel),
        )
        .route(
            "/v1/members/{member_key}/interests",
            get(decisions::get_interests),
        )
        .route("/v1/metrics/menu-entries", get(metrics::menu_entries))
        .route("/v1/metrics/articles", get(metrics::articles))
        .route("/v1/metrics/linkage", get(metrics::linkage))
        .route("/v1/metrics/repurchase", get(metrics::repurchase))
        .route(
            "/v1/metrics/follower-retention",
            get(metrics::follower_retention),
        )
        .route(
            "/v1/metrics/weekly-retention",
            get(metrics::weekly_retention),
        )
        .route("/v1/metrics/ab", get(metrics::ab))
        .route("/v1/metrics/messages", get(metrics::messages))
        .route("/v1/metrics/activities", get(metrics::activities))
        .route("/v1/metrics/summary", get(summary::summary))
        .route("/v1/reports/review", get(review::review))
        .route("/v1/segments/count", get(segments::count))
        .route("/v1/segments/members", get(segments::members))
        .route("/v1/whoami", get(whoami))
        .route("/v1/audit", get(audit::list))
        .with_state(state)
}

/// Ready when the read store answers and the log answers.
async fn ready(State(s): State<ApiState>) -> Response {
    let store_ok = s.store.execute("SELECT 1", &[]).await.is_ok();
    let log_ok = s
        .log
        .end_offsets(liandong_log::Stream::Events)
        .await
        .is_ok();
    let status = if store_ok && log_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"read_store": store_ok, "event_log": log_ok})),
    )
        .into_response()
}

const ANY_ROLE: &[Role] = &Role::ALL;

/// Who may read `/v1/status`: every role that reads (an `ingest` key only sends events).
const STATUS_ROLES: &[Role] = &[Role::Analyst, Role::Support];

/// Each projection's version, position and lag behind the end of the log, and the progress of
/// a rebuild under way: a script waits for `lag` 0 to know the read models hold everything
/// accepted so far and no rebuild is left to swap in (the top-level `lag` counts what the
/// rebuilds still have to apply too).
async fn status(State(s): State<ApiState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&s.keys, &headers, STATUS_ROLES)?;
    let projections: Vec<&dyn Projection> = s.projections.iter().map(|p| p.as_ref()).collect();
    let st = liandong_projector::status(&s.store, s.log.as_ref(), &projections).await?;
    let lag: i64 = st
        .iter()
        .map(|p| p.lag + p.rebuild.as_ref().map_or(0, |r| r.lag.max(1)))
        .sum();
    Ok(Json(json!({"log": s.log.kind(), "lag": lag, "projections": st})).into_response())
}

/// The role of the caller's key: what a client (the dashboard) may show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    /// `ingest`, `client`, `analyst`, `support`, `decide` or `admin`.
    pub role: String,
    /// The key's public id (the first 12 hex digits of its SHA-256), as `liandong keys list`
    /// and the audit trail show it.
    pub key_id: String,
}

/// The role of the key in `Authorization: Bearer <key>`; any valid key may ask.
#[utoipa::path(
    get,
    path = "/v1/whoami",
    tag = "keys",
    responses(
        (status = 200, description = "The key's role", body = WhoAmI),
        (status = 401, description = "No key, or an unknown key", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn whoami(
    State(s): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<WhoAmI>, ApiError> {
    let caller = authorize(&s.keys, &headers, ANY_ROLE)?;
    Ok(Json(WhoAmI {
        role: caller.role.to_string(),
        key_id: caller.key_id,
    }))
}

/// One member's profile (support and admin), with `personal`: phone and address, in full for
/// admin, masked for support (see [`personal`]).
async fn member(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Path(member_key): Path<String>,
) -> Result<Response, ApiError> {
    let caller = authorize(&s.keys, &headers, &[Role::Support])?;
    let profile = liandong_projections::read::member_profile(&s.store, &member_key).await?;
    // Recorded before anything is answered: no member-level read goes unrecorded.
    let found = if profile.is_some() {
        "found"
    } else {
        "not found"
    };
    audit::record(
        &s,
        &caller,
        liandong_store::audit::action::MEMBER_READ,
        "GET /v1/members/{member_key}",
        Some(&member_key),
        Some(found.to_owned()),
    )
    .await?;
    match profile {
        Some(p) => {
            let personal = personal::for_member(&s, &member_key, caller.role).await?;
            let mut answer = json!(p);
            answer["personal"] = json!(personal);
            if caller.role != Role::Admin {
                redact::mask_identifiers(&mut answer);
            }
            Ok(Json(answer).into_response())
        }
        None => Err(ApiError::NoMember(member_key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(e: ApiError) -> (String, Option<String>) {
        match e {
            ApiError::BadQuery { message, parameter } => (message, parameter),
            other => panic!("expected a bad query, got {other:?}"),
        }
    }

    #[test]
    fn query_rejections_name_their_parameter_in_the_apis_words() {
        // As axum words it (with serde_path_to_error's path first), and without the path.
        for text in [
            "Failed to deserialize query string: form: unknown field `form`, expected one of `from`, `to`",
            "Failed to deserialize query string: unknown field `form`, expected one of `from`, `to`",
        ] {
            let (message, parameter) = parts(bad_query(text));
            assert_eq!(message, "form: unknown parameter; expected one of from, to");
            assert_eq!(parameter.as_deref(), Some("form"));
        }
        let (message, parameter) = parts(bad_query(
            "Failed to deserialize query string: limit: invalid digit found in string",
        ));
        assert_eq!(message, "limit: invalid digit found in string");
        assert_eq!(parameter.as_deref(), Some("limit"));
        let (message, parameter) = parts(bad_query(
            "Failed to deserialize query string: duplicate field `entry`",
        ));
        assert_eq!(
            message,
            "entry: given more than once; expected it at most once"
        );
        assert_eq!(parameter.as_deref(), Some("entry"));
        // Nothing to name: the text as it is, without serde's preamble.
        let (message, parameter) = parts(bad_query(
            "Failed to deserialize query string: invalid percent encoding",
        ));
        assert_eq!(
            (message.as_str(), parameter),
            ("invalid percent encoding", None)
        );
    }

    #[test]
    fn an_unknown_member_key_without_a_prefix_says_what_keys_look_like() {
        let e = ApiError::NoMember("o_demo".into()).to_string();
        assert!(e.starts_with("no member \"o_demo\""), "{e}");
        assert!(e.contains("mp:o_demo") && e.contains("oa:o_demo"), "{e}");
        assert_eq!(
            ApiError::NoMember("mp:o_demo".into()).to_string(),
            "no member \"mp:o_demo\""
        );
    }
}
