//! Azure Blob Storage (and ADLS Gen2) stores.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use url::Url;

use super::settings::{AZURE_SETTINGS, Settings, only_with, read_variable};

impl Settings<'_> {
    pub(super) fn azure(&self, url: &Url) -> Result<Arc<dyn ObjectStore>, String> {
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
