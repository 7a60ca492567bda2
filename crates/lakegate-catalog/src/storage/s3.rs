//! S3 and S3-compatible stores: region, endpoint, credentials (static keys,
//! a shared-credentials profile, the environment's chain), server-side
//! encryption; and the AWS shared files, read as the AWS SDKs read them.

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use url::Url;

use super::settings::{
    Addressing, S3Credentials, S3Encryption, S3Settings, Settings, read_variable,
};

impl S3Settings {
    /// The store of an S3 location at `url` with these settings and the
    /// common ones in `common`.
    pub(super) fn store(
        &self,
        url: &Url,
        common: &Settings,
    ) -> Result<Arc<dyn ObjectStore>, String> {
        let environment = matches!(self.credentials, S3Credentials::Environment);
        let mut builder = if environment {
            // The standard chain: AWS_* variables (keys, region, endpoint,
            // web identity), then container and instance credentials.
            AmazonS3Builder::from_env()
        } else {
            AmazonS3Builder::new()
        };
        builder = builder
            .with_url(url.as_str())
            .with_client_options(common.client.clone())
            .with_retry(common.retry.clone());
        // The client options above replaced the environment's: keep its
        // explicit AWS_ALLOW_HTTP (a local S3-compatible server).
        if environment
            && self.allow_http.is_none()
            && let Ok(allow) = std::env::var("AWS_ALLOW_HTTP")
        {
            builder = builder.with_config(
                AmazonS3ConfigKey::Client(object_store::ClientConfigKey::AllowHttp),
                allow,
            );
        }
        // The standard chain's second link, which object_store lacks: the
        // shared credentials file, when the environment holds no keys.
        let ambient_profile = environment
            && std::env::var_os("AWS_ACCESS_KEY_ID").is_none()
            && std::env::var_os("AWS_WEB_IDENTITY_TOKEN_FILE").is_none();
        let profile = match &self.credentials {
            S3Credentials::Profile(name) => Some(SharedProfile::read(name)?.ok_or_else(|| {
                format!(
                    "profile '{name}' is not in {}",
                    shared_file("AWS_SHARED_CREDENTIALS_FILE", "credentials").display()
                )
            })?),
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
            let named = matches!(self.credentials, S3Credentials::Profile(_));
            if let Some(region) = profile.region
                && self.region.is_none()
                && (named || std::env::var_os("AWS_REGION").is_none())
            {
                builder = builder.with_region(region);
            }
        }
        match &self.credentials {
            S3Credentials::Variables {
                access_key_id_env,
                secret_access_key_env,
                session_token_env,
            } => {
                builder = builder
                    .with_access_key_id(read_variable("access_key_id_env", access_key_id_env)?)
                    .with_secret_access_key(read_variable(
                        "secret_access_key_env",
                        secret_access_key_env,
                    )?);
                if let Some(name) = session_token_env {
                    builder = builder.with_token(read_variable("session_token_env", name)?);
                }
            }
            S3Credentials::WebIdentity {
                role_arn,
                token_file,
                session_name,
                sts_endpoint,
            } => {
                let token_file = match token_file {
                    Some(file) => file.clone(),
                    None => std::env::var("AWS_WEB_IDENTITY_TOKEN_FILE").map_err(|_| {
                        "credentials 'web-identity' needs 'web_identity_token_file' \
                         (or AWS_WEB_IDENTITY_TOKEN_FILE)"
                            .to_string()
                    })?,
                };
                builder = builder
                    .with_config(AmazonS3ConfigKey::RoleArn, role_arn)
                    .with_config(AmazonS3ConfigKey::WebIdentityTokenFile, token_file);
                if let Some(name) = session_name {
                    builder = builder.with_config(AmazonS3ConfigKey::RoleSessionName, name);
                }
                if let Some(endpoint) = sts_endpoint {
                    builder = builder.with_config(AmazonS3ConfigKey::StsEndpoint, endpoint);
                }
            }
            S3Credentials::Anonymous => builder = builder.with_skip_signature(true),
            S3Credentials::Environment | S3Credentials::Profile(_) => {}
        }
        if let Some(region) = &self.region {
            builder = builder.with_region(region);
        }
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(allow) = self.allow_http {
            builder = builder.with_allow_http(allow);
        }
        match self.addressing {
            None => {}
            Some(Addressing::Path) => builder = builder.with_virtual_hosted_style_request(false),
            Some(Addressing::VirtualHosted) => {
                builder = builder.with_virtual_hosted_style_request(true)
            }
        }
        match &self.encryption {
            S3Encryption::BucketDefault => {}
            S3Encryption::SseS3 => {
                builder = builder.with_config(s3_key("aws_server_side_encryption"), "AES256");
            }
            S3Encryption::SseKms { key_id, bucket_key } => {
                builder = builder.with_config(s3_key("aws_server_side_encryption"), "aws:kms");
                if let Some(key) = key_id {
                    builder = builder.with_config(s3_key("aws_sse_kms_key_id"), key);
                }
                if let Some(enabled) = bucket_key {
                    builder = builder.with_bucket_key(*enabled);
                }
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
