//! Failed sign-ins counted in the store, per user name and peer address,
//! so that the servers of a fleet sharing one store (PostgreSQL) limit them
//! together: five failures spread over five servers lock the user out of
//! all of them. Times are the servers' clocks in milliseconds since the
//! epoch (a fleet's clocks are kept in step, as TLS and token expiry need
//! anyway); rows older than the window are swept as failures are counted.

use crate::error::StoreError;
use crate::store::PolicyStore;

/// The failures counted for one user name and peer within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInFailures {
    /// How many.
    pub failures: i64,
    /// When the first of them was counted (ms since the epoch).
    pub since_ms: i64,
}

impl PolicyStore {
    /// The failures counted for `user` from `peer` since `window_start_ms`.
    pub async fn sign_in_failures(
        &self,
        user: &str,
        peer: &str,
        window_start_ms: i64,
    ) -> Result<Option<SignInFailures>, StoreError> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT failures, since_ms FROM sign_in_failures \
             WHERE user_name = $1 AND peer = $2 AND since_ms > $3",
        )
        .bind(user)
        .bind(peer)
        .bind(window_start_ms)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(failures, since_ms)| SignInFailures { failures, since_ms }))
    }

    /// Counts a failure of `user` from `peer` at `now_ms`: a new window
    /// starts when the last one began at or before `window_start_ms`.
    pub async fn count_sign_in_failure(
        &self,
        user: &str,
        peer: &str,
        now_ms: i64,
        window_start_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sign_in_failures WHERE since_ms <= $1")
            .bind(window_start_ms)
            .execute(self.pool())
            .await?;
        sqlx::query(
            "INSERT INTO sign_in_failures (user_name, peer, failures, since_ms) \
             VALUES ($1, $2, 1, $3) \
             ON CONFLICT (user_name, peer) DO UPDATE SET \
             failures = CASE WHEN sign_in_failures.since_ms <= $4 THEN 1 \
                        ELSE sign_in_failures.failures + 1 END, \
             since_ms = CASE WHEN sign_in_failures.since_ms <= $4 THEN $3 \
                        ELSE sign_in_failures.since_ms END",
        )
        .bind(user)
        .bind(peer)
        .bind(now_ms)
        .bind(window_start_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Forgets the failures of `user` from `peer` (it signed in).
    pub async fn clear_sign_in_failures(&self, user: &str, peer: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sign_in_failures WHERE user_name = $1 AND peer = $2")
            .bind(user)
            .bind(peer)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
