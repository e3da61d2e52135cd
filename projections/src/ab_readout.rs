//! `ab_readout` (METRICS.md, "A/B tests"), on five surfaces, each named by the pair of event
//! types it is measured with ([`surface_of`]): per surface, experiment and variant, the members
//! exposed to exactly that one variant, those of them who clicked it (the surface's click type)
//! at or after their first exposure, and the test against the control ([`crate::ab::readout`]).
//! An experiment is keyed by (surface, experiment) everywhere: a click of another surface's type
//! never counts for it, and a name reused on two surfaces (the contract says it is not) makes two
//! experiments rather than a result that depends on which exposure came first.
//!
//! A member's row of `fact_experiment` (its one variant, or none when it saw several; its first
//! exposure; whether it clicked) is merged with the batch's exposures and clicks
//! ([`merge_fact`]). Only when a first exposure appears or moves earlier are the member's
//! stored clicks of that experiment looked up, in the window it opened. The per-variant counts
//! (`ab_counts`) move by the difference, and the readout of each experiment the batch moved is
//! recomputed from them, under a lock on the experiment (two batches must not each write a
//! readout that misses the other's counts).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use liandong_event::EventType;
use liandong_store::StoreError;
use serde_json::{json as j, Value};

use crate::ab::{readout, Readout, VariantCounts};
use crate::member_profile::{parse_ts, ts, ProfileEvent};
use crate::sql::{self, json, Db, Statement, Ty};

/// The member in one experiment (a row of `fact_experiment`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExperimentFact {
    /// `None` when the member was exposed to more than one variant: excluded.
    pub variant: Option<String>,
    pub first_exposed_at: Option<DateTime<Utc>>,
    pub clicked: bool,
}

/// One exposure or click of an experiment, as the merge reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    pub click: bool,
    pub variant: String,
    pub at: DateTime<Utc>,
}

/// What the merge could not decide alone: whether the member has a stored click of `variant`
/// in `[from, until)` (`until` `None`: any time after `from`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickQuestion {
    pub variant: String,
    pub from: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
}

/// Merges a member's new touches of one experiment into its fact. Returns the new fact (`None`:
/// never exposed) and, when its clicks before this batch matter, the question to ask the store.
pub fn merge_fact(
    old: Option<&ExperimentFact>,
    touches: &[Touch],
) -> (Option<ExperimentFact>, Option<ClickQuestion>) {
    let exposures: BTreeSet<&str> = touches
        .iter()
        .filter(|t| !t.click)
        .map(|t| t.variant.as_str())
        .collect();
    let first_new = touches.iter().filter(|t| !t.click).map(|t| t.at).min();
    let Some(first_any) = old
        .and_then(|o| o.first_exposed_at)
        .into_iter()
        .chain(first_new)
        .min()
    else {
        return match old {
            // Excluded already: exposed to several variants, nothing more to know.
            Some(o) => (Some(o.clone()), None),
            None => (None, None),
        };
    };
    let mut variants = exposures;
    let excluded_before = old.is_some_and(|o| o.variant.is_none());
    if let Some(v) = old.and_then(|o| o.variant.as_deref()) {
        variants.insert(v);
    }
    if excluded_before || variants.len() != 1 {
        return (
            Some(ExperimentFact {
                variant: None,
                first_exposed_at: None,
                clicked: false,
            }),
            None,
        );
    }
    let v = variants.first().copied().unwrap_or_default().to_owned();
    let old_same = old.filter(|o| o.variant.as_deref() == Some(v.as_str()));
    let clicked = old_same.is_some_and(|o| o.clicked)
        || touches
            .iter()
            .any(|t| t.click && t.variant == v && t.at >= first_any);
    let question = (!clicked)
        .then(|| {
            let until = old_same.and_then(|o| o.first_exposed_at);
            (until != Some(first_any)).then(|| ClickQuestion {
                variant: v.clone(),
                from: first_any,
                until,
            })
        })
        .flatten();
    (
        Some(ExperimentFact {
            variant: Some(v),
            first_exposed_at: Some(first_any),
            clicked,
        }),
        question,
    )
}

