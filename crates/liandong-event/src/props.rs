//! Typed `props` of every event type. These types are the Rust side of the per-type JSON Schemas
//! in `schemas/events/`: a test feeds the same samples through both and requires they agree.
//! Unknown keys are kept in the event's raw `props` map; the types here only read the known ones.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::EventType;

/// A string of `MIN..=MAX` Unicode code points (JSON Schema's `minLength`/`maxLength`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Str<const MIN: usize, const MAX: usize>(pub String);

impl<'de, const MIN: usize, const MAX: usize> Deserialize<'de> for Str<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let n = s.chars().count();
        if n < MIN || n > MAX {
            return Err(de::Error::custom(format_args!(
                "expected {MIN} to {MAX} characters, got {n}"
            )));
        }
        Ok(Str(s))
    }
}

impl<const MIN: usize, const MAX: usize> Str<MIN, MAX> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A label such as a menu entry (1-256 characters).
pub type Label = Str<1, 256>;
/// An identifier such as an order or article id (1-128 characters).
pub type Ident = Str<1, 128>;
/// A page path, URL or link target.
pub type Target = Str<0, 2048>;

/// A non-negative whole amount in fen. JSON Schema's `integer` admits `5.0`, so this does too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Fen(pub i64);

impl<'de> Deserialize<'de> for Fen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        whole_at_least(d, 0).map(Fen)
    }
}

/// A whole number (integer-valued JSON number) that is at least `min`.
fn whole_at_least<'de, D: Deserializer<'de>>(d: D, min: i64) -> Result<i64, D::Error> {
    let v = serde_json::Number::deserialize(d)?;
    let n = if let Some(i) = v.as_i64() {
        i
    } else if let Some(f) = v.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
        f as i64
    } else {
        return Err(de::Error::custom(format_args!(
            "expected an integer, got {v}"
        )));
    };
    if n < min {
        return Err(de::Error::custom(format_args!(
            "expected an integer >= {min}, got {n}"
        )));
    }
    Ok(n)
}

/// An optional field that, when present, must hold a value: JSON Schema rejects `null` for a
/// typed property, so serde's default of reading `null` as `None` would disagree with it.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A quantity of at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Qty(pub i64);

impl<'de> Deserialize<'de> for Qty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        whole_at_least(d, 1).map(Qty)
    }
}

