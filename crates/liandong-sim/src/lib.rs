//! A traffic simulator that behaves like the audience of a restaurant brand running a WeChat
//! Official Account (OA) and a Mini Program (MP) side by side, and a sender that posts its events
//! to liandong's `POST /v1/events`. `liandong demo`, the benchmarks and the tests use it.
//!
//! The audience: regulars already there when the simulated period begins and new people arriving
//! every day (more each day), most with a UnionID that binds their OA and MP openids — at first
//! contact, or days later — and some whose openids are never bound. They open the OA menu (whose
//! ordering entry is an A/B test of two names), read articles and follow their links into the MP,
//! get order notices, visit the MP from other scenes, order, pay, sometimes refund, claim and
//! redeem coupons, see the MP's follow prompt and follow, and unfollow now and then — at lunch and
//! dinner more than at night, on Fridays more than on Mondays.
//!
//! Deterministic: the same [`SimConfig`] and `now` give the same events, ids included. Every
//! event is valid against the schemas and never later than the `now` it was made for.

mod audience;
mod rhythm;
mod sender;
mod session;

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use audience::{mix, person, User};
use rhythm::{day_start, local_date, Window};
use session::{Ev, Gen};

pub use sender::{Rejected, SendReport, Sender, SimError, Status};
pub use session::{COUPON_ENTRY, EXPERIMENT, ORDERS_ENTRY, ORDER_ENTRY, TEMPLATE_EXPERIMENT};

/// The variants of [`EXPERIMENT`], in the order of [`ORDER_ENTRY`]'s names.
pub const VARIANTS: [&str; 2] = ["control", "treatment"];

/// What audience to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// People in the audience by the end of the history (regulars plus the new arrivals).
    pub users: usize,
    /// Days of history before `now` (at least 1).
    pub days: u32,
    pub seed: u64,
    /// Share of `users` already in the audience when the history begins.
    pub regulars: f64,
    /// How much faster new people arrive at the end of the history than at its start
    /// (0: evenly; 1.5: 2.5 times as many on the last day as on the first).
    pub growth: f64,
    /// Pace of the live traffic relative to the audience's real one: 1 is real time; the demo
    /// uses more so that numbers move while you watch.
    pub live_speed: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            users: 2000,
            days: 30,
            seed: 1,
            regulars: 0.35,
            growth: 1.5,
            live_speed: 1.0,
        }
    }
}

/// A simulated audience, advanced through time by [`Simulation::history`] and then
/// [`Simulation::live`].
pub struct Simulation {
    cfg: SimConfig,
    start: DateTime<Utc>,
    /// Everything up to this instant has been simulated.
    now: DateTime<Utc>,
    history_done: bool,
    gen: Gen,
    users: Vec<User>,
    /// Events made but not yet due (an order paid after the slice that placed it ended).
    pending: Vec<Ev>,
    /// New people per average day at the end of the history (the live arrival rate).
    arrivals_per_day: f64,
}

impl Simulation {
    /// The audience of `cfg`, whose history ends at `now`.
    pub fn new(cfg: SimConfig, now: DateTime<Utc>) -> Simulation {
        let days = cfg.days.max(1);
        let start = now - Duration::days(days.into());
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        // Ids also depend on `now`: two runs at different times never share an event id.
        let ids = StdRng::seed_from_u64(mix(cfg.seed ^ mix(now.timestamp_millis() as u64)));
        let regulars = ((cfg.users as f64) * cfg.regulars.clamp(0.0, 1.0)).round() as usize;
        let newcomers = cfg.users - regulars;
        let g = cfg.growth.max(0.0);
        let mut users = Vec::with_capacity(cfg.users);
        for i in 0..regulars {
            users.push(person(&mut rng, cfg.seed, i as u64, start, None));
        }
        for i in regulars..cfg.users {
            // Arrival density grows linearly over the period: ∝ 1 + g·x for x in [0, 1).
            let u: f64 = rng.gen();
            let x = if g == 0.0 {
                u
            } else {
                ((1.0 + 2.0 * g * u * (1.0 + g / 2.0)).sqrt() - 1.0) / g
            };
            let rough = start
                + Duration::milliseconds(((now - start).num_milliseconds() as f64 * x) as i64);
            // The hour follows the day's rhythm.
            let d = local_date(rough);
            let w = Window::new(
                day_start(d).max(start),
                (day_start(d) + Duration::days(1)).min(now),
            );
            let at = if w.total > 0.0 {
                w.sample(&mut rng)
            } else {
                rough
            };
            users.push(person(&mut rng, cfg.seed, i as u64, start, Some(at)));
        }
        let arrivals_per_day = newcomers as f64 / f64::from(days) * (1.0 + g) / (1.0 + g / 2.0);
        Simulation {
            gen: Gen {
                seed: cfg.seed,
                rng,
                ids,
                seq: 0,
                out: Vec::new(),
            },
            cfg,
            start,
            now,
            history_done: false,
            users,
            pending: Vec::new(),
            arrivals_per_day,
        }
    }

    /// The wire events of the `days` days before `now`, in `occurred_at` order. A second call
    /// returns nothing: the history happens once.
    pub fn history(&mut self) -> Vec<Value> {
        if self.history_done {
            return Vec::new();
        }
        self.run_history();
        self.take_due(self.now)
    }

