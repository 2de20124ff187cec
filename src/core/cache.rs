//! Small maps the shell keeps for the life of an isolate (registered clients, client
//! metadata documents, redeemed sealed codes). Entries lapse at their own
//! expiry; a full map drops its lapsed entries first, then everything, so
//! memory stays bounded whatever the traffic.

use std::collections::HashMap;

pub struct Expiring<V> {
    entries: HashMap<String, (V, u64)>,
    cap: usize,
}

impl<V: Clone> Expiring<V> {
    pub fn new(cap: usize) -> Self {
        Expiring {
            entries: HashMap::new(),
            cap,
        }
    }

    /// The live value under `key`, if any.
    pub fn get(&self, key: &str, now: u64) -> Option<V> {
        self.entries
            .get(key)
            .filter(|(_, exp)| *exp > now)
            .map(|(v, _)| v.clone())
    }

    /// Keep `value` until `expires_at`. Returns whether a live value was
    /// already there.
    pub fn insert(&mut self, key: String, value: V, expires_at: u64, now: u64) -> bool {
        if self.entries.len() >= self.cap {
            self.entries.retain(|_, (_, exp)| *exp > now);
            if self.entries.len() >= self.cap {
                self.entries.clear();
            }
        }
        self.entries
            .insert(key, (value, expires_at))
            .is_some_and(|(_, exp)| exp > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_lapse_and_the_map_stays_bounded() {
        let mut m = Expiring::new(2);
        assert!(!m.insert("a".into(), 1, 10, 0));
        assert_eq!(m.get("a", 9), Some(1));
        assert_eq!(m.get("a", 10), None);
        assert!(m.insert("a".into(), 2, 20, 5), "a live entry was there");
        assert!(!m.insert("a".into(), 3, 30, 25), "the old one had lapsed");
        m.insert("b".into(), 4, 40, 25);
        // full: lapsed entries go first, live ones stay
        m.insert("c".into(), 5, 50, 35);
        assert_eq!(m.get("b", 35), Some(4));
        assert_eq!(m.get("c", 35), Some(5));
        assert_eq!(m.get("a", 35), None);
        // full of live entries: everything goes
        m.insert("d".into(), 6, 60, 36);
        assert_eq!(m.get("b", 36), None);
        assert_eq!(m.get("d", 36), Some(6));
    }
}
