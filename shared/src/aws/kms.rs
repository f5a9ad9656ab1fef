//! KMS adapter: whether a key can be used in a region (a restore of an encrypted copy needs its key enabled).

use aws_sdk_kms::Client;
use aws_sdk_kms::types::KeyState;

use super::AwsError;

/// KMS in one region.
#[derive(Clone, Debug)]
pub struct Kms {
    client: Client,
    region: String,
}

impl Kms {
    /// KMS through `client`, configured for `region`.
    pub fn new(client: Client, region: impl Into<String>) -> Self {
        Self {
            client,
            region: region.into(),
        }
    }

    /// The region.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// `None` when key `key_id` (an ID, ARN or `alias/...`) exists and is enabled; else what is wrong with it.
    pub async fn key_problem(&self, key_id: &str) -> Result<Option<String>, AwsError> {
        match self.client.describe_key().key_id(key_id).send().await {
            Ok(out) => {
                let state = out.key_metadata().and_then(|m| m.key_state().cloned());
                Ok(match state {
                    Some(KeyState::Enabled) => None,
                    Some(state) => Some(format!(
                        "KMS key {key_id} in {} is {}: restores of copies encrypted with it fail",
                        self.region,
                        state.as_str()
                    )),
                    None => Some(format!("KMS key {key_id} in {} has no state", self.region)),
                })
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_not_found_exception()) =>
            {
                Ok(Some(format!(
                    "KMS key {key_id} does not exist in {}",
                    self.region
                )))
            }
            Err(e) => Err(AwsError::from_sdk("kms:DescribeKey", &self.region, &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_kms::operation::describe_key::{DescribeKeyError, DescribeKeyOutput};
    use aws_sdk_kms::types::KeyMetadata;
    use aws_sdk_kms::types::error::NotFoundException;
    use aws_smithy_mocks::{mock, mock_client};

    use super::*;

    fn metadata(state: KeyState) -> KeyMetadata {
        KeyMetadata::builder()
            .key_id("k-1")
            .key_state(state)
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn an_enabled_key_has_no_problem_and_others_say_what_is_wrong() {
        let enabled = mock!(Client::describe_key)
            .match_requests(|r| r.key_id() == Some("alias/dr"))
            .then_output(|| {
                DescribeKeyOutput::builder()
                    .key_metadata(metadata(KeyState::Enabled))
                    .build()
            });
        let disabled = mock!(Client::describe_key)
            .match_requests(|r| r.key_id() == Some("alias/off"))
            .then_output(|| {
                DescribeKeyOutput::builder()
                    .key_metadata(metadata(KeyState::Disabled))
                    .build()
            });
        let missing = mock!(Client::describe_key)
            .match_requests(|r| r.key_id() == Some("alias/gone"))
            .then_error(|| {
                DescribeKeyError::NotFoundException(NotFoundException::builder().build())
            });
        let client = mock_client!(aws_sdk_kms, [&enabled, &disabled, &missing]);
        let kms = Kms::new(client, "us-west-2");
        assert_eq!(kms.key_problem("alias/dr").await.unwrap(), None);
        let off = kms.key_problem("alias/off").await.unwrap().unwrap();
        assert!(off.contains("Disabled"), "{off}");
        let gone = kms.key_problem("alias/gone").await.unwrap().unwrap();
        assert!(gone.contains("does not exist in us-west-2"), "{gone}");
    }
}
