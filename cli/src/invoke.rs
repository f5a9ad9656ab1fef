//! Talking to the deployed functions: Lambda `Invoke` (RequestResponse) with the JSON payload, STS for the
//! caller's identity, and every way that can fail told in words the person on call can act on.

use aws_config::BehaviorVersion;
use aws_config::environment::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::config::{Credentials, Region};
use aws_sdk_lambda::error::{DisplayErrorContext, SdkError};
use aws_sdk_lambda::operation::invoke::InvokeError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde_json::Value;
use std::time::Duration;

use crate::command::{Deployment, Function, Request};

/// The environment variable that names the invoke port of the local DR run's `cargo lambda watch`.
pub const INVOKE_PORT_VARIABLE: &str = "LIFEBOAT_INVOKE_PORT";

/// The region the local DR run's functions run "in", when none is given.
const LOCAL_DEFAULT_REGION: &str = "us-east-1";

/// Why an action did not get an answer to print.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The function ran and refused or failed (a Lambda FunctionError).
    #[error("{function} refused: {message}")]
    Refused {
        /// The function that refused.
        function: Function,
        /// Its `errorMessage`.
        message: String,
    },
    /// Lambda knows no function of that name.
    #[error(
        "there is no function {name}: the stack name is probably wrong (this was --stack {stack}; \
         give the stack Lifeboat was deployed as with --stack)"
    )]
    FunctionNotFound {
        /// The Lambda function name tried.
        name: String,
        /// The stack it was derived from.
        stack: String,
    },
    /// Nothing listens on the local invoke port.
    #[error(
        "nothing answers at {endpoint}: the local DR run is not serving functions \
         (scripts/dr-run serves them with cargo lambda watch, whose invoke port --invoke-port or \
         {INVOKE_PORT_VARIABLE} must name)"
    )]
    LocalRunNotServing {
        /// The endpoint tried.
        endpoint: String,
    },
    /// `--local` without an invoke port.
    #[error(
        "--local needs the invoke port of cargo lambda watch: give --invoke-port or set {INVOKE_PORT_VARIABLE}"
    )]
    NoInvokePort,
    /// The invoke port variable holds something else than a port.
    #[error("{INVOKE_PORT_VARIABLE} is not a port number: {0:?}")]
    UnreadableInvokePort(String),
    /// STS could not tell who the caller is, so the request that must name them was not sent.
    #[error(
        "STS GetCallerIdentity failed, so the {function} request was not sent (it must name who asked): {message}"
    )]
    UnknownCaller {
        /// The function that was not invoked.
        function: Function,
        /// What STS answered.
        message: String,
    },
    /// Invoke failed before the function answered (permissions, throttling, network).
    #[error("invoking {name} failed: {message}")]
    InvokeFailed {
        /// The Lambda function name tried.
        name: String,
        /// What the SDK said.
        message: String,
    },
    /// The function answered something that is not JSON.
    #[error("{function} answered something that is not JSON ({reason}): {answer}")]
    UnreadableAnswer {
        /// The function that answered.
        function: Function,
        /// Why it could not be read.
        reason: String,
        /// The answer as text.
        answer: String,
    },
}

/// Where the functions are served and how to reach them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Deployed in AWS: the SDK's configuration chain, optionally another region.
    Aws {
        /// Region of the functions, when not the SDK's default.
        region: Option<String>,
    },
    /// The local DR run: `cargo lambda watch` on a loopback port, dummy credentials.
    Local {
        /// Invoke port of `cargo lambda watch`.
        invoke_port: u16,
        /// Region to sign for (default: AWS_REGION, else us-east-1).
        region: Option<String>,
        /// Where STS answers (the local emulator), when not the SDK's default.
        sts_endpoint: Option<String>,
    },
}

