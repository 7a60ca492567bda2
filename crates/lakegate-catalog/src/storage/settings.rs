//! A location's settings, typed per provider.
//!
//! A `[[storage]]` entry is written flat, as object_store's own option keys
//! are (which settings apply depends on the URL's scheme). It is read once,
//! here, into [`ProviderSettings`]: one type per provider, whose credentials,
//! encryption and addressing are enums, so that a combination the catalog
//! refuses (keys with `credentials = "profile"`, a KMS key without SSE-KMS,
//! a region on local files) cannot be represented, and each provider's store
//! builder matches exhaustively on what it was given. Secrets are never in
//! the catalog: a setting names the environment variable that holds one, read
//! when the store is built.

use std::collections::BTreeMap;
use std::time::Duration;

use object_store::{BackoffConfig, ClientOptions, RetryConfig};

use crate::files::StorageEntry;

/// A location's settings: the client's, shared by every provider, and the
/// provider's own.
pub(super) struct Settings {
    pub(super) client: ClientOptions,
    pub(super) retry: RetryConfig,
    pub(super) provider: ProviderSettings,
}

/// The settings of the provider a location's URL names.
pub(super) enum ProviderSettings {
    /// Local files: no settings.
    Local,
    /// S3 and S3-compatible servers.
    S3(S3Settings),
    /// Google Cloud Storage.
    Gcs(GcsSettings),
    /// Azure Blob Storage and ADLS Gen2.
    Azure(AzureSettings),
}

/// An S3 location's settings.
pub(super) struct S3Settings {
    pub(super) region: Option<String>,
    pub(super) endpoint: Option<String>,
    pub(super) addressing: Option<Addressing>,
    pub(super) allow_http: Option<bool>,
    pub(super) credentials: S3Credentials,
    pub(super) encryption: S3Encryption,
}

/// How an S3 location finds its credentials.
pub(super) enum S3Credentials {
    /// The standard chain: `AWS_*` variables, the shared files, container
    /// and instance credentials.
    Environment,
    /// A profile of the shared credentials file.
    Profile(String),
    /// Keys from the environment variables named.
    Variables {
        access_key_id_env: String,
        secret_access_key_env: String,
        session_token_env: Option<String>,
    },
    /// A role assumed with a web identity token.
    WebIdentity {
        role_arn: String,
        token_file: Option<String>,
        session_name: Option<String>,
        sts_endpoint: Option<String>,
    },
    /// Unsigned requests to public data.
    Anonymous,
}

/// Server-side encryption of what Lakegate writes to an S3 location.
pub(super) enum S3Encryption {
    /// The bucket's default.
    BucketDefault,
    /// SSE-S3 (`AES256`).
    SseS3,
    /// SSE-KMS, with a key (else the account's default) and S3 Bucket Keys
    /// on or off (else the bucket's setting).
    SseKms {
        key_id: Option<String>,
        bucket_key: Option<bool>,
    },
}

/// How S3 requests address the bucket.
pub(super) enum Addressing {
    /// `https://endpoint/bucket/key`
    Path,
    /// `https://bucket.endpoint/key`
    VirtualHosted,
}

/// A Google Cloud Storage location's settings.
pub(super) struct GcsSettings {
    pub(super) endpoint: Option<String>,
    pub(super) allow_http: Option<bool>,
    pub(super) service_account_path: Option<String>,
    pub(super) credentials: GcsCredentials,
}

/// How a Google Cloud Storage location finds its credentials.
pub(super) enum GcsCredentials {
    /// The standard chain (`GOOGLE_*` variables, application default).
    Environment,
    /// A service account JSON key in the environment variable named.
    Variables { service_account_key_env: String },
    /// Unsigned requests to public data.
    Anonymous,
}

/// An Azure location's settings.
pub(super) struct AzureSettings {
    pub(super) account: Option<String>,
    pub(super) endpoint: Option<String>,
    pub(super) allow_http: Option<bool>,
    pub(super) credentials: AzureCredentials,
}

/// How an Azure location finds its credentials.
pub(super) enum AzureCredentials {
    /// The standard chain (`AZURE_*` variables, managed identity).
    Environment,
    /// The account's access key in the environment variable named.
    AccessKey { access_key_env: String },
    /// A SAS token in the environment variable named.
    SasToken { sas_token_env: String },
    /// Unsigned requests to public data.
    Anonymous,
}

