//! The analysts' PostgreSQL role, exactly as the README grants it: it reads every analyst-safe
//! relation (`ANALYST_RELATIONS`) and is refused every other relation of the read store. The
//! README's `sql` block is executed as written (with a role and database name of this test's
//! own), so the documentation cannot drift from what works.

use liandong_projections::{CoreProjection, ANALYST_RELATIONS};
use liandong_store::ReadStore;
use liandong_testkit::TestStore;
use liandong_testkit::{apply_batch, catalog, fresh_core, scenario, test_vault, validated};
use sqlx::Executor;

/// The README's statements that make the analyst role.
fn readme_grants() -> Vec<String> {
    let readme = include_str!("../../README.md");
    let block = readme
        .split("```sql\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .find(|b| b.contains("CREATE ROLE liandong_analyst"))
        .expect("the README shows the analyst role's statements in an sql block");
    block
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_readme_grants_exactly_the_analyst_relations() {
    let grants = readme_grants();
    let select = grants
        .iter()
        .find(|s| s.starts_with("GRANT SELECT ON") && s.contains("analyst_events"))
        .expect("a GRANT SELECT of the analyst relations");
    let listed: Vec<&str> = select
        .trim_start_matches("GRANT SELECT ON")
        .split("TO")
        .next()
        .unwrap()
        .split(',')
        .map(str::trim)
        .collect();
    let mut want = ANALYST_RELATIONS.to_vec();
    let mut got = listed.clone();
    want.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_analyst_role_reads_the_safe_relations_and_nothing_else() {
    let Some(db) = TestStore::postgres().await else {
        return;
    };
    let store = db.store();
    let p = CoreProjection::new(chrono_tz::Asia::Shanghai, test_vault());
    fresh_core(store, &p).await;
    liandong_vault::migrate(store, &test_vault())
        .await
        .expect("the data key tables");
    let wire = scenario::events(&scenario::Shape::default());
    apply_batch(store, &p, &validated(&wire)).await;

    let ReadStore::Postgres(pool) = store else {
        unreachable!()
    };
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    let role = format!("analyst_{}", &database["liandong_test_".len()..]);
    let mut conn = pool.acquire().await.unwrap();
    for statement in readme_grants() {
        let statement = statement
            .replace("DATABASE liandong ", &format!("DATABASE {database} "))
            .replace("liandong_analyst", &role);
        conn.execute(statement.as_str())
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }

    let relations = catalog::relations(store).await;
    let mut outcome = Vec::new();
    conn.execute(format!("SET ROLE {role}").as_str())
        .await
        .unwrap();
    for r in &relations {
        let read = sqlx::query(&format!("SELECT count(*) FROM \"{}\"", r.name))
            .execute(&mut *conn)
            .await;
        outcome.push((r.name.clone(), read.map_err(|e| e.to_string())));
    }
    conn.execute("RESET ROLE").await.unwrap();
    conn.execute(format!("DROP OWNED BY {role}; DROP ROLE {role}").as_str())
        .await
        .unwrap();

    for (name, read) in &outcome {
        // The time zone, read by the retention views' "today": granted too, holds nothing else.
        let safe = ANALYST_RELATIONS.contains(&name.as_str()) || name == "liandong_settings";
        match read {
            Ok(_) => assert!(safe, "the analyst role reads {name}"),
            Err(e) => {
                assert!(!safe, "the analyst role cannot read {name}: {e}");
                assert!(e.contains("permission denied"), "{name}: {e}");
            }
        }
    }
    for safe in ANALYST_RELATIONS {
        assert!(
            outcome.iter().any(|(n, r)| n == safe && r.is_ok()),
            "{safe} exists and is read"
        );
    }
}
