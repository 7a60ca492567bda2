//! One OpenID provider's signing keys: found through its discovery document,
//! fetched from its JWKS, kept, and fetched again when a token names a key
//! not held (the provider rotated its keys), at most once per
//! `jwks_min_refetch_secs`, or when the set is older than
//! `jwks_max_age_secs` (so a key the provider withdrew stops verifying).
//!
//! ```text
//! key(kid) ─▶ held and the set is fresh ─▶ the key             (no I/O: the per-call path)
//!          ─▶ otherwise, one fetch at a time:
//!               discovery (first time) ─▶ jwks_uri ─▶ GET ─▶ keys by kid
//!               (a fetch that fails keeps the keys held; an unknown kid
//!               within the refetch floor is refused without a fetch)
//! ```

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use crate::config::OidcIssuerConfig;
use crate::{IdentityError, IdentityResult};

/// How long one request to the provider may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest discovery document or key set read, in bytes.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// A provider's public key.
pub(crate) struct ProviderKey {
    /// The key.
    pub(crate) key: DecodingKey,
    /// The algorithm the key is for, when the key set says.
    pub(crate) algorithm: Option<Algorithm>,
}

/// The keys held, and when they were fetched.
struct KeySet {
    keys: HashMap<String, Arc<ProviderKey>>,
    fetched: Instant,
    /// Bumped at every fetch that changed the keys: verified tokens cached
    /// under an older generation are verified again.
    generation: u64,
}

/// When the last fetch was tried, and the key set URL once discovered.
#[derive(Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    jwks_uri: Option<String>,
}

/// The part of a discovery document Lakegate reads.
#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// One provider's keys.
pub(crate) struct ProviderKeys {
    issuer: String,
    configured_jwks_uri: Option<String>,
    min_refetch: Duration,
    max_age: Duration,
    client: reqwest::Client,
    held: RwLock<Option<KeySet>>,
    fetch: tokio::sync::Mutex<FetchState>,
}

impl ProviderKeys {
    pub(crate) fn new(config: &OidcIssuerConfig, client: reqwest::Client) -> Self {
        Self {
            issuer: config.issuer.trim_end_matches('/').to_string(),
            configured_jwks_uri: config.jwks_uri.clone(),
            min_refetch: config.min_refetch(),
            max_age: config.max_age(),
            client,
            held: RwLock::new(None),
            fetch: tokio::sync::Mutex::new(FetchState::default()),
        }
    }

    /// The generation of the keys held (0: none yet).
    pub(crate) fn generation(&self) -> u64 {
        self.read_held(|held| held.map_or(0, |set| set.generation))
    }

    /// Fetches the key set now.
    pub(crate) async fn prefetch(&self) -> IdentityResult<()> {
        let mut state = self.fetch.lock().await;
        state.last_attempt = Some(Instant::now());
        let keys = self.fetch_keys(&mut state).await?;
        self.install(keys);
        Ok(())
    }

    /// The key `kid` names (the only key, for a token naming none), with
    /// the generation of the set it came from.
    pub(crate) async fn key(&self, kid: Option<&str>) -> IdentityResult<(Arc<ProviderKey>, u64)> {
        if let Some(found) = self.fresh_key(kid) {
            return Ok(found);
        }
        let mut state = self.fetch.lock().await;
        // Another call may have fetched while this one waited.
        if let Some(found) = self.fresh_key(kid) {
            return Ok(found);
        }
        let stale =
            self.read_held(|held| held.is_none_or(|set| set.fetched.elapsed() >= self.max_age));
        let recently = state
            .last_attempt
            .is_some_and(|at| at.elapsed() < self.min_refetch);
        if !recently || stale {
            state.last_attempt = Some(Instant::now());
            match self.fetch_keys(&mut state).await {
                Ok(keys) => self.install(keys),
                Err(error) => {
                    log::warn!(
                        "cannot fetch the keys of OpenID provider '{}': {error}",
                        self.issuer
                    );
                    if self.read_held(|held| held.is_none()) {
                        return Err(error);
                    }
                }
            }
        }
        drop(state);
        self.read_held(|held| held.and_then(|set| pick(set, kid)))
            .ok_or_else(|| match kid {
                Some(kid) => IdentityError::Rejected(format!(
                    "key '{kid}' is not among the keys of '{}'",
                    self.issuer
                )),
                None => IdentityError::Rejected(format!(
                    "the token names no key and '{}' has more than one",
                    self.issuer
                )),
            })
    }

