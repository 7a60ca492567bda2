//! Storage locations: where a table's Parquet files live, the object_store
//! store that reaches them with the location's own settings (region,
//! endpoint, credentials, encryption, timeouts and retries), and reading a
//! table's schema from its files.
//!
//! Every location gets its own store, even when two locations share a bucket:
//! DataFusion finds a table's store by the scheme and authority of the table's
//! URL, so each location is registered under its own URL,
//! `lakegate://<location>/`, and its tables' URLs live under it. The object
//! paths stay the full keys (`prefix/table/part-0.parquet`), so DataFusion's
//! file metadata cache, keyed by path, never confuses two locations' files.
//!
//! The store is wrapped in a [`LocationStore`], which counts requests (the
//! S3 benchmark reports them) and rewrites store errors so that they name the
//! location and never carry the store's response body (which can echo an
//! access key id).

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::Path as FsPath;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload,
    PutResult, RetryConfig,
};
use parquet::arrow::parquet_to_arrow_schema;
use parquet::file::metadata::{FooterTail, ParquetMetaDataReader};
use url::Url;

use crate::files::StorageEntry;

/// The URL scheme under which each location's store is registered.
pub const LOCATION_SCHEME: &str = "lakegate";

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

/// A named place holding table files, with the store that reads it.
#[derive(Debug, Clone)]
pub struct StorageLocation {
    /// The location's catalog name.
    pub name: String,
    /// The root URL as written, always ending in `/` (`s3://bucket/lake/`).
    pub url: Url,
    /// The store serving the location, wrapped in a [`LocationStore`].
    pub store: Arc<dyn ObjectStore>,
    /// Requests made through `store`.
    pub requests: Arc<RequestCounts>,
}

impl StorageLocation {
    /// Opens the location `entry` describes; its URL is `url` (after
    /// `${data_dir}` expansion). Relative paths are resolved against
    /// `base_dir`.
    pub fn open(entry: &StorageEntry, url: &str, base_dir: &FsPath) -> Result<Self, String> {
        let name = &entry.name;
        let registry = Url::parse(&format!("{LOCATION_SCHEME}://{name}/")).ok();
        if registry.as_ref().and_then(|u| u.host_str()) != Some(name.as_str()) {
            return Err("a storage name may hold only letters, digits, '_' and '-'".into());
        }
        let mut url = if url.contains("://") {
            Url::parse(url).map_err(|e| format!("invalid URL '{url}': {e}"))?
        } else {
            let path = base_dir.join(url);
            let path = std::path::absolute(&path)
                .map_err(|e| format!("invalid path '{}': {e}", path.display()))?;
            Url::from_directory_path(&path)
                .map_err(|()| format!("invalid path '{}'", path.display()))?
        };
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        let settings = Settings::from_entry(entry)?;
        let inner: Arc<dyn ObjectStore> = match url.scheme() {
            "file" => {
                settings.refuse_all("local files")?;
                Arc::new(LocalFileSystem::new())
            }
            "s3" | "s3a" => settings.s3(&url)?,
            "gs" => settings.gcs(&url)?,
            "az" | "azure" | "abfs" | "abfss" => settings.azure(&url)?,
            other => {
                return Err(format!(
                    "storage scheme '{other}' is not supported (supported: file, s3, gs, az, abfss)"
                ));
            }
        };
        let requests = Arc::new(RequestCounts::default());
        let store = Arc::new(LocationStore {
            location: name.clone(),
            inner,
            requests: Arc::clone(&requests),
            remote: url.scheme() != "file",
        });
        Ok(Self {
            name: name.clone(),
            url,
            store,
            requests,
        })
    }

    /// The URL DataFusion finds this location's store by
    /// (`lakegate://<name>/`).
    pub fn registry_url(&self) -> Url {
        Url::parse(&format!("{LOCATION_SCHEME}://{}/", self.name))
            .expect("a checked location name makes a valid URL")
    }

