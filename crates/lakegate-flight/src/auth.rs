//! Authentication: who a call's credentials say the caller is.
//!
//! ```text
//! what a call presents                      checked by                          signs in as
//! ─────────────────────────────────────────────────────────────────────────────────────────────
//! authorization: Basic user:password        sign-in throttle, Argon2 (catalog)  the catalog user
//! authorization: Bearer lg1.…               this fleet's key (TokenIssuer)      who signed in, with the
//!                                                                               source identity bound then
//! authorization: Bearer <JWT>               an OpenID provider's keys           its user claim + groups
//! authorization: Negotiate <token>          GSSAPI, the service keytab          user@REALM, mapped
//!   (answered with a bearer token for later calls, answered_token.rs)
//! nothing, over mutual TLS                  rustls (the client CA)              the certificate's user
//! ```
//!
//! The service holds one `Arc<dyn Authenticator>`, chosen when it starts
//! ([`SignIn`], with the methods its [`SignInMethods`] turn on); handlers
//! only ever see the [`Identity`] it returns. A failed sign-in is
//! UNAUTHENTICATED "invalid credentials" whatever the reason, which goes to
//! the server log instead.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use lakegate_engine::Engine;
use lakegate_identity::{
    CertificateUsers, IdentityError, KerberosAcceptor, OidcVerifier, Principal, SignInMethod,
};
use serde::{Deserialize, Serialize};

use crate::credentials::Credentials;
use crate::error::{CallError, CallResult};
use crate::signing::EnvelopeKey;
use crate::throttle::{LoginThrottle, Throttled};

/// Who a caller is, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user, with the groups its sign-in vouched for.
    pub principal: Principal,
    /// How it signed in (for a Lakegate token: how it signed in to get it).
    pub method: SignInMethod,
    /// Its source identity: bound into its token at sign-in, or sent with
    /// this call when the call signs in itself.
    pub source_identity: Option<String>,
}

/// What one call presents to be signed in.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    /// Its `authorization` header, read.
    pub credentials: Option<&'a Credentials>,
    /// The peer's address.
    pub peer: Option<IpAddr>,
    /// The client certificate rustls verified (DER), over mutual TLS.
    pub certificate: Option<&'a [u8]>,
    /// The `x-lakegate-source-identity` the call sent.
    pub source_identity: Option<&'a str>,
}

/// Turns what a call presents into an identity.
#[tonic::async_trait]
pub trait Authenticator: Send + Sync + std::fmt::Debug {
    /// The identity `presented` proves; every failed proof is
    /// [`CallError::InvalidCredentials`] alike (or a throttle).
    async fn authenticate(&self, presented: Presented<'_>) -> CallResult<Identity>;
}

/// Issues and opens bearer tokens: sealed envelopes naming who signed in,
/// how, and from which source identity, valid for `ttl` on every server
/// sharing the key.
#[derive(Debug, Clone)]
pub(crate) struct TokenIssuer {
    key: Arc<EnvelopeKey>,
    ttl: Duration,
}

/// What a bearer token says.
#[derive(Debug, Serialize, Deserialize)]
struct TokenClaims {
    /// The authenticated user, and the groups its sign-in vouched for.
    #[serde(flatten)]
    principal: Principal,
    /// How it signed in.
    #[serde(default = "password")]
    method: SignInMethod,
    /// The source identity sent at sign-in; absent: none, and none may be
    /// named later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<String>,
}

fn password() -> SignInMethod {
    SignInMethod::Password
}

impl TokenIssuer {
    pub(crate) fn new(key: Arc<EnvelopeKey>, ttl: Duration) -> Self {
        Self { key, ttl }
    }

    /// A token for `identity`.
    pub(crate) fn issue(&self, identity: &Identity) -> String {
        let claims = TokenClaims {
            principal: identity.principal.clone(),
            method: identity.method,
            source: identity.source_identity.clone(),
        };
        self.key.seal(&claims, self.ttl)
    }

    /// Who `token` names, if this fleet's key sealed it and it has not
    /// expired.
    pub(crate) fn open(&self, token: &str) -> Option<Identity> {
        let claims = self.key.open::<TokenClaims>(token).ok()?;
        Some(Identity {
            principal: claims.principal,
            method: claims.method,
            source_identity: claims.source,
        })
    }
}

/// The sign-in methods a server accepts beyond catalog passwords and its
/// own tokens.
#[derive(Debug, Default, Clone)]
pub struct SignInMethods {
    /// OpenID providers' JWTs.
    pub oidc: Option<Arc<OidcVerifier>>,
    /// Client certificates (the server requires or accepts them).
    pub certificates: Option<CertificateUsers>,
    /// Kerberos tickets on the Handshake.
    pub kerberos: Option<Arc<KerberosAcceptor>>,
}

/// The one authenticator: dispatches on what a call presents.
#[derive(Debug)]
pub(crate) struct SignIn {
    engine: Engine,
    throttle: Arc<LoginThrottle>,
    tokens: TokenIssuer,
    methods: SignInMethods,
}

impl SignIn {
    pub(crate) fn new(
        engine: Engine,
        throttle: Arc<LoginThrottle>,
        tokens: TokenIssuer,
        methods: SignInMethods,
    ) -> Self {
        Self {
            engine,
            throttle,
            tokens,
            methods,
        }
    }

