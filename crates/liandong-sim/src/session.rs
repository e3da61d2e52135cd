//! What a person does in one visit, as the events the OA server, the H5 pages, the MP SDK and
//! the order backend would send: the OA menu and its A/B-tested ordering entry, articles and
//! their links into the MP, template and subscribe messages, the MP's pages, orders, coupons,
//! the follow prompt, follows and unfollows, and the UnionID binding.
//!
//! Every event carries only what its sender knows: the OA's events the OA openid, the MP's the
//! MP openid, and the unionid once the person is bound (from `bound_from` on).

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use liandong_event::EventType;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Map, Value};

use crate::audience::{mix, User, Variant};
use crate::rhythm::{at_local, china, local_date};

/// The experiment on the OA menu's ordering entry: the same button under two names.
pub const EXPERIMENT: &str = "order_entry_name";
/// The ordering entry's name in the control and the treatment variant.
pub const ORDER_ENTRY: [&str; 2] = ["立即点餐", "进入小程序点餐"];
/// The other two entries of the OA menu.
pub const ORDERS_ENTRY: &str = "我的订单";
pub const COUPON_ENTRY: &str = "领优惠券";

/// Chance that one exposure of the ordering entry is clicked, by variant (× the person's
/// click affinity, 1 on average): the treatment's longer name, saying where it leads, is
/// clicked somewhat more.
const ORDER_ENTRY_CLICK: [f64; 2] = [0.085, 0.10];
const ORDERS_ENTRY_CLICK: f64 = 0.04;
const COUPON_ENTRY_CLICK: f64 = 0.06;

/// The menu of the shop: (sku, price in fen).
const PRODUCTS: [(&str, i64); 8] = [
    ("beef-noodles", 3200),
    ("chicken-rice", 2600),
    ("pork-dumplings", 2200),
    ("hot-sour-soup", 1200),
    ("milk-tea", 1500),
    ("lemon-tea", 1200),
    ("egg-tart", 900),
    ("braised-egg", 400),
];

/// Articles the OA publishes: (title, category).
const ARTICLES: [(&str, &str); 12] = [
    ("秋冬新品上市：红烧牛肉面回归", "新品"),
    ("本周会员日，全场第二份半价", "优惠"),
    ("一碗面的 12 小时：我们的骨汤是怎么熬的", "品牌故事"),
    ("午餐不排队：小程序提前点，到店直接取", "功能介绍"),
    ("满 50 减 10 优惠券限时领取", "优惠"),
    ("新店开业｜徐汇滨江店本周六见", "门店"),
    ("冬至吃饺子，手工鲜肉饺买二送一", "优惠"),
    ("店长推荐：一人食套餐怎么搭", "新品"),
    ("会员积分升级说明", "会员"),
    ("奶茶第二杯 5 元，下午茶时间见", "优惠"),
    ("食材溯源：每一颗鸡蛋的来处", "品牌故事"),
    ("外卖也能这么热：保温包装升级", "功能介绍"),
];

/// Non-OA scenes of MP visits (scene, weight): recently used, discovery, store QR code,
/// shared card, search, "my mini programs".
const DIRECT_SCENES: [(i64, f64); 6] = [
    (1089, 0.35),
    (1001, 0.20),
    (1011, 0.15),
    (1007, 0.10),
    (1005, 0.10),
    (1104, 0.10),
];

/// Where a person lands in the MP.
pub(crate) struct Landing<'a> {
    pub page: &'a str,
    pub source: Option<String>,
    pub scene: Option<i64>,
    /// Chance (× the person's buying affinity) that the visit ends in an order.
    pub intent: f64,
}

/// One event before it is written out: its instant, its place among events of the same
/// instant, and the wire JSON.
pub(crate) struct Ev {
    pub at: DateTime<Utc>,
    pub seq: u64,
    pub value: Value,
}

/// The generator's state: behaviour randomness, id randomness (kept apart so ids differ between
/// runs at different `now`s while behaviour stays the seed's), and the events made so far.
pub(crate) struct Gen {
    pub seed: u64,
    pub rng: StdRng,
    pub ids: StdRng,
    pub seq: u64,
    pub out: Vec<Ev>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Channel {
    Oa,
    Mp,
}

fn ms(n: i64) -> Duration {
    Duration::milliseconds(n)
}

impl Gen {
    fn secs(&mut self, lo: i64, hi: i64) -> Duration {
        ms(self.rng.gen_range(lo * 1000..hi * 1000))
    }

