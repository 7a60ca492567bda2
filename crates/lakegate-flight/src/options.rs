//! The service's settings, with their defaults.

use std::time::Duration;

use crate::auth::SignInMethods;
use crate::limits::QueryLimits;
use crate::prepared::DEFAULT_MAX_PARAMETER_BYTES;

/// Settings of the service.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// How long a bearer token stays valid.
    pub token_ttl: Duration,
    /// How long a ticket stays redeemable.
    pub ticket_ttl: Duration,
    /// Failed sign-ins allowed per user and peer within `login_window`.
    pub max_login_failures: u32,
    /// The window over which failed sign-ins are counted.
    pub login_window: Duration,
    /// Running queries per user, and their timeout.
    pub limits: QueryLimits,
    /// Send an empty batch after this long without one, so that proxies do
    /// not cut a long-running result stream. `None`: never.
    pub keep_alive: Option<Duration>,
    /// The largest parameter set one prepared statement may bind, in bytes
    /// of Arrow data, counted as it arrives.
    pub max_parameter_bytes: usize,
    /// Sign-in methods beyond catalog passwords and the server's tokens
    /// (OIDC, client certificates, Kerberos); none by default.
    pub sign_in: SignInMethods,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            token_ttl: Duration::from_secs(12 * 3600),
            ticket_ttl: Duration::from_secs(300),
            max_login_failures: 5,
            login_window: Duration::from_secs(60),
            limits: QueryLimits::default(),
            keep_alive: Some(Duration::from_secs(15)),
            max_parameter_bytes: DEFAULT_MAX_PARAMETER_BYTES,
            sign_in: SignInMethods::default(),
        }
    }
}
