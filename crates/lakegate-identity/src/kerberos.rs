//! Kerberos sign-in: a SPNEGO (or raw Kerberos) token from the client's
//! ticket, accepted by the system's MIT GSSAPI with the service principal's
//! key from its keytab. GSSAPI checks the ticket's encryption (a ticket for
//! another service, or one sealed with another key, does not decrypt), its
//! times, and replays (MIT's replay cache); the client's principal is then
//! mapped to a user (kerberos_names.rs).
//!
//! The keytab is where MIT Kerberos looks for it, `KRB5_KTNAME`, which
//! `lakegate serve --kerberos-keytab FILE` sets for its own process.

use libgssapi::context::{SecurityContext, ServerCtx};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::name::Name;
use libgssapi::oid::{GSS_MECH_KRB5, GSS_MECH_SPNEGO, GSS_NT_KRB5_PRINCIPAL, OidSet};

use crate::kerberos_names::KerberosNames;
use crate::{IdentityError, IdentityResult};

/// Accepts Kerberos tokens for one service principal.
pub struct KerberosAcceptor {
    principal: String,
    credential: Cred,
    names: KerberosNames,
}

impl std::fmt::Debug for KerberosAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KerberosAcceptor")
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

impl KerberosAcceptor {
    /// An acceptor for `principal` (`HTTP/host@REALM`), whose key must be in
    /// the keytab; checked now, so that a wrong keytab stops the server at
    /// start rather than failing every sign-in.
    pub fn new(principal: &str, names: KerberosNames) -> IdentityResult<Self> {
        let config = |why: String| {
            IdentityError::Config(format!("Kerberos service principal '{principal}': {why}"))
        };
        let name = Name::new(principal.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL))
            .map_err(|e| config(e.to_string()))?;
        let mut mechanisms = OidSet::new();
        for mechanism in [GSS_MECH_KRB5, GSS_MECH_SPNEGO] {
            mechanisms
                .add(mechanism)
                .map_err(|e| config(e.to_string()))?;
        }
        let credential = Cred::acquire(Some(&name), None, CredUsage::Accept, Some(&mechanisms))
            .map_err(|e| config(format!("no key for it in the keytab: {e}")))?;
        Ok(Self {
            principal: principal.to_string(),
            credential,
            names,
        })
    }

    /// The user `token` (a client's first and only SPNEGO or Kerberos
    /// token) signs in as. Blocking: GSSAPI reads the keytab and the replay
    /// cache.
    pub fn accept(&self, token: &[u8]) -> IdentityResult<String> {
        let rejected = |why: String| IdentityError::Rejected(format!("Kerberos: {why}"));
        let mut context = ServerCtx::new(Some(self.credential.clone()));
        context
            .step(token, None)
            .map_err(|e| rejected(e.to_string()))?;
        if !context.is_complete() {
            return Err(rejected(
                "the token needs more than one round trip (send a Kerberos AP-REQ, \
                 as SPNEGO's first token or raw)"
                    .into(),
            ));
        }
        let client = context
            .source_name()
            .map_err(|e| rejected(e.to_string()))?
            .to_string();
        self.names.user_of(&client)
    }
}
