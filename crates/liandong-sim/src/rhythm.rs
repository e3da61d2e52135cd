//! When people use a restaurant brand's OA and MP: peaks at lunch and dinner, a little at
//! breakfast and late evening, almost nothing at night, a bit more on Friday and the weekend.
//! Times are read in China's time zone (UTC+8, no daylight saving), where the audience lives.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, TimeZone, Timelike, Utc};
use rand::Rng;

/// UTC+8: Asia/Shanghai, the offset every simulated `occurred_at` carries.
pub(crate) fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset")
}

/// Relative activity per local hour, 0..23.
const HOUR_WEIGHT: [f64; 24] = [
    0.35, 0.18, 0.10, 0.06, 0.05, 0.10, 0.40, 1.20, 1.80, 1.50, 2.20, 5.00, //
    6.00, 3.00, 1.50, 1.30, 1.60, 3.50, 5.00, 3.80, 2.50, 2.20, 1.40, 0.75,
];

/// Relative activity per weekday, Monday first.
const WEEKDAY_WEIGHT: [f64; 7] = [0.90, 0.90, 0.95, 1.00, 1.15, 1.20, 1.10];

fn hour_share(hour: u32) -> f64 {
    let total: f64 = HOUR_WEIGHT.iter().sum();
    HOUR_WEIGHT[hour as usize] / total
}

/// The local calendar date of `t`.
pub(crate) fn local_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&china()).date_naive()
}

/// The instant a local date begins.
pub(crate) fn day_start(d: NaiveDate) -> DateTime<Utc> {
    china()
        .from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists"))
        .single()
        .expect("a fixed offset has no gaps")
        .with_timezone(&Utc)
}

/// A local time of day on date `d`.
pub(crate) fn at_local(d: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
    day_start(d) + Duration::hours(h.into()) + Duration::minutes(m.into())
}

/// A stretch of time cut at local hour boundaries, each piece with its share of an average
/// day's activity: sessions are spread over it in proportion.
pub(crate) struct Window {
    pieces: Vec<(DateTime<Utc>, DateTime<Utc>, f64)>,
    /// Expected activity of the window in "average days" (a whole Friday is 1.15).
    pub total: f64,
}

impl Window {
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Window {
        let mut pieces = Vec::new();
        let mut total = 0.0;
        let mut cur = from;
        while cur < to {
            let local = cur.with_timezone(&china());
            let hour_start = local
                .with_minute(0)
                .and_then(|t| t.with_second(0))
                .and_then(|t| t.with_nanosecond(0))
                .expect("the start of an hour exists")
                .with_timezone(&Utc);
            let end = (hour_start + Duration::hours(1)).min(to);
            let secs = (end - cur).num_milliseconds() as f64 / 1000.0;
            let w = hour_share(local.hour())
                * WEEKDAY_WEIGHT[local.weekday().num_days_from_monday() as usize]
                * secs
                / 3600.0;
            total += w;
            pieces.push((cur, end, w));
            cur = end;
        }
        Window { pieces, total }
    }

    /// A random instant of the window, likelier where activity is higher.
    pub fn sample(&self, rng: &mut impl Rng) -> DateTime<Utc> {
        let mut x = rng.gen::<f64>() * self.total;
        for (a, b, w) in &self.pieces {
            if x < *w {
                let ms = (*b - *a).num_milliseconds().max(1);
                return *a + Duration::milliseconds(rng.gen_range(0..ms));
            }
            x -= w;
        }
        // Rounding left x just past the last piece.
        self.pieces.last().map(|p| p.0).unwrap_or_else(Utc::now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_day_sums_to_its_weekday_weight_and_peaks_at_meals() {
        // 2026-11-27 is a Friday.
        let d = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        let w = Window::new(day_start(d), day_start(d) + Duration::days(1));
        assert!((w.total - 1.15).abs() < 1e-9, "{}", w.total);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut hours = [0u32; 24];
        for _ in 0..20_000 {
            hours[w.sample(&mut rng).with_timezone(&china()).hour() as usize] += 1;
        }
        assert!(hours[12] > 10 * hours[3], "{hours:?}");
        assert!(hours[18] > 3 * hours[15], "{hours:?}");
    }
}