    /// The object path of `relative` under this location.
    pub fn object_path(&self, relative: &str) -> Result<ObjectPath, String> {
        let joined = self
            .url
            .join(relative.trim_start_matches('/'))
            .map_err(|e| format!("invalid path '{relative}': {e}"))?;
        if !joined.as_str().starts_with(self.url.as_str()) {
            return Err(format!("path '{relative}' leaves its storage location"));
        }
        ObjectPath::from_url_path(joined.path())
            .map_err(|e| format!("invalid path '{relative}': {e}"))
    }

    /// The URL of `relative` under this location, as written by users
    /// (`s3://bucket/lake/orders/`).
    pub fn url_of(&self, relative: &str) -> Result<Url, String> {
        self.url
            .join(relative.trim_start_matches('/'))
            .map_err(|e| format!("invalid path '{relative}': {e}"))
    }

    /// The URL DataFusion reads `relative` by: the registry URL followed by
    /// the object path (`lakegate://lake/lake/orders/`).
    pub fn listing_url(&self, relative: &str) -> Result<Url, String> {
        let path = self.object_path(relative)?;
        let mut url = self.registry_url();
        url.set_path(&format!("/{}", path.as_ref()));
        if relative.ends_with('/') && !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        Ok(url)
    }
}

/// A location's settings, checked: durations parsed, secrets read from the
/// variables the entry names.
struct Settings<'a> {
    entry: &'a StorageEntry,
    client: ClientOptions,
    retry: RetryConfig,
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

