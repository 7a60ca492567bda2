//! From a Kerberos principal to a Lakegate user, in the simplest form of
//! Hadoop's `auth_to_local`: a principal mapped by name wins; otherwise a
//! one-part principal of a trusted realm signs in as its name
//! (`tina@EXAMPLE.COM` as `tina`); anything else (another realm, a
//! service principal `name/host@REALM` not mapped) is refused.

use crate::config::KerberosConfig;
use crate::{IdentityError, IdentityResult};

/// The mapping rules.
#[derive(Debug, Clone)]
pub struct KerberosNames {
    realms: Vec<String>,
    map: Vec<(String, String)>,
}

impl KerberosNames {
    /// The rules of `config`; with no realm listed, `default_realm` (the
    /// service principal's) is the one trusted.
    pub fn new(config: &KerberosConfig, default_realm: &str) -> Self {
        let realms = if config.realms.is_empty() {
            vec![default_realm.to_string()]
        } else {
            config.realms.clone()
        };
        Self {
            realms,
            map: config
                .map
                .iter()
                .map(|m| (m.principal.clone(), m.user.clone()))
                .collect(),
        }
    }

    /// The user `principal` (`name[/instance]@REALM`) signs in as.
    pub fn user_of(&self, principal: &str) -> IdentityResult<String> {
        if let Some((_, user)) = self.map.iter().find(|(p, _)| p == principal) {
            return Ok(user.clone());
        }
        let refused =
            |why: &str| IdentityError::Rejected(format!("Kerberos principal '{principal}': {why}"));
        let (name, realm) = principal
            .rsplit_once('@')
            .ok_or_else(|| refused("no realm"))?;
        if !self.realms.iter().any(|r| r == realm) {
            return Err(refused("its realm is not trusted"));
        }
        if name.is_empty() || name.contains('/') {
            return Err(refused(
                "a service principal signs in only when mapped to a user",
            ));
        }
        Ok(name.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KerberosMapping;

    #[test]
    fn realm_stripping_and_explicit_mappings() {
        let config = KerberosConfig {
            realms: vec![],
            map: vec![KerberosMapping {
                principal: "spark/etl.example.com@LAKE.TEST".into(),
                user: "etl".into(),
            }],
        };
        let names = KerberosNames::new(&config, "LAKE.TEST");
        assert_eq!(names.user_of("tina@LAKE.TEST").unwrap(), "tina");
        assert_eq!(
            names.user_of("spark/etl.example.com@LAKE.TEST").unwrap(),
            "etl"
        );
        for refused in [
            "tina@OTHER.TEST",
            "tina",
            "@LAKE.TEST",
            "HTTP/host@LAKE.TEST",
        ] {
            assert!(names.user_of(refused).is_err(), "{refused}");
        }
    }
}
