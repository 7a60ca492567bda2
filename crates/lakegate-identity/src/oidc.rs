//! Verifying an OpenID provider's JWT and reading who it names.
//!
//! ```text
//! token ─▶ header: alg among the issuer's allowed (never none, never HMAC), kid
//!       ─▶ payload's iss (unverified, only to choose the issuer's settings)
//!       ─▶ the issuer's key for kid (jwks.rs); its alg, when the key set says, must match
//!       ─▶ jsonwebtoken: signature, iss, aud, exp and nbf (with leeway), all required
//!       ─▶ user claim (a non-empty string), groups claim (strings) ─▶ Principal
//! ```
//!
//! A token verified once is remembered (by its SHA-256) until it expires or
//! the provider's key set changes, so a client sending the same token on
//! every call pays for one signature check, not one per call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation};
use lakegate_policy::Principal;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::config::{OidcConfig, OidcIssuerConfig};
use crate::jwks::ProviderKeys;
use crate::{IdentityError, IdentityResult};

/// Verified tokens remembered at most.
const REMEMBERED_TOKENS: usize = 10_000;
/// Groups read from one token at most, and the longest name read.
const MAX_GROUPS: usize = 1_000;
const MAX_NAME_BYTES: usize = 256;

/// One trusted issuer: its settings and its keys.
struct Issuer {
    config: OidcIssuerConfig,
    algorithms: Vec<Algorithm>,
    keys: ProviderKeys,
}

/// A token verified before: who it names, until when, under which keys.
struct Remembered {
    principal: Principal,
    expires: u64,
    issuer: usize,
    generation: u64,
}

/// Verifies tokens of the configured OpenID providers.
pub struct OidcVerifier {
    issuers: Vec<Issuer>,
    auto_users: bool,
    remembered: Mutex<HashMap<[u8; 32], Remembered>>,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let issuers: Vec<&str> = self
            .issuers
            .iter()
            .map(|i| i.config.issuer.as_str())
            .collect();
        f.debug_struct("OidcVerifier")
            .field("issuers", &issuers)
            .field("auto_users", &self.auto_users)
            .finish()
    }
}

