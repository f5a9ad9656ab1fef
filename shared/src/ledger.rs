//! The ledger: an append-only audit trail of JSON records in a versioned, encrypted S3 bucket, one object per
//! action, under keys that sort by time (`ledger/yyyy/mm/dd/<timestamp>-<function>-<action>-<id>.json`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aws::AwsError;

/// Version of the record format.
pub const RECORD_SCHEMA: u32 = 1;

/// Key prefix of all ledger records.
pub const PREFIX: &str = "ledger/";

/// Whether a record announces an action or reports its result. Destructive actions get both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Written before the action.
    Intent,
    /// Written after the action.
    Result,
}

/// One ledger record: who did what, to which resource, when, why, with what result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerRecord {
    /// Record format version.
    pub schema: u32,
    /// When it was written.
    pub time: DateTime<Utc>,
    /// Function that acted (`snapshot`, `copy`, …).
    pub function: String,
    /// The invocation (Lambda request ID).
    pub run_id: String,
    /// Who or what caused the run (`schedule`, `manual`, `rds-event`).
    pub trigger: String,
    /// The action, for example `create-snapshot`.
    pub action: String,
    /// Intent or result.
    pub phase: Phase,
    /// Region of the resource.
    pub region: String,
    /// Database concerned.
    pub database: String,
    /// The resource acted on (snapshot identifier or ARN).
    pub resource: String,
    /// Why (the policy and plan, or the operator's reason).
    pub reason: String,
    /// Result (`created`, `already-existed`, `failed`, …); absent on intent records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Error message of a failed action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Action-specific details (tags, sizes, durations).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

impl LedgerRecord {
    /// The S3 key of this record: sorts by time, unique per record.
    pub fn key(&self, unique: &str) -> String {
        format!(
            "{PREFIX}{}/{}-{}-{}-{unique}.json",
            self.time.format("%Y/%m/%d"),
            self.time.format("%Y%m%dT%H%M%S%.3fZ"),
            self.function,
            self.action
        )
    }
}

/// A ledger write that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ledger write to s3://{bucket}/{key} failed: {source}")]
pub struct LedgerError {
    /// Bucket.
    pub bucket: String,
    /// Key that was not written.
    pub key: String,
    /// The S3 error.
    pub source: AwsError,
}

/// Writes ledger records to S3.
#[derive(Clone, Debug)]
pub struct Ledger {
    s3: aws_sdk_s3::Client,
    bucket: String,
    region: String,
}

impl Ledger {
    /// A ledger in `bucket`.
    pub fn new(
        s3: aws_sdk_s3::Client,
        bucket: impl Into<String>,
        region: impl Into<String>,
    ) -> Self {
        Self {
            s3,
            bucket: bucket.into(),
            region: region.into(),
        }
    }

    /// The bucket records go to.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Where the records of a run at `time` are: `s3://<bucket>/ledger/yyyy/mm/dd/`.
    pub fn location(&self, time: DateTime<Utc>) -> String {
        format!("s3://{}/{PREFIX}{}/", self.bucket, time.format("%Y/%m/%d"))
    }

    /// Append `record`; returns its key.
    pub async fn append(&self, record: &LedgerRecord) -> Result<String, LedgerError> {
        let key = record.key(&uuid::Uuid::new_v4().simple().to_string()[..12]);
        let body = serde_json::to_vec(record).expect("ledger records always serialize");
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(body.into())
            .send()
            .await
            .map_err(|e| LedgerError {
                bucket: self.bucket.clone(),
                key: key.clone(),
                source: AwsError::from_sdk("s3:PutObject", &self.region, &e),
            })?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(time: &str) -> LedgerRecord {
        LedgerRecord {
            schema: RECORD_SCHEMA,
            time: time.parse().unwrap(),
            function: "snapshot".into(),
            run_id: "r".into(),
            trigger: "schedule".into(),
            action: "create-snapshot".into(),
            phase: Phase::Result,
            region: "us-east-1".into(),
            database: "db".into(),
            resource: "snap".into(),
            reason: "plan".into(),
            outcome: Some("created".into()),
            error: None,
            details: serde_json::Value::Null,
        }
    }

    #[test]
    fn keys_sort_by_time() {
        let times = [
            "2026-11-21T02:00:00.5Z",
            "2026-11-21T02:00:00.05Z",
            "2026-12-01T00:00:00Z",
            "2025-01-31T23:59:59Z",
        ];
        let mut by_key: Vec<(String, &str)> =
            times.iter().map(|t| (record(t).key("x"), *t)).collect();
        by_key.sort();
        let mut by_time: Vec<&str> = times.to_vec();
        by_time.sort_by_key(|t| t.parse::<DateTime<Utc>>().unwrap());
        assert_eq!(by_key.iter().map(|(_, t)| *t).collect::<Vec<_>>(), by_time);
        assert_eq!(
            record("2026-11-21T02:00:00Z").key("abc"),
            "ledger/2026/11/21/20261121T020000.000Z-snapshot-create-snapshot-abc.json"
        );
    }
}