    fn event_id(&mut self) -> String {
        let mut b = [0u8; 16];
        self.ids.fill(&mut b);
        uuid::Builder::from_random_bytes(b).into_uuid().to_string()
    }

    fn user(&self, u: &User, ch: Channel, at: DateTime<Utc>) -> Value {
        let mut m = Map::new();
        if u.bound_at(at) {
            if let Some(id) = &u.unionid {
                m.insert("unionid".into(), json!(id));
            }
        }
        match ch {
            Channel::Oa => m.insert("oa_openid".into(), json!(u.oa_openid)),
            Channel::Mp => m.insert("mp_openid".into(), json!(u.mp_openid)),
        };
        Value::Object(m)
    }

    fn push(&mut self, at: DateTime<Utc>, ty: EventType, user: Value, props: Value) -> &mut Value {
        let occurred_at = at
            .with_timezone(&china())
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
        let mut ev = json!({
            "event_id": self.event_id(),
            "type": ty.as_str(),
            "occurred_at": occurred_at,
            "user": user,
        });
        if props.as_object().is_some_and(|p| !p.is_empty()) {
            ev["props"] = props;
        }
        self.seq += 1;
        self.out.push(Ev {
            at,
            seq: self.seq,
            value: ev,
        });
        &mut self.out.last_mut().expect("just pushed").value
    }

    fn emit(&mut self, u: &User, ch: Channel, at: DateTime<Utc>, ty: EventType, props: Value) {
        let user = self.user(u, ch, at);
        self.push(at, ty, user, props);
    }

    /// The person's first contact: a follow of the OA, or a visit to the MP.
    pub fn arrive(&mut self, u: &mut User, at: DateTime<Utc>) -> DateTime<Utc> {
        use crate::audience::Origin;
        match u.origin {
            Origin::OaFirst => {
                let r: f64 = self.rng.gen();
                let (via, qrscene) = if r < 0.40 {
                    let store = self.rng.gen_range(1..=6);
                    ("qrcode", Some(format!("store_poster_{store}")))
                } else if r < 0.65 {
                    ("search", None)
                } else if r < 0.85 {
                    ("article", None)
                } else {
                    ("other", None)
                };
                self.follow(u, at, via, qrscene);
                if self.rng.gen_bool(0.6) {
                    // The welcome message invites them to look at the menu.
                    let t = at + self.secs(10, 90);
                    return self.menu_session(u, t);
                }
                at + ms(500)
            }
            _ => {
                let scene = if self.rng.gen_bool(0.45) {
                    1011
                } else {
                    self.direct_scene()
                };
                self.mp_flow(
                    u,
                    at,
                    Landing {
                        page: "pages/index/index",
                        source: None,
                        scene: Some(scene),
                        intent: 0.35,
                    },
                    0,
                )
            }
        }
    }

    /// A returning person's visit: what they open depends on where they are.
    pub fn session(&mut self, u: &mut User, at: DateTime<Utc>) -> DateTime<Utc> {
        let r: f64 = self.rng.gen();
        if u.following && u.on_oa {
            if !u.uses_mp {
                return if r < 0.6 {
                    self.menu_session(u, at)
                } else {
                    self.article_session(u, at)
                };
            }
            if r < 0.48 || (r >= 0.80 && !u.on_mp) {
                self.menu_session(u, at)
            } else if r < 0.73 {
                self.article_session(u, at)
            } else if r < 0.80 {
                u.on_mp = true;
                self.mp_flow(
                    u,
                    at,
                    Landing {
                        page: "pages/index/index",
                        source: None,
                        scene: Some(1020),
                        intent: 0.35,
                    },
                    0,
                )
            } else {
                self.direct_session(u, at)
            }
        } else if u.on_mp {
            self.direct_session(u, at)
        } else {
            at
        }
    }

    fn direct_scene(&mut self) -> i64 {
        let x: f64 = self.rng.gen();
        let mut acc = 0.0;
        for (scene, w) in DIRECT_SCENES {
            acc += w;
            if x < acc {
                return scene;
            }
        }
        1089
    }

