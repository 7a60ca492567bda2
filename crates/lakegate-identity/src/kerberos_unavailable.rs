//! Kerberos in a build without the `kerberos` feature: the acceptor cannot
//! be made, and the server says how to get one that can.

use crate::kerberos_names::KerberosNames;
use crate::{IdentityError, IdentityResult};

/// Accepts Kerberos tokens; this build has none (`--features kerberos`).
#[derive(Debug)]
pub struct KerberosAcceptor {
    never: std::convert::Infallible,
}

impl KerberosAcceptor {
    /// Always an error: this build has no GSSAPI.
    pub fn new(principal: &str, _names: KerberosNames) -> IdentityResult<Self> {
        Err(IdentityError::Config(format!(
            "Kerberos principal '{principal}': this lakegate was built without Kerberos; \
             build it with `cargo build --features kerberos` (needs Debian's libkrb5-dev \
             and libclang-dev)"
        )))
    }

    /// Never called: no acceptor exists.
    pub fn accept(&self, _token: &[u8]) -> IdentityResult<String> {
        match self.never {}
    }
}
