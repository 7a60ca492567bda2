//! S3 and S3-compatible stores: region, endpoint, credentials (static keys,
//! a shared-credentials profile, the environment's chain), server-side
//! encryption; and the AWS shared files, read as the AWS SDKs read them.

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use url::Url;

use super::settings::{S3_SETTINGS, Settings, only_with, read_variable, required_variable};

impl Settings<'_> {
    pub(super) fn s3(&self, url: &Url) -> Result<Arc<dyn ObjectStore>, String> {
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