impl<'a> Settings<'a> {
    fn from_entry(entry: &'a StorageEntry) -> Result<Self, String> {
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
    fn written(&self) -> BTreeMap<&'static str, bool> {
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
    fn refuse_all(&self, what: &str) -> Result<(), String> {
        match self.written().into_iter().find(|(_, set)| *set) {
            Some((key, _)) => Err(format!("setting '{key}' does not apply to {what}")),
            None => Ok(()),
        }
    }

    /// Refuses the scheme-specific settings of other schemes.
    fn refuse_others(&self, what: &str, own: &[&str]) -> Result<(), String> {
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
    fn credentials_mode(&self, modes: &[&'static str]) -> Result<&'static str, String> {
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

    fn s3(&self, url: &Url) -> Result<Arc<dyn ObjectStore>, String> {
        self.refuse_others("S3 locations", S3_SETTINGS)?;
        let e = self.entry;
        let mode = self.credentials_mode(&[
            "environment",
            "profile",
            "variables",
            "web-identity",
            "anonymous",
        ])?;
        let variables = [
            ("access_key_id_env", &e.access_key_id_env),
            ("secret_access_key_env", &e.secret_access_key_env),
            ("session_token_env", &e.session_token_env),
        ];
        let web_identity = [
            ("role_arn", &e.role_arn),
            ("web_identity_token_file", &e.web_identity_token_file),
            ("role_session_name", &e.role_session_name),
            ("sts_endpoint", &e.sts_endpoint),
        ];
        only_with(mode, "variables", &variables)?;
        only_with(mode, "profile", &[("profile", &e.profile)])?;
        only_with(mode, "web-identity", &web_identity)?;
        let mut builder = match mode {
            // The standard chain: AWS_* variables (keys, region, endpoint,
            // web identity), then container and instance credentials.
            "environment" => AmazonS3Builder::from_env(),
            _ => AmazonS3Builder::new(),
        };
        builder = builder
            .with_url(url.as_str())
            .with_client_options(self.client.clone())
            .with_retry(self.retry.clone());
        // The client options above replaced the environment's: keep its
        // explicit AWS_ALLOW_HTTP (a local S3-compatible server).
        if mode == "environment"
            && e.allow_http.is_none()
            && let Ok(allow) = std::env::var("AWS_ALLOW_HTTP")
        {
            builder = builder.with_config(
                AmazonS3ConfigKey::Client(object_store::ClientConfigKey::AllowHttp),
                allow,
            );
        }
        // The standard chain's second link, which object_store lacks: the
        // shared credentials file, when the environment holds no keys.
        let ambient_profile = mode == "environment"
            && std::env::var_os("AWS_ACCESS_KEY_ID").is_none()
            && std::env::var_os("AWS_WEB_IDENTITY_TOKEN_FILE").is_none();
        let profile = match mode {
            "profile" => {
                let name = e
                    .profile
                    .as_deref()
                    .ok_or("credentials 'profile' needs 'profile'")?;
                Some(SharedProfile::read(name)?.ok_or_else(|| {
                    format!(
                        "profile '{name}' is not in {}",
                        shared_file("AWS_SHARED_CREDENTIALS_FILE", "credentials").display()
                    )
                })?)
            }
            _ if ambient_profile => {
                let name = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
                SharedProfile::read(&name)?
            }
            _ => None,
        };
        if let Some(profile) = profile {
            builder = builder
                .with_access_key_id(profile.access_key_id)
                .with_secret_access_key(profile.secret_access_key);
            if let Some(token) = profile.session_token {
                builder = builder.with_token(token);
            }
            if let Some(region) = profile.region
                && e.region.is_none()
                && (mode == "profile" || std::env::var_os("AWS_REGION").is_none())
            {
                builder = builder.with_region(region);
            }
        }
        match mode {
            "variables" => {
                let key_id = required_variable("access_key_id_env", &e.access_key_id_env)?;
                let secret = required_variable("secret_access_key_env", &e.secret_access_key_env)?;
                builder = builder
                    .with_access_key_id(key_id)
                    .with_secret_access_key(secret);
                if let Some(name) = &e.session_token_env {
                    builder = builder.with_token(read_variable("session_token_env", name)?);
                }
            }
            "web-identity" => {
                let role = e
                    .role_arn
                    .as_ref()
                    .ok_or("credentials 'web-identity' needs 'role_arn'")?;
                let token_file = match &e.web_identity_token_file {
                    Some(file) => file.clone(),
                    None => std::env::var("AWS_WEB_IDENTITY_TOKEN_FILE").map_err(|_| {
                        "credentials 'web-identity' needs 'web_identity_token_file' \
                         (or AWS_WEB_IDENTITY_TOKEN_FILE)"
                            .to_string()
                    })?,
                };
                builder = builder
                    .with_config(AmazonS3ConfigKey::RoleArn, role)
                    .with_config(AmazonS3ConfigKey::WebIdentityTokenFile, token_file);
                if let Some(name) = &e.role_session_name {
                    builder = builder.with_config(AmazonS3ConfigKey::RoleSessionName, name);
                }
                if let Some(endpoint) = &e.sts_endpoint {
                    builder = builder.with_config(AmazonS3ConfigKey::StsEndpoint, endpoint);
                }
            }
            "anonymous" => builder = builder.with_skip_signature(true),
            _ => {}
        }
        if let Some(region) = &e.region {
            builder = builder.with_region(region);
        }
        if let Some(endpoint) = &e.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(allow) = e.allow_http {
            builder = builder.with_allow_http(allow);
        }
        match e.addressing.as_deref() {
            None => {}
            Some("path") => builder = builder.with_virtual_hosted_style_request(false),
            Some("virtual-hosted") => builder = builder.with_virtual_hosted_style_request(true),
            Some(other) => {
                return Err(format!(
                    "addressing '{other}' is not 'path' or 'virtual-hosted'"
                ));
            }
        }
        match e.encryption.as_deref() {
            None | Some("none") => {
                if e.kms_key_id.is_some() || e.bucket_key.is_some() {
                    return Err("'kms_key_id' and 'bucket_key' need encryption = 'sse-kms'".into());
                }
            }
            Some("sse-s3") => {
                if e.kms_key_id.is_some() || e.bucket_key.is_some() {
                    return Err("'kms_key_id' and 'bucket_key' need encryption = 'sse-kms'".into());
                }
                builder = builder.with_config(s3_key("aws_server_side_encryption"), "AES256");
            }
            Some("sse-kms") => {
                builder = builder.with_config(s3_key("aws_server_side_encryption"), "aws:kms");
                if let Some(key) = &e.kms_key_id {
                    builder = builder.with_config(s3_key("aws_sse_kms_key_id"), key);
                }
                if let Some(enabled) = e.bucket_key {
                    builder = builder.with_bucket_key(enabled);
                }
            }
            Some(other) => {
                return Err(format!(
                    "encryption '{other}' is not one of 'none', 'sse-s3', 'sse-kms'"
                ));
            }
        }
        let store = builder
            .build()
            .map_err(|e| format!("cannot set up the S3 store: {e}"))?;
        Ok(Arc::new(store))
    }

    fn gcs(&self, url: &Url) -> Result<Arc<dyn ObjectStore>, String> {
        self.refuse_others("Google Cloud Storage locations", GCS_SETTINGS)?;
        let e = self.entry;
        let mode = self.credentials_mode(&["environment", "variables", "anonymous"])?;
        only_with(
            mode,
            "variables",
            &[("service_account_key_env", &e.service_account_key_env)],
        )?;
        let mut builder = match mode {
            "environment" => GoogleCloudStorageBuilder::from_env(),
            _ => GoogleCloudStorageBuilder::new(),
        }
        .with_url(url.as_str())
        .with_client_options(self.client.clone())
        .with_retry(self.retry.clone());
        match mode {
            "variables" => {
                let key = required_variable("service_account_key_env", &e.service_account_key_env)?;
                builder = builder.with_service_account_key(key);
            }
            "anonymous" => builder = builder.with_skip_signature(true),
            _ => {}
        }
        if let Some(path) = &e.service_account_path {
            builder = builder.with_service_account_path(path);
        }
        if let Some(endpoint) = &e.endpoint {
            builder = builder.with_base_url(endpoint);
        }
        if e.allow_http == Some(true) {
            builder = builder.with_client_options(self.client.clone().with_allow_http(true));
        }
        let store = builder
            .build()
            .map_err(|e| format!("cannot set up the Google Cloud Storage store: {e}"))?;
        Ok(Arc::new(store))
    }

    fn azure(&self, url: &Url) -> Result<Arc<dyn ObjectStore>, String> {
        self.refuse_others("Azure locations", AZURE_SETTINGS)?;
        let e = self.entry;
        let mode = self.credentials_mode(&["environment", "variables", "anonymous"])?;
        only_with(
            mode,
            "variables",
            &[
                ("access_key_env", &e.access_key_env),
                ("sas_token_env", &e.sas_token_env),
            ],
        )?;
        let mut builder = match mode {
            "environment" => MicrosoftAzureBuilder::from_env(),
            _ => MicrosoftAzureBuilder::new(),
        }
        .with_url(url.as_str())
        .with_client_options(self.client.clone())
        .with_retry(self.retry.clone());
        if let Some(account) = &e.account {
            builder = builder.with_account(account);
        }
        match mode {
            "variables" => match (&e.access_key_env, &e.sas_token_env) {
                (Some(name), None) => {
                    builder = builder.with_access_key(read_variable("access_key_env", name)?);
                }
                (None, Some(name)) => {
                    builder = builder.with_config(
                        AzureConfigKey::SasKey,
                        read_variable("sas_token_env", name)?,
                    );
                }
                _ => {
                    return Err("credentials 'variables' needs exactly one of \
                                'access_key_env' and 'sas_token_env'"
                        .into());
                }
            },
            "anonymous" => builder = builder.with_skip_signature(true),
            _ => {}
        }
        if let Some(endpoint) = &e.endpoint {
            builder = builder.with_endpoint(endpoint.clone());
        }
        if let Some(allow) = e.allow_http {
            builder = builder.with_allow_http(allow);
        }
        let store = builder
            .build()
            .map_err(|e| format!("cannot set up the Azure store: {e}"))?;
        Ok(Arc::new(store))
    }
}

/// The S3 setting object_store parses from `name` (the encryption keys'
/// enum is not exported).
fn s3_key(name: &str) -> AmazonS3ConfigKey {
    name.parse()
        .unwrap_or_else(|_| panic!("object_store knows the S3 setting '{name}'"))
}

/// A profile's keys from the AWS shared credentials file (and its region
/// from the shared config file), as the AWS SDKs read them.
struct SharedProfile {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    region: Option<String>,
}

impl SharedProfile {
    /// The profile `name`, or `None` when the credentials file or the
    /// profile is missing. Errors name the file, never a value.
    fn read(name: &str) -> Result<Option<Self>, String> {
        let credentials_file = shared_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
        let Ok(text) = std::fs::read_to_string(&credentials_file) else {
            return Ok(None);
        };
        let Some(keys) = ini_section(&text, name) else {
            return Ok(None);
        };
        let file = credentials_file.display();
        let key = |k: &str| keys.get(k).cloned();
        let access_key_id = key("aws_access_key_id")
            .ok_or_else(|| format!("profile '{name}' in {file} has no aws_access_key_id"))?;
        let secret_access_key = key("aws_secret_access_key")
            .ok_or_else(|| format!("profile '{name}' in {file} has no aws_secret_access_key"))?;
        // The config file names profiles `[profile x]`, except `[default]`.
        let config_section = if name == "default" {
            name.to_string()
        } else {
            format!("profile {name}")
        };
        let region = std::fs::read_to_string(shared_file("AWS_CONFIG_FILE", "config"))
            .ok()
            .and_then(|text| ini_section(&text, &config_section))
            .and_then(|config| config.get("region").cloned());
        Ok(Some(Self {
            access_key_id,
            secret_access_key,
            session_token: key("aws_session_token"),
            region,
        }))
    }
}

/// The shared AWS file named by `variable`, or `~/.aws/<default>`.
fn shared_file(variable: &str, default: &str) -> std::path::PathBuf {
    match std::env::var_os(variable) {
        Some(path) => path.into(),
        None => std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".aws")
            .join(default),
    }
}

/// The `key = value` pairs of INI section `[name]`.
fn ini_section(text: &str, name: &str) -> Option<BTreeMap<String, String>> {
    let mut current: Option<&str> = None;
    let mut found = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(section.trim());
            if current == Some(name) {
                found.get_or_insert_with(BTreeMap::new);
            }
            continue;
        }
        if current == Some(name)
            && let Some((key, value)) = line.split_once('=')
        {
            found
                .get_or_insert_with(BTreeMap::new)
                .insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    found
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

/// The value of the variable a required `*_env` setting names.
fn required_variable(key: &str, name: &Option<String>) -> Result<String, String> {
    match name {
        Some(name) => read_variable(key, name),
        None => Err(format!("credentials 'variables' needs '{key}'")),
    }
}

/// The value of environment variable `name` (named by setting `key`); the
/// error names the variable, never a value.
fn read_variable(key: &str, name: &str) -> Result<String, String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ => Err(format!(
            "environment variable '{name}' (named by '{key}') is not set"
        )),
    }
}

/// Requests made through a location's store, by kind.
#[derive(Debug, Default)]
pub struct RequestCounts {
    gets: AtomicU64,
    heads: AtomicU64,
    lists: AtomicU64,
    puts: AtomicU64,
    others: AtomicU64,
}

/// A snapshot of [`RequestCounts`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RequestTotals {
    /// GETs, ranged or whole (one per HTTP request on remote stores).
    pub gets: u64,
    /// HEADs.
    pub heads: u64,
    /// Listings (one per page).
    pub lists: u64,
    /// PUTs and multipart uploads.
    pub puts: u64,
    /// Deletes and copies.
    pub others: u64,
}

impl RequestTotals {
    /// Every request.
    pub fn total(&self) -> u64 {
        self.gets + self.heads + self.lists + self.puts + self.others
    }
}

impl std::ops::Sub for RequestTotals {
    type Output = RequestTotals;
    fn sub(self, earlier: Self) -> Self {
        RequestTotals {
            gets: self.gets - earlier.gets,
            heads: self.heads - earlier.heads,
            lists: self.lists - earlier.lists,
            puts: self.puts - earlier.puts,
            others: self.others - earlier.others,
        }
    }
}

impl RequestCounts {
    /// The counts so far.
    pub fn totals(&self) -> RequestTotals {
        RequestTotals {
            gets: self.gets.load(Ordering::Relaxed),
            heads: self.heads.load(Ordering::Relaxed),
            lists: self.lists.load(Ordering::Relaxed),
            puts: self.puts.load(Ordering::Relaxed),
            others: self.others.load(Ordering::Relaxed),
        }
    }

    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A location's store: forwards to the real one, counting requests and
/// rewriting errors to name the location.
#[derive(Debug)]
pub struct LocationStore {
    location: String,
    inner: Arc<dyn ObjectStore>,
    requests: Arc<RequestCounts>,
    /// Remote stores split ranged reads into one request per coalesced range
    /// here, so that each is counted; local files read them directly.
    remote: bool,
}

impl fmt::Display for LocationStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storage location '{}' ({})", self.location, self.inner)
    }
}

/// Why a location's request failed, naming the location: the source of
/// every error a [`LocationStore`] returns, so that the engine can find it in
/// any error chain (and tell storage failures from query failures). The
/// store's own message is kept except for authorization failures, whose
/// response bodies can echo credentials' identifiers.
#[derive(Debug)]
pub struct StorageError {
    /// The location's catalog name.
    pub location: String,
    /// What failed.
    pub message: String,
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storage location '{}': {}", self.location, self.message)
    }
}