/// The surfaces: (name, exposure type, click type).
pub const SURFACES: &[(&str, EventType, EventType)] = &[
    ("menu", EventType::OaMenuExposure, EventType::OaMenuClick),
    (
        "article",
        EventType::OaArticleRead,
        EventType::OaArticleClick,
    ),
    (
        "template",
        EventType::OaTemplateSent,
        EventType::OaTemplateClick,
    ),
    (
        "follow_prompt",
        EventType::MpFollowPromptShown,
        EventType::MpFollowPromptClick,
    ),
    ("notify", EventType::MpNotifySent, EventType::MpNotifyClick),
];

/// The surface an event type belongs to, and whether it is that surface's click.
pub fn surface_of(t: EventType) -> Option<(&'static str, bool)> {
    SURFACES.iter().find_map(|(name, exposure, click)| {
        (t == *exposure)
            .then_some((*name, false))
            .or_else(|| (t == *click).then_some((*name, true)))
    })
}

/// The click type of a surface.
fn click_type(surface: &str) -> &'static str {
    SURFACES
        .iter()
        .find(|(name, _, _)| *name == surface)
        .map_or("", |(_, _, click)| click.as_str())
}

/// An experiment: (surface, experiment name).
type Exp = (String, String);

fn touch_of(e: &ProfileEvent) -> Option<(Exp, Touch)> {
    let (surface, click) = surface_of(e.event_type)?;
    let text = |k: &str| e.props.get(k).and_then(Value::as_str);
    let experiment = text("experiment").filter(|x| !x.is_empty())?;
    Some((
        (surface.to_owned(), experiment.to_owned()),
        Touch {
            click,
            variant: text("variant").unwrap_or("").to_owned(),
            at: e.occurred_at,
        },
    ))
}

const PAIRS: sql::Columns = &[
    ("member_key", Ty::Text),
    ("surface", Ty::Text),
    ("experiment", Ty::Text),
];

static OLD: Statement = Statement::new(|d| {
    format!(
        "SELECT f.member_key, f.surface, f.experiment, f.variant, {}, f.clicked
         FROM {} JOIN fact_experiment f
           ON f.member_key = p.member_key AND f.surface = p.surface AND f.experiment = p.experiment",
        sql::ts_text(d, "f.first_exposed_at"),
        sql::records(d, 1, "p", PAIRS)
    )
});
static OLD_OF_MEMBERS: Statement = Statement::new(|d| {
    format!(
        "SELECT member_key, surface, experiment, variant, {}, clicked FROM fact_experiment WHERE member_key IN {}",
        sql::ts_text(d, "first_exposed_at"),
        sql::values(d, 1)
    )
});
static CLICKS: Statement = Statement::new(|d| {
    format!(
        "SELECT q.member_key, q.surface, q.experiment FROM {} WHERE EXISTS (SELECT 1 FROM events e
           WHERE e.member_key = q.member_key AND e.type = q.click_type
             AND e.occurred_at >= q.start AND e.occurred_at < q.stop
             AND e.props ->> 'experiment' = q.experiment AND coalesce(e.props ->> 'variant', '') = q.variant)",
        sql::records(
            d,
            1,
            "q",
            &[
                ("member_key", Ty::Text),
                ("surface", Ty::Text),
                ("click_type", Ty::Text),
                ("experiment", Ty::Text),
                ("variant", Ty::Text),
                ("start", Ty::Ts),
                ("stop", Ty::Ts),
            ]
        )
    )
});
static DELETE: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM fact_experiment WHERE (member_key, surface, experiment) IN (SELECT member_key, surface, experiment FROM {})",
        sql::records(d, 1, "p", PAIRS)
    )
});
static INSERT: Statement = Statement::new(|d| {
    sql::insert(
        d,
        "fact_experiment",
        &[
            ("member_key", Ty::Text),
            ("surface", Ty::Text),
            ("experiment", Ty::Text),
            ("variant", Ty::Text),
            ("first_exposed_at", Ty::Ts),
            ("clicked", Ty::Bool),
        ],
    )
});
const COUNTS: sql::Columns = &[
    ("surface", Ty::Text),
    ("experiment", Ty::Text),
    ("variant", Ty::Text),
    ("exposed", Ty::Int),
    ("clicked", Ty::Int),
];
static ADD: Statement = Statement::new(|d| {
    sql::add_counts(
        d,
        "ab_counts",
        &["surface", "experiment", "variant"],
        COUNTS,
    )
});
const EXPERIMENTS: sql::Columns = &[("surface", Ty::Text), ("experiment", Ty::Text)];

