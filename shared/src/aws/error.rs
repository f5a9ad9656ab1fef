//! Typed AWS errors: what failed, where, and whether trying again can help.

use aws_sdk_rds::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::result::SdkError;

/// A failed AWS call, classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsError {
    /// The function's role lacks a permission.
    #[error(
        "{operation} in {region} was denied: {message} (grant the function's role this permission)"
    )]
    AccessDenied {
        /// API operation, for example `rds:CreateDBSnapshot`.
        operation: String,
        /// Region of the call.
        region: String,
        /// AWS's message.
        message: String,
    },
    /// AWS kept throttling after the SDK's adaptive retries.
    #[error("{operation} in {region} was throttled after retries: {message}")]
    Throttled {
        /// API operation.
        operation: String,
        /// Region of the call.
        region: String,
        /// AWS's message.
        message: String,
    },
    /// The call never got an answer (network, timeout).
    #[error("{operation} in {region} did not complete: {message}")]
    Unreachable {
        /// API operation.
        operation: String,
        /// Region of the call.
        region: String,
        /// What went wrong.
        message: String,
    },
    /// AWS answered with an error.
    #[error("{operation} in {region} failed: {code}: {message}")]
    Service {
        /// API operation.
        operation: String,
        /// Region of the call.
        region: String,
        /// AWS error code.
        code: String,
        /// AWS's message.
        message: String,
    },
}

impl AwsError {
    /// Classify an SDK error of `operation` in `region`.
    pub fn from_sdk<E>(
        operation: &str,
        region: &str,
        err: &SdkError<E, aws_smithy_runtime_api::http::Response>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let (operation, region) = (operation.to_string(), region.to_string());
        match err {
            SdkError::DispatchFailure(_)
            | SdkError::TimeoutError(_)
            | SdkError::ResponseError(_) => AwsError::Unreachable {
                operation,
                region,
                message: aws_smithy_types::error::display::DisplayErrorContext(err).to_string(),
            },
            // A 5xx that is no AWS error (a gateway's 502 or 504) is an answer that never came from the service.
            _ if err.code().is_none()
                && err
                    .raw_response()
                    .is_some_and(|r| r.status().is_server_error()) =>
            {
                AwsError::Unreachable {
                    operation,
                    region,
                    message: aws_smithy_types::error::display::DisplayErrorContext(err).to_string(),
                }
            }
            _ => {
                let code = err.code().unwrap_or("Unknown").to_string();
                let message = err.message().unwrap_or("no message").to_string();
                match code.as_str() {
                    "AccessDenied"
                    | "AccessDeniedException"
                    | "UnauthorizedOperation"
                    | "AuthorizationError"
                    | "KMSKeyNotAccessibleFault" => AwsError::AccessDenied {
                        operation,
                        region,
                        message,
                    },
                    // S3 throttles with 503 `SlowDown`; Route 53 answers `PriorRequestNotComplete` while it is
                    // still processing an earlier change (the SDK retries it as throttling).
                    "Throttling"
                    | "ThrottlingException"
                    | "SlowDown"
                    | "RequestLimitExceeded"
                    | "TooManyRequestsException"
                    | "PriorRequestNotComplete" => AwsError::Throttled {
                        operation,
                        region,
                        message,
                    },
                    _ => AwsError::Service {
                        operation,
                        region,
                        code,
                        message,
                    },
                }
            }
        }
    }

    /// Whether the same call may succeed later without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            AwsError::Throttled { .. } | AwsError::Unreachable { .. }
        )
    }

    /// Whether a failed write may still have taken effect: its answer never came back (lost, timed out), AWS
    /// failed inside (`InternalFailure`, `ServiceUnavailable`, …), or it was throttled (the SDK retries, and the
    /// final error is the last attempt's: an earlier attempt may have landed with its answer lost). Such a write is
    /// read back before it is reported.
    pub fn may_have_taken_effect(&self) -> bool {
        match self {
            AwsError::Unreachable { .. } | AwsError::Throttled { .. } => true,
            AwsError::Service { code, .. } => matches!(
                code.as_str(),
                "InternalFailure" | "InternalError" | "InternalServerError" | "ServiceUnavailable"
            ),
            AwsError::AccessDenied { .. } => false,
        }
    }

    /// What an operator should do about it.
    pub fn next_step(&self) -> String {
        match self {
            AwsError::AccessDenied { operation, .. } => {
                format!(
                    "add {operation} to the function's IAM role (infra/template.yaml) and redeploy"
                )
            }
            AwsError::Throttled { .. } | AwsError::Unreachable { .. } => {
                "transient: the next scheduled run retries; invoke by hand if it cannot wait"
                    .to_string()
            }
            AwsError::Service {
                code, operation, ..
            } => {
                format!("look up AWS error `{code}` of {operation} and fix its cause")
            }
        }
    }
}