    fn direct_session(&mut self, u: &mut User, at: DateTime<Utc>) -> DateTime<Utc> {
        let scene = self.direct_scene();
        self.mp_flow(
            u,
            at,
            Landing {
                page: "pages/index/index",
                source: None,
                scene: Some(scene),
                intent: 0.35,
            },
            0,
        )
    }

    /// The OA chat is opened: the menu's three entries are shown; at most one is clicked.
    pub fn menu_session(&mut self, u: &mut User, at: DateTime<Utc>) -> DateTime<Utc> {
        let v = match u.variant {
            Variant::Control => 0,
            Variant::Treatment => 1,
        };
        let variant = ["control", "treatment"][v];
        let order_entry = ORDER_ENTRY[v];
        self.emit(
            u,
            Channel::Oa,
            at,
            EventType::OaMenuExposure,
            json!({"entry": order_entry, "experiment": EXPERIMENT, "variant": variant}),
        );
        self.emit(
            u,
            Channel::Oa,
            at + ms(1),
            EventType::OaMenuExposure,
            json!({"entry": ORDERS_ENTRY}),
        );
        self.emit(
            u,
            Channel::Oa,
            at + ms(2),
            EventType::OaMenuExposure,
            json!({"entry": COUPON_ENTRY}),
        );
        let t = at + self.secs(2, 25);
        let x: f64 = self.rng.gen::<f64>() / u.click;
        let (p_order, p_orders) = (ORDER_ENTRY_CLICK[v], ORDERS_ENTRY_CLICK);
        if x < p_order {
            let target = "pages/menu/index?from=menu&type=order";
            self.emit(
                u,
                Channel::Oa,
                t,
                EventType::OaMenuClick,
                json!({"entry": order_entry, "experiment": EXPERIMENT, "variant": variant, "target": target}),
            );
            return self.into_mp(
                u,
                t,
                Landing {
                    page: "pages/menu/index",
                    source: Some("from=menu&type=order".into()),
                    scene: Some(1035),
                    intent: 0.4,
                },
            );
        }
        if x < p_order + p_orders {
            let target = "pages/orders/index?from=menu&type=orders";
            self.emit(
                u,
                Channel::Oa,
                t,
                EventType::OaMenuClick,
                json!({"entry": ORDERS_ENTRY, "target": target}),
            );
            return self.into_mp(
                u,
                t,
                Landing {
                    page: "pages/orders/index",
                    source: Some("from=menu&type=orders".into()),
                    scene: Some(1035),
                    intent: 0.12,
                },
            );
        }
        if x < p_order + p_orders + COUPON_ENTRY_CLICK {
            let target = "pages/coupon/index?from=menu&type=coupon";
            self.emit(
                u,
                Channel::Oa,
                t,
                EventType::OaMenuClick,
                json!({"entry": COUPON_ENTRY, "target": target}),
            );
            if !u.uses_mp {
                return t + ms(500);
            }
            u.on_mp = true;
            let t = t + self.secs(1, 4);
            self.emit(
                u,
                Channel::Mp,
                t,
                EventType::MpVisit,
                json!({"page": "pages/coupon/index"}),
            );
            let visit = self.out.last_mut().expect("just pushed");
            visit.value["source"] = json!("from=menu&type=coupon");
            visit.value["scene"] = json!(1035);
            let campaign = coupon_campaign(local_date(t));
            let mut t = t + self.secs(3, 20);
            if !u.claimed_campaigns.contains(&campaign) && self.rng.gen_bool(0.75) {
                self.emit(
                    u,
                    Channel::Mp,
                    t,
                    EventType::CouponClaimed,
                    json!({"coupon_id": campaign}),
                );
                u.claimed_campaigns.push(campaign.clone());
                u.coupons.push(campaign);
                t += self.secs(2, 10);
            }
            // Some go on to order with the coupon they just took.
            return self.mp_flow(
                u,
                t,
                Landing {
                    page: "pages/menu/index",
                    source: None,
                    scene: None,
                    intent: 0.15,
                },
                0,
            );
        }
        t
    }

    /// A link from the OA into the MP: followed by those who use the MP.
    fn into_mp(&mut self, u: &mut User, t: DateTime<Utc>, landing: Landing) -> DateTime<Utc> {
        if !u.uses_mp {
            return t + ms(500);
        }
        u.on_mp = true;
        let t = t + self.secs(1, 4);
        self.mp_flow(u, t, landing, 0)
    }

