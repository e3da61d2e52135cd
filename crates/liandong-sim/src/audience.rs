//! Who the audience is: each simulated person, the identifiers WeChat gives them, how they came,
//! how often they come back, and what state they are in (following the OA, using the MP, bound
//! to their UnionID yet or not).

use chrono::{DateTime, Duration, Utc};
use rand::Rng;

/// Which name of the ordering entry a person sees (the A/B test of the OA menu).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    Control,
    Treatment,
}

/// How a person first met the brand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Already in the audience when the simulated period begins.
    Existing,
    /// Followed the OA first (store poster QR code, search, a shared article).
    OaFirst,
    /// Opened the MP first from a non-OA scene (store QR code, discovery, a shared card).
    MpFirst,
}

#[derive(Debug, Clone)]
pub(crate) struct User {
    pub unionid: Option<String>,
    pub oa_openid: String,
    pub mp_openid: String,
    pub origin: Origin,
    /// When they arrived (before the period for existing users).
    pub arrive: DateTime<Utc>,
    /// Events at or after this instant carry the unionid; `None`: never bound.
    pub bound_from: Option<DateTime<Utc>>,
    /// A `member.identified` is still due at `bound_from` (the late binding).
    pub identify_pending: bool,
    /// Opens the MP when an OA entry leads there (false: an OA-only follower).
    pub uses_mp: bool,
    /// Would follow the OA from the MP's prompt.
    pub may_follow: bool,
    /// Has used the OA / the MP (the openid exists in the stream).
    pub on_oa: bool,
    pub on_mp: bool,
    pub following: bool,
    pub followed_at: Option<DateTime<Utc>>,
    pub followed_via_prompt: bool,
    pub variant: Variant,
    /// Sessions per average day when fresh.
    pub freq: f64,
    /// How likely they buy, relative to the average (scales order probabilities).
    pub buy: f64,
    /// How likely they click, relative to the average.
    pub click: f64,
    /// Days after arriving when they fade to occasional use.
    pub lifetime_days: f64,
    /// Takes template and subscribe messages.
    pub notify_subscribed: bool,
    pub last_prompt: Option<DateTime<Utc>>,
    /// Claimed coupons not yet redeemed.
    pub coupons: Vec<String>,
    pub claimed_campaigns: Vec<String>,
    pub orders_paid: u32,
    pub profile_sent: bool,
    pub reserved: Vec<String>,
    /// End of their latest session: the next one starts after it.
    pub busy_until: DateTime<Utc>,
}

impl User {
    /// The session rate now, relative to `freq`: keen in the first days, settling after, and
    /// occasional once their lifetime has passed.
    pub fn pace(&self, at: DateTime<Utc>) -> f64 {
        let age = (at - self.arrive).num_seconds() as f64 / 86_400.0;
        let fresh = match self.origin {
            Origin::Existing => 1.0,
            _ => 0.45 + 1.2 * (-age.max(0.0) / 3.0).exp(),
        };
        let faded = if age > self.lifetime_days { 0.2 } else { 1.0 };
        self.freq * fresh * faded
    }

    pub fn bound_at(&self, t: DateTime<Utc>) -> bool {
        self.bound_from.is_some_and(|b| b <= t)
    }
}

/// splitmix64: a stateless mix of the seed and an index, for identifiers that depend on
/// nothing but the seed and the person (the same seed names the same people).
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

const ID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

/// A 28-character WeChat-style identifier: `o`, a 5-character prefix shared by every id of
/// the same app (as WeChat's are), and 22 characters of the person's own.
pub(crate) fn wechat_id(prefix: &str, seed: u64, index: u64, salt: u64) -> String {
    let mut s = String::with_capacity(28);
    s.push('o');
    s.push_str(prefix);
    let mut h = mix(seed ^ mix(index.wrapping_mul(31).wrapping_add(salt)));
    for i in 0..22 {
        if i % 10 == 0 {
            h = mix(h.wrapping_add(i));
        }
        s.push(ID_CHARS[(h & 63) as usize] as char);
        h >>= 6;
    }
    s
}

/// A person of the audience. `arrive` is when they arrive (new users) or `None` for someone
/// already there at `start`.
pub(crate) fn person(
    rng: &mut impl Rng,
    seed: u64,
    index: u64,
    start: DateTime<Utc>,
    arrive: Option<DateTime<Utc>>,
) -> User {
    let unionid = rng
        .gen_bool(0.85)
        .then(|| wechat_id("Un1oD", seed, index, 1));
    let variant = if mix(seed ^ index.wrapping_mul(0x51ED_270B)) & 1 == 0 {
        Variant::Control
    } else {
        Variant::Treatment
    };
    let u: f64 = rng.gen();
    let mut user = User {
        oa_openid: wechat_id("6_bmA", seed, index, 2),
        mp_openid: wechat_id("Zk3cM", seed, index, 3),
        unionid,
        origin: Origin::Existing,
        arrive: start,
        bound_from: None,
        identify_pending: false,
        uses_mp: true,
        may_follow: true,
        on_oa: false,
        on_mp: false,
        following: false,
        followed_at: None,
        followed_via_prompt: false,
        variant,
        freq: 0.06 + 0.8 * u * u,
        buy: 0.4 + 1.2 * rng.gen::<f64>(),
        click: 0.5 + rng.gen::<f64>(),
        lifetime_days: -45.0 * (1.0 - rng.gen::<f64>()).ln(),
        notify_subscribed: rng.gen_bool(0.5),
        last_prompt: None,
        coupons: Vec::new(),
        claimed_campaigns: Vec::new(),
        orders_paid: 0,
        profile_sent: false,
        reserved: Vec::new(),
        busy_until: start,
    };
    match arrive {
        None => {
            // Regulars who came before the period: settled habits, already bound.
            user.arrive = start - Duration::days(rng.gen_range(7..365));
            user.freq = 0.04 + 0.6 * u * u;
            user.lifetime_days += (start - user.arrive).num_days() as f64;
            user.on_oa = rng.gen_bool(0.8);
            user.following = user.on_oa;
            user.on_mp = !user.on_oa || rng.gen_bool(0.7);
            user.uses_mp = user.on_mp || rng.gen_bool(0.5);
            user.bound_from = user.unionid.as_ref().map(|_| user.arrive);
            user.profile_sent = true;
        }
        Some(at) => {
            user.arrive = at;
            user.busy_until = at;
            if rng.gen_bool(0.55) {
                user.origin = Origin::OaFirst;
                user.uses_mp = rng.gen_bool(0.75);
            } else {
                user.origin = Origin::MpFirst;
                user.may_follow = rng.gen_bool(0.8);
            }
            if user.unionid.is_some() {
                if rng.gen_bool(0.3) {
                    // Late binding: the unionid becomes known days later (the member logs in
                    // with authorisation only then, or the OA backend syncs it in a batch).
                    let secs = rng.gen_range(86_400..6 * 86_400);
                    user.bound_from = Some(at + Duration::seconds(secs));
                    user.identify_pending = true;
                } else {
                    user.bound_from = Some(at);
                }
            }
        }
    }
    user
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_wechat_ids_and_depend_on_seed_and_person() {
        let a = wechat_id("6_bmA", 1, 7, 2);
        assert_eq!(a.len(), 28);
        assert!(liandong_event::is_wechat_id(&a), "{a}");
        assert_eq!(a, wechat_id("6_bmA", 1, 7, 2));
        assert_ne!(a, wechat_id("6_bmA", 1, 8, 2));
        assert_ne!(a, wechat_id("6_bmA", 2, 7, 2));
    }
}
