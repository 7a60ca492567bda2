//! Google Cloud Storage stores.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::gcp::GoogleCloudStorageBuilder;
use url::Url;

use super::settings::{GcsCredentials, GcsSettings, Settings, read_variable};

impl GcsSettings {
    /// The store of a Google Cloud Storage location at `url` with these
    /// settings and the common ones in `common`.
    pub(super) fn store(
        &self,
        url: &Url,
        common: &Settings,
    ) -> Result<Arc<dyn ObjectStore>, String> {
        let mut builder = match self.credentials {
            GcsCredentials::Environment => GoogleCloudStorageBuilder::from_env(),
            _ => GoogleCloudStorageBuilder::new(),
        }
        .with_url(url.as_str())
        .with_client_options(common.client.clone())
        .with_retry(common.retry.clone());
        match &self.credentials {
            GcsCredentials::Variables {
                service_account_key_env,
            } => {
                let key = read_variable("service_account_key_env", service_account_key_env)?;
                builder = builder.with_service_account_key(key);
            }
            GcsCredentials::Anonymous => builder = builder.with_skip_signature(true),
            GcsCredentials::Environment => {}
        }
        if let Some(path) = &self.service_account_path {
            builder = builder.with_service_account_path(path);
        }
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_base_url(endpoint);
        }
        if self.allow_http == Some(true) {
            builder = builder.with_client_options(common.client.clone().with_allow_http(true));
        }
        let store = builder
            .build()
            .map_err(|e| format!("cannot set up the Google Cloud Storage store: {e}"))?;
        Ok(Arc::new(store))
    }
}