    /// Reading one of the latest articles, and maybe its link into the MP.
    fn article_session(&mut self, u: &mut User, at: DateTime<Utc>) -> DateTime<Utc> {
        let latest = published_before(self.seed, at, 3);
        let r: f64 = self.rng.gen();
        let pick = if r < 0.65 {
            0
        } else if r < 0.9 {
            1
        } else {
            2
        };
        let Some(article) = latest.get(pick).or(latest.first()) else {
            return at;
        };
        let id = article.id.clone();
        self.emit(
            u,
            Channel::Oa,
            at,
            EventType::OaArticleRead,
            json!({"article_id": id, "title": article.title, "category": article.category}),
        );
        let t = at + self.secs(20, 180);
        if self.rng.gen::<f64>() < article.click * u.click {
            let link = if self.rng.gen_bool(0.6) {
                "card"
            } else {
                "text"
            };
            self.emit(
                u,
                Channel::Oa,
                t,
                EventType::OaArticleClick,
                json!({"article_id": id, "link": link,
                       "target": format!("pages/menu/index?from=article&id={id}")}),
            );
            return self.into_mp(
                u,
                t,
                Landing {
                    page: "pages/menu/index",
                    source: Some(format!("from=article&id={id}")),
                    scene: Some(1058),
                    intent: 0.3,
                },
            );
        }
        t
    }

    /// A visit to the MP: pages, maybe an order, maybe the follow prompt. `depth` > 0 for
    /// visits that follow from an earlier one (a message about its order), which do not start
    /// further messages.
    pub fn mp_flow(
        &mut self,
        u: &mut User,
        at: DateTime<Utc>,
        landing: Landing,
        depth: u8,
    ) -> DateTime<Utc> {
        u.on_mp = true;
        let mut t = at;
        if landing.source.is_some() || landing.scene.is_some() {
            self.emit(
                u,
                Channel::Mp,
                t,
                EventType::MpVisit,
                json!({"page": landing.page}),
            );
            let visit = &mut self.out.last_mut().expect("just pushed").value;
            if let Some(s) = &landing.source {
                visit["source"] = json!(s);
            }
            if let Some(s) = landing.scene {
                visit["scene"] = json!(s);
            }
        }
        let pages = ["pages/menu/index", "pages/item/detail", "pages/cart/index"];
        for _ in 0..self.rng.gen_range(1..=3) {
            t += self.secs(3, 40);
            let page = *pages.choose(&mut self.rng).expect("pages");
            // What the page shows (member_interest): the menu is noodles, an item page one of
            // the shop's categories; the cart shows none.
            let props = match page {
                "pages/menu/index" => json!({"page": page, "category": "面食"}),
                "pages/item/detail" => {
                    let c = ["面食", "饮品", "小吃"][t.timestamp().rem_euclid(3) as usize];
                    json!({"page": page, "category": c})
                }
                _ => json!({"page": page}),
            };
            self.emit(u, Channel::Mp, t, EventType::MpPageView, props);
        }
        let mut ordered = false;
        if self.rng.gen::<f64>() < (landing.intent * u.buy).min(0.9) {
            t += self.secs(20, 180);
            t = self.order(u, t, depth, None);
            ordered = true;
        }
        let wd = local_date(t).weekday();
        if matches!(
            wd,
            Weekday::Mon | Weekday::Tue | Weekday::Wed | Weekday::Thu
        ) && self.rng.gen_bool(0.05)
        {
            // The weekly seckill on Friday at noon: reserve a place now, join on the day.
            let friday = next_friday(local_date(t));
            let activity = format!("seckill-{}", friday.format("%Y%m%d"));
            if !u.reserved.contains(&activity) {
                t += self.secs(2, 20);
                self.emit(
                    u,
                    Channel::Mp,
                    t,
                    EventType::ActivityReserved,
                    json!({"activity_id": activity}),
                );
                if u.notify_subscribed {
                    // The reminder, a service notification ten minutes before the start.
                    let remind = at_local(friday, 11, 50) + self.secs(0, 60);
                    self.emit(
                        u,
                        Channel::Mp,
                        remind,
                        EventType::MpNotifySent,
                        json!({"template_id": "ACTIVITY_START", "purpose": "activity_reminder"}),
                    );
                }
                if self.rng.gen_bool(0.6) {
                    let join = at_local(friday, 12, 0) + self.secs(0, 300);
                    self.emit(
                        u,
                        Channel::Mp,
                        join,
                        EventType::ActivityJoined,
                        json!({"activity_id": activity, "kind": "seckill"}),
                    );
                    if self.rng.gen_bool(0.7) {
                        let t = join + self.secs(5, 60);
                        self.order(u, t, 1, Some(&activity));
                    }
                }
                u.reserved.push(activity);
            }
        }
        if matches!(wd, Weekday::Sat | Weekday::Sun) && self.rng.gen_bool(0.06) {
            t = self.groupbuy(u, t);
        }
        if self.rng.gen_bool(0.004) {
            t += self.secs(2, 20);
            let on = self.rng.gen_bool(0.3);
            self.emit(
                u,
                Channel::Mp,
                t,
                EventType::MemberPreferencesChanged,
                json!({"activity_notifications": on}),
            );
        }
        let prompt_due = u.last_prompt.is_none_or(|p| t - p >= Duration::hours(24));
        if !u.following && prompt_due && self.rng.gen_bool(0.45) {
            t += self.secs(1, 5);
            let placement = if ordered { "order_done" } else { "home" };
            self.emit(
                u,
                Channel::Mp,
                t,
                EventType::MpFollowPromptShown,
                json!({"placement": placement}),
            );
            u.last_prompt = Some(t);
            if self.rng.gen::<f64>() < 0.16 * u.click {
                t += self.secs(2, 15);
                self.emit(
                    u,
                    Channel::Mp,
                    t,
                    EventType::MpFollowPromptClick,
                    json!({"placement": placement}),
                );
                if u.may_follow && self.rng.gen_bool(0.8) {
                    t += self.secs(15, 90);
                    self.follow(u, t, "mp_prompt", Some(format!("mp_prompt:{placement}")));
                    u.followed_via_prompt = true;
                }
            }
        }
        t
    }

