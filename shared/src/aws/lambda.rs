//! Lambda adapter: a run that cannot finish inside its invocation hands the rest to a new asynchronous invocation
//! of its own function (a continuation), instead of running into Lambda's timeout half done.

use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

use super::AwsError;

/// Asynchronous invocations of one function: the running function itself.
#[derive(Clone, Debug)]
pub struct Continuations {
    client: Client,
    region: String,
    function_name: String,
}

impl Continuations {
    /// Invocations of `function_name` in `region` through `client`.
    pub fn new(
        client: Client,
        region: impl Into<String>,
        function_name: impl Into<String>,
    ) -> Self {
        Self {
            client,
            region: region.into(),
            function_name: function_name.into(),
        }
    }

    /// The function this invokes.
    pub fn function_name(&self) -> &str {
        &self.function_name
    }

    /// Queue an asynchronous invocation with `payload`; Lambda answers at once (202) and runs it soon after, with
    /// the function's retries and dead-letter queue.
    pub async fn start(&self, payload: &serde_json::Value) -> Result<(), AwsError> {
        self.client
            .invoke()
            .function_name(&self.function_name)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload.to_string()))
            .send()
            .await
            .map(|_| ())
            .map_err(|err| AwsError::from_sdk("lambda:InvokeFunction", &self.region, &err))
    }
}
