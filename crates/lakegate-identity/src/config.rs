//! The identity settings: the `--identity FILE` of `lakegate serve`, a TOML
//! file naming the OpenID providers the server trusts, which field of a
//! client certificate names its user, and how Kerberos principals map to
//! users. Every field is checked when the server starts; an unknown field is
//! an error, not silently ignored.
//!
//! ```toml
//! [oidc]
//! auto_users = true                  # accept users known only to the provider
//!
//! [[oidc.issuer]]
//! issuer = "https://login.example.com/realms/corp"
//! audience = ["lakegate"]
//! user_claim = "preferred_username"  # default "sub"
//! groups_claim = "groups"            # default "groups"
//! algorithms = ["RS256"]             # default ["RS256"]
//!
//! [certificate]
//! user_field = "cn"                  # or "san-email", "san-dns", "san-uri"
//!
//! [kerberos]
//! realms = ["EXAMPLE.COM"]           # user@EXAMPLE.COM signs in as user
//! [[kerberos.map]]
//! principal = "spark/etl.example.com@EXAMPLE.COM"
//! user = "etl"
//! ```

use std::path::Path;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde::Deserialize;

use crate::certificate::UserField;
use crate::{IdentityError, IdentityResult};

/// Every identity setting.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// OpenID providers.
    #[serde(default)]
    pub oidc: OidcConfig,
    /// Client certificates.
    #[serde(default)]
    pub certificate: CertificateConfig,
    /// Kerberos principals.
    #[serde(default)]
    pub kerberos: KerberosConfig,
}

/// `[oidc]`: the providers whose tokens are accepted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Accept users the catalog does not know: they may assume their
    /// groups' roles only. Off: a provider's user must be a catalog user.
    #[serde(default)]
    pub auto_users: bool,
    /// The trusted issuers.
    #[serde(default, rename = "issuer")]
    pub issuers: Vec<OidcIssuerConfig>,
}

/// `[[oidc.issuer]]`: one OpenID provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcIssuerConfig {
    /// The issuer URL: the tokens' `iss`, and where its discovery document
    /// is (`<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    /// The audiences a token must name one of (`aud`).
    pub audience: Vec<String>,
    /// The claim naming the Lakegate user.
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    /// The claim listing the user's groups (a list of strings, or one
    /// string); absent from a token: no groups.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// The signature algorithms accepted (asymmetric only).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// The key set's URL, when not the one the discovery document names.
    pub jwks_uri: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// An unknown key id refetches the key set at most this often, in
    /// seconds (a token naming a made-up key must not make the server hammer
    /// the provider).
    #[serde(default = "default_refetch")]
    pub jwks_min_refetch_secs: u64,
    /// The key set is refetched when it is this old, in seconds, so that
    /// keys the provider withdrew stop verifying.
    #[serde(default = "default_max_age")]
    pub jwks_max_age_secs: u64,
}

fn default_user_claim() -> String {
    "sub".into()
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_algorithms() -> Vec<String> {
    vec!["RS256".into()]
}
fn default_leeway() -> u64 {
    30
}
fn default_refetch() -> u64 {
    30
}
fn default_max_age() -> u64 {
    3600
}

impl OidcIssuerConfig {
    /// The accepted algorithms, parsed. HMAC algorithms are refused: a
    /// provider's tokens are verified with its public keys, and accepting
    /// HS256 is how a public key gets used as a shared secret.
    pub(crate) fn parsed_algorithms(&self) -> IdentityResult<Vec<Algorithm>> {
        if self.algorithms.is_empty() {
            return Err(self.error("algorithms is empty"));
        }
        self.algorithms
            .iter()
            .map(|name| {
                let algorithm: Algorithm = name
                    .parse()
                    .map_err(|_| self.error(&format!("unknown algorithm '{name}'")))?;
                if matches!(
                    algorithm,
                    Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
                ) {
                    return Err(self.error(&format!(
                        "algorithm '{name}' is a shared-secret MAC; provider tokens are \
                         verified with public keys (RS*, PS*, ES*, EdDSA)"
                    )));
                }
                Ok(algorithm)
            })
            .collect()
    }

    pub(crate) fn leeway(&self) -> u64 {
        self.leeway_secs
    }

    pub(crate) fn min_refetch(&self) -> Duration {
        Duration::from_secs(self.jwks_min_refetch_secs)
    }

    pub(crate) fn max_age(&self) -> Duration {
        Duration::from_secs(self.jwks_max_age_secs)
    }

    fn error(&self, what: &str) -> IdentityError {
        IdentityError::Config(format!("oidc issuer '{}': {what}", self.issuer))
    }

    fn check(&self) -> IdentityResult<()> {
        url_of(&self.issuer).map_err(|e| self.error(&e))?;
        if self.audience.is_empty() {
            return Err(self.error("audience is empty: name the audience Lakegate's tokens carry"));
        }
        if let Some(uri) = &self.jwks_uri {
            url_of(uri).map_err(|e| self.error(&e))?;
        }
        self.parsed_algorithms().map(drop)
    }
}

/// `[certificate]`: which field of a client certificate names its user.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateConfig {
    /// The field (default: the subject's common name).
    #[serde(default)]
    pub user_field: UserField,
}