impl std::error::Error for StorageError {}

impl LocationStore {
    fn error(&self, error: object_store::Error) -> object_store::Error {
        let wrap = |message: String| -> Box<dyn std::error::Error + Send + Sync> {
            Box::new(StorageError {
                location: self.location.clone(),
                message,
            })
        };
        match error {
            object_store::Error::PermissionDenied { path, .. } => {
                object_store::Error::PermissionDenied {
                    path,
                    source: wrap(
                        "access denied by the store (the location's credentials lack permission)"
                            .into(),
                    ),
                }
            }
            object_store::Error::Unauthenticated { path, .. } => {
                object_store::Error::Unauthenticated {
                    path,
                    source: wrap(
                        "the store rejected the location's credentials (missing, wrong or expired)"
                            .into(),
                    ),
                }
            }
            object_store::Error::Generic { store, source } => object_store::Error::Generic {
                store,
                source: wrap(source.to_string()),
            },
            object_store::Error::NotFound { path, .. } => object_store::Error::NotFound {
                source: wrap(format!("'{path}' not found")),
                path,
            },
            other => other,
        }
    }
}

#[async_trait]
impl ObjectStore for LocationStore {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        RequestCounts::add(&self.requests.puts);
        self.inner
            .put_opts(location, payload, opts)
            .await
            .map_err(|e| self.error(e))
    }

    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        RequestCounts::add(&self.requests.puts);
        self.inner
            .put_multipart_opts(location, opts)
            .await
            .map_err(|e| self.error(e))
    }

    async fn get_opts(
        &self,
        location: &ObjectPath,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        if options.head {
            RequestCounts::add(&self.requests.heads);
        } else {
            RequestCounts::add(&self.requests.gets);
        }
        self.inner
            .get_opts(location, options)
            .await
            .map_err(|e| self.error(e))
    }

    async fn get_ranges(
        &self,
        location: &ObjectPath,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        if self.remote {
            // What the remote stores do themselves, through `get_range` here
            // so that each request is counted.
            object_store::coalesce_ranges(
                ranges,
                |range| self.get_range(location, range),
                object_store::OBJECT_STORE_COALESCE_DEFAULT,
            )
            .await
        } else {
            RequestCounts::add(&self.requests.gets);
            self.inner
                .get_ranges(location, ranges)
                .await
                .map_err(|e| self.error(e))
        }
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<ObjectPath>>,
    ) -> BoxStream<'static, object_store::Result<ObjectPath>> {
        RequestCounts::add(&self.requests.others);
        let this = self.clone_handle();
        self.inner
            .delete_stream(locations)
            .map_err(move |e| this.error(e))
            .boxed()
    }

    fn list(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        RequestCounts::add(&self.requests.lists);
        let this = self.clone_handle();
        self.inner
            .list(prefix)
            .map_err(move |e| this.error(e))
            .boxed()
    }

    fn list_with_offset(
        &self,
        prefix: Option<&ObjectPath>,
        offset: &ObjectPath,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        RequestCounts::add(&self.requests.lists);
        let this = self.clone_handle();
        self.inner
            .list_with_offset(prefix, offset)
            .map_err(move |e| this.error(e))
            .boxed()
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> object_store::Result<ListResult> {
        RequestCounts::add(&self.requests.lists);
        self.inner
            .list_with_delimiter(prefix)
            .await
            .map_err(|e| self.error(e))
    }

    async fn copy_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        RequestCounts::add(&self.requests.others);
        self.inner
            .copy_opts(from, to, options)
            .await
            .map_err(|e| self.error(e))
    }
}