/// The settings that apply to each scheme (besides the common ones).
const S3_SETTINGS: &[&str] = &[
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
const GCS_SETTINGS: &[&str] = &["service_account_path", "service_account_key_env"];
const AZURE_SETTINGS: &[&str] = &["account", "access_key_env", "sas_token_env"];

impl Settings {
    /// Reads `entry`, a location of URL scheme `scheme`, checking that every
    /// setting written applies to it.
    pub(super) fn from_entry(entry: &StorageEntry, scheme: &str) -> Result<Self, String> {
        if let Some((key, instead)) = entry.inline_secrets().first() {
            return Err(format!(
                "'{key}' would put a secret in the catalog; name the environment variable \
                 holding it with '{instead}'"
            ));
        }
        let provider = match scheme {
            "file" => {
                refuse_all(entry, "local files")?;
                ProviderSettings::Local
            }
            "s3" | "s3a" => ProviderSettings::S3(S3Settings::from_entry(entry)?),
            "gs" => ProviderSettings::Gcs(GcsSettings::from_entry(entry)?),
            "az" | "azure" | "abfs" | "abfss" => {
                ProviderSettings::Azure(AzureSettings::from_entry(entry)?)
            }
            other => {
                return Err(format!(
                    "storage scheme '{other}' is not supported (supported: file, s3, gs, az, abfss)"
                ));
            }
        };
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
            client,
            retry,
            provider,
        })
    }
}

impl S3Settings {
    fn from_entry(e: &StorageEntry) -> Result<Self, String> {
        refuse_others(e, "S3 locations", S3_SETTINGS)?;
        let mode = credentials_mode(
            e,
            &[
                "environment",
                "profile",
                "variables",
                "web-identity",
                "anonymous",
            ],
        )?;
        only_with(
            mode,
            "variables",
            &[
                ("access_key_id_env", &e.access_key_id_env),
                ("secret_access_key_env", &e.secret_access_key_env),
                ("session_token_env", &e.session_token_env),
            ],
        )?;
        only_with(mode, "profile", &[("profile", &e.profile)])?;
        only_with(
            mode,
            "web-identity",
            &[
                ("role_arn", &e.role_arn),
                ("web_identity_token_file", &e.web_identity_token_file),
                ("role_session_name", &e.role_session_name),
                ("sts_endpoint", &e.sts_endpoint),
            ],
        )?;
        let credentials = match mode {
            "profile" => S3Credentials::Profile(required(mode, "profile", &e.profile)?),
            "variables" => S3Credentials::Variables {
                access_key_id_env: required(mode, "access_key_id_env", &e.access_key_id_env)?,
                secret_access_key_env: required(
                    mode,
                    "secret_access_key_env",
                    &e.secret_access_key_env,
                )?,
                session_token_env: e.session_token_env.clone(),
            },
            "web-identity" => S3Credentials::WebIdentity {
                role_arn: required(mode, "role_arn", &e.role_arn)?,
                token_file: e.web_identity_token_file.clone(),
                session_name: e.role_session_name.clone(),
                sts_endpoint: e.sts_endpoint.clone(),
            },
            "anonymous" => S3Credentials::Anonymous,
            _ => S3Credentials::Environment,
        };
        let kms_settings = e.kms_key_id.is_some() || e.bucket_key.is_some();
        let encryption = match e.encryption.as_deref() {
            None | Some("none") | Some("sse-s3") if kms_settings => {
                return Err("'kms_key_id' and 'bucket_key' need encryption = 'sse-kms'".into());
            }
            None | Some("none") => S3Encryption::BucketDefault,
            Some("sse-s3") => S3Encryption::SseS3,
            Some("sse-kms") => S3Encryption::SseKms {
                key_id: e.kms_key_id.clone(),
                bucket_key: e.bucket_key,
            },
            Some(other) => {
                return Err(format!(
                    "encryption '{other}' is not one of 'none', 'sse-s3', 'sse-kms'"
                ));
            }
        };
        let addressing = match e.addressing.as_deref() {
            None => None,
            Some("path") => Some(Addressing::Path),
            Some("virtual-hosted") => Some(Addressing::VirtualHosted),
            Some(other) => {
                return Err(format!(
                    "addressing '{other}' is not 'path' or 'virtual-hosted'"
                ));
            }
        };
        Ok(Self {
            region: e.region.clone(),
            endpoint: e.endpoint.clone(),
            addressing,
            allow_http: e.allow_http,
            credentials,
            encryption,
        })
    }
}

