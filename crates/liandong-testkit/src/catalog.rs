//! The read store as a whole, for tests that must look at every relation — "no table holds
//! this value anywhere" — without naming the tables: relations come from the database's own
//! catalog, and every row is read with every column cast to text.

use std::collections::BTreeMap;

use liandong_store::ReadStore;

/// A table or view of the read store.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Relation {
    /// The name (schema-qualified outside PostgreSQL's `public`).
    pub name: String,
    pub is_view: bool,
    /// The name quoted for SQL.
    quoted: String,
}

/// Every table and view of the store, from its catalog, by name.
pub async fn relations(store: &ReadStore) -> Vec<Relation> {
    let mut out: Vec<Relation> = match store {
        ReadStore::Postgres(p) => {
            let rows: Vec<(String, String, bool)> = sqlx::query_as(
                "SELECT n.nspname, c.relname, c.relkind IN ('v', 'm')
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.relkind IN ('r', 'p', 'v', 'm')
                   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                   AND n.nspname NOT LIKE 'pg_toast%'",
            )
            .fetch_all(p)
            .await
            .expect("the PostgreSQL catalog");
            rows.into_iter()
                .map(|(schema, name, is_view)| Relation {
                    quoted: format!("{}.{}", quote(&schema), quote(&name)),
                    name: if schema == "public" {
                        name
                    } else {
                        format!("{schema}.{name}")
                    },
                    is_view,
                })
                .collect()
        }
        ReadStore::Sqlite(p) => {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT name, type FROM sqlite_schema WHERE type IN ('table', 'view')",
            )
            .fetch_all(p)
            .await
            .expect("the SQLite catalog");
            rows.into_iter()
                .map(|(name, ty)| Relation {
                    quoted: quote(&name),
                    name,
                    is_view: ty == "view",
                })
                .collect()
        }
    };
    out.sort();
    out
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Every row of `relation`, each with all its columns cast to text, sorted.
pub async fn rows(store: &ReadStore, relation: &Relation) -> Vec<String> {
    let mut rows: Vec<String> = match store {
        ReadStore::Postgres(p) => {
            // A row cast to text is its composite literal: every column, as text.
            sqlx::query_scalar(&format!("SELECT t::text FROM {} AS t", relation.quoted))
                .fetch_all(p)
                .await
                .unwrap_or_else(|e| panic!("reading {}: {e}", relation.name))
        }
        ReadStore::Sqlite(p) => {
            let columns: Vec<String> =
                sqlx::query_scalar("SELECT name FROM pragma_table_info($1) ORDER BY cid")
                    .bind(&relation.name)
                    .fetch_all(p)
                    .await
                    .unwrap_or_else(|e| panic!("columns of {}: {e}", relation.name));
            if columns.is_empty() {
                return Vec::new();
            }
            // quote() renders any value as text, a BLOB as X'hex'.
            let row: Vec<String> = columns
                .iter()
                .map(|c| format!("quote({})", quote(c)))
                .collect();
            sqlx::query_scalar(&format!(
                "SELECT {} FROM {}",
                row.join(" || ',' || "),
                relation.quoted
            ))
            .fetch_all(p)
            .await
            .unwrap_or_else(|e| panic!("reading {}: {e}", relation.name))
        }
    };
    rows.sort();
    rows
}

/// The rows of every relation whose name `include` accepts, by relation name.
pub async fn snapshot(
    store: &ReadStore,
    include: impl Fn(&Relation) -> bool,
) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for r in relations(store).await.into_iter().filter(|r| include(r)) {
        let rows = rows(store, &r).await;
        out.insert(r.name, rows);
    }
    out
}

/// Every (relation, row) of the store, tables and views, whose text holds one of `needles`
/// (case-insensitive), with the needle found.
pub async fn find(store: &ReadStore, needles: &[&str]) -> Vec<(String, String, String)> {
    let needles: Vec<String> = needles.iter().map(|n| n.to_lowercase()).collect();
    let mut found = Vec::new();
    for (relation, rows) in snapshot(store, |_| true).await {
        for row in rows {
            let lower = row.to_lowercase();
            for n in &needles {
                if lower.contains(n.as_str()) {
                    found.push((relation.clone(), n.clone(), row.clone()));
                }
            }
        }
    }
    found
}

/// The columns of every table and view, by relation: (column, declared type) in column order.
/// PostgreSQL types are `format_type`'s (`bigint`, `timestamp with time zone`, …); SQLite's are
/// the declared ones, upper case (empty for a view's computed column).
pub async fn columns(store: &ReadStore) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    match store {
        ReadStore::Postgres(p) => {
            let rows: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
                   AND a.attnum > 0 AND NOT a.attisdropped
                 ORDER BY c.relname, a.attnum",
            )
            .fetch_all(p)
            .await
            .expect("the PostgreSQL catalog");
            for (rel, col, ty) in rows {
                out.entry(rel).or_default().push((col, ty));
            }
        }
        ReadStore::Sqlite(p) => {
            let rows: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT m.name, c.name, upper(c.type) FROM sqlite_schema m
                 JOIN pragma_table_info(m.name) c
                 WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite_%'
                 ORDER BY m.name, c.cid",
            )
            .fetch_all(p)
            .await
            .expect("the SQLite catalog");
            for (rel, col, ty) in rows {
                out.entry(rel).or_default().push((col, ty));
            }
        }
    }
    out
}