    /// The key, if held and the set is not too old.
    fn fresh_key(&self, kid: Option<&str>) -> Option<(Arc<ProviderKey>, u64)> {
        self.read_held(|held| {
            let set = held?;
            if set.fetched.elapsed() >= self.max_age {
                return None;
            }
            pick(set, kid)
        })
    }

    fn read_held<R>(&self, f: impl FnOnce(Option<&KeySet>) -> R) -> R {
        let held = self.held.read().unwrap_or_else(|p| p.into_inner());
        f(held.as_ref())
    }

    fn install(&self, keys: HashMap<String, Arc<ProviderKey>>) {
        let mut held = self.held.write().unwrap_or_else(|p| p.into_inner());
        let previous = held.as_ref();
        let same = previous.is_some_and(|set| {
            set.keys.len() == keys.len() && keys.keys().all(|kid| set.keys.contains_key(kid))
        });
        let generation = previous.map_or(0, |set| set.generation) + u64::from(!same);
        *held = Some(KeySet {
            keys,
            fetched: Instant::now(),
            generation: generation.max(1),
        });
    }

    /// Fetches the key set (discovering its URL first, once).
    async fn fetch_keys(
        &self,
        state: &mut FetchState,
    ) -> IdentityResult<HashMap<String, Arc<ProviderKey>>> {
        let uri = match (&self.configured_jwks_uri, &state.jwks_uri) {
            (Some(uri), _) | (None, Some(uri)) => uri.clone(),
            (None, None) => {
                let url = format!("{}/.well-known/openid-configuration", self.issuer);
                let discovery: Discovery = serde_json::from_slice(&self.get(&url).await?)
                    .map_err(|e| unreachable(&url, &format!("not a discovery document: {e}")))?;
                if discovery.issuer.trim_end_matches('/') != self.issuer {
                    return Err(unreachable(
                        &url,
                        &format!(
                            "the discovery document is for issuer '{}', not '{}'",
                            discovery.issuer, self.issuer
                        ),
                    ));
                }
                state.jwks_uri = Some(discovery.jwks_uri.clone());
                discovery.jwks_uri
            }
        };
        #[derive(Deserialize)]
        struct KeySetDocument {
            keys: Vec<serde_json::Value>,
        }
        let document: KeySetDocument = serde_json::from_slice(&self.get(&uri).await?)
            .map_err(|e| unreachable(&uri, &format!("not a JWK set: {e}")))?;
        let mut keys = HashMap::new();
        for value in document.keys {
            // A key Lakegate cannot use (an encryption key, a kind it does
            // not know, one without an id) is skipped, not fatal.
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
                continue;
            };
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                continue;
            }
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            let Ok(key) = DecodingKey::from_jwk(&jwk) else {
                continue;
            };
            let algorithm = jwk
                .common
                .key_algorithm
                .and_then(|a| a.to_string().parse::<Algorithm>().ok());
            keys.insert(kid, Arc::new(ProviderKey { key, algorithm }));
        }
        log::info!(
            "OpenID provider '{}': {} signing keys from {uri}",
            self.issuer,
            keys.len()
        );
        Ok(keys)
    }

    /// The body of `url`, bounded in size and time.
    async fn get(&self, url: &str) -> IdentityResult<Vec<u8>> {
        let response = self
            .client
            .get(url)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| unreachable(url, &e.to_string()))?;
        if !response.status().is_success() {
            return Err(unreachable(url, &format!("HTTP {}", response.status())));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| unreachable(url, &e.to_string()))?;
        if body.len() > MAX_DOCUMENT_BYTES {
            return Err(unreachable(url, "the document is larger than 1 MiB"));
        }
        Ok(body.to_vec())
    }
}

/// The key `kid` names in `set`; without a kid, the set's only key.
fn pick(set: &KeySet, kid: Option<&str>) -> Option<(Arc<ProviderKey>, u64)> {
    let key = match kid {
        Some(kid) => set.keys.get(kid)?,
        None if set.keys.len() == 1 => set.keys.values().next()?,
        None => return None,
    };
    Some((Arc::clone(key), set.generation))
}

fn unreachable(url: &str, why: &str) -> IdentityError {
    IdentityError::ProviderUnreachable(format!("{url}: {why}"))
}