impl OidcVerifier {
    /// A verifier for the issuers of `config`; `None` when it names none.
    pub fn new(config: &OidcConfig) -> IdentityResult<Option<Self>> {
        if config.issuers.is_empty() {
            return Ok(None);
        }
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| IdentityError::Config(format!("cannot make an HTTP client: {e}")))?;
        let issuers = config
            .issuers
            .iter()
            .map(|issuer| {
                Ok(Issuer {
                    algorithms: issuer.parsed_algorithms()?,
                    keys: ProviderKeys::new(issuer, client.clone()),
                    config: issuer.clone(),
                })
            })
            .collect::<IdentityResult<Vec<_>>>()?;
        Ok(Some(Self {
            issuers,
            auto_users: config.auto_users,
            remembered: Mutex::new(HashMap::new()),
        }))
    }

    /// Fetches every issuer's keys now, so that the first sign-in does not
    /// wait for them; a provider that cannot be reached is logged and tried
    /// again at the first token it signed.
    pub async fn prefetch_keys(&self) {
        for issuer in &self.issuers {
            if let Err(error) = issuer.keys.prefetch().await {
                log::warn!("{error}");
            }
        }
    }

    /// Whether `token` looks like a JWT (three base64url parts), as opposed
    /// to one of Lakegate's own tokens.
    pub fn looks_like_jwt(token: &str) -> bool {
        token.starts_with("eyJ") && token.split('.').count() == 3
    }

    /// Who `token` names, if one of the issuers signed it and it is valid
    /// now.
    pub async fn verify(&self, token: &str) -> IdentityResult<Principal> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(principal) = self.remembered(&digest) {
            return Ok(principal);
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| rejected(&format!("not a JWT: {e}")))?;
        let (index, issuer) = self.issuer_of(token)?;
        if !issuer.algorithms.contains(&header.alg) {
            return Err(rejected(&format!(
                "algorithm {:?} is not accepted for '{}'",
                header.alg, issuer.config.issuer
            )));
        }
        let (key, generation) = issuer.keys.key(header.kid.as_deref()).await?;
        if key.algorithm.is_some_and(|a| a != header.alg) {
            return Err(rejected(&format!(
                "the token's algorithm {:?} is not its key's",
                header.alg
            )));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&issuer.config.issuer]);
        validation.set_audience(&issuer.config.audience);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = issuer.config.leeway();
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| rejected(&format!("token refused: {e}")))?;
        let claims = data.claims;
        let principal = self.principal(&issuer.config, &claims)?;
        let expires = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        self.remember(digest, &principal, expires, index, generation);
        Ok(principal)
    }

    /// The issuer the token says it is from (its signature is checked next,
    /// against that issuer's keys).
    fn issuer_of(&self, token: &str) -> IdentityResult<(usize, &Issuer)> {
        let payload = token
            .split('.')
            .nth(1)
            .and_then(|part| URL_SAFE_NO_PAD.decode(part).ok())
            .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(&bytes).ok())
            .ok_or_else(|| rejected("the token's payload is not JSON"))?;
        let iss = payload
            .get("iss")
            .and_then(Value::as_str)
            .ok_or_else(|| rejected("the token has no issuer"))?;
        self.issuers
            .iter()
            .enumerate()
            .find(|(_, issuer)| {
                issuer.config.issuer.trim_end_matches('/') == iss.trim_end_matches('/')
            })
            .ok_or_else(|| rejected(&format!("issuer '{iss}' is not trusted")))
    }

    /// The principal the verified `claims` name.
    fn principal(
        &self,
        config: &OidcIssuerConfig,
        claims: &Map<String, Value>,
    ) -> IdentityResult<Principal> {
        let user = claims
            .get(&config.user_claim)
            .and_then(Value::as_str)
            .filter(|user| !user.is_empty() && user.len() <= MAX_NAME_BYTES)
            .ok_or_else(|| {
                rejected(&format!(
                    "the token's '{}' claim is not a user name",
                    config.user_claim
                ))
            })?;
        let groups = match claims.get(&config.groups_claim) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(group)) => vec![group.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .filter(|g| !g.is_empty() && g.len() <= MAX_NAME_BYTES)
                .take(MAX_GROUPS)
                .map(str::to_string)
                .collect(),
            Some(_) => {
                return Err(rejected(&format!(
                    "the token's '{}' claim is not a list of groups",
                    config.groups_claim
                )));
            }
        };
        Ok(Principal {
            user: user.to_string(),
            provider_groups: groups,
            provider_only: self.auto_users,
        })
    }

    fn remembered(&self, digest: &[u8; 32]) -> Option<Principal> {
        let remembered = self.remembered.lock().unwrap_or_else(|p| p.into_inner());
        let entry = remembered.get(digest)?;
        let current = self.issuers[entry.issuer].keys.generation();
        (entry.expires > now() && entry.generation == current).then(|| entry.principal.clone())
    }

    fn remember(
        &self,
        digest: [u8; 32],
        principal: &Principal,
        expires: u64,
        issuer: usize,
        generation: u64,
    ) {
        let mut remembered = self.remembered.lock().unwrap_or_else(|p| p.into_inner());
        if remembered.len() >= REMEMBERED_TOKENS {
            let now = now();
            remembered.retain(|_, entry| entry.expires > now);
            if remembered.len() >= REMEMBERED_TOKENS {
                remembered.clear();
            }
        }
        remembered.insert(
            digest,
            Remembered {
                principal: principal.clone(),
                expires,
                issuer,
                generation,
            },
        );
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

fn rejected(why: &str) -> IdentityError {
    IdentityError::Rejected(why.to_string())
}