/// A string or an integer (kept as the sender wrote it, read as text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StrOrInt {
    Str(String),
    Int(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArticleLink {
    Text,
    Card,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowVia {
    MpPrompt,
    Qrcode,
    Search,
    Article,
    Other,
}

impl FollowVia {
    pub fn as_str(self) -> &'static str {
        match self {
            FollowVia::MpPrompt => "mp_prompt",
            FollowVia::Qrcode => "qrcode",
            FollowVia::Search => "search",
            FollowVia::Article => "article",
            FollowVia::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    Seckill,
    Groupbuy,
    Lottery,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MenuProps {
    pub entry: Label,
    #[serde(default, deserialize_with = "present")]
    pub experiment: Option<Ident>,
    #[serde(default, deserialize_with = "present")]
    pub variant: Option<Ident>,
    #[serde(default, deserialize_with = "present")]
    pub target: Option<Target>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ArticleReadProps {
    pub article_id: Ident,
    #[serde(default, deserialize_with = "present")]
    pub title: Option<Str<0, 512>>,
    #[serde(default, deserialize_with = "present")]
    pub category: Option<Label>,
    /// The A/B test the event belongs to (schema version 2).
    #[serde(default, deserialize_with = "present")]
    pub experiment: Option<Ident>,
    #[serde(default, deserialize_with = "present")]
    pub variant: Option<Ident>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ArticleClickProps {
    pub article_id: Ident,
    pub link: ArticleLink,
    #[serde(default, deserialize_with = "present")]
    pub target: Option<Target>,
    /// The A/B test the event belongs to (schema version 2).
    #[serde(default, deserialize_with = "present")]
    pub experiment: Option<Ident>,
    #[serde(default, deserialize_with = "present")]
    pub variant: Option<Ident>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FollowProps {
    #[serde(default, deserialize_with = "present")]
    pub via: Option<FollowVia>,
    #[serde(default, deserialize_with = "present")]
    pub qrscene: Option<Str<0, 128>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TemplateSentProps {
    pub template_id: Ident,
    #[serde(default, deserialize_with = "present")]
    pub msg_id: Option<Ident>,
    #[serde(default, deserialize_with = "present")]
    pub purpose: Option<Label>,
    /// The delivery result (schema version 2). The Rust reading does not know an event's
    /// version, so a `status` outside the enum is refused whatever version the event names.
    #[serde(default, deserialize_with = "present")]
    pub status: Option<TemplateStatus>,
    /// The A/B test the event belongs to (schema version 2).
    #[serde(default, deserialize_with = "present")]
    pub experiment: Option<Ident>,
    #[serde(default, deserialize_with = "present")]
    pub variant: Option<Ident>,
}

/// How a template message's delivery ended (WeChat's `TEMPLATESENDJOBFINISH` push:
/// `success`, `failed:user block`, `failed: system failed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateStatus {
    Success,
    /// The user refused template messages from the OA.
    UserBlock,
    SystemFailed,
}

impl TemplateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateStatus::Success => "success",
            TemplateStatus::UserBlock => "user_block",
            TemplateStatus::SystemFailed => "system_failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TemplateClickProps {
    pub template_id: Ident,
    #[serde(default, deserialize_with = "present")]
    pub msg_id: Option<Ident>,
    #[serde(default, deserialize_with = "present")]
    pub target: Option<Target>,
    /// The A/B test the event belongs to (schema version 2).
    #[serde(default, deserialize_with = "present")]
    pub experiment: Option<Ident>,
    #[serde(default, deserialize_with = "present")]
    pub variant: Option<Ident>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PageProps {
    pub page: Str<1, 1024>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PageViewProps {
    pub page: Str<1, 1024>,
    /// What the page shows (schema version 2).
    #[serde(default, deserialize_with = "present")]
    pub category: Option<Label>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PromptProps {
    #[serde(default, deserialize_with = "present")]
    pub placement: Option<Label>,
    /// The A/B test the event belongs to (schema version 2).
    #[serde(default, deserialize_with = "present")]
    pub experiment: Option<Ident>,
    #[serde(default, deserialize_with = "present")]
    pub variant: Option<Ident>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NotifySentProps {
    pub template_id: Ident,
    /// Schema version 2 from here on.
    #[serde(default, deserialize_with = "present")]
    pub purpose: Option<Label>,
    #[serde(default, deserialize_with = "present")]
    pub experiment: Option<Ident>,
    #[serde(default, deserialize_with = "present")]
    pub variant: Option<Ident>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NotifyClickProps {
    pub template_id: Ident,
    /// Schema version 2 from here on.
    #[serde(default, deserialize_with = "present")]
    pub target: Option<Target>,
    #[serde(default, deserialize_with = "present")]
    pub experiment: Option<Ident>,
    #[serde(default, deserialize_with = "present")]
    pub variant: Option<Ident>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OrderItem {
    pub sku: Ident,
    pub qty: Qty,
    pub price_fen: Fen,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OrderPlacedProps {
    pub order_id: Ident,
    pub amount_fen: Fen,
    #[serde(default, deserialize_with = "items")]
    pub items: Option<Vec<OrderItem>>,
    /// The campaign the order belongs to (schema version 2).
    #[serde(default, deserialize_with = "present")]
    pub activity_id: Option<Ident>,
}

fn items<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<OrderItem>>, D::Error> {
    let v = Vec::<OrderItem>::deserialize(d)?;
    if v.len() > 500 {
        return Err(de::Error::custom("expected at most 500 items"));
    }
    Ok(Some(v))
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OrderAmountProps {
    pub order_id: Ident,
    pub amount_fen: Fen,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CouponProps {
    pub coupon_id: Ident,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CouponRedeemedProps {
    pub coupon_id: Ident,
    #[serde(default, deserialize_with = "present")]
    pub order_id: Option<Ident>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ActivityProps {
    pub activity_id: Ident,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ActivityGroupProps {
    pub activity_id: Ident,
    pub group_id: Ident,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ActivityJoinedProps {
    pub activity_id: Ident,
    pub kind: ActivityKind,
    #[serde(default, deserialize_with = "present")]
    pub group_id: Option<Ident>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProfileProps {
    #[serde(default, deserialize_with = "present")]
    pub phone: Option<Str<1, 32>>,
    #[serde(default, deserialize_with = "present")]
    pub address: Option<Str<1, 512>>,
    #[serde(default, deserialize_with = "present")]
    pub level: Option<StrOrInt>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PreferencesProps {
    #[serde(default, deserialize_with = "present")]
    pub activity_notifications: Option<bool>,
}

/// The typed body of an event, one variant per catalogue entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    MenuExposure(MenuProps),
    MenuClick(MenuProps),
    ArticleRead(ArticleReadProps),
    ArticleClick(ArticleClickProps),
    Follow(FollowProps),
    Unfollow,
    TemplateSent(TemplateSentProps),
    TemplateClick(TemplateClickProps),
    Visit(PageProps),
    PageView(PageViewProps),
    FollowPromptShown(PromptProps),
    FollowPromptClick(PromptProps),
    NotifySent(NotifySentProps),
    NotifyClick(NotifyClickProps),
    OrderPlaced(OrderPlacedProps),
    OrderPaid(OrderAmountProps),
    OrderRefunded(OrderAmountProps),
    CouponClaimed(CouponProps),
    CouponRedeemed(CouponRedeemedProps),
    ActivityReserved(ActivityProps),
    ActivityJoined(ActivityJoinedProps),
    ActivityGroupCompleted(ActivityGroupProps),
    Identified,
    ProfileUpdated(ProfileProps),
    PreferencesChanged(PreferencesProps),
    Erased,
}

/// The keys of `member.profile_updated` that are personal data (EVENTS.md, "Personal data").
pub const PERSONAL_DATA_KEYS: &[&str] = &["phone", "address"];

impl Body {
    /// Reads the typed body of `ty` from its raw props. The error says which field and why.
    pub fn parse(ty: EventType, props: &Map<String, Value>) -> Result<Body, String> {
        use EventType as T;
        fn p<T: serde::de::DeserializeOwned>(props: &Map<String, Value>) -> Result<T, String> {
            // Going through a Value keeps the field name in serde's "missing field"/"unknown
            // variant" messages; the cost is a clone of a small map.
            serde_json::from_value(Value::Object(props.clone())).map_err(|e| e.to_string())
        }
        Ok(match ty {
            T::OaMenuExposure => Body::MenuExposure(p(props)?),
            T::OaMenuClick => Body::MenuClick(p(props)?),
            T::OaArticleRead => Body::ArticleRead(p(props)?),
            T::OaArticleClick => Body::ArticleClick(p(props)?),
            T::OaFollow => Body::Follow(p(props)?),
            T::OaUnfollow => Body::Unfollow,
            T::OaTemplateSent => Body::TemplateSent(p(props)?),
            T::OaTemplateClick => Body::TemplateClick(p(props)?),
            T::MpVisit => Body::Visit(p(props)?),
            T::MpPageView => Body::PageView(p(props)?),
            T::MpFollowPromptShown => Body::FollowPromptShown(p(props)?),
            T::MpFollowPromptClick => Body::FollowPromptClick(p(props)?),
            T::MpNotifySent => Body::NotifySent(p(props)?),
            T::MpNotifyClick => Body::NotifyClick(p(props)?),
            T::OrderPlaced => Body::OrderPlaced(p(props)?),
            T::OrderPaid => Body::OrderPaid(p(props)?),
            T::OrderRefunded => Body::OrderRefunded(p(props)?),
            T::CouponClaimed => Body::CouponClaimed(p(props)?),
            T::CouponRedeemed => Body::CouponRedeemed(p(props)?),
            T::ActivityReserved => Body::ActivityReserved(p(props)?),
            T::ActivityJoined => Body::ActivityJoined(p(props)?),
            T::ActivityGroupCompleted => Body::ActivityGroupCompleted(p(props)?),
            T::MemberIdentified => Body::Identified,
            T::MemberProfileUpdated => Body::ProfileUpdated(p(props)?),
            T::MemberPreferencesChanged => Body::PreferencesChanged(p(props)?),
            T::MemberErased => Body::Erased,
        })
    }
}
