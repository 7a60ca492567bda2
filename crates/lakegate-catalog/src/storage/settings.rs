//! A location's settings, checked: which apply to which scheme, which
//! credentials mode they select, and secrets read from the variables the
//! entry names (never from the catalog itself).

use std::collections::BTreeMap;
use std::time::Duration;

use object_store::{BackoffConfig, ClientOptions, RetryConfig};

use crate::files::StorageEntry;

/// A location's settings, checked: durations parsed, secrets read from the
/// variables the entry names.
pub(super) struct Settings<'a> {
    pub(super) entry: &'a StorageEntry,
    pub(super) client: ClientOptions,
    pub(super) retry: RetryConfig,
}

/// The settings that apply to each scheme (besides the common ones).
pub(super) const S3_SETTINGS: &[&str] = &[
    "region",
    "profile",
    "addressing",
    "access_key_id_env",
    "secret_access_key_env",
    "session_token_env",
    "role_arn",
    "web_identity_token_file",
    "role_session_name",
    "sts_endpoint",
    "encryption",
    "kms_key_id",
    "bucket_key",
];
pub(super) const GCS_SETTINGS: &[&str] = &["service_account_path", "service_account_key_env"];
pub(super) const AZURE_SETTINGS: &[&str] = &["account", "access_key_env", "sas_token_env"];

impl<'a> Settings<'a> {
    pub(super) fn from_entry(entry: &'a StorageEntry) -> Result<Self, String> {
        if let Some((key, instead)) = entry.inline_secrets().first() {
            return Err(format!(
                "'{key}' would put a secret in the catalog; name the environment variable \
                 holding it with '{instead}'"
            ));
        }
        let duration = |key: &str, value: &Option<String>, default: Duration| match value {
            None => Ok(default),
            Some(text) => humantime::parse_duration(text)
                .map_err(|e| format!("{key} '{text}': {e} (write it like '5s' or '250ms')")),
        };
        let client = ClientOptions::new()
            .with_connect_timeout(duration(
                "connect_timeout",
                &entry.connect_timeout,
                defaults::CONNECT_TIMEOUT,
            )?)
            .with_timeout(duration(
                "request_timeout",
                &entry.request_timeout,
                defaults::REQUEST_TIMEOUT,
            )?)
            .with_allow_http(entry.allow_http.unwrap_or(false));
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: duration(
                    "initial_backoff",
                    &entry.initial_backoff,
                    defaults::INITIAL_BACKOFF,
                )?,
                max_backoff: duration("max_backoff", &entry.max_backoff, defaults::MAX_BACKOFF)?,
                base: 2.0,
            },
            max_retries: entry.max_retries.unwrap_or(defaults::MAX_RETRIES),
            retry_timeout: duration(
                "retry_timeout",
                &entry.retry_timeout,
                defaults::RETRY_TIMEOUT,
            )?,
        };
        Ok(Self {
            entry,
            client,
            retry,
        })
    }

    /// The settings written in the entry, by name.
    pub(super) fn written(&self) -> BTreeMap<&'static str, bool> {
        let e = self.entry;
        BTreeMap::from([
            ("region", e.region.is_some()),
            ("endpoint", e.endpoint.is_some()),
            ("addressing", e.addressing.is_some()),
            ("allow_http", e.allow_http.is_some()),
            ("credentials", e.credentials.is_some()),
            ("profile", e.profile.is_some()),
            ("access_key_id_env", e.access_key_id_env.is_some()),
            ("secret_access_key_env", e.secret_access_key_env.is_some()),
            ("session_token_env", e.session_token_env.is_some()),
            ("role_arn", e.role_arn.is_some()),
            (
                "web_identity_token_file",
                e.web_identity_token_file.is_some(),
            ),
            ("role_session_name", e.role_session_name.is_some()),
            ("sts_endpoint", e.sts_endpoint.is_some()),
            ("service_account_path", e.service_account_path.is_some()),
            (
                "service_account_key_env",
                e.service_account_key_env.is_some(),
            ),
            ("account", e.account.is_some()),
            ("access_key_env", e.access_key_env.is_some()),
            ("sas_token_env", e.sas_token_env.is_some()),
            ("encryption", e.encryption.is_some()),
            ("kms_key_id", e.kms_key_id.is_some()),
            ("bucket_key", e.bucket_key.is_some()),
            ("connect_timeout", e.connect_timeout.is_some()),
            ("request_timeout", e.request_timeout.is_some()),
            ("max_retries", e.max_retries.is_some()),
            ("retry_timeout", e.retry_timeout.is_some()),
            ("initial_backoff", e.initial_backoff.is_some()),
            ("max_backoff", e.max_backoff.is_some()),
        ])
    }

    /// Refuses every setting: `what` takes none.
    pub(super) fn refuse_all(&self, what: &str) -> Result<(), String> {
        match self.written().into_iter().find(|(_, set)| *set) {
            Some((key, _)) => Err(format!("setting '{key}' does not apply to {what}")),
            None => Ok(()),
        }
    }

    /// Refuses the scheme-specific settings of other schemes.
    pub(super) fn refuse_others(&self, what: &str, own: &[&str]) -> Result<(), String> {
        let foreign = S3_SETTINGS
            .iter()
            .chain(GCS_SETTINGS)
            .chain(AZURE_SETTINGS)
            .filter(|key| !own.contains(key));
        let written = self.written();
        for key in foreign {
            if written[key] {
                return Err(format!("setting '{key}' does not apply to {what}"));
            }
        }
        Ok(())
    }

    /// The credentials mode, checked against the settings it needs.
    pub(super) fn credentials_mode(&self, modes: &[&'static str]) -> Result<&'static str, String> {
        let mode = self.entry.credentials.as_deref().unwrap_or("environment");
        modes.iter().copied().find(|m| *m == mode).ok_or_else(|| {
            format!(
                "credentials '{mode}' is not one of: {}",
                modes
                    .iter()
                    .map(|m| format!("'{m}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }
}

/// Refuses the settings of credentials mode `needed` under another mode.
pub(super) fn only_with(
    mode: &str,
    needed: &str,
    settings: &[(&str, &Option<String>)],
) -> Result<(), String> {
    match settings.iter().find(|(_, value)| value.is_some()) {
        Some((key, _)) if mode != needed => Err(format!(
            "setting '{key}' needs credentials = '{needed}' (not '{mode}')"
        )),
        _ => Ok(()),
    }
}

/// The value of the variable a required `*_env` setting names.
pub(super) fn required_variable(key: &str, name: &Option<String>) -> Result<String, String> {
    match name {
        Some(name) => read_variable(key, name),
        None => Err(format!("credentials 'variables' needs '{key}'")),
    }
}

/// The value of environment variable `name` (named by setting `key`); the
/// error names the variable, never a value.
pub(super) fn read_variable(key: &str, name: &str) -> Result<String, String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ => Err(format!(
            "environment variable '{name}' (named by '{key}') is not set"
        )),
    }
}

/// Defaults of a remote location's client: short enough that a dead or
/// misconfigured location fails a query in well under a minute, long enough
/// to ride out throttling.
pub mod defaults {
    use std::time::Duration;

    /// Time to establish a connection.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Time one request may take, body included.
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
    /// Retries of a failed request.
    pub const MAX_RETRIES: usize = 5;
    /// Time after which a request is no longer retried.
    pub const RETRY_TIMEOUT: Duration = Duration::from_secs(30);
    /// First retry delay (doubled at each retry).
    pub const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
    /// Longest retry delay.
    pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
}