impl GcsSettings {
    fn from_entry(e: &StorageEntry) -> Result<Self, String> {
        refuse_others(e, "Google Cloud Storage locations", GCS_SETTINGS)?;
        let mode = credentials_mode(e, &["environment", "variables", "anonymous"])?;
        only_with(
            mode,
            "variables",
            &[("service_account_key_env", &e.service_account_key_env)],
        )?;
        let credentials = match mode {
            "variables" => GcsCredentials::Variables {
                service_account_key_env: required(
                    mode,
                    "service_account_key_env",
                    &e.service_account_key_env,
                )?,
            },
            "anonymous" => GcsCredentials::Anonymous,
            _ => GcsCredentials::Environment,
        };
        Ok(Self {
            endpoint: e.endpoint.clone(),
            allow_http: e.allow_http,
            service_account_path: e.service_account_path.clone(),
            credentials,
        })
    }
}

impl AzureSettings {
    fn from_entry(e: &StorageEntry) -> Result<Self, String> {
        refuse_others(e, "Azure locations", AZURE_SETTINGS)?;
        let mode = credentials_mode(e, &["environment", "variables", "anonymous"])?;
        only_with(
            mode,
            "variables",
            &[
                ("access_key_env", &e.access_key_env),
                ("sas_token_env", &e.sas_token_env),
            ],
        )?;
        let credentials = match (mode, &e.access_key_env, &e.sas_token_env) {
            ("variables", Some(name), None) => AzureCredentials::AccessKey {
                access_key_env: name.clone(),
            },
            ("variables", None, Some(name)) => AzureCredentials::SasToken {
                sas_token_env: name.clone(),
            },
            ("variables", ..) => {
                return Err("credentials 'variables' needs exactly one of \
                            'access_key_env' and 'sas_token_env'"
                    .into());
            }
            ("anonymous", ..) => AzureCredentials::Anonymous,
            _ => AzureCredentials::Environment,
        };
        Ok(Self {
            account: e.account.clone(),
            endpoint: e.endpoint.clone(),
            allow_http: e.allow_http,
            credentials,
        })
    }
}

/// The settings written in `e`, by name.
fn written(e: &StorageEntry) -> BTreeMap<&'static str, bool> {
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
fn refuse_all(e: &StorageEntry, what: &str) -> Result<(), String> {
    match written(e).into_iter().find(|(_, set)| *set) {
        Some((key, _)) => Err(format!("setting '{key}' does not apply to {what}")),
        None => Ok(()),
    }
}

/// Refuses the scheme-specific settings of other schemes.
fn refuse_others(e: &StorageEntry, what: &str, own: &[&str]) -> Result<(), String> {
    let written = written(e);
    let foreign = S3_SETTINGS
        .iter()
        .chain(GCS_SETTINGS)
        .chain(AZURE_SETTINGS)
        .filter(|key| !own.contains(key));
    match foreign.into_iter().find(|key| written[*key]) {
        Some(key) => Err(format!("setting '{key}' does not apply to {what}")),
        None => Ok(()),
    }
}

/// The credentials mode written (default `environment`), one of `modes`.
fn credentials_mode(e: &StorageEntry, modes: &[&'static str]) -> Result<&'static str, String> {
    let mode = e.credentials.as_deref().unwrap_or("environment");
    modes.iter().copied().find(|m| *m == mode).ok_or_else(|| {
        let modes: Vec<String> = modes.iter().map(|m| format!("'{m}'")).collect();
        format!("credentials '{mode}' is not one of: {}", modes.join(", "))
    })
}

/// Refuses the settings of credentials mode `needed` under another mode.
fn only_with(mode: &str, needed: &str, settings: &[(&str, &Option<String>)]) -> Result<(), String> {
    match settings.iter().find(|(_, value)| value.is_some()) {
        Some((key, _)) if mode != needed => Err(format!(
            "setting '{key}' needs credentials = '{needed}' (not '{mode}')"
        )),
        _ => Ok(()),
    }
}

/// The value of setting `key`, which credentials mode `mode` needs.
fn required(mode: &str, key: &str, value: &Option<String>) -> Result<String, String> {
    value
        .clone()
        .ok_or_else(|| format!("credentials '{mode}' needs '{key}'"))
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