    fn run_history(&mut self) {
        let mut d = local_date(self.start);
        while day_start(d) < self.now {
            let a = day_start(d).max(self.start);
            let b = (day_start(d) + Duration::days(1)).min(self.now);
            self.advance(a, b, 1.0);
            d = d.succ_opt().expect("a date before the end of time");
        }
        self.history_done = true;
    }

    /// The live traffic of `(last, now]`, where `last` is the end of the previous slice (the
    /// history's `now` at first), plus events made earlier that are due by `now`: every event
    /// returned has `occurred_at <= now`. When more than `duration` has passed since `last`
    /// (the caller paused), only the last `duration` is simulated. Without a call to
    /// [`Simulation::history`] before, the history is simulated and its events dropped (the
    /// read store holds them already, from an earlier run).
    pub fn live(&mut self, now: DateTime<Utc>, duration: std::time::Duration) -> Vec<Value> {
        if !self.history_done {
            self.run_history();
            self.gen.out.clear();
            self.pending.retain(|e| e.at > self.now);
        }
        let span = Duration::from_std(duration).unwrap_or(Duration::days(1));
        let from = self.now.max(now - span);
        if now > from {
            let speed = self.cfg.live_speed.max(0.0);
            let w = Window::new(from, now);
            let arrivals = poisson(&mut self.gen.rng, self.arrivals_per_day * w.total * speed);
            for _ in 0..arrivals {
                let at = w.sample(&mut self.gen.rng);
                let index = self.users.len() as u64;
                let u = person(
                    &mut self.gen.rng,
                    self.cfg.seed,
                    index,
                    self.start,
                    Some(at),
                );
                self.users.push(u);
            }
            self.advance(from, now, speed);
            self.now = now;
        }
        self.take_due(now)
    }

    /// People in the audience so far (arrived or not).
    pub fn audience(&self) -> usize {
        self.users.len()
    }

    /// Simulates `[a, b)` for everyone: arrivals, sessions, unfollows, late bindings.
    fn advance(&mut self, a: DateTime<Utc>, b: DateTime<Utc>, speed: f64) {
        #[derive(Clone, Copy)]
        enum Item {
            Arrive,
            Session,
            Unfollow,
            Identify,
        }
        let window = Window::new(a, b);
        let days = (b - a).num_milliseconds() as f64 / 86_400_000.0;
        let mid = a + (b - a) / 2;
        let gen = &mut self.gen;
        for u in self.users.iter_mut() {
            if u.arrive >= b {
                continue;
            }
            let mut items: Vec<(DateTime<Utc>, Item)> = Vec::new();
            if u.arrive >= a {
                items.push((u.arrive, Item::Arrive));
                let after = Window::new(u.arrive, b);
                let k = poisson(&mut gen.rng, u.pace(mid) * after.total * speed);
                for _ in 0..k {
                    items.push((after.sample(&mut gen.rng), Item::Session));
                }
            } else {
                let k = poisson(&mut gen.rng, u.pace(mid) * window.total * speed);
                for _ in 0..k {
                    items.push((window.sample(&mut gen.rng), Item::Session));
                }
                if u.following {
                    let recent_prompt = u.followed_via_prompt
                        && u.followed_at.is_some_and(|f| a - f < Duration::days(14));
                    let hazard = if recent_prompt { 0.008 } else { 0.0015 };
                    if gen.rng.gen::<f64>() < hazard * days * speed {
                        let ms = (b - a).num_milliseconds().max(1);
                        let at = a + Duration::milliseconds(gen.rng.gen_range(0..ms));
                        items.push((at, Item::Unfollow));
                    }
                }
            }
            if u.identify_pending {
                if let Some(at) = u.bound_from.filter(|t| *t < b) {
                    items.push((at.max(a), Item::Identify));
                }
            }
            items.sort_by_key(|(t, _)| *t);
            for (t, item) in items {
                let end = match item {
                    Item::Arrive => gen.arrive(u, t),
                    Item::Session => {
                        let t = t.max(u.busy_until + Duration::seconds(60));
                        gen.session(u, t)
                    }
                    Item::Unfollow => {
                        if u.following {
                            let t = t.max(u.busy_until + Duration::seconds(1));
                            gen.unfollow(u, t);
                            t
                        } else {
                            t
                        }
                    }
                    Item::Identify => {
                        gen.identify(u, t);
                        t
                    }
                };
                u.busy_until = u.busy_until.max(end);
            }
        }
        self.pending.append(&mut self.gen.out);
    }

    /// The pending events due by `now`, in order; the rest stay pending.
    fn take_due(&mut self, now: DateTime<Utc>) -> Vec<Value> {
        self.pending.sort_by_key(|e| (e.at, e.seq));
        let due = self.pending.partition_point(|e| e.at <= now);
        self.pending.drain(..due).map(|e| e.value).collect()
    }
}

/// A Poisson-distributed count with mean `lambda` (Knuth's method; a normal approximation for
/// large means, which only very fast live traffic reaches).
fn poisson(rng: &mut impl Rng, lambda: f64) -> u64 {
    if lambda <= 0.0 || !lambda.is_finite() {
        return 0;
    }
    if lambda > 30.0 {
        let (u1, u2): (f64, f64) = (rng.gen::<f64>().max(1e-12), rng.gen());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        return (lambda + lambda.sqrt() * z).round().max(0.0) as u64;
    }
    let limit = (-lambda).exp();
    let mut k = 0;
    let mut p = rng.gen::<f64>();
    while p > limit {
        k += 1;
        p *= rng.gen::<f64>();
    }
    k
}

#[cfg(test)]
mod tests;