impl Reach {
    /// From the command line; `--local` reads the invoke port from LIFEBOAT_INVOKE_PORT when not given, and sends
    /// STS to AWS_ENDPOINT_URL (the local emulator) when set.
    pub fn of(deployment: &Deployment) -> Result<Self, Failure> {
        if !deployment.local {
            return Ok(Reach::Aws {
                region: deployment.functions_region.clone(),
            });
        }
        Ok(Reach::Local {
            invoke_port: invoke_port(
                deployment.invoke_port,
                std::env::var(INVOKE_PORT_VARIABLE).ok(),
            )?,
            region: deployment.functions_region.clone(),
            sts_endpoint: std::env::var("AWS_ENDPOINT_URL")
                .ok()
                .filter(|endpoint| !endpoint.is_empty()),
        })
    }
}

/// The invoke port: the flag's, else the environment variable's.
fn invoke_port(flag: Option<u16>, variable: Option<String>) -> Result<u16, Failure> {
    match (flag, variable) {
        (Some(port), _) => Ok(port),
        (None, Some(text)) => text
            .trim()
            .parse()
            .map_err(|_| Failure::UnreadableInvokePort(text)),
        (None, None) => Err(Failure::NoInvokePort),
    }
}

/// The functions of one deployment, and STS to name the caller.
#[derive(Debug, Clone)]
pub struct Lifeboat {
    lambda: aws_sdk_lambda::Client,
    sts: aws_sdk_sts::Client,
    stack: String,
    local_endpoint: Option<String>,
    busy_pause: Duration,
}

/// Invokes of a function that is busy with another run (TooManyRequestsException) before giving up.
const BUSY_ATTEMPTS: u32 = 6;

/// Whether Lambda refused the invoke because the function is at its concurrency limit.
fn is_busy(error: &SdkError<InvokeError>) -> bool {
    matches!(
        error.as_service_error(),
        Some(InvokeError::TooManyRequestsException(_))
    )
}

impl Lifeboat {
    /// The functions of `stack`, through these clients; `local_endpoint` is the local DR run's invoke endpoint
    /// when that is what the Lambda client talks to (it turns a refused connection into advice).
    pub fn new(
        lambda: aws_sdk_lambda::Client,
        sts: aws_sdk_sts::Client,
        stack: impl Into<String>,
        local_endpoint: Option<String>,
    ) -> Self {
        Lifeboat {
            lambda,
            sts,
            stack: stack.into(),
            local_endpoint,
            busy_pause: Duration::from_secs(3),
        }
    }

    /// The functions of `stack` where `reach` says. Invoke is never retried by the SDK: an action that may
    /// already have run (a restore, a snapshot) is rerun by the person, knowingly, not behind their back. Only a
    /// busy function's refusal (it never ran) is asked again, by [`Lifeboat::send`].
    pub async fn connect(reach: &Reach, stack: &str) -> Self {
        match reach {
            Reach::Aws { region } => {
                let mut loader = aws_config::defaults(BehaviorVersion::latest());
                if let Some(region) = region {
                    loader = loader.region(Region::new(region.clone()));
                }
                let shared = loader.load().await;
                let lambda = aws_sdk_lambda::config::Builder::from(&shared)
                    .retry_config(RetryConfig::disabled())
                    .build();
                Lifeboat::new(
                    aws_sdk_lambda::Client::from_conf(lambda),
                    aws_sdk_sts::Client::new(&shared),
                    stack,
                    None,
                )
            }
            Reach::Local {
                invoke_port,
                region,
                sts_endpoint,
            } => {
                let region = RegionProviderChain::first_try(region.clone().map(Region::new))
                    .or_else(EnvironmentVariableRegionProvider::new())
                    .or_else(LOCAL_DEFAULT_REGION);
                let shared = aws_config::defaults(BehaviorVersion::latest())
                    .region(region)
                    .credentials_provider(Credentials::new(
                        "lifeboat-local",
                        "lifeboat-local",
                        None,
                        None,
                        "lifeboat --local",
                    ))
                    .load()
                    .await;
                let endpoint = format!("http://127.0.0.1:{invoke_port}");
                let lambda = aws_sdk_lambda::config::Builder::from(&shared)
                    .endpoint_url(&endpoint)
                    .retry_config(RetryConfig::disabled())
                    .build();
                let mut sts = aws_sdk_sts::config::Builder::from(&shared);
                if let Some(sts_endpoint) = sts_endpoint {
                    sts = sts.endpoint_url(sts_endpoint);
                }
                Lifeboat::new(
                    aws_sdk_lambda::Client::from_conf(lambda),
                    aws_sdk_sts::Client::from_conf(sts.build()),
                    stack,
                    Some(endpoint),
                )
            }
        }
    }