    /// The weekend group-buy (拼团): the person opens a group of three and pays; friends (not
    /// simulated) fill most groups within minutes, and the merchant's backend then reports the
    /// group complete, naming the leader.
    fn groupbuy(&mut self, u: &mut User, at: DateTime<Utc>) -> DateTime<Utc> {
        let d = local_date(at);
        let saturday = d - Duration::days(i64::from(d.weekday().num_days_from_monday()) - 5);
        let activity = format!("groupbuy-{}", saturday.format("%Y%m%d"));
        let group = format!("g{:010}", self.ids.gen_range(0..10_000_000_000u64));
        let mut t = at + self.secs(2, 20);
        self.emit(
            u,
            Channel::Mp,
            t,
            EventType::ActivityJoined,
            json!({"activity_id": activity, "kind": "groupbuy", "group_id": group}),
        );
        t += self.secs(10, 60);
        t = self.order(u, t, 1, Some(&activity));
        if self.rng.gen_bool(0.7) {
            let full = t + self.secs(60, 1800);
            self.emit(
                u,
                Channel::Mp,
                full,
                EventType::ActivityGroupCompleted,
                json!({"activity_id": activity, "group_id": group}),
            );
        }
        t
    }

    pub fn follow(&mut self, u: &mut User, at: DateTime<Utc>, via: &str, qrscene: Option<String>) {
        u.on_oa = true;
        u.following = true;
        u.followed_at = Some(at);
        let mut props = json!({"via": via});
        if let Some(q) = qrscene {
            props["qrscene"] = json!(q);
        }
        self.emit(u, Channel::Oa, at, EventType::OaFollow, props);
    }

    pub fn unfollow(&mut self, u: &mut User, at: DateTime<Utc>) {
        u.following = false;
        self.emit(u, Channel::Oa, at, EventType::OaUnfollow, json!({}));
    }

