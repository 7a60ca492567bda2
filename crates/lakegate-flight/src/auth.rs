//! Authentication: who a call's credentials say the caller is.
//!
//! ```text
//! authorization header ─▶ Credentials (Basic / Bearer) ─▶ Authenticator ─▶ Identity
//!                                                          │
//!      PasswordAuthenticator: Basic ─▶ sign-in throttle ─▶ the engine's Argon2 check
//!                             Bearer ─▶ a token this server's key sealed (TokenIssuer)
//! ```
//!
//! The service holds one `Arc<dyn Authenticator>`, chosen when it starts;
//! handlers only ever see the [`Identity`] it returns, so further methods
//! (OIDC tokens, client certificates, Kerberos) are further implementations
//! of the trait, not changes to the handlers.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use lakegate_engine::Engine;
use serde::{Deserialize, Serialize};

use crate::credentials::Credentials;
use crate::error::{CallError, CallResult};
use crate::signing::EnvelopeKey;
use crate::throttle::LoginThrottle;

/// Who a caller is, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The Lakegate user the caller signs in as.
    pub user: String,
}

/// Turns a call's credentials into an identity.
pub trait Authenticator: Send + Sync + std::fmt::Debug {
    /// The identity `credentials`, sent from `peer`, prove; every failure is
    /// [`CallError::InvalidCredentials`] alike (or a throttle).
    fn authenticate(&self, credentials: &Credentials, peer: Option<IpAddr>)
    -> CallResult<Identity>;
}

/// Issues and opens bearer tokens: sealed envelopes naming the user, valid
/// for `ttl` on every server sharing the key.
#[derive(Debug, Clone)]
pub(crate) struct TokenIssuer {
    key: Arc<EnvelopeKey>,
    ttl: Duration,
}

/// What a bearer token says.
#[derive(Debug, Serialize, Deserialize)]
struct TokenClaims {
    /// The authenticated user.
    user: String,
}

impl TokenIssuer {
    pub(crate) fn new(key: Arc<EnvelopeKey>, ttl: Duration) -> Self {
        Self { key, ttl }
    }

    /// A token for `user`.
    pub(crate) fn issue(&self, user: &str) -> String {
        let claims = TokenClaims {
            user: user.to_string(),
        };
        self.key.seal(&claims, self.ttl)
    }

    /// The user `token` names, if this server's key sealed it and it has
    /// not expired.
    pub(crate) fn open(&self, token: &str) -> Option<String> {
        self.key.open::<TokenClaims>(token).ok().map(|c| c.user)
    }
}

/// Lakegate's own users: Basic credentials checked against the catalog's
/// Argon2 hashes (failed sign-ins throttled per user and peer), and bearer
/// tokens a server sharing the key issued.
#[derive(Debug)]
pub struct PasswordAuthenticator {
    engine: Engine,
    throttle: LoginThrottle,
    tokens: TokenIssuer,
}

impl PasswordAuthenticator {
    pub(crate) fn new(engine: Engine, throttle: LoginThrottle, tokens: TokenIssuer) -> Self {
        Self {
            engine,
            throttle,
            tokens,
        }
    }
}

impl Authenticator for PasswordAuthenticator {
    fn authenticate(
        &self,
        credentials: &Credentials,
        peer: Option<IpAddr>,
    ) -> CallResult<Identity> {
        let user = match credentials {
            Credentials::Basic { user, password } => {
                self.throttle
                    .check(user, peer)
                    .map_err(CallError::SignInThrottled)?;
                if !self.engine.verify_password(user, password) {
                    log::info!("failed sign-in for user '{user}' from {peer:?}");
                    self.throttle.failed(user, peer);
                    return Err(CallError::InvalidCredentials);
                }
                self.throttle.succeeded(user, peer);
                user.clone()
            }
            Credentials::Bearer(token) => self
                .tokens
                .open(token)
                .ok_or(CallError::InvalidCredentials)?,
        };
        Ok(Identity { user })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_open_only_with_their_key_and_until_they_expire() {
        let issuer = TokenIssuer::new(Arc::new(EnvelopeKey::random()), Duration::from_secs(60));
        let token = issuer.issue("ann");
        assert_eq!(issuer.open(&token).as_deref(), Some("ann"));
        let other = TokenIssuer::new(Arc::new(EnvelopeKey::random()), Duration::from_secs(60));
        assert_eq!(other.open(&token), None);
        let expired = TokenIssuer::new(Arc::new(EnvelopeKey::random()), Duration::ZERO);
        let stale = expired.issue("ann");
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(expired.open(&stale), None);
    }
}