    /// A catalog user's password.
    async fn password(
        &self,
        user: &str,
        password: &str,
        peer: Option<IpAddr>,
    ) -> CallResult<Principal> {
        self.throttle
            .check(user, peer)
            .await
            .map_err(|throttled| match throttled {
                Throttled::LockedOut(retry_after) => CallError::SignInThrottled(retry_after),
                Throttled::Unavailable(why) => CallError::PolicyUnavailable(format!(
                    "cannot read the fleet's failed sign-ins from the policy store: {why}"
                )),
            })?;
        if !self.engine.verify_password(user, password) {
            log::info!("failed sign-in for user '{user}' from {peer:?}");
            self.throttle.failed(user, peer).await;
            return Err(CallError::InvalidCredentials);
        }
        self.throttle.succeeded(user, peer).await;
        Ok(Principal::local(user))
    }

    /// One of this fleet's tokens: who signed in, if the call names no other
    /// source identity than the one bound at sign-in.
    fn token(&self, token: &str, source_identity: Option<&str>) -> CallResult<Identity> {
        let identity = self
            .tokens
            .open(token)
            .ok_or(CallError::InvalidCredentials)?;
        if let Some(named) = source_identity
            && identity.source_identity.as_deref() != Some(named)
        {
            return Err(CallError::SourceIdentityBound);
        }
        Ok(identity)
    }

    /// An OpenID provider's JWT.
    async fn jwt(&self, token: &str, peer: Option<IpAddr>) -> CallResult<Principal> {
        let verifier = self
            .methods
            .oidc
            .as_ref()
            .ok_or(CallError::InvalidCredentials)?;
        verifier
            .verify(token)
            .await
            .map_err(|e| refused("OIDC", &e, peer))
    }

    /// A Kerberos token (once: GSSAPI refuses a replay).
    async fn kerberos(&self, token: &[u8], peer: Option<IpAddr>) -> CallResult<Principal> {
        let acceptor = self
            .methods
            .kerberos
            .clone()
            .ok_or(CallError::InvalidCredentials)?;
        let token = token.to_vec();
        let user = tokio::task::spawn_blocking(move || acceptor.accept(&token))
            .await
            .map_err(|e| CallError::Internal(format!("the Kerberos check failed: {e}")))?
            .map_err(|e| refused("Kerberos", &e, peer))?;
        Ok(Principal::local(user))
    }

    /// A client certificate rustls verified.
    fn certificate(&self, der: &[u8], peer: Option<IpAddr>) -> CallResult<Principal> {
        let users = self
            .methods
            .certificates
            .ok_or(CallError::AuthenticationRequired)?;
        let user = users
            .user_of(der)
            .map_err(|e| refused("certificate", &e, peer))?;
        Ok(Principal::local(user))
    }
}

/// A refused sign-in: the reason to the log, the same answer to the caller.
fn refused(method: &str, error: &IdentityError, peer: Option<IpAddr>) -> CallError {
    match error {
        IdentityError::ProviderUnreachable(_) => {
            log::warn!("{method} sign-in from {peer:?}: {error}")
        }
        _ => log::info!("refused {method} sign-in from {peer:?}: {error}"),
    }
    CallError::InvalidCredentials
}

#[tonic::async_trait]
impl Authenticator for SignIn {
    async fn authenticate(&self, presented: Presented<'_>) -> CallResult<Identity> {
        let peer = presented.peer;
        let signed_in = |principal: Principal, method: SignInMethod| Identity {
            principal,
            method,
            source_identity: presented.source_identity.map(str::to_string),
        };
        match presented.credentials {
            Some(Credentials::Basic { user, password }) => Ok(signed_in(
                self.password(user, password, peer).await?,
                SignInMethod::Password,
            )),
            Some(Credentials::Bearer(token)) if OidcVerifier::looks_like_jwt(token) => {
                Ok(signed_in(self.jwt(token, peer).await?, SignInMethod::Oidc))
            }
            Some(Credentials::Bearer(token)) => self.token(token, presented.source_identity),
            Some(Credentials::Negotiate(token)) => Ok(signed_in(
                self.kerberos(token, peer).await?,
                SignInMethod::Kerberos,
            )),
            None => match presented.certificate {
                Some(der) => Ok(signed_in(
                    self.certificate(der, peer)?,
                    SignInMethod::Certificate,
                )),
                None => Err(CallError::AuthenticationRequired),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(user: &str, source: Option<&str>) -> Identity {
        Identity {
            principal: Principal {
                user: user.into(),
                provider_groups: vec!["analysts".into()],
                provider_only: true,
            },
            method: SignInMethod::Oidc,
            source_identity: source.map(str::to_string),
        }
    }

    #[test]
    fn tokens_open_only_with_their_key_and_until_they_expire() {
        let issuer = TokenIssuer::new(Arc::new(EnvelopeKey::random()), Duration::from_secs(60));
        let ann = identity("ann", Some("notebook-7"));
        let token = issuer.issue(&ann);
        assert_eq!(issuer.open(&token), Some(ann.clone()));
        let other = TokenIssuer::new(Arc::new(EnvelopeKey::random()), Duration::from_secs(60));
        assert_eq!(other.open(&token), None);
        let expired = TokenIssuer::new(Arc::new(EnvelopeKey::random()), Duration::ZERO);
        let stale = expired.issue(&ann);
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(expired.open(&stale), None);
    }

    #[test]
    fn a_token_from_before_groups_were_sealed_opens_as_a_password_sign_in() {
        let key = Arc::new(EnvelopeKey::random());
        let issuer = TokenIssuer::new(Arc::clone(&key), Duration::from_secs(60));
        #[derive(Serialize)]
        struct Old {
            user: String,
        }
        let token = key.seal(&Old { user: "ann".into() }, Duration::from_secs(60));
        let opened = issuer.open(&token).unwrap();
        assert_eq!(opened.principal, Principal::local("ann"));
        assert_eq!(opened.method, SignInMethod::Password);
        assert_eq!(opened.source_identity, None);
    }
}
