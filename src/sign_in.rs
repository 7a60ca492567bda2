//! `lakegate serve`'s sign-in methods, from its flags and `--identity`
//! file: which OpenID providers, whether client certificates, whether
//! Kerberos; all checked before the server listens, so that a wrong setting
//! stops it with a clear error instead of failing every caller.

use std::path::Path;
use std::sync::Arc;

use lakegate_flight::{SignInMethods, TlsIdentity};
use lakegate_identity::{
    CertificateUsers, IdentityConfig, KerberosAcceptor, KerberosNames, OidcVerifier,
};

use crate::cli::{ClientAuth, IdentityArgs};

/// The environment variable MIT Kerberos reads the acceptor's keytab from.
const KEYTAB_VARIABLE: &str = "KRB5_KTNAME";

/// The sign-in methods `args` turn on, and the TLS settings with the client
/// CA added when certificates are asked for.
pub async fn sign_in_methods(
    args: &IdentityArgs,
    tls: Option<TlsIdentity>,
) -> Result<(SignInMethods, Option<TlsIdentity>), String> {
    let config = match &args.identity {
        Some(path) => IdentityConfig::from_file(path).map_err(|e| e.to_string())?,
        None => IdentityConfig::default(),
    };
    let mut methods = SignInMethods::default();
    if let Some(verifier) = OidcVerifier::new(&config.oidc).map_err(|e| e.to_string())? {
        verifier.prefetch_keys().await;
        methods.oidc = Some(Arc::new(verifier));
    }
    let tls = match (&args.tls_client_ca, tls) {
        (Some(ca), Some(tls)) => {
            methods.certificates = Some(CertificateUsers::new(config.certificate.user_field));
            Some(tls.with_client_ca(ca, args.tls_client_auth == ClientAuth::Optional)?)
        }
        (_, tls) => tls,
    };
    if let Some(principal) = &args.kerberos_principal {
        let realm = principal
            .rsplit_once('@')
            .map(|(_, realm)| realm)
            .ok_or_else(|| {
                format!("--kerberos-principal '{principal}' needs its realm: HTTP/host@REALM")
            })?;
        let names = KerberosNames::new(&config.kerberos, realm);
        let acceptor = KerberosAcceptor::new(principal, names).map_err(|e| e.to_string())?;
        methods.kerberos = Some(Arc::new(acceptor));
    }
    Ok((methods, tls))
}

/// Makes `--kerberos-keytab` the keytab MIT Kerberos reads. It reads it from
/// the environment only, and the environment may be changed safely only
/// before any thread starts; so when it does not name the keytab yet, the
/// process starts itself again, at once, with it set (same arguments, same
/// process id). Returns only when there is nothing to do, or with an error.
pub fn use_keytab(keytab: &Path) -> Result<(), String> {
    let absolute = std::fs::canonicalize(keytab)
        .map_err(|e| format!("--kerberos-keytab '{}': {e}", keytab.display()))?;
    let wanted = format!("FILE:{}", absolute.display());
    if std::env::var(KEYTAB_VARIABLE).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(());
    }
    let program =
        std::env::current_exe().map_err(|e| format!("cannot find the lakegate binary: {e}"))?;
    let error = std::os::unix::process::CommandExt::exec(
        std::process::Command::new(program)
            .args(std::env::args_os().skip(1))
            .env(KEYTAB_VARIABLE, &wanted),
    );
    Err(format!(
        "cannot restart with {KEYTAB_VARIABLE} set: {error}"
    ))
}
