//! A bounded map for the engine's plan caches. When full it starts over:
//! entries are plans that can always be rebuilt, and clearing is cheaper and
//! simpler than tracking recency.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// A thread-safe map holding at most `limit` entries.
pub(crate) struct BoundedCache<K, V> {
    limit: usize,
    entries: Mutex<HashMap<K, V>>,
}

impl<K: Eq + Hash, V: Clone> BoundedCache<K, V> {
    /// An empty cache of at most `limit` entries.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            entries: Mutex::default(),
        }
    }

    /// The value cached for `key`.
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        self.entries.lock().expect("cache lock").get(key).cloned()
    }

    /// Caches `value` for `key`, starting over when full.
    pub(crate) fn insert(&self, key: K, value: V) {
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.len() >= self.limit {
            entries.clear();
        }
        entries.insert(key, value);
    }
}

impl<K, V> std::fmt::Debug for BoundedCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundedCache")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}
