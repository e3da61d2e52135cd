//! The two read stores hold the same relations with the same columns, of compatible types: the
//! migrations of PostgreSQL and of SQLite (projections/migrations) are the one home of the table
//! definitions, and nothing else may let them drift apart.

use liandong_testkit::{catalog, TestStore};

/// The SQLite declared types a PostgreSQL type may be stored as (times and JSON as text).
fn compatible(pg: &str, sqlite: &str) -> bool {
    let allowed: &[&str] = match pg {
        "text" | "uuid" | "date" | "timestamp with time zone" | "jsonb" => &["TEXT"],
        "bigint" | "integer" => &["INTEGER", "BIGINT"],
        "boolean" => &["INTEGER", "BOOLEAN"],
        "double precision" => &["REAL"],
        _ => &[],
    };
    allowed.contains(&sqlite)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_stores_have_the_same_relations_columns_and_types() {
    let Some(pg) = TestStore::postgres().await else {
        return;
    };
    let lite = TestStore::sqlite().await;
    for db in [&pg, &lite] {
        liandong_projections::migrate(db.store())
            .await
            .expect("migrations run");
    }
    let (pg_cols, lite_cols) = (
        catalog::columns(pg.store()).await,
        catalog::columns(lite.store()).await,
    );
    // sqlx's own bookkeeping differs by design; "today" is a function on PostgreSQL, a view on
    // SQLite (which has no SQL functions).
    let ours = |name: &String| !name.starts_with("_sqlx") && name != "liandong_today";
    let pg_names: Vec<&String> = pg_cols.keys().filter(|n| ours(n)).collect();
    let lite_names: Vec<&String> = lite_cols.keys().filter(|n| ours(n)).collect();
    assert_eq!(pg_names, lite_names, "the same relations on both stores");
    assert!(pg_names.len() > 20, "the catalog was read: {pg_names:?}");

    let is_view: std::collections::BTreeSet<String> = catalog::relations(lite.store())
        .await
        .into_iter()
        .filter(|r| r.is_view)
        .map(|r| r.name)
        .collect();
    let mut mismatches = Vec::new();
    for name in pg_names {
        let (p, l) = (&pg_cols[name], &lite_cols[name]);
        let p_names: Vec<&str> = p.iter().map(|c| c.0.as_str()).collect();
        let l_names: Vec<&str> = l.iter().map(|c| c.0.as_str()).collect();
        if p_names != l_names {
            mismatches.push(format!("{name}: columns {p_names:?} vs {l_names:?}"));
            continue;
        }
        if is_view.contains(name) {
            continue; // a view's computed column has no declared type on SQLite
        }
        for ((col, pt), (_, lt)) in p.iter().zip(l) {
            if !compatible(pt, lt) {
                mismatches.push(format!("{name}.{col}: {pt} vs {lt}"));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "the stores differ:\n{}",
        mismatches.join("\n")
    );
}
