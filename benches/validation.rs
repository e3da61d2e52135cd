//! Events/s of `Schemas::validate` (the JSON Schema check plus the strict Rust reading into an
//! `Event`) over a realistic mix of scenario events, beside the baseline of parsing the same
//! bytes into a `serde_json::Value` — the work every JSON endpoint does anyway. The ratio of
//! the two says how much validation costs on top of parsing; ingestion does both per event.
//! No services needed. See benches/README.md.

use std::hint::black_box;
use std::time::Duration;

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use liandong_event::Schemas;
use liandong_testkit::scenario::{self, Shape};
use serde_json::Value;

/// The scenario's mix: every type the generator makes, in its proportions (visits, orders,
/// follows, bindings, ...), ~2000 events so one iteration spans the mix.
fn mix() -> Vec<Vec<u8>> {
    // Traffic ending a day before now: an event more than an hour ahead is invalid.
    let start = (Utc::now() - chrono::Duration::days(31))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    scenario::events(&Shape {
        seed: 11,
        members: 100,
        events_per_member: 20,
        start,
        days: 30,
    })
    .iter()
    .map(|v| serde_json::to_vec(v).expect("a Value serializes"))
    .collect()
}

fn validation(c: &mut Criterion) {
    let schemas = Schemas::load().expect("the schemas compile");
    let bytes = mix();
    let values: Vec<Value> = bytes
        .iter()
        .map(|b| serde_json::from_slice(b).expect("scenario JSON parses"))
        .collect();
    let now = Utc::now();
    // A benchmark of the error path would measure something else: every event must pass.
    for v in &values {
        schemas.validate(v, now).expect("scenario events are valid");
    }

    let mut g = c.benchmark_group("validation");
    g.throughput(Throughput::Elements(bytes.len() as u64));
    g.sample_size(30);
    g.measurement_time(Duration::from_secs(8));

    // Baseline: parsing alone.
    g.bench_function("baseline: serde_json::from_slice::<Value>", |b| {
        b.iter(|| {
            for e in &bytes {
                black_box(serde_json::from_slice::<Value>(black_box(e)).expect("parses"));
            }
        })
    });
    // Validation alone, on already parsed values (what Schemas::validate adds).
    g.bench_function("Schemas::validate", |b| {
        b.iter(|| {
            for v in &values {
                black_box(schemas.validate(black_box(v), now).expect("valid"));
            }
        })
    });
    // Both, as ingestion does per event.
    g.bench_function("parse + Schemas::validate", |b| {
        b.iter(|| {
            for e in &bytes {
                let v: Value = serde_json::from_slice(black_box(e)).expect("parses");
                black_box(schemas.validate(&v, now).expect("valid"));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, validation);
criterion_main!(benches);
