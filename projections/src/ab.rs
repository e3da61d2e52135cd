//! The A/B readout's statistics (METRICS.md, `ab_readout`): the two-sided pooled two-proportion
//! z-test and the unpooled 95 % interval of the difference in click-through rates, against the
//! control (the variant named `control`, else the alphabetically first).

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};

/// Members exposed to, and clicking, one variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantCounts {
    pub variant: String,
    pub exposed: i64,
    pub clicked: i64,
}

/// A row of `ab_readout`.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Readout {
    /// The surface the experiment lives on (`menu`, `article`, `template`, `follow_prompt`,
    /// `notify`).
    pub surface: String,
    pub experiment: String,
    pub variant: String,
    pub exposed_users: i64,
    pub clicked_users: i64,
    pub ctr: Option<f64>,
    pub lift: Option<f64>,
    pub p_value: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
}

fn standard_normal() -> Normal {
    // Mean 0, standard deviation 1 are valid parameters.
    Normal::standard()
}

/// The readout of one experiment's variants.
pub fn readout(surface: &str, experiment: &str, variants: &[VariantCounts]) -> Vec<Readout> {
    let control = variants
        .iter()
        .find(|v| v.variant == "control")
        .or_else(|| variants.iter().min_by(|a, b| a.variant.cmp(&b.variant)));
    let rate = |v: &VariantCounts| (v.exposed > 0).then(|| v.clicked as f64 / v.exposed as f64);
    let n = standard_normal();
    let z95 = n.inverse_cdf(0.975);
    variants
        .iter()
        .map(|v| {
            let mut r = Readout {
                surface: surface.to_owned(),
                experiment: experiment.to_owned(),
                variant: v.variant.clone(),
                exposed_users: v.exposed,
                clicked_users: v.clicked,
                ctr: rate(v),
                lift: None,
                p_value: None,
                ci_low: None,
                ci_high: None,
            };
            let Some(c) = control.filter(|c| c.variant != v.variant) else {
                return r;
            };
            let (Some(p1), Some(p2)) = (rate(v), rate(c)) else {
                return r;
            };
            let (n1, n2) = (v.exposed as f64, c.exposed as f64);
            r.lift = (p2 > 0.0).then(|| p1 / p2 - 1.0);
            let pooled = (v.clicked + c.clicked) as f64 / (n1 + n2);
            let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
            r.p_value = (se > 0.0).then(|| 2.0 * (1.0 - n.cdf(((p1 - p2) / se).abs())));
            let se_u = (p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2).sqrt();
            r.ci_low = Some(p1 - p2 - z95 * se_u);
            r.ci_high = Some(p1 - p2 + z95 * se_u);
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(variant: &str, exposed: i64, clicked: i64) -> VariantCounts {
        VariantCounts {
            variant: variant.into(),
            exposed,
            clicked,
        }
    }

    /// Expected values computed independently with Python's standard library:
    /// p = math.erfc(abs(z) / math.sqrt(2)), z95 = 1.959963984540054.
    #[test]
    fn matches_independently_computed_values() {
        let r = readout("menu", "x", &[v("control", 1000, 100), v("b", 1000, 120)]);
        let b = &r[1];
        assert_eq!(r[0].lift, None);
        assert_eq!(r[0].p_value, None);
        assert!((b.ctr.unwrap() - 0.12).abs() < 1e-12);
        assert!((b.lift.unwrap() - 0.2).abs() < 1e-12);
        assert!(
            (b.p_value.unwrap() - 0.152_917_781_863_946_2).abs() < 1e-9,
            "{:?}",
            b.p_value
        );
        assert!(
            (b.ci_low.unwrap() - (-0.007_411_481_998_019_945)).abs() < 1e-9,
            "{:?}",
            b.ci_low
        );
        assert!(
            (b.ci_high.unwrap() - 0.047_411_481_998_019_92).abs() < 1e-9,
            "{:?}",
            b.ci_high
        );
    }

    #[test]
    fn the_control_is_named_control_else_alphabetically_first() {
        let r = readout("menu", "x", &[v("b", 10, 5), v("a", 10, 1)]);
        assert!(r
            .iter()
            .find(|r| r.variant == "a")
            .unwrap()
            .p_value
            .is_none());
        assert!(r
            .iter()
            .find(|r| r.variant == "b")
            .unwrap()
            .p_value
            .is_some());
    }

    #[test]
    fn zero_denominators_give_nulls() {
        let r = readout(
            "menu",
            "x",
            &[v("control", 10, 0), v("b", 10, 0), v("c", 0, 0)],
        );
        let b = r.iter().find(|r| r.variant == "b").unwrap();
        assert_eq!(
            (b.lift, b.p_value),
            (None, None),
            "control ctr 0 and pooled se 0"
        );
        let c = r.iter().find(|r| r.variant == "c").unwrap();
        assert_eq!(
            (c.ctr, c.lift, c.p_value, c.ci_low),
            (None, None, None, None)
        );
    }
}