    /// The late UnionID binding: one event naming the unionid with every openid seen so far.
    pub fn identify(&mut self, u: &mut User, at: DateTime<Utc>) {
        u.identify_pending = false;
        let Some(unionid) = u.unionid.clone() else {
            return;
        };
        let mut user = json!({"unionid": unionid});
        if u.on_oa {
            user["oa_openid"] = json!(u.oa_openid);
        }
        if u.on_mp || !u.on_oa {
            user["mp_openid"] = json!(u.mp_openid);
        }
        self.push(at, EventType::MemberIdentified, user, json!({}));
    }

    /// An order placed, paid (mostly), its notice, and now and then a refund; `activity`: the
    /// campaign it belongs to (`order.placed.props.activity_id`).
    fn order(
        &mut self,
        u: &mut User,
        at: DateTime<Utc>,
        depth: u8,
        activity: Option<&str>,
    ) -> DateTime<Utc> {
        let order_id = format!(
            "{}{:08}",
            local_date(at).format("%Y%m%d"),
            self.ids.gen_range(0..100_000_000u64)
        );
        let n = self.rng.gen_range(1..=3);
        let picks: Vec<(&str, i64)> = PRODUCTS
            .choose_multiple(&mut self.rng, n)
            .copied()
            .collect();
        let mut items = Vec::new();
        let mut amount = 0;
        for (sku, price) in &picks {
            let qty = if self.rng.gen_bool(0.8) { 1 } else { 2 };
            amount += qty * price;
            items.push(json!({"sku": sku, "qty": qty, "price_fen": price}));
        }
        let coupon = if !u.coupons.is_empty() && self.rng.gen_bool(0.7) {
            u.coupons.pop()
        } else {
            None
        };
        if coupon.is_some() {
            amount = (amount - 500).max(100);
        }
        let mut placed = json!({"order_id": order_id, "amount_fen": amount, "items": items});
        if let Some(a) = activity {
            placed["activity_id"] = json!(a);
        }
        self.emit(u, Channel::Mp, at, EventType::OrderPlaced, placed);
        let mut t = at;
        if let Some(c) = coupon {
            t += ms(300);
            self.emit(
                u,
                Channel::Mp,
                t,
                EventType::CouponRedeemed,
                json!({"coupon_id": c, "order_id": order_id}),
            );
        }
        if !self.rng.gen_bool(0.93) {
            return t; // left unpaid
        }
        t += self.secs(10, 120);
        self.emit(
            u,
            Channel::Mp,
            t,
            EventType::OrderPaid,
            json!({"order_id": order_id, "amount_fen": amount}),
        );
        let paid = t;
        u.orders_paid += 1;
        if !u.profile_sent {
            u.profile_sent = true;
            if self.rng.gen_bool(0.35) {
                // The first delivery order: the backend learns a phone number and address.
                let h = mix(self.ids.gen());
                let phone = format!(
                    "1{}{:09}",
                    [3, 5, 7, 8, 9][(h % 5) as usize],
                    h % 1_000_000_000
                );
                let address = format!("上海市徐汇区漕溪北路 {} 号", 1 + h % 400);
                t += self.secs(1, 5);
                self.emit(
                    u,
                    Channel::Mp,
                    t,
                    EventType::MemberProfileUpdated,
                    json!({"phone": phone, "address": address, "level": "普通会员"}),
                );
            }
        }
        if self.rng.gen_bool(0.035) {
            let refund_at = paid + self.secs(600, 3 * 3600);
            let refunded = if self.rng.gen_bool(0.7) {
                amount
            } else {
                picks[0].1.min(amount)
            };
            self.emit(
                u,
                Channel::Mp,
                refund_at,
                EventType::OrderRefunded,
                json!({"order_id": order_id, "amount_fen": refunded}),
            );
        }
        if depth == 0 {
            self.order_notice(u, paid, &order_id);
        }
        t
    }