impl LocationStore {
    /// A handle for error mapping inside `'static` streams.
    fn clone_handle(&self) -> Arc<LocationStore> {
        Arc::new(LocationStore {
            location: self.location.clone(),
            inner: Arc::clone(&self.inner),
            requests: Arc::clone(&self.requests),
            remote: self.remote,
        })
    }
}

/// The Parquet files of a table at `path` (one file, or every `.parquet` file
/// under a prefix), sorted by path. Errors name the location by its URL,
/// `shown`.
pub async fn list_parquet_files(
    store: &dyn ObjectStore,
    path: &ObjectPath,
    shown: &Url,
) -> Result<Vec<ObjectPath>, String> {
    if path.as_ref().ends_with(".parquet") {
        store
            .head(path)
            .await
            .map_err(|e| format!("cannot read {shown}: {}", short_store_error(&e)))?;
        return Ok(vec![path.clone()]);
    }
    let mut files: Vec<ObjectPath> = store
        .list(Some(path))
        .map_ok(|meta| meta.location)
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| format!("cannot list {shown}: {}", short_store_error(&e)))?
        .into_iter()
        .filter(|p| p.extension() == Some("parquet"))
        .collect();
    files.sort();
    Ok(files)
}

/// Reads the Arrow schema of the Parquet file at `path` from its footer: two
/// ranged reads (the 8-byte tail, then the metadata), nothing else. Errors
/// name the file by its URL, `shown`.
pub async fn read_parquet_schema(
    store: Arc<dyn ObjectStore>,
    path: &ObjectPath,
    shown: &Url,
) -> Result<SchemaRef, String> {
    let footer_error =
        |e: &dyn std::fmt::Display| format!("cannot read the Parquet footer of {shown}: {e}");
    let size = store
        .head(path)
        .await
        .map_err(|e| footer_error(&short_store_error(&e)))?
        .size;
    if size < 12 {
        return Err(footer_error(&"file too small to be Parquet"));
    }
    let tail = store
        .get_range(path, size - 8..size)
        .await
        .map_err(|e| footer_error(&short_store_error(&e)))?;
    let tail: [u8; 8] = tail
        .as_ref()
        .try_into()
        .map_err(|_| footer_error(&"short read"))?;
    let tail = FooterTail::try_new(&tail).map_err(|e| footer_error(&e))?;
    let length = tail.metadata_length() as u64;
    if length + 8 > size {
        return Err(footer_error(&"metadata length exceeds the file"));
    }
    let metadata = store
        .get_range(path, size - 8 - length..size - 8)
        .await
        .map_err(|e| footer_error(&short_store_error(&e)))?;
    let metadata =
        ParquetMetaDataReader::decode_metadata(&metadata).map_err(|e| footer_error(&e))?;
    let file = metadata.file_metadata();
    let schema = parquet_to_arrow_schema(file.schema_descr(), file.key_value_metadata())
        .map_err(|e| footer_error(&e))?;
    Ok(Arc::new(schema))
}

/// A store error without the store's debug dump.
fn short_store_error(error: &object_store::Error) -> String {
    match error {
        object_store::Error::NotFound { .. } => "not found".to_string(),
        object_store::Error::PermissionDenied { source, .. }
        | object_store::Error::Unauthenticated { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}
