//! The catalogue of event types (EVENTS.md, "The catalogue"). The wire name of a type is its
//! identity everywhere: in the log, in the `events` read model and in the schema file name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! catalogue {
    ($($variant:ident => $name:literal,)*) => {
        /// One of the event types senders may send.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType { $($variant,)* }

        impl EventType {
            /// Every type, in catalogue order.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            /// The wire name, e.g. `oa.menu.click`.
            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $name,)* }
            }
        }

        impl FromStr for EventType {
            type Err = UnknownEventType;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(EventType::$variant),)*
                    _ => Err(UnknownEventType(s.to_owned())),
                }
            }
        }
    };
}

catalogue! {
    OaMenuExposure => "oa.menu.exposure",
    OaMenuClick => "oa.menu.click",
    OaArticleRead => "oa.article.read",
    OaArticleClick => "oa.article.click",
    OaFollow => "oa.follow",
    OaUnfollow => "oa.unfollow",
    OaTemplateSent => "oa.template.sent",
    OaTemplateClick => "oa.template.click",
    MpVisit => "mp.visit",
    MpPageView => "mp.page_view",
    MpFollowPromptShown => "mp.follow_prompt.shown",
    MpFollowPromptClick => "mp.follow_prompt.click",
    MpNotifySent => "mp.notify.sent",
    MpNotifyClick => "mp.notify.click",
    OrderPlaced => "order.placed",
    OrderPaid => "order.paid",
    OrderRefunded => "order.refunded",
    CouponClaimed => "coupon.claimed",
    CouponRedeemed => "coupon.redeemed",
    ActivityReserved => "activity.reserved",
    ActivityJoined => "activity.joined",
    ActivityGroupCompleted => "activity.group_completed",
    MemberIdentified => "member.identified",
    MemberProfileUpdated => "member.profile_updated",
    MemberPreferencesChanged => "member.preferences_changed",
    MemberErased => "member.erased",
}

impl EventType {
    /// Activity events are every type except `member.*` (METRICS.md, `retention_weekly`).
    pub fn is_activity(self) -> bool {
        !self.as_str().starts_with("member.")
    }
}

/// A `type` that is not in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {0:?}")]
pub struct UnknownEventType(pub String);

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(EventType::ALL.len(), 26);
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(*t));
        }
        assert!("oa.menu".parse::<EventType>().is_err());
    }
}