    /// Sends `request` and returns the function's answer; a request that must name the caller is sent only
    /// once STS has said who that is.
    pub async fn send(&self, request: Request) -> Result<Value, Failure> {
        let request = if request.names_caller {
            let caller = self
                .caller_arn()
                .await
                .map_err(|message| Failure::UnknownCaller {
                    function: request.function,
                    message,
                })?;
            request.requested_by(&caller)
        } else {
            request
        };
        self.invoke(request.function, &Value::Object(request.payload))
            .await
    }

    /// The Lambda name of `function` in this deployment.
    pub fn function_name(&self, function: Function) -> String {
        format!("{}-{}", self.stack, function.name())
    }

    async fn caller_arn(&self) -> Result<String, String> {
        let identity = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| DisplayErrorContext(e).to_string())?;
        identity
            .arn()
            .map(str::to_string)
            .ok_or_else(|| "the answer names no ARN".to_string())
    }

    async fn invoke(&self, function: Function, payload: &Value) -> Result<Value, Failure> {
        let name = self.function_name(function);
        let mut attempt = 1;
        let output = loop {
            let sent = self
                .lambda
                .invoke()
                .function_name(&name)
                .invocation_type(InvocationType::RequestResponse)
                .payload(Blob::new(payload.to_string()))
                .send()
                .await;
            match sent {
                Ok(output) => break output,
                // The functions run one at a time (reserved concurrency 1) and their schedules and events keep
                // them busy: a throttled invoke never ran, so asking again is safe.
                Err(error) if is_busy(&error) && attempt < BUSY_ATTEMPTS => {
                    let pause = self.busy_pause * attempt;
                    eprintln!(
                        "lifeboat: another run of {name} is in progress (one at a time); trying again in {} s",
                        pause.as_secs()
                    );
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                Err(error) => return Err(self.invoke_failure(name, error)),
            }
        };
        let answer = output.payload().map(Blob::as_ref).unwrap_or_default();
        if output.function_error().is_some() {
            return Err(Failure::Refused {
                function,
                message: refusal_message(answer),
            });
        }
        serde_json::from_slice(answer).map_err(|e| Failure::UnreadableAnswer {
            function,
            reason: e.to_string(),
            answer: String::from_utf8_lossy(answer).into_owned(),
        })
    }

    /// How long to wait before asking a busy function again (the n-th retry waits n times as long).
    pub fn with_busy_pause(mut self, pause: Duration) -> Self {
        self.busy_pause = pause;
        self
    }

    fn invoke_failure(&self, name: String, error: SdkError<InvokeError>) -> Failure {
        if let Some(InvokeError::ResourceNotFoundException(_)) = error.as_service_error() {
            return Failure::FunctionNotFound {
                name,
                stack: self.stack.clone(),
            };
        }
        if let (Some(endpoint), SdkError::DispatchFailure(dispatch)) =
            (&self.local_endpoint, &error)
            && dispatch.is_io()
        {
            return Failure::LocalRunNotServing {
                endpoint: endpoint.clone(),
            };
        }
        Failure::InvokeFailed {
            name,
            message: DisplayErrorContext(error).to_string(),
        }
    }
}

