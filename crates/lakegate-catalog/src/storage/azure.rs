//! Azure Blob Storage (and ADLS Gen2) stores.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use url::Url;

use super::settings::{AzureCredentials, AzureSettings, Settings, read_variable};

impl AzureSettings {
    /// The store of an Azure location at `url` with these settings and the
    /// common ones in `common`.
    pub(super) fn store(
        &self,
        url: &Url,
        common: &Settings,
    ) -> Result<Arc<dyn ObjectStore>, String> {
        let mut builder = match self.credentials {
            AzureCredentials::Environment => MicrosoftAzureBuilder::from_env(),
            _ => MicrosoftAzureBuilder::new(),
        }
        .with_url(url.as_str())
        .with_client_options(common.client.clone())
        .with_retry(common.retry.clone());
        if let Some(account) = &self.account {
            builder = builder.with_account(account);
        }
        match &self.credentials {
            AzureCredentials::AccessKey { access_key_env } => {
                builder = builder.with_access_key(read_variable("access_key_env", access_key_env)?);
            }
            AzureCredentials::SasToken { sas_token_env } => {
                builder = builder.with_config(
                    AzureConfigKey::SasKey,
                    read_variable("sas_token_env", sas_token_env)?,
                );
            }
            AzureCredentials::Anonymous => builder = builder.with_skip_signature(true),
            AzureCredentials::Environment => {}
        }
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_endpoint(endpoint.clone());
        }
        if let Some(allow) = self.allow_http {
            builder = builder.with_allow_http(allow);
        }
        let store = builder
            .build()
            .map_err(|e| format!("cannot set up the Azure store: {e}"))?;
        Ok(Arc::new(store))
    }
}
