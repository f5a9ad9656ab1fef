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

/// The time after which a run starts no new work, so that it can still record what it did and hand the rest to a
/// continuation: the invocation's deadline (`Context::deadline`, milliseconds since the epoch) less `reserve`.
/// `None` when the invocation has no deadline (0: run outside Lambda).
pub fn work_cutoff(
    deadline_ms: u64,
    reserve: std::time::Duration,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let deadline = chrono::DateTime::from_timestamp_millis(i64::try_from(deadline_ms).ok()?)?;
    (deadline_ms > 0).then(|| deadline - chrono::Duration::from_std(reserve).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_the_deadline_less_the_reserve() {
        let deadline: chrono::DateTime<chrono::Utc> = "2026-11-22T04:15:00Z".parse().unwrap();
        let cutoff = work_cutoff(
            deadline.timestamp_millis() as u64,
            std::time::Duration::from_secs(60),
        );
        assert_eq!(cutoff, Some("2026-11-22T04:14:00Z".parse().unwrap()));
    }

    #[test]
    fn no_deadline_no_cutoff() {
        assert_eq!(work_cutoff(0, std::time::Duration::from_secs(60)), None);
        assert_eq!(
            work_cutoff(u64::MAX, std::time::Duration::from_secs(60)),
            None
        );
    }
}