/// The `errorMessage` of a FunctionError answer, else the answer as it is.
fn refusal_message(answer: &[u8]) -> String {
    let from_json = serde_json::from_slice::<Value>(answer)
        .ok()
        .and_then(|error| error.get("errorMessage")?.as_str().map(str::to_string));
    match from_json {
        Some(message) => message,
        None if answer.is_empty() => "the function failed without saying why".into(),
        None => String::from_utf8_lossy(answer).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Cli;
    use aws_sdk_lambda::operation::invoke::InvokeOutput;
    use aws_sdk_lambda::types::error::ResourceNotFoundException;
    use aws_sdk_sts::operation::get_caller_identity::{
        GetCallerIdentityError, GetCallerIdentityOutput,
    };
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use clap::Parser;
    use serde_json::json;

    const CALLER: &str = "arn:aws:sts::123456789012:assumed-role/OnCall/ana";

    fn answering(payload: &'static str) -> Rule {
        mock!(aws_sdk_lambda::Client::invoke)
            .match_requests(|input| input.function_name() == Some("lifeboat-snapshot"))
            .then_output(move || {
                InvokeOutput::builder()
                    .status_code(200)
                    .payload(Blob::new(payload))
                    .build()
            })
    }

    fn sts_naming(caller: &'static str) -> Rule {
        mock!(aws_sdk_sts::Client::get_caller_identity)
            .then_output(move || GetCallerIdentityOutput::builder().arn(caller).build())
    }

    fn lifeboat(lambda: &[&Rule], sts: &[&Rule]) -> Lifeboat {
        Lifeboat::new(
            mock_client!(aws_sdk_lambda, RuleMode::MatchAny, lambda),
            mock_client!(aws_sdk_sts, RuleMode::MatchAny, sts),
            "lifeboat",
            None,
        )
    }

    /// The request of `lifeboat <words>`.
    fn request(words: &[&str]) -> Request {
        let cli =
            Cli::try_parse_from(std::iter::once("lifeboat").chain(words.iter().copied())).unwrap();
        cli.command.request()
    }

    fn snapshot_request() -> Request {
        request(&["snapshot", "booking-db"])
    }

    #[tokio::test]
    async fn a_successful_answer_is_returned_as_json() {
        let answer =
            answering(r#"{"run_id":"r-1","results":[{"database":"booking-db","status":"done"}]}"#);
        let returned = lifeboat(&[&answer], &[])
            .send(snapshot_request())
            .await
            .unwrap();
        assert_eq!(
            returned,
            json!({"run_id": "r-1", "results": [{"database": "booking-db", "status": "done"}]})
        );
    }

    #[tokio::test]
    async fn a_busy_function_is_asked_again_until_it_answers() {
        let busy = mock!(aws_sdk_lambda::Client::invoke)
            .sequence()
            .error(|| {
                InvokeError::TooManyRequestsException(
                    aws_sdk_lambda::types::error::TooManyRequestsException::builder()
                        .message("Rate Exceeded.")
                        .build(),
                )
            })
            .times(2)
            .output(|| {
                InvokeOutput::builder()
                    .status_code(200)
                    .payload(Blob::new(r#"{"run_id":"r-2","results":[]}"#))
                    .build()
            })
            .build();
        let client = lifeboat(&[&busy], &[]).with_busy_pause(Duration::ZERO);
        let returned = client.send(snapshot_request()).await.unwrap();
        assert_eq!(returned, json!({"run_id": "r-2", "results": []}));
        assert_eq!(busy.num_calls(), 3, "two busy answers, then the run");
    }

    #[tokio::test]
    async fn a_function_error_is_the_functions_refusal() {
        let refusal = mock!(aws_sdk_lambda::Client::invoke).then_output(|| {
            InvokeOutput::builder()
                .status_code(200)
                .function_error("Unhandled")
                .payload(Blob::new(
                    r#"{"errorType":"InvalidInput","errorMessage":"invalid input: retain_days: expected u32"}"#,
                ))
                .build()
        });
        let failure = lifeboat(&[&refusal], &[])
            .send(snapshot_request())
            .await
            .unwrap_err();
        assert_eq!(
            failure.to_string(),
            "snapshot refused: invalid input: retain_days: expected u32"
        );
    }

    #[tokio::test]
    async fn an_unknown_function_points_at_the_stack_name() {
        let not_found = mock!(aws_sdk_lambda::Client::invoke).then_error(|| {
            InvokeError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .message("Function not found: arn:aws:lambda:us-east-1:123456789012:function:lifeboat-snapshot")
                    .build(),
            )
        });
        let failure = lifeboat(&[&not_found], &[])
            .send(snapshot_request())
            .await
            .unwrap_err();
        assert!(
            matches!(&failure, Failure::FunctionNotFound { name, .. } if name == "lifeboat-snapshot"),
            "{failure:?}"
        );
        let told = failure.to_string();
        assert!(
            told.contains("stack name is probably wrong") && told.contains("--stack"),
            "{told}"
        );
    }

    #[tokio::test]
    async fn a_restore_names_the_caller_from_sts() {
        let restore = mock!(aws_sdk_lambda::Client::invoke)
            .match_requests(|input| {
                let sent: Value =
                    serde_json::from_slice(input.payload().unwrap().as_ref()).unwrap();
                input.function_name() == Some("lifeboat-restore") && sent["requested_by"] == CALLER
            })
            .then_output(|| {
                InvokeOutput::builder()
                    .status_code(200)
                    .payload(Blob::new(r#"{"results":[]}"#))
                    .build()
            });
        let request = request(&["restore", "booking-db", "--plan"]);
        let answer = lifeboat(&[&restore], &[&sts_naming(CALLER)])
            .send(request)
            .await
            .unwrap();
        assert_eq!(answer, json!({"results": []}));
        assert_eq!(restore.num_calls(), 1);
    }

    #[tokio::test]
    async fn no_restore_is_sent_when_sts_cannot_name_the_caller() {
        let restore = mock!(aws_sdk_lambda::Client::invoke).then_output(|| {
            InvokeOutput::builder()
                .status_code(200)
                .payload(Blob::new("{}"))
                .build()
        });
        let sts_down = mock!(aws_sdk_sts::Client::get_caller_identity).then_error(|| {
            GetCallerIdentityError::unhandled(
                "ExpiredToken: the security token included in the request is expired",
            )
        });
        let request = request(&["restore", "booking-db", "--reason", "INC-1"]);
        let failure = lifeboat(&[&restore], &[&sts_down])
            .send(request)
            .await
            .unwrap_err();
        assert!(
            matches!(
                failure,
                Failure::UnknownCaller {
                    function: Function::Restore,
                    ..
                }
            ),
            "{failure:?}"
        );
        assert!(
            failure
                .to_string()
                .starts_with("STS GetCallerIdentity failed"),
            "{failure}"
        );
        assert_eq!(restore.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_closed_local_invoke_port_says_the_local_run_is_not_serving() {
        let closed_port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let reach = Reach::Local {
            invoke_port: closed_port,
            region: Some("us-east-1".into()),
            sts_endpoint: None,
        };
        let failure = Lifeboat::connect(&reach, "lifeboat")
            .await
            .send(snapshot_request())
            .await
            .unwrap_err();
        assert!(
            failure
                .to_string()
                .contains("the local DR run is not serving functions"),
            "{failure}"
        );
    }

    #[test]
    fn the_invoke_port_comes_from_the_flag_else_the_environment() {
        assert_eq!(invoke_port(Some(9001), Some("9002".into())).unwrap(), 9001);
        assert_eq!(invoke_port(None, Some("9002".into())).unwrap(), 9002);
        let missing = invoke_port(None, None).unwrap_err().to_string();
        assert!(
            missing.contains("--invoke-port") && missing.contains(INVOKE_PORT_VARIABLE),
            "{missing}"
        );
        assert!(matches!(
            invoke_port(None, Some("ninety".into())),
            Err(Failure::UnreadableInvokePort(_))
        ));
    }

    #[test]
    fn a_refusal_without_json_is_told_as_it_came() {
        assert_eq!(
            refusal_message(b"Task timed out after 900.00 seconds"),
            "Task timed out after 900.00 seconds"
        );
        assert_eq!(
            refusal_message(b""),
            "the function failed without saying why"
        );
    }
}
