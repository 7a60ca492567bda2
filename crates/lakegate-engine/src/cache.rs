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

    /// The value cached for `key`, else the one `make` gives, cached (an
    /// error is returned, not cached). `make` runs without the lock held.
    pub(crate) fn get_or_try_insert_with<E>(
        &self,
        key: &K,
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E>
    where
        K: Clone,
    {
        if let Some(value) = self.get(key) {
            return Ok(value);
        }
        let value = make()?;
        self.insert(key.clone(), value.clone());
        Ok(value)
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
