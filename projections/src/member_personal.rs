//! `member_personal`: each member's latest phone and address, as the sealed values ingestion
//! wrote to the log (`ld1:…`, see `liandong-vault`). The read store never holds them in
//! plaintext; the query API opens them for the roles that may see them.
//!
//! Part of the core projection. `fact_personal` keeps the sealed values of each
//! `member.profile_updated` that carried any (one row per event, deleted with its `events` row);
//! a member's row is refolded from those facts, joined to `events` for the member and the time,
//! whenever the member is touched. So a late binding that re-keys the events moves the
//! personal data with them, and the latest value of each field wins by `occurred_at` (ties:
//! the larger `event_id`) whatever the order of arrival.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use liandong_event::Event;
use liandong_store::{ReadStore, StoreError};
use serde::Serialize;

use crate::member_profile::ts;
use crate::sql::{self, Db, Statement, Ty};

/// One event's sealed personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonalFact {
    pub event_id: String,
    pub phone_sealed: Option<String>,
    pub address_sealed: Option<String>,
}

impl PersonalFact {
    /// The fact of an event, when it carries sealed personal data.
    pub fn of(e: &Event) -> Option<PersonalFact> {
        let phone_sealed = e.sealed.get("phone").cloned();
        let address_sealed = e.sealed.get("address").cloned();
        (phone_sealed.is_some() || address_sealed.is_some()).then(|| PersonalFact {
            event_id: e.event_id.to_string(),
            phone_sealed,
            address_sealed,
        })
    }
}

/// A stored fact with its event's time, as the fold reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalUpdate {
    pub event_id: String,
    pub occurred_at: DateTime<Utc>,
    pub phone_sealed: Option<String>,
    pub address_sealed: Option<String>,
}

/// A row of `member_personal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberPersonal {
    pub member_key: String,
    pub phone_sealed: Option<String>,
    pub address_sealed: Option<String>,
    /// When the latest of the member's updates happened (RFC 3339, UTC).
    pub updated_at: String,
}

/// The member's row: each field from the latest update that carries it. `None` without
/// updates.
pub fn fold(member_key: &str, updates: &[PersonalUpdate]) -> Option<MemberPersonal> {
    let mut ordered: Vec<&PersonalUpdate> = updates.iter().collect();
    ordered.sort_by(|a, b| (a.occurred_at, &a.event_id).cmp(&(b.occurred_at, &b.event_id)));
    let last = ordered.last()?;
    let latest = |field: fn(&PersonalUpdate) -> &Option<String>| {
        ordered.iter().rev().find_map(|u| field(u).clone())
    };
    Some(MemberPersonal {
        member_key: member_key.to_owned(),
        phone_sealed: latest(|u| &u.phone_sealed),
        address_sealed: latest(|u| &u.address_sealed),
        updated_at: ts(&last.occurred_at),
    })
}

/// Stores the facts of events new to the store.
pub(crate) async fn insert_facts<C: PersonalDb + Send>(
    db: &mut C,
    facts: &[PersonalFact],
) -> Result<(), StoreError> {
    if facts.is_empty() {
        return Ok(());
    }
    db.insert_personal_facts(&json(facts)).await
}

/// Refolds the rows of the members `keys` (a JSON array) from their stored facts.
pub(crate) async fn refold<C: PersonalDb + Send>(db: &mut C, keys: &str) -> Result<(), StoreError> {
    let mut by_member: BTreeMap<String, Vec<PersonalUpdate>> = BTreeMap::new();
    for (member_key, event_id, at, phone_sealed, address_sealed) in
        db.personal_updates(keys).await?
    {
        let occurred_at = DateTime::parse_from_rfc3339(&at)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| StoreError::Db(sqlx::Error::Decode(format!("time {at:?}: {e}").into())))?;
        by_member
            .entry(member_key)
            .or_default()
            .push(PersonalUpdate {
                event_id,
                occurred_at,
                phone_sealed,
                address_sealed,
            });
    }
    let rows: Vec<MemberPersonal> = by_member
        .iter()
        .filter_map(|(key, updates)| fold(key, updates))
        .collect();
    db.replace_member_personal(keys, &json(&rows)).await
}

static READ: Statement = Statement::new(|d| {
    format!(
        "SELECT member_key, phone_sealed, address_sealed, {} FROM member_personal WHERE member_key = $1",
        sql::ts_text(d, "updated_at")
    )
});