    /// "Your order is ready": a template message from the OA to followers, a subscribe message
    /// of the MP to the others who accepted them. Some open it, landing in the MP.
    fn order_notice(&mut self, u: &mut User, paid: DateTime<Utc>, order_id: &str) {
        let sent = paid + self.secs(360, 1200);
        let page = "pages/order/detail";
        if u.following && u.on_oa {
            let msg_id = format!(
                "{}",
                2_000_000_000u64 + self.ids.gen_range(0..1_000_000_000u64)
            );
            let r: f64 = self.rng.gen();
            let status = if r < 0.97 {
                "success"
            } else if r < 0.99 {
                "user_block"
            } else {
                "system_failed"
            };
            // The A/B test of the notice's wording: a member always gets the same variant.
            let treatment = mix(u
                .oa_openid
                .bytes()
                .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))))
                % 2
                == 1;
            let (variant, rate) = if treatment {
                ("pickup_code", 0.18)
            } else {
                ("control", 0.14)
            };
            self.emit(
                u,
                Channel::Oa,
                sent,
                EventType::OaTemplateSent,
                json!({"template_id": "ORDER_READY", "msg_id": msg_id, "purpose": "order_ready", "status": status,
                       "experiment": TEMPLATE_EXPERIMENT, "variant": variant}),
            );
            if status == "success" && self.rng.gen::<f64>() < rate * u.click {
                let t = sent + self.secs(30, 2400);
                self.emit(
                    u,
                    Channel::Oa,
                    t,
                    EventType::OaTemplateClick,
                    json!({"template_id": "ORDER_READY", "msg_id": msg_id,
                           "target": format!("{page}?from=template&type=order_ready&order_id={order_id}"),
                           "experiment": TEMPLATE_EXPERIMENT, "variant": variant}),
                );
                if u.uses_mp {
                    let t = t + self.secs(1, 4);
                    self.mp_flow(
                        u,
                        t,
                        Landing {
                            page,
                            source: Some("from=template&type=order_ready".into()),
                            scene: Some(1043),
                            intent: 0.06,
                        },
                        1,
                    );
                }
            }
        } else if u.notify_subscribed {
            self.emit(
                u,
                Channel::Mp,
                sent,
                EventType::MpNotifySent,
                json!({"template_id": "ORDER_READY_SUB", "purpose": "order_ready"}),
            );
            if self.rng.gen::<f64>() < 0.18 * u.click {
                let t = sent + self.secs(30, 2400);
                self.emit(
                    u,
                    Channel::Mp,
                    t,
                    EventType::MpNotifyClick,
                    json!({"template_id": "ORDER_READY_SUB"}),
                );
                let t = t + self.secs(1, 3);
                self.mp_flow(
                    u,
                    t,
                    Landing {
                        page,
                        source: None,
                        scene: Some(1014),
                        intent: 0.05,
                    },
                    1,
                );
            }
        }
    }
}

/// The A/B test of the order notice's (template message's) wording.
pub const TEMPLATE_EXPERIMENT: &str = "order_ready_copy";

/// An article of the OA.
pub(crate) struct Article {
    pub id: String,
    pub title: &'static str,
    pub category: &'static str,
    /// Chance a read ends in a click on its link into the MP.
    pub click: f64,
    pub published: DateTime<Utc>,
}

/// The article published on local date `d` (at 11:30, six days a week), if any.
pub(crate) fn article_of(seed: u64, d: NaiveDate) -> Option<Article> {
    let h = mix(seed ^ mix(d.num_days_from_ce() as u64));
    if h % 7 == 0 {
        return None;
    }
    let (title, category) = ARTICLES[((h >> 8) % ARTICLES.len() as u64) as usize];
    Some(Article {
        id: format!("art{}", d.format("%Y%m%d")),
        title,
        category,
        click: 0.04 + 0.16 * ((h >> 20) % 1000) as f64 / 1000.0,
        published: at_local(d, 11, 30),
    })
}

/// The `n` latest articles published before `t`, newest first.
pub(crate) fn published_before(seed: u64, t: DateTime<Utc>, n: usize) -> Vec<Article> {
    let mut d = local_date(t);
    let mut out = Vec::new();
    for _ in 0..(n * 3 + 3) {
        if let Some(a) = article_of(seed, d) {
            if a.published <= t {
                out.push(a);
                if out.len() == n {
                    break;
                }
            }
        }
        d = d.pred_opt().expect("a date after year 1");
    }
    out
}

/// The coupon of the week (one campaign per ISO week).
fn coupon_campaign(d: NaiveDate) -> String {
    let w = d.iso_week();
    format!("coupon-{}w{:02}-5off", w.year(), w.week())
}

fn next_friday(d: NaiveDate) -> NaiveDate {
    let mut d = d;
    while d.weekday() != Weekday::Fri {
        d = d.succ_opt().expect("a date before the end of time");
    }
    d
}
