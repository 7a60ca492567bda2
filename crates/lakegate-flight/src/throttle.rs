//! Rate limiting of failed sign-ins, per user name and peer address: after
//! `max_failures` failures within `window`, that user cannot sign in from that
//! peer until the window has passed, even with the right password. Unknown
//! user names are counted like known ones, so the limit reveals nothing about
//! which users exist.
//!
//! Counted in memory by each server, or, on a server whose policy store is
//! shared by a fleet (PostgreSQL), in the store: then the failures made on
//! every server of the fleet count together. A store that cannot be reached
//! refuses the sign-in (UNAVAILABLE), never lets it past the limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lakegate_store::PolicyStore;

/// Entries kept before old ones are swept out.
const SWEEP_AT: usize = 100_000;

/// Why a sign-in may not be tried now.
#[derive(Debug)]
pub(crate) enum Throttled {
    /// Too many failures: retry after this long.
    LockedOut(Duration),
    /// The shared count cannot be read or written.
    Unavailable(String),
}

/// Failed sign-in attempts per (user, peer).
#[derive(Debug)]
pub struct LoginThrottle {
    max_failures: u32,
    window: Duration,
    attempts: Mutex<HashMap<(String, Option<IpAddr>), Attempts>>,
    /// The fleet's store, when failures are counted there.
    shared: OnceLock<PolicyStore>,
}

#[derive(Debug, Clone, Copy)]
struct Attempts {
    failures: u32,
    since: Instant,
}

impl LoginThrottle {
    /// Allows `max_failures` failures per `window`.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            attempts: Mutex::default(),
            shared: OnceLock::new(),
        }
    }

    /// Counts failures in `store`, with the other servers sharing it.
    pub(crate) fn count_in(&self, store: PolicyStore) {
        let _ = self.shared.set(store);
    }

    /// `Err` while `user` is locked out from `peer` (or the shared count
    /// cannot be read).
    pub(crate) async fn check(&self, user: &str, peer: Option<IpAddr>) -> Result<(), Throttled> {
        if let Some(store) = self.shared.get() {
            let (now, window) = (now_ms(), self.window_ms());
            let counted = store
                .sign_in_failures(user, &peer_key(peer), now - window)
                .await
                .map_err(|e| Throttled::Unavailable(e.to_string()))?;
            return match counted {
                Some(c) if c.failures >= i64::from(self.max_failures) => {
                    let left = (c.since_ms + window - now).max(1);
                    Err(Throttled::LockedOut(Duration::from_millis(
                        u64::try_from(left).unwrap_or(1),
                    )))
                }
                _ => Ok(()),
            };
        }
        let attempts = self.attempts.lock().expect("throttle lock");
        match attempts.get(&(user.to_string(), peer)) {
            Some(a) if a.failures >= self.max_failures && a.since.elapsed() < self.window => {
                Err(Throttled::LockedOut(self.window - a.since.elapsed()))
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed attempt.
    pub(crate) async fn failed(&self, user: &str, peer: Option<IpAddr>) {
        if let Some(store) = self.shared.get() {
            let now = now_ms();
            let counted = store
                .count_sign_in_failure(user, &peer_key(peer), now, now - self.window_ms())
                .await;
            if let Err(e) = counted {
                log::warn!("cannot count a failed sign-in in the policy store: {e}");
            }
            return;
        }
        let mut attempts = self.attempts.lock().expect("throttle lock");
        if attempts.len() >= SWEEP_AT {
            let window = self.window;
            attempts.retain(|_, a| a.since.elapsed() < window);
        }
        let entry = attempts
            .entry((user.to_string(), peer))
            .or_insert(Attempts {
                failures: 0,
                since: Instant::now(),
            });
        if entry.since.elapsed() >= self.window {
            *entry = Attempts {
                failures: 0,
                since: Instant::now(),
            };
        }
        entry.failures += 1;
    }

    /// Forgets the failures of a user who signed in.
    pub(crate) async fn succeeded(&self, user: &str, peer: Option<IpAddr>) {
        if let Some(store) = self.shared.get() {
            if let Err(e) = store.clear_sign_in_failures(user, &peer_key(peer)).await {
                log::warn!("cannot clear failed sign-ins in the policy store: {e}");
            }
            return;
        }
        self.attempts
            .lock()
            .expect("throttle lock")
            .remove(&(user.to_string(), peer));
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX)
    }
}

/// A peer as the store keys it (`-` when unknown).
fn peer_key(peer: Option<IpAddr>) -> String {
    peer.map_or_else(|| "-".to_string(), |p| p.to_string())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn locks_out_after_too_many_failures_per_user_and_peer() {
        let throttle = LoginThrottle::new(3, Duration::from_secs(60));
        let peer: Option<IpAddr> = Some("127.0.0.1".parse().unwrap());
        let other_peer: Option<IpAddr> = Some("127.0.0.2".parse().unwrap());
        for _ in 0..3 {
            assert!(throttle.check("ann", peer).await.is_ok());
            throttle.failed("ann", peer).await;
        }
        assert!(throttle.check("ann", peer).await.is_err());
        // Another user, or the same user from another peer, is not affected.
        assert!(throttle.check("bob", peer).await.is_ok());
        assert!(throttle.check("ann", other_peer).await.is_ok());
        throttle.succeeded("ann", peer).await;
        assert!(throttle.check("ann", peer).await.is_ok());
    }

    #[tokio::test]
    async fn the_window_expires() {
        let throttle = LoginThrottle::new(1, Duration::from_millis(50));
        throttle.failed("ann", None).await;
        assert!(throttle.check("ann", None).await.is_err());
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(throttle.check("ann", None).await.is_ok());
    }
}
