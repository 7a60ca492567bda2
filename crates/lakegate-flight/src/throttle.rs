//! Rate limiting of failed sign-ins, per user name and peer address: after
//! `max_failures` failures within `window`, that user cannot sign in from that
//! peer until the window has passed, even with the right password. Unknown
//! user names are counted like known ones, so the limit reveals nothing about
//! which users exist.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept before old ones are swept out.
const SWEEP_AT: usize = 100_000;

/// Failed sign-in attempts per (user, peer).
#[derive(Debug)]
pub struct LoginThrottle {
    max_failures: u32,
    window: Duration,
    attempts: Mutex<HashMap<(String, Option<IpAddr>), Attempts>>,
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
        }
    }

    /// `Err(retry_after)` while `user` is locked out from `peer`.
    pub fn check(&self, user: &str, peer: Option<IpAddr>) -> Result<(), Duration> {
        let attempts = self.attempts.lock().expect("throttle lock");
        match attempts.get(&(user.to_string(), peer)) {
            Some(a) if a.failures >= self.max_failures && a.since.elapsed() < self.window => {
                Err(self.window - a.since.elapsed())
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed attempt.
    pub fn failed(&self, user: &str, peer: Option<IpAddr>) {
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
    pub fn succeeded(&self, user: &str, peer: Option<IpAddr>) {
        self.attempts
            .lock()
            .expect("throttle lock")
            .remove(&(user.to_string(), peer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_out_after_too_many_failures_per_user_and_peer() {
        let throttle = LoginThrottle::new(3, Duration::from_secs(60));
        let peer: Option<IpAddr> = Some("127.0.0.1".parse().unwrap());
        let other_peer: Option<IpAddr> = Some("127.0.0.2".parse().unwrap());
        for _ in 0..3 {
            assert!(throttle.check("ann", peer).is_ok());
            throttle.failed("ann", peer);
        }
        assert!(throttle.check("ann", peer).is_err());
        // Another user, or the same user from another peer, is not affected.
        assert!(throttle.check("bob", peer).is_ok());
        assert!(throttle.check("ann", other_peer).is_ok());
        throttle.succeeded("ann", peer);
        assert!(throttle.check("ann", peer).is_ok());
    }

    #[test]
    fn the_window_expires() {
        let throttle = LoginThrottle::new(1, Duration::from_millis(50));
        throttle.failed("ann", None);
        assert!(throttle.check("ann", None).is_err());
        std::thread::sleep(Duration::from_millis(60));
        assert!(throttle.check("ann", None).is_ok());
    }
}