static DROP_EMPTY: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM ab_counts WHERE exposed = 0
           AND (surface, experiment) IN (SELECT surface, experiment FROM {})",
        sql::records(d, 1, "x", EXPERIMENTS)
    )
});
static COUNTS_OF: Statement = Statement::new(|d| {
    format!(
        "SELECT surface, experiment, variant, exposed, clicked FROM ab_counts
         WHERE (surface, experiment) IN (SELECT surface, experiment FROM {})
         ORDER BY surface, experiment, variant",
        sql::records(d, 1, "x", EXPERIMENTS)
    )
});
static DELETE_READOUT: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM ab_readout WHERE (surface, experiment) IN (SELECT surface, experiment FROM {})",
        sql::records(d, 1, "x", EXPERIMENTS)
    )
});
static INSERT_READOUT: Statement = Statement::new(|d| {
    sql::insert(
        d,
        "ab_readout",
        &[
            ("surface", Ty::Text),
            ("experiment", Ty::Text),
            ("variant", Ty::Text),
            ("exposed_users", Ty::Int),
            ("clicked_users", Ty::Int),
            ("ctr", Ty::Float),
            ("lift", Ty::Float),
            ("p_value", Ty::Float),
            ("ci_low", Ty::Float),
            ("ci_high", Ty::Float),
        ],
    )
});

type FactTuple = (String, String, String, Option<String>, Option<String>, bool);

fn fact_of(t: &FactTuple) -> Result<ExperimentFact, StoreError> {
    Ok(ExperimentFact {
        variant: t.3.clone(),
        first_exposed_at: t.4.as_deref().map(parse_ts).transpose()?,
        clicked: t.5,
    })
}

/// A member in an experiment: (member_key, (surface, experiment)).
type Key = (String, Exp);

