//! Secrets Manager adapter: the credentials of a restore drill live in one secret that exists only for the drill
//! and is deleted with it. Values never reach logs, errors or the ledger.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::operation::create_secret::CreateSecretError;
use aws_sdk_secretsmanager::operation::delete_secret::DeleteSecretError;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;

use super::AwsError;

/// Secrets Manager in one region.
#[derive(Clone, Debug)]
pub struct Secrets {
    client: Client,
    region: String,
}

impl Secrets {
    /// Secrets Manager through `client`, configured for `region`.
    pub fn new(client: Client, region: impl Into<String>) -> Self {
        Self {
            client,
            region: region.into(),
        }
    }

    /// The value of secret `name`, or `None` when there is no such secret.
    pub async fn get(&self, name: &str) -> Result<Option<String>, AwsError> {
        match self.client.get_secret_value().secret_id(name).send().await {
            Ok(out) => Ok(out.secret_string().map(str::to_string)),
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(GetSecretValueError::ResourceNotFoundException(_))
                ) =>
            {
                Ok(None)
            }
            Err(err) => Err(AwsError::from_sdk(
                "secretsmanager:GetSecretValue",
                &self.region,
                &err,
            )),
        }
    }

    /// Create secret `name` with `value` and `tags`, unless it exists; returns the value in force (an existing
    /// secret's after a crash between creating it and using it).
    pub async fn get_or_create(
        &self,
        name: &str,
        value: &str,
        tags: &[(String, String)],
    ) -> Result<String, AwsError> {
        if let Some(existing) = self.get(name).await? {
            return Ok(existing);
        }
        let tags = tags
            .iter()
            .map(|(k, v)| {
                aws_sdk_secretsmanager::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
            })
            .collect();
        match self
            .client
            .create_secret()
            .name(name)
            .description("Lifeboat restore-drill credentials; deleted with the drill")
            .secret_string(value)
            .set_tags(Some(tags))
            .send()
            .await
        {
            Ok(_) => Ok(value.to_string()),
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(CreateSecretError::ResourceExistsException(_))
                ) =>
            {
                Ok(self.get(name).await?.unwrap_or_else(|| value.to_string()))
            }
            Err(err) => Err(AwsError::from_sdk(
                "secretsmanager:CreateSecret",
                &self.region,
                &err,
            )),
        }
    }

    /// Delete secret `name` at once (no recovery window: drill credentials are worthless after the drill).
    pub async fn delete(&self, name: &str) -> Result<(), AwsError> {
        match self
            .client
            .delete_secret()
            .secret_id(name)
            .force_delete_without_recovery(true)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(DeleteSecretError::ResourceNotFoundException(_))
                ) =>
            {
                Ok(())
            }
            Err(err) => Err(AwsError::from_sdk(
                "secretsmanager:DeleteSecret",
                &self.region,
                &err,
            )),
        }
    }
}
