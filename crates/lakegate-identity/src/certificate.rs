//! The user a client certificate names. The certificate's chain, validity
//! and signature are rustls's to check, during the TLS handshake, against
//! the CA given with `--tls-client-ca`; by the time a call arrives, its
//! certificate is one that CA vouched for, and only the name is read here.

use serde::Deserialize;
use x509_cert::Certificate;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode, Tag, Tagged};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::{IdentityError, IdentityResult};

/// The subject's common name.
const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");

/// Which field of a client certificate names its user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum UserField {
    /// The subject's common name (CN).
    #[default]
    #[serde(rename = "cn")]
    CommonName,
    /// The first e-mail address among the subject alternative names; the
    /// user is the part before `@`.
    #[serde(rename = "san-email")]
    SanEmail,
    /// The first DNS name among the subject alternative names.
    #[serde(rename = "san-dns")]
    SanDns,
    /// The first URI among the subject alternative names (a SPIFFE ID, for
    /// instance), whole.
    #[serde(rename = "san-uri")]
    SanUri,
}

impl std::str::FromStr for UserField {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "cn" => Ok(Self::CommonName),
            "san-email" => Ok(Self::SanEmail),
            "san-dns" => Ok(Self::SanDns),
            "san-uri" => Ok(Self::SanUri),
            _ => Err(format!(
                "'{text}' is not a certificate field: cn, san-email, san-dns or san-uri"
            )),
        }
    }
}

/// Reads users from client certificates.
#[derive(Debug, Clone, Copy)]
pub struct CertificateUsers {
    field: UserField,
}

impl CertificateUsers {
    /// Reads the user from `field`.
    pub fn new(field: UserField) -> Self {
        Self { field }
    }

    /// The user the (already verified) DER certificate `der` names.
    pub fn user_of(&self, der: &[u8]) -> IdentityResult<String> {
        let certificate = Certificate::from_der(der)
            .map_err(|e| rejected(&format!("cannot read the client certificate: {e}")))?;
        let tbs = &certificate.tbs_certificate;
        let user = match self.field {
            UserField::CommonName => tbs
                .subject
                .0
                .iter()
                .flat_map(|rdn| rdn.0.iter())
                .find(|attribute| attribute.oid == COMMON_NAME)
                .and_then(|attribute| match attribute.value.tag() {
                    Tag::Utf8String | Tag::PrintableString | Tag::Ia5String => {
                        std::str::from_utf8(attribute.value.value()).ok()
                    }
                    _ => None,
                })
                .map(str::to_string),
            field => {
                let names = tbs
                    .get::<SubjectAltName>()
                    .map_err(|e| rejected(&format!("unreadable subject alternative names: {e}")))?
                    .map(|(_, names)| names.0)
                    .unwrap_or_default();
                names.iter().find_map(|name| match (field, name) {
                    (UserField::SanEmail, GeneralName::Rfc822Name(email)) => email
                        .as_str()
                        .split_once('@')
                        .map(|(user, _)| user.to_string()),
                    (UserField::SanDns, GeneralName::DnsName(dns)) => Some(dns.to_string()),
                    (UserField::SanUri, GeneralName::UniformResourceIdentifier(uri)) => {
                        Some(uri.to_string())
                    }
                    _ => None,
                })
            }
        };
        user.filter(|user| !user.is_empty()).ok_or_else(|| {
            rejected(&format!(
                "the client certificate has no {} to name its user",
                match self.field {
                    UserField::CommonName => "subject common name",
                    UserField::SanEmail => "e-mail address",
                    UserField::SanDns => "DNS name",
                    UserField::SanUri => "URI",
                }
            ))
        })
    }
}

fn rejected(why: &str) -> IdentityError {
    IdentityError::Rejected(why.to_string())
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    use super::*;

    fn certificate(common_name: Option<&str>, names: Vec<SanType>) -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(name) = common_name {
            params.distinguished_name.push(DnType::CommonName, name);
        }
        params.subject_alt_names = names;
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn each_field_names_the_user() {
        let der = certificate(
            Some("svc-etl"),
            vec![
                SanType::Rfc822Name("ann@example.com".try_into().unwrap()),
                SanType::DnsName("etl.example.com".try_into().unwrap()),
                SanType::URI("spiffe://lake/etl".try_into().unwrap()),
            ],
        );
        let user = |field| CertificateUsers::new(field).user_of(&der).unwrap();
        assert_eq!(user(UserField::CommonName), "svc-etl");
        assert_eq!(user(UserField::SanEmail), "ann");
        assert_eq!(user(UserField::SanDns), "etl.example.com");
        assert_eq!(user(UserField::SanUri), "spiffe://lake/etl");
    }

    #[test]
    fn a_certificate_without_the_field_names_nobody() {
        let der = certificate(None, vec![]);
        for field in [
            UserField::CommonName,
            UserField::SanEmail,
            UserField::SanUri,
        ] {
            let error = CertificateUsers::new(field).user_of(&der).unwrap_err();
            assert!(matches!(error, IdentityError::Rejected(_)), "{error}");
        }
        let error = CertificateUsers::new(UserField::CommonName)
            .user_of(b"not a certificate")
            .unwrap_err();
        assert!(error.to_string().contains("cannot read"), "{error}");
    }
}
