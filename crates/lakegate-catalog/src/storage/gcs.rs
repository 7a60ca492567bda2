//! Google Cloud Storage stores.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::gcp::GoogleCloudStorageBuilder;
use url::Url;

use super::settings::{GCS_SETTINGS, Settings, only_with, required_variable};

impl Settings<'_> {
    pub(super) fn gcs(&self, url: &Url) -> Result<Arc<dyn ObjectStore>, String> {
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
}
