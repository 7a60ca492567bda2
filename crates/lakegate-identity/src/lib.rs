//! Sign-in methods beyond Lakegate's own passwords, each mapping what a
//! caller presents to a [`Principal`]: a Lakegate user name and the groups
//! its identity provider vouches for.
//!
//! ```text
//! authorization: Bearer <JWT>        ─▶ oidc.rs        an OpenID provider's token: signature (keys
//!                                                      from discovery + JWKS, jwks.rs), iss, aud,
//!                                                      exp/nbf; the user and groups claims
//! client certificate (mTLS)          ─▶ certificate.rs the chain is rustls's; the user is a
//!                                                      field of the leaf (subject CN or a SAN)
//! authorization: Negotiate <token>   ─▶ kerberos.rs    GSSAPI accepts the token with the service's
//!  (the Handshake only)                                keytab; user@REALM mapped to a user
//!                                                      (kerberos_names.rs)
//! ```
//!
//! The Flight service holds one authenticator that dispatches on what a call
//! presents; this crate holds the methods' verification, and their settings
//! ([`IdentityConfig`], the `--identity` file of `lakegate serve`). Nothing
//! here reads the policy: whether the user may assume a role is the
//! engine's decision, on the [`Principal`] returned.

mod certificate;
mod config;
mod jwks;
#[cfg(feature = "kerberos")]
mod kerberos;
mod kerberos_names;
#[cfg(not(feature = "kerberos"))]
mod kerberos_unavailable;
mod oidc;

pub use certificate::{CertificateUsers, UserField};
pub use config::{
    CertificateConfig, IdentityConfig, KerberosConfig, KerberosMapping, OidcConfig,
    OidcIssuerConfig,
};
#[cfg(feature = "kerberos")]
pub use kerberos::KerberosAcceptor;
pub use kerberos_names::KerberosNames;
#[cfg(not(feature = "kerberos"))]
pub use kerberos_unavailable::KerberosAcceptor;
pub use lakegate_policy::Principal;
pub use oidc::OidcVerifier;

/// How a caller signed in, as the audit records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignInMethod {
    /// A catalog user's password (HTTP Basic).
    Password,
    /// An OpenID provider's JWT.
    Oidc,
    /// A client certificate (mutual TLS).
    Certificate,
    /// A Kerberos ticket (SPNEGO on the Handshake).
    Kerberos,
}

impl SignInMethod {
    /// The method's name, lowercase.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Oidc => "oidc",
            Self::Certificate => "certificate",
            Self::Kerberos => "kerberos",
        }
    }
}

impl std::fmt::Display for SignInMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a sign-in was refused. The caller is told only that its credentials
/// are invalid (every reason alike); the reason goes to the server log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The credentials did not verify: the reason, for the server log.
    #[error("{0}")]
    Rejected(String),
    /// The identity provider could not be reached to fetch its keys.
    #[error("identity provider unreachable: {0}")]
    ProviderUnreachable(String),
    /// The settings are wrong (found when the server starts).
    #[error("{0}")]
    Config(String),
}

/// Result with [`IdentityError`].
pub type IdentityResult<T> = Result<T, IdentityError>;