/// `[kerberos]`: how `name@REALM` becomes a Lakegate user.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KerberosConfig {
    /// Realms whose one-part principals sign in as the name before `@`
    /// (`tina@EXAMPLE.COM` as `tina`). Default: the service principal's realm.
    #[serde(default)]
    pub realms: Vec<String>,
    /// Principals mapped to a user by name, checked first.
    #[serde(default)]
    pub map: Vec<KerberosMapping>,
}

/// `[[kerberos.map]]`: one principal, one user.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KerberosMapping {
    /// The full principal, `name[/instance]@REALM`.
    pub principal: String,
    /// The Lakegate user it signs in as.
    pub user: String,
}

impl IdentityConfig {
    /// Reads and checks the file at `path`.
    pub fn from_file(path: &Path) -> IdentityResult<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            IdentityError::Config(format!(
                "cannot read the identity settings '{}': {e}",
                path.display()
            ))
        })?;
        Self::parse(&text).map_err(|e| IdentityError::Config(format!("{}: {e}", path.display())))
    }

    /// Parses and checks settings.
    pub fn parse(text: &str) -> IdentityResult<Self> {
        let config: Self =
            toml::from_str(text).map_err(|e| IdentityError::Config(e.message().to_string()))?;
        let mut seen = std::collections::BTreeSet::new();
        for issuer in &config.oidc.issuers {
            issuer.check()?;
            if !seen.insert(issuer.issuer.trim_end_matches('/')) {
                return Err(issuer.error("declared twice"));
            }
        }
        for mapping in &config.kerberos.map {
            if !mapping.principal.contains('@') || mapping.user.is_empty() {
                return Err(IdentityError::Config(format!(
                    "kerberos map: '{}' must be a full principal (name@REALM) with a user",
                    mapping.principal
                )));
            }
        }
        Ok(config)
    }
}

/// `text` as an http(s) URL, or why not.
fn url_of(text: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(text).map_err(|e| format!("'{text}' is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(format!("'{text}' is not an http(s) URL"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_example() {
        let text = include_str!("config.rs")
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//!").trim_start())
            .collect::<Vec<_>>()
            .join("\n");
        let config = IdentityConfig::parse(&text).unwrap();
        assert!(config.oidc.auto_users);
        assert_eq!(config.oidc.issuers[0].user_claim, "preferred_username");
        assert_eq!(config.certificate.user_field, UserField::CommonName);
        assert_eq!(config.kerberos.map[0].user, "etl");
    }

    #[test]
    fn refuses_what_cannot_be_right() {
        let issuer = |extra: &str| {
            format!(
                "[[oidc.issuer]]\nissuer = \"https://idp.example\"\naudience = [\"lg\"]\n{extra}"
            )
        };
        for (text, expected) in [
            (issuer("algorithms = [\"HS256\"]"), "shared-secret"),
            (
                issuer("algorithms = [\"none\"]"),
                "unknown algorithm 'none'",
            ),
            (issuer("algorithms = []"), "algorithms is empty"),
            (issuer("colour = 1"), "unknown field"),
            (
                "[[oidc.issuer]]\nissuer = \"ftp://x\"\naudience = [\"a\"]".into(),
                "not an http(s) URL",
            ),
            (
                "[[oidc.issuer]]\nissuer = \"https://x\"\naudience = []".into(),
                "audience is empty",
            ),
            (format!("{}\n{}", issuer(""), issuer("")), "declared twice"),
            (
                "[certificate]\nuser_field = \"ou\"".into(),
                "unknown variant",
            ),
        ] {
            let error = IdentityConfig::parse(&text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