/// One member's row, as stored (the values still sealed).
pub async fn read(
    store: &ReadStore,
    member_key: &str,
) -> Result<Option<MemberPersonal>, StoreError> {
    let row: Option<(String, Option<String>, Option<String>, String)> = store
        .fetch_optional(READ.text(store.dialect()), &[member_key.into()])
        .await?;
    Ok(row.map(
        |(member_key, phone_sealed, address_sealed, updated_at)| MemberPersonal {
            member_key,
            phone_sealed,
            address_sealed,
            updated_at,
        },
    ))
}

use crate::sql::json;

/// (member_key, event_id, occurred_at, phone_sealed, address_sealed).
type UpdateRow = (String, String, String, Option<String>, Option<String>);

static INSERT_FACTS: Statement = Statement::new(|d| {
    format!(
        "{} ON CONFLICT (event_id) DO NOTHING",
        sql::insert(
            d,
            "fact_personal",
            &[
                ("event_id", Ty::Uuid),
                ("phone_sealed", Ty::Text),
                ("address_sealed", Ty::Text),
            ]
        )
    )
});
static UPDATES: Statement = Statement::new(|d| {
    format!(
        "SELECT e.member_key, {}, {}, f.phone_sealed, f.address_sealed
         FROM fact_personal f JOIN events e ON e.event_id = f.event_id
         WHERE e.member_key IN {}",
        sql::text(d, "e.event_id"),
        sql::ts_text(d, "e.occurred_at"),
        sql::values(d, 1)
    )
});
static DELETE: Statement = Statement::new(|d| {
    format!(
        "DELETE FROM member_personal WHERE member_key IN {}",
        sql::values(d, 1)
    )
});
static INSERT: Statement = Statement::new(|d| {
    sql::insert(
        d,
        "member_personal",
        &[
            ("member_key", Ty::Text),
            ("phone_sealed", Ty::Text),
            ("address_sealed", Ty::Text),
            ("updated_at", Ty::Ts),
        ],
    )
});

/// The statements of `fact_personal` and `member_personal`; every argument is a JSON array.
#[async_trait]
pub(crate) trait PersonalDb {
    /// Inserts facts (an event already known keeps its fact).
    async fn insert_personal_facts(&mut self, rows: &str) -> Result<(), StoreError>;
    /// The stored facts of the given members' events.
    async fn personal_updates(&mut self, keys: &str) -> Result<Vec<UpdateRow>, StoreError>;
    /// Replaces the rows of `keys` by `rows` (a key without a row loses it).
    async fn replace_member_personal(&mut self, keys: &str, rows: &str) -> Result<(), StoreError>;
}

#[async_trait]
impl<C: Db> PersonalDb for C {
    async fn insert_personal_facts(&mut self, rows: &str) -> Result<(), StoreError> {
        self.exec(&INSERT_FACTS, &[rows]).await.map(drop)
    }
    async fn personal_updates(&mut self, keys: &str) -> Result<Vec<UpdateRow>, StoreError> {
        self.fetch(&UPDATES, &[keys]).await
    }
    async fn replace_member_personal(&mut self, keys: &str, rows: &str) -> Result<(), StoreError> {
        self.exec(&DELETE, &[keys]).await?;
        self.exec(&INSERT, &[rows]).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn update(id: &str, when: &str, phone: Option<&str>, address: Option<&str>) -> PersonalUpdate {
        PersonalUpdate {
            event_id: id.into(),
            occurred_at: at(when),
            phone_sealed: phone.map(Into::into),
            address_sealed: address.map(Into::into),
        }
    }

    #[test]
    fn each_field_takes_its_latest_value_in_any_order() {
        let updates = vec![
            update("b", "2026-11-02T00:00:00Z", Some("p2"), None),
            update("a", "2026-11-01T00:00:00Z", Some("p1"), Some("a1")),
            update("c", "2026-11-03T00:00:00Z", None, Some("a3")),
            // Same instant as "c": the larger event_id wins.
            update("d", "2026-11-03T00:00:00Z", None, Some("a4")),
        ];
        let want = MemberPersonal {
            member_key: "u1".into(),
            phone_sealed: Some("p2".into()),
            address_sealed: Some("a4".into()),
            updated_at: ts(&at("2026-11-03T00:00:00Z")),
        };
        // Every order of the four (the factorial number system numbers the permutations).
        for n in 0..24 {
            let mut pool = updates.clone();
            let mut order = Vec::new();
            let mut rest = n;
            for base in (1..=4).rev() {
                order.push(pool.remove(rest % base));
                rest /= base;
            }
            assert_eq!(fold("u1", &order).as_ref(), Some(&want), "{order:?}");
        }
        assert_eq!(fold("u1", &[]), None);
    }
}
