//! Classifying what a function was invoked with: an EventBridge event, or an operator's manual request
//! (a JSON object with an `"action"`). Anything else is rejected with an error that says what was expected.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::lambda::HandlerError;

/// Detail type of EventBridge scheduled events.
pub const SCHEDULED_EVENT: &str = "Scheduled Event";

/// What a function was invoked with.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// An EventBridge event (schedule, RDS event, alarm state change).
    Event(EventBridgeEvent<Value>),
    /// An operator's request.
    Manual {
        /// The requested action.
        action: String,
        /// The whole payload, action included.
        payload: Value,
    },
}

/// Classify an invocation payload.
pub fn classify(payload: Value) -> Result<Incoming, HandlerError> {
    let Value::Object(fields) = &payload else {
        return Err(HandlerError::InvalidInput(format!(
            "expected a JSON object (an EventBridge event or a request with \"action\"), got {}",
            kind_of(&payload)
        )));
    };
    if let Some(action) = fields.get("action") {
        let Value::String(action) = action else {
            return Err(HandlerError::InvalidInput(format!(
                "\"action\" must be a string, got {}",
                kind_of(action)
            )));
        };
        return Ok(Incoming::Manual {
            action: action.clone(),
            payload,
        });
    }
    if fields.contains_key("detail-type") {
        return serde_json::from_value(payload)
            .map(Incoming::Event)
            .map_err(|e| HandlerError::InvalidInput(format!("malformed EventBridge event: {e}")));
    }
    Err(HandlerError::InvalidInput(
        "unrecognised payload: expected an EventBridge event (with \"detail-type\") or a manual request (with \"action\")"
            .to_string(),
    ))
}

/// Deserialize a manual request, naming the offending field on error.
pub fn parse_request<T: DeserializeOwned>(payload: Value) -> Result<T, HandlerError> {
    serde_path_to_error::deserialize(payload).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            HandlerError::InvalidInput(inner.to_string())
        } else {
            HandlerError::InvalidInput(format!("{path}: {inner}"))
        }
    })
}

/// The error for an action this function does not perform.
pub fn unknown_action(action: &str, known: &[&str]) -> HandlerError {
    HandlerError::InvalidInput(format!(
        "unknown action `{action}`; this function performs: {}",
        known.join(", ")
    ))
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies_schedule_and_manual_requests() {
        let event = json!({"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "1", "time": "2026-11-21T02:00:00Z", "region": "us-east-1", "resources": [], "detail": {}});
        assert!(
            matches!(classify(event).unwrap(), Incoming::Event(e) if e.detail_type == SCHEDULED_EVENT)
        );
        let manual = classify(json!({"action": "snapshot", "databases": ["a"]})).unwrap();
        assert!(matches!(manual, Incoming::Manual { action, .. } if action == "snapshot"));
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        for (payload, expected) in [
            (json!([1, 2]), "got an array"),
            (json!({"action": 5}), "\"action\" must be a string"),
            (json!({"hello": "world"}), "unrecognised payload"),
            (
                json!({"detail-type": "Scheduled Event"}),
                "malformed EventBridge event",
            ),
        ] {
            let err = classify(payload).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn request_errors_name_the_field() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Request {
            retain_days: u32,
        }
        let err = parse_request::<Request>(json!({"retain_days": "ninety"}))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("invalid input: retain_days:"), "{err}");
    }
}
