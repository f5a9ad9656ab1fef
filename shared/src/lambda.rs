//! The error every handler returns, mapped to a stable Lambda error type that says whether a retry can help.

use lambda_runtime::Diagnostic;

use crate::aws::AwsError;

/// Why an invocation failed as a whole (per-item failures are reported in the response instead).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event or payload is malformed or asks for something unknown; nothing was changed.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// AWS could not be read or written at all; nothing was changed, or the changes are in the ledger.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// Something needed could not be read or written now (state, an alarm); nothing was changed; trying again
    /// can help.
    #[error("{0}")]
    Retryable(String),
}

impl HandlerError {
    /// Stable error type reported to Lambda: `Lifeboat.InvalidInput` (do not retry), `Lifeboat.Retryable` or
    /// `Lifeboat.AwsError`.
    pub fn error_type(&self) -> &'static str {
        match self {
            HandlerError::InvalidInput(_) => "Lifeboat.InvalidInput",
            HandlerError::Aws(e) if e.is_retryable() => "Lifeboat.Retryable",
            HandlerError::Retryable(_) => "Lifeboat.Retryable",
            HandlerError::Aws(_) => "Lifeboat.AwsError",
        }
    }
}

impl From<HandlerError> for Diagnostic {
    fn from(err: HandlerError) -> Self {
        Diagnostic {
            error_type: err.error_type().to_string(),
            error_message: err.to_string(),
        }
    }
}
