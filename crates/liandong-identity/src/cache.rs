//! Bounded in-process cache of openid -> unionid bindings.
//! Bindings never change once written, so an entry can never go stale — except through an
//! erasure, which forgets the binding and removes it here too ([`BindingCache::remove`]). The
//! other concern is memory, bounded by a two-generation scheme (an approximate LRU without
//! extra crates).

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::aggregate::OpenidKind;

/// Entries kept per generation by default. At roughly 150 bytes per entry (two ~28-byte
/// WeChat ids plus map overhead) two full generations stay around 60 MB.
pub const DEFAULT_CACHE_CAPACITY: usize = 200_000;

/// What the cache knows about an openid relative to a unionid being bound.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Bound to the queried unionid.
    Same,
    /// Bound to this other unionid.
    Other(String),
    /// Not cached.
    Miss,
}

type Maps = [HashMap<String, Arc<str>>; 2];

struct Generations {
    current: Maps,
    previous: Maps,
}

impl Generations {
    fn len(maps: &Maps) -> usize {
        maps[0].len() + maps[1].len()
    }
}

/// Two generations: inserts go to `current`; when it is full it becomes `previous` (the old
/// `previous` is dropped). Hits in `previous` are promoted, so entries in active use survive
/// rotation while idle ones age out, and the cache never empties all at once (which would
/// send a burst of hot-path binds to the database).
pub(crate) struct BindingCache {
    capacity: usize,
    inner: RwLock<Generations>,
}

impl BindingCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            // A zero capacity would rotate on every insert; one entry is the useful minimum.
            capacity: capacity.max(1),
            inner: RwLock::new(Generations {
                current: Default::default(),
                previous: Default::default(),
            }),
        }
    }

    // A panic while holding the lock cannot leave a wrong binding behind (values are only
    // ever inserted, never computed in place), so a poisoned lock is safe to keep using.
    fn read(&self) -> RwLockReadGuard<'_, Generations> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Generations> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached unionid for `openid`, promoting it if found in the old generation.
    pub(crate) fn get(&self, kind: OpenidKind, openid: &str) -> Option<Arc<str>> {
        let k = kind.index();
        let promote = {
            let gens = self.read();
            if let Some(u) = gens.current[k].get(openid) {
                return Some(u.clone());
            }
            gens.previous[k].get(openid).cloned()?
        };
        self.insert_arc(kind, openid, promote.clone());
        Some(promote)
    }

    /// Compares the cached binding of `openid` with `unionid` without allocating on a hit.
    pub(crate) fn lookup(&self, kind: OpenidKind, openid: &str, unionid: &str) -> Lookup {
        match self.get(kind, openid) {
            Some(u) if &*u == unionid => Lookup::Same,
            Some(u) => Lookup::Other(u.to_string()),
            None => Lookup::Miss,
        }
    }

    pub(crate) fn insert(&self, kind: OpenidKind, openid: &str, unionid: &str) {
        self.insert_arc(kind, openid, Arc::from(unionid));
    }

    fn insert_arc(&self, kind: OpenidKind, openid: &str, unionid: Arc<str>) {
        let k = kind.index();
        let mut gens = self.write();
        if gens.current[k].contains_key(openid) {
            return;
        }
        if Generations::len(&gens.current) >= self.capacity {
            let full = std::mem::take(&mut gens.current);
            gens.previous = full;
        }
        gens.current[k].insert(openid.to_owned(), unionid);
    }

    /// Forgets `openid` in both generations (erasure).
    pub(crate) fn remove(&self, kind: OpenidKind, openid: &str) {
        let k = kind.index();
        let mut gens = self.write();
        gens.current[k].remove(openid);
        gens.previous[k].remove(openid);
    }

    #[cfg(test)]
    fn total_len(&self) -> usize {
        let gens = self.read();
        Generations::len(&gens.current) + Generations::len(&gens.previous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_distinguishes_same_other_and_miss() {
        let cache = BindingCache::new(10);
        cache.insert(OpenidKind::Oa, "o1", "u1");
        assert_eq!(cache.lookup(OpenidKind::Oa, "o1", "u1"), Lookup::Same);
        assert_eq!(
            cache.lookup(OpenidKind::Oa, "o1", "u2"),
            Lookup::Other("u1".to_string())
        );
        // Kinds are separate namespaces.
        assert_eq!(cache.lookup(OpenidKind::Mp, "o1", "u1"), Lookup::Miss);
    }

    #[test]
    fn size_is_bounded_and_active_entries_survive_rotation() {
        let cache = BindingCache::new(4);
        for i in 0..4 {
            cache.insert(OpenidKind::Oa, &format!("o{i}"), "u");
        }
        // Rotation: o0..o3 move to the old generation.
        cache.insert(OpenidKind::Mp, "m0", "u");
        // Touching o0 promotes it into the current generation.
        assert!(cache.get(OpenidKind::Oa, "o0").is_some());
        // Fill the current generation: m0, o0, m1, m2.
        for i in 1..3 {
            cache.insert(OpenidKind::Mp, &format!("m{i}"), "u");
        }
        // Next rotation drops o1..o3 (never touched) but keeps the promoted o0.
        cache.insert(OpenidKind::Mp, "m9", "u");
        assert!(cache.get(OpenidKind::Oa, "o0").is_some());
        assert!(cache.get(OpenidKind::Oa, "o1").is_none());
        assert!(cache.total_len() <= 8);
    }

    #[test]
    fn remove_forgets_an_openid_in_both_generations() {
        let cache = BindingCache::new(1);
        cache.insert(OpenidKind::Oa, "o1", "u1");
        // Rotation: o1 moves to the old generation.
        cache.insert(OpenidKind::Oa, "o2", "u2");
        cache.remove(OpenidKind::Oa, "o1");
        cache.remove(OpenidKind::Oa, "o2");
        assert_eq!(cache.lookup(OpenidKind::Oa, "o1", "u1"), Lookup::Miss);
        assert_eq!(cache.lookup(OpenidKind::Oa, "o2", "u2"), Lookup::Miss);
    }
}