/// Merges the batch's exposures and clicks into the members' experiment facts (members in
/// `reset` start from nothing), moves the counts and recomputes the readouts that moved.
pub(crate) async fn update<C: Db + ?Sized>(
    db: &mut C,
    added: &BTreeMap<String, Vec<ProfileEvent>>,
    reset: &BTreeSet<String>,
) -> Result<(), StoreError> {
    let mut touches: BTreeMap<Key, Vec<Touch>> = BTreeMap::new();
    for (key, events) in added {
        for (x, t) in events.iter().filter_map(touch_of) {
            touches.entry((key.clone(), x)).or_default().push(t);
        }
    }
    if touches.is_empty() && reset.is_empty() {
        return Ok(());
    }
    // Facts before the batch: every fact of a reset member (dropped), the touched ones of others.
    let mut old: BTreeMap<Key, ExperimentFact> = BTreeMap::new();
    let mut dropped: Vec<Key> = Vec::new();
    if !reset.is_empty() {
        for t in db
            .fetch::<FactTuple>(&OLD_OF_MEMBERS, &[&json(reset)])
            .await?
        {
            let f = fact_of(&t)?;
            let key = (t.0, (t.1, t.2));
            old.insert(key.clone(), f);
            dropped.push(key);
        }
    }
    let pairs: Vec<_> = touches
        .keys()
        .filter(|(k, _)| !reset.contains(k))
        .map(|(k, (surface, x))| j!({"member_key": k, "surface": surface, "experiment": x}))
        .collect();
    if !pairs.is_empty() {
        for t in db.fetch::<FactTuple>(&OLD, &[&json(&pairs)]).await? {
            let f = fact_of(&t)?;
            old.insert((t.0, (t.1, t.2)), f);
        }
    }

    let mut new: BTreeMap<Key, ExperimentFact> = BTreeMap::new();
    let mut questions = Vec::new();
    for (key, ts_) in &touches {
        let (k, (surface, x)) = key;
        // A reset member starts from nothing; its old facts are only taken off the counts.
        let before = if reset.contains(k) {
            None
        } else {
            old.get(key)
        };
        let (fact, question) = merge_fact(before, ts_);
        if let Some(q) = question {
            questions.push(j!({
                "member_key": k, "surface": surface, "click_type": click_type(surface),
                "experiment": x, "variant": q.variant, "start": ts(&q.from),
                "stop": q.until.map_or_else(|| "9999-12-31T00:00:00.000000Z".to_owned(), |t| ts(&t)),
            }));
        }
        if let Some(f) = fact {
            new.insert(key.clone(), f);
        }
    }
    if !questions.is_empty() {
        for (k, surface, x) in db
            .fetch::<(String, String, String)>(&CLICKS, &[&json(&questions)])
            .await?
        {
            if let Some(f) = new.get_mut(&(k, (surface, x))) {
                f.clicked = true;
            }
        }
    }

    // What changed, and by how much each variant's counts move.
    let mut deltas: BTreeMap<(Exp, String), (i64, i64)> = BTreeMap::new();
    let mut rewrite: BTreeSet<Key> = BTreeSet::new();
    for key in dropped.iter().chain(touches.keys()) {
        let (before, after) = (old.get(key), new.get(key));
        if before == after {
            continue;
        }
        rewrite.insert(key.clone());
        for (f, sign) in [(before, -1), (after, 1)] {
            if let Some(ExperimentFact {
                variant: Some(v),
                clicked,
                ..
            }) = f
            {
                let d = deltas.entry((key.1.clone(), v.clone())).or_default();
                d.0 += sign;
                d.1 += sign * i64::from(*clicked);
            }
        }
    }
    if rewrite.is_empty() {
        return Ok(());
    }
    let rewrite_pairs: Vec<_> = rewrite
        .iter()
        .map(|(k, (surface, x))| j!({"member_key": k, "surface": surface, "experiment": x}))
        .collect();
    db.exec(&DELETE, &[&json(&rewrite_pairs)]).await?;
    let rows: Vec<_> = rewrite
        .iter()
        .filter_map(|key| {
            let f = new.get(key)?;
            let (k, (surface, x)) = key;
            Some(j!({
                "member_key": k, "surface": surface, "experiment": x, "variant": f.variant,
                "first_exposed_at": f.first_exposed_at.as_ref().map(ts), "clicked": f.clicked,
            }))
        })
        .collect();
    if !rows.is_empty() {
        db.exec(&INSERT, &[&json(&rows)]).await?;
    }

    let counts: Vec<_> = deltas
        .iter()
        .filter(|(_, d)| **d != (0, 0))
        .map(|(((surface, x), v), (e, c))| {
            j!({"surface": surface, "experiment": x, "variant": v, "exposed": e, "clicked": c})
        })
        .collect();
    if counts.is_empty() {
        return Ok(());
    }
    let moved: BTreeSet<&Exp> = deltas
        .iter()
        .filter(|(_, d)| **d != (0, 0))
        .map(|((x, _), _)| x)
        .collect();
    let moved_json = json(
        &moved
            .iter()
            .map(|(surface, x)| j!({"surface": surface, "experiment": x}))
            .collect::<Vec<_>>(),
    );
    // Two batches that move one experiment's counts take turns from here to the commit.
    let locks: Vec<String> = moved
        .iter()
        .map(|(surface, x)| format!("experiment:{surface}:{x}"))
        .collect();
    db.lock(&json(&locks)).await?;
    db.exec(&ADD, &[&json(&counts)]).await?;
    db.exec(&DROP_EMPTY, &[&moved_json]).await?;
    let mut by_experiment: BTreeMap<Exp, Vec<VariantCounts>> = BTreeMap::new();
    for (surface, x, variant, exposed, clicked) in db
        .fetch::<(String, String, String, i64, i64)>(&COUNTS_OF, &[&moved_json])
        .await?
    {
        by_experiment
            .entry((surface, x))
            .or_default()
            .push(VariantCounts {
                variant,
                exposed,
                clicked,
            });
    }
    let readouts: Vec<Readout> = by_experiment
        .iter()
        .flat_map(|((surface, x), v)| readout(surface, x, v))
        .collect();
    db.exec(&DELETE_READOUT, &[&moved_json]).await?;
    if !readouts.is_empty() {
        db.exec(&INSERT_READOUT, &[&json(&readouts)]).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(click: bool, v: &str, at: &str) -> Touch {
        Touch {
            click,
            variant: v.into(),
            at: at.parse().unwrap(),
        }
    }

    #[test]
    fn every_surface_pairs_one_exposure_type_with_one_click_type() {
        assert_eq!(
            surface_of(EventType::OaTemplateSent),
            Some(("template", false))
        );
        assert_eq!(
            surface_of(EventType::MpFollowPromptClick),
            Some(("follow_prompt", true))
        );
        assert_eq!(surface_of(EventType::MpVisit), None);
        assert_eq!(click_type("notify"), "mp.notify.click");
        let names: BTreeSet<&str> = SURFACES.iter().map(|s| s.0).collect();
        assert_eq!(names.len(), 5);
    }

    #[test]
    fn given_a_click_before_the_first_exposure_then_it_does_not_count() {
        let (f, q) = merge_fact(
            None,
            &[
                t(true, "b", "2026-11-01T00:00:00Z"),
                t(false, "b", "2026-11-02T00:00:00Z"),
            ],
        );
        assert!(!f.unwrap().clicked);
        // The store may hold a later click: ask for [first exposure, ∞).
        assert_eq!(q.unwrap().until, None);
    }

    #[test]
    fn given_two_variants_then_the_member_is_excluded_for_good() {
        let (f, _) = merge_fact(None, &[t(false, "a", "2026-11-01T00:00:00Z")]);
        let (f, _) = merge_fact(f.as_ref(), &[t(false, "b", "2026-11-02T00:00:00Z")]);
        let f = f.unwrap();
        assert_eq!(f.variant, None);
        let (g, q) = merge_fact(Some(&f), &[t(true, "a", "2026-11-03T00:00:00Z")]);
        assert_eq!(g.unwrap().variant, None);
        assert!(q.is_none());
    }

    #[test]
    fn given_an_earlier_exposure_then_only_the_window_it_opened_is_asked() {
        let (f, _) = merge_fact(None, &[t(false, "a", "2026-11-05T00:00:00Z")]);
        let (f, q) = merge_fact(f.as_ref(), &[t(false, "a", "2026-11-01T00:00:00Z")]);
        let q = q.unwrap();
        assert_eq!(ts(&q.from), "2026-11-01T00:00:00.000000Z");
        assert_eq!(
            q.until.map(|u| ts(&u)).as_deref(),
            Some("2026-11-05T00:00:00.000000Z")
        );
        assert_eq!(
            f.unwrap().first_exposed_at.map(|x| ts(&x)).as_deref(),
            Some("2026-11-01T00:00:00.000000Z")
        );
    }
}
