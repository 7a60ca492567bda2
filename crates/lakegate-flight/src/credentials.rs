//! Reading credentials from gRPC metadata: HTTP Basic (with or without
//! base64 padding: the ADBC Go driver sends it unpadded, which strict
//! decoders reject), Bearer tokens, and Negotiate (SPNEGO/Kerberos) tokens.

use base64::Engine as _;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Standard base64 that accepts input with or without `=` padding.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Credentials presented in an `authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `Basic base64(user:password)`.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
    /// `Bearer <token>`.
    Bearer(String),
    /// `Negotiate base64(<SPNEGO or Kerberos token>)`.
    Negotiate(Vec<u8>),
}

/// Why a header could not be read as credentials. Deliberately vague towards
/// the client: every failure is answered UNAUTHENTICATED alike.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed authorization header")]
pub struct MalformedCredentials;

/// Parses an `authorization` header value.
pub fn parse_authorization(value: &str) -> Result<Credentials, MalformedCredentials> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').ok_or(MalformedCredentials)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = LENIENT.decode(rest).map_err(|_| MalformedCredentials)?;
        let decoded = String::from_utf8(decoded).map_err(|_| MalformedCredentials)?;
        let (user, password) = decoded.split_once(':').ok_or(MalformedCredentials)?;
        if user.is_empty() {
            return Err(MalformedCredentials);
        }
        Ok(Credentials::Basic {
            user: user.to_string(),
            password: password.to_string(),
        })
    } else if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        Ok(Credentials::Bearer(rest.to_string()))
    } else if scheme.eq_ignore_ascii_case("negotiate") && !rest.is_empty() {
        let token = LENIENT.decode(rest).map_err(|_| MalformedCredentials)?;
        Ok(Credentials::Negotiate(token))
    } else {
        Err(MalformedCredentials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> Credentials {
        Credentials::Basic {
            user: user.into(),
            password: password.into(),
        }
    }

    #[test]
    fn basic_with_and_without_padding() {
        // "tina:tina-pass" is 14 bytes: standard base64 ends in "=".
        let padded = base64::engine::general_purpose::STANDARD.encode("tina:tina-pass");
        assert!(padded.ends_with('='));
        let unpadded = padded.trim_end_matches('=');
        for header in [
            format!("Basic {padded}"),
            format!("Basic {unpadded}"),
            format!("basic  {padded} "),
        ] {
            assert_eq!(
                parse_authorization(&header),
                Ok(basic("tina", "tina-pass")),
                "{header}"
            );
        }
        // A password may contain ':'.
        let encoded = base64::engine::general_purpose::STANDARD.encode("u:a:b");
        assert_eq!(
            parse_authorization(&format!("Basic {encoded}")),
            Ok(basic("u", "a:b"))
        );
    }

    #[test]
    fn bearer_and_garbage() {
        assert_eq!(
            parse_authorization("Bearer lg1.abc.def"),
            Ok(Credentials::Bearer("lg1.abc.def".into()))
        );
        assert_eq!(
            parse_authorization("Negotiate YIIB"),
            Ok(Credentials::Negotiate(vec![0x60, 0x82, 0x01]))
        );
        for bad in [
            "",
            "Basic",
            "Basic !!!",
            "Bearer ",
            "Token x",
            "Basic dXNlcg",
            "Negotiate ",
            "Negotiate !!!",
        ] {
            assert_eq!(
                parse_authorization(bad),
                Err(MalformedCredentials),
                "{bad:?}"
            );
        }
    }
}
