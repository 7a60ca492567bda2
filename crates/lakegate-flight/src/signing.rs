//! Signed, expiring envelopes: the format of Lakegate's bearer tokens and
//! Flight tickets.
//!
//! ```text
//! lg1.<base64url(JSON payload)>.<base64url(HMAC-SHA256(key, "lg1.<payload>"))>
//! ```
//!
//! Any server holding the same key can open an envelope another server
//! sealed, which is what lets a fleet of stateless servers share clients
//! behind a load balancer. Envelopes are authenticated, not encrypted: put
//! nothing in a payload that its holder may not read (the SQL text of its own
//! query is fine; a policy predicate is not).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

const PREFIX: &str = "lg1.";

/// Why an envelope could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Not an envelope of this format.
    #[error("malformed")]
    Malformed,
    /// The signature does not match: tampered, or sealed with another key.
    #[error("invalid signature")]
    BadSignature,
    /// Past its expiry.
    #[error("expired")]
    Expired,
}

/// The payload's envelope fields around the caller's own.
#[derive(serde::Serialize, serde::Deserialize)]
struct Sealed<T> {
    /// Expiry, seconds since the Unix epoch.
    exp: u64,
    #[serde(flatten)]
    payload: T,
}

/// The secret of a server key file (`--key-file`): its bytes, without
/// surrounding whitespace, at least 32 of them. Servers and workers of one
/// fleet derive every key they share from it.
pub fn read_key_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read key file '{}': {e}", path.display()))?;
    let trimmed = bytes.trim_ascii().to_vec();
    if trimmed.len() < 32 {
        return Err(format!(
            "key file '{}': a server key needs at least 32 bytes, got {}",
            path.display(),
            trimmed.len()
        ));
    }
    Ok(trimmed)
}

/// Seals and opens envelopes with one server key.
#[derive(Clone)]
pub struct EnvelopeKey {
    key: Vec<u8>,
}

impl std::fmt::Debug for EnvelopeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnvelopeKey(..)") // never print the key
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl EnvelopeKey {
    /// A key from secret bytes (at least 32).
    pub fn new(key: Vec<u8>) -> Result<Self, String> {
        if key.len() < 32 {
            return Err(format!(
                "a server key needs at least 32 bytes, got {}",
                key.len()
            ));
        }
        Ok(Self { key })
    }

    /// A fresh random key. Tokens and tickets it seals are valid only on
    /// this server process: servers behind one load balancer need a shared
    /// key ([`EnvelopeKey::from_file`]).
    pub fn random() -> Self {
        use password_hash::rand_core::{OsRng, RngCore};
        let mut key = vec![0u8; 32];
        OsRng.fill_bytes(&mut key);
        Self { key }
    }

    /// A key read from a file holding at least 32 bytes of secret.
    pub fn from_file(path: &std::path::Path) -> Result<Self, String> {
        Ok(Self {
            key: read_key_file(path)?,
        })
    }

    fn mac(&self, data: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(data);
        mac
    }

    /// Seals `payload`, valid for `ttl` from now.
    pub fn seal<T: Serialize>(&self, payload: &T, ttl: Duration) -> String {
        let sealed = Sealed {
            exp: now_secs() + ttl.as_secs().max(1),
            payload,
        };
        let json = serde_json::to_vec(&sealed).expect("payloads serialize");
        let body = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(json));
        let signature = URL_SAFE_NO_PAD.encode(self.mac(body.as_bytes()).finalize().into_bytes());
        format!("{body}.{signature}")
    }

    /// Opens an envelope: checks the signature (in constant time), then the
    /// expiry, then decodes the payload.
    pub fn open<T: DeserializeOwned>(&self, envelope: &str) -> Result<T, EnvelopeError> {
        let (body, signature) = envelope.rsplit_once('.').ok_or(EnvelopeError::Malformed)?;
        let encoded = body.strip_prefix(PREFIX).ok_or(EnvelopeError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| EnvelopeError::Malformed)?;
        self.mac(body.as_bytes())
            .verify_slice(&signature)
            .map_err(|_| EnvelopeError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| EnvelopeError::Malformed)?;
        let sealed: Sealed<T> =
            serde_json::from_slice(&json).map_err(|_| EnvelopeError::Malformed)?;
        if sealed.exp <= now_secs() {
            return Err(EnvelopeError::Expired);
        }
        Ok(sealed.payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Claims {
        user: String,
    }

    fn key(byte: u8) -> EnvelopeKey {
        EnvelopeKey::new(vec![byte; 32]).unwrap()
    }

    #[test]
    fn round_trip_and_rejections() {
        let claims = Claims {
            user: "tina".into(),
        };
        let sealed = key(1).seal(&claims, Duration::from_secs(60));
        assert!(sealed.starts_with("lg1."));
        assert_eq!(key(1).open::<Claims>(&sealed), Ok(claims));
        assert_eq!(
            key(2).open::<Claims>(&sealed),
            Err(EnvelopeError::BadSignature)
        );

        // Flip one character of the payload: the signature no longer matches.
        let mut tampered: Vec<char> = sealed.chars().collect();
        let at = 6;
        tampered[at] = if tampered[at] == 'A' { 'B' } else { 'A' };
        let tampered: String = tampered.into_iter().collect();
        assert_eq!(
            key(1).open::<Claims>(&tampered),
            Err(EnvelopeError::BadSignature)
        );

        for garbage in ["", "lg1.", "x.y", "lg1.!!!.???", "SELECT 1"] {
            assert!(key(1).open::<Claims>(garbage).is_err(), "{garbage:?}");
        }
        assert!(EnvelopeKey::new(vec![0; 16]).is_err());
    }

    #[test]
    fn expiry() {
        let key = key(3);
        // An envelope whose expiry is now is already expired.
        let body = format!(
            "{PREFIX}{}",
            URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{},"user":"x"}}"#, now_secs()))
        );
        let signature = URL_SAFE_NO_PAD.encode(key.mac(body.as_bytes()).finalize().into_bytes());
        let expired = format!("{body}.{signature}");
        assert_eq!(key.open::<Claims>(&expired), Err(EnvelopeError::Expired));
    }
}
