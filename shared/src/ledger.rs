//! The ledger: an append-only, tamper-evident audit trail of JSON records in an encrypted S3 bucket with Object
//! Lock (every object is locked for the ledger's retention, see `infra/template.yaml`).
//!
//! A run writes at most two objects, whatever the number of resources it acts on: its intents as one object before
//! it acts (destructive actions: nothing is deleted unless its intent is on record) and its results as one object
//! after, under keys that sort by time (`ledger/yyyy/mm/dd/<timestamp>-<function>-<phase>-<id>.json`). Writes are
//! conditional (`If-None-Match: *`): S3 refuses to overwrite an existing key, so a bug or a replay can add records
//! but never rewrite one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aws::AwsError;

/// Version of the record format.
pub const RECORD_SCHEMA: u32 = 1;

/// Version of the run object format ([`RunRecord`]).
pub const RUN_SCHEMA: u32 = 2;

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

/// One ledger object: every intent (or every result) of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Object format version, [`RUN_SCHEMA`].
    pub schema: u32,
    /// When it was written.
    pub time: DateTime<Utc>,
    /// Function that ran.
    pub function: String,
    /// The invocation (Lambda request ID).
    pub run_id: String,
    /// Who or what caused the run.
    pub trigger: String,
    /// Intents (before acting) or results (after).
    pub phase: Phase,
    /// The deployment that ran (its name and home region).
    pub deployment: String,
    /// Its home region.
    pub home_region: String,
    /// The records, one per action.
    pub records: Vec<LedgerRecord>,
}

impl RunRecord {
    /// The S3 key of this object: sorts by time, unique per object.
    pub fn key(&self, unique: &str) -> String {
        format!(
            "{PREFIX}{}/{}-{}-{}-{unique}.json",
            self.time.format("%Y/%m/%d"),
            self.time.format("%Y%m%dT%H%M%S%.3fZ"),
            self.function,
            match self.phase {
                Phase::Intent => "intent",
                Phase::Result => "result",
            }
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

/// Calls of one ledger write before it gives up, each with the SDK's own retries.
pub const WRITE_ATTEMPTS: u32 = 4;

/// Pause before the second call of a ledger write; the n-th waits n times as long.
const WRITE_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// Writes ledger objects to S3.
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

    /// Write `run` as a new object, never over an existing one (`If-None-Match: *`); returns its key.
    ///
    /// Every write has a key of its own (a random part), so when S3 answers that the key exists (412), it is this
    /// write's own earlier attempt that landed and whose answer was lost: written. A write that fails for a
    /// passing reason (throttling, no answer, a 5xx) is sent again under the same key, up to [`WRITE_ATTEMPTS`]
    /// calls: a run whose result object is lost leaves its actions unrecorded for good, since the next run finds
    /// nothing left to do.
    pub async fn write(&self, run: &RunRecord) -> Result<String, LedgerError> {
        let key = run.key(&uuid::Uuid::new_v4().simple().to_string()[..12]);
        let body = serde_json::to_vec(run).expect("ledger records always serialize");
        let mut attempt = 1;
        loop {
            let result = self
                .s3
                .put_object()
                .bucket(&self.bucket)
                .key(&key)
                .if_none_match("*")
                .content_type("application/json")
                .body(body.clone().into())
                .send()
                .await;
            let source = match result {
                Ok(_) => return Ok(key),
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => {
                    return Ok(key);
                }
                Err(e) => AwsError::from_sdk("s3:PutObject", &self.region, &e),
            };
            // S3 answers 409 `ConditionalRequestConflict` while an earlier call's write of the key is still landing:
            // the next call ends with 412 (landed) or writes it.
            let conflict = matches!(
                &source,
                AwsError::Service { code, .. } if code == "ConditionalRequestConflict"
            );
            if attempt >= WRITE_ATTEMPTS
                || !(conflict || source.is_retryable() || source.may_have_taken_effect())
            {
                return Err(LedgerError {
                    bucket: self.bucket.clone(),
                    key,
                    source,
                });
            }
            tokio::time::sleep(WRITE_PAUSE * attempt).await;
            attempt += 1;
        }
    }
}

/// The ledger of one run: [`RunLedger::intend`] writes the run's intents as one object before it acts,
/// [`RunLedger::record`] collects its results and [`RunLedger::finish`] writes them as one object. Every record
/// gets the run's ID and trigger.
pub struct RunLedger<'a> {
    ledger: &'a Ledger,
    clock: &'a dyn crate::clock::Clock,
    deployment: &'a crate::ownership::Deployment,
    function: String,
    run_id: String,
    trigger: String,
    results: Vec<LedgerRecord>,
}

impl<'a> RunLedger<'a> {
    /// The ledger of run `run_id` of `function` (caused by `trigger`) of `deployment`.
    pub fn new(
        ledger: &'a Ledger,
        clock: &'a dyn crate::clock::Clock,
        deployment: &'a crate::ownership::Deployment,
        (function, run_id, trigger): (&str, &str, &str),
    ) -> Self {
        Self {
            ledger,
            clock,
            deployment,
            function: function.into(),
            run_id: run_id.into(),
            trigger: trigger.into(),
            results: Vec::new(),
        }
    }

    /// Write `intents` as one object before acting on them. Nothing is written when there are none. The caller
    /// must not act on them unless this succeeds.
    pub async fn intend(&self, intents: Vec<LedgerRecord>) -> Result<(), LedgerError> {
        self.write(Phase::Intent, intents).await
    }

    /// Collect the result of one action, written by [`RunLedger::finish`].
    pub fn record(&mut self, result: LedgerRecord) {
        self.results.push(result);
    }

    /// Write the collected results as one object (nothing when there are none).
    pub async fn finish(mut self) -> Result<(), LedgerError> {
        let results = std::mem::take(&mut self.results);
        self.write(Phase::Result, results).await
    }

    async fn write(&self, phase: Phase, mut records: Vec<LedgerRecord>) -> Result<(), LedgerError> {
        if records.is_empty() {
            return Ok(());
        }
        for record in &mut records {
            record.phase = phase;
            record.function.clone_from(&self.function);
            record.run_id.clone_from(&self.run_id);
            record.trigger.clone_from(&self.trigger);
        }
        let run = RunRecord {
            schema: RUN_SCHEMA,
            time: self.clock.now(),
            function: self.function.clone(),
            run_id: self.run_id.clone(),
            trigger: self.trigger.clone(),
            phase,
            deployment: self.deployment.name.clone(),
            home_region: self.deployment.home_region.clone(),
            records,
        };
        self.ledger.write(&run).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::operation::put_object::PutObjectOutput;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    fn record(resource: &str) -> LedgerRecord {
        LedgerRecord {
            schema: RECORD_SCHEMA,
            time: "2026-11-21T02:00:00Z".parse().unwrap(),
            function: String::new(),
            run_id: String::new(),
            trigger: String::new(),
            action: "delete-snapshot".into(),
            phase: Phase::Result,
            region: "us-east-1".into(),
            database: "db".into(),
            resource: resource.into(),
            reason: "plan".into(),
            outcome: None,
            error: None,
            details: serde_json::Value::Null,
        }
    }

    fn run_at(time: &str) -> RunRecord {
        RunRecord {
            schema: RUN_SCHEMA,
            time: time.parse().unwrap(),
            function: "retention".into(),
            run_id: "r".into(),
            trigger: "schedule".into(),
            phase: Phase::Intent,
            deployment: "lifeboat".into(),
            home_region: "us-east-1".into(),
            records: Vec::new(),
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
            times.iter().map(|t| (run_at(t).key("x"), *t)).collect();
        by_key.sort();
        let mut by_time: Vec<&str> = times.to_vec();
        by_time.sort_by_key(|t| t.parse::<DateTime<Utc>>().unwrap());
        assert_eq!(by_key.iter().map(|(_, t)| *t).collect::<Vec<_>>(), by_time);
        assert_eq!(
            run_at("2026-11-21T02:00:00Z").key("abc"),
            "ledger/2026/11/21/20261121T020000.000Z-retention-intent-abc.json"
        );
    }

    /// A run of any size writes one intent object and one result object, each conditional on the key being new.
    #[tokio::test]
    async fn a_run_writes_two_conditional_objects_whatever_its_size() {
        let put = mock!(aws_sdk_s3::Client::put_object)
            .match_requests(|req| req.if_none_match() == Some("*"))
            .then_output(|| PutObjectOutput::builder().build());
        let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&put]);
        let ledger = Ledger::new(s3, "ledger", "us-east-1");
        let clock = crate::clock::FixedClock("2026-11-22T04:00:00Z".parse().unwrap());
        let deployment = crate::ownership::Deployment::new("lifeboat", "us-east-1").unwrap();
        let mut run = RunLedger::new(
            &ledger,
            &clock,
            &deployment,
            ("retention", "run-1", "schedule"),
        );
        let intents: Vec<LedgerRecord> = (0..2_900).map(|i| record(&format!("s{i}"))).collect();
        run.intend(intents).await.unwrap();
        for i in 0..2_900 {
            run.record(record(&format!("s{i}")));
        }
        run.finish().await.unwrap();
        assert_eq!(put.num_calls(), 2, "2,900 deletions, two ledger objects");
    }

    /// Write one intent for a run against S3 answering every PUT with `status` and `body`; how many PUTs were sent.
    async fn intend_against(status: u16, body: &'static str) -> (Result<(), LedgerError>, usize) {
        let answer = mock!(aws_sdk_s3::Client::put_object).then_http_response(move || {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(status).unwrap(),
                aws_smithy_types::body::SdkBody::from(body),
            )
        });
        let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&answer]);
        let ledger = Ledger::new(s3, "ledger", "us-east-1");
        let clock = crate::clock::FixedClock("2026-11-22T04:00:00Z".parse().unwrap());
        let deployment = crate::ownership::Deployment::new("lifeboat", "us-east-1").unwrap();
        let run = RunLedger::new(
            &ledger,
            &clock,
            &deployment,
            ("retention", "run-1", "schedule"),
        );
        (run.intend(vec![record("s1")]).await, answer.num_calls())
    }

    /// A 412 means the key exists: with a key of its own per write, that is this write's own earlier attempt,
    /// which landed though its answer was lost. It counts as written, and nothing is sent over it.
    #[tokio::test]
    async fn a_key_that_exists_is_this_writes_own_landed_attempt() {
        let (result, puts) = intend_against(
            412,
            "<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>",
        )
        .await;
        result.unwrap();
        assert_eq!(puts, 1, "nothing is sent over the existing key");
    }

    /// A write whose calls fail for a passing reason is sent again; the call that finds the key taken (an earlier
    /// call landed, its answer lost: every call of one write uses one key) ends it as written.
    #[tokio::test]
    async fn a_write_that_fails_for_a_passing_reason_is_sent_again() {
        let put = mock!(aws_sdk_s3::Client::put_object)
            .sequence()
            .http_response(s3_error(500, "InternalError"))
            .times(2)
            .http_response(s3_error(412, "PreconditionFailed"))
            .build();
        let s3 = mock_client!(
            aws_sdk_s3,
            RuleMode::Sequential,
            [&put],
            without_sdk_retries
        );
        let ledger = Ledger::new(s3, "ledger", "us-east-1");
        ledger.write(&run_at("2026-11-22T04:00:00Z")).await.unwrap();
        assert_eq!(put.num_calls(), 3);
    }

    /// S3's 409 `ConditionalRequestConflict` (an earlier call's write of the key still landing) is sent again.
    #[tokio::test]
    async fn a_conditional_write_conflict_is_sent_again() {
        let put = mock!(aws_sdk_s3::Client::put_object)
            .sequence()
            .http_response(s3_error(409, "ConditionalRequestConflict"))
            .output(|| PutObjectOutput::builder().build())
            .build();
        let s3 = mock_client!(
            aws_sdk_s3,
            RuleMode::Sequential,
            [&put],
            without_sdk_retries
        );
        let ledger = Ledger::new(s3, "ledger", "us-east-1");
        ledger.write(&run_at("2026-11-22T04:00:00Z")).await.unwrap();
        assert_eq!(put.num_calls(), 2);
    }

    /// A write that S3 keeps throttling (503 `SlowDown`) gives up after [`WRITE_ATTEMPTS`] calls, with the error.
    #[tokio::test]
    async fn a_write_that_s3_keeps_throttling_gives_up_after_its_attempts() {
        let put =
            mock!(aws_sdk_s3::Client::put_object).then_http_response(s3_error(503, "SlowDown"));
        let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&put], without_sdk_retries);
        let ledger = Ledger::new(s3, "ledger", "us-east-1");
        let err = ledger
            .write(&run_at("2026-11-22T04:00:00Z"))
            .await
            .unwrap_err();
        assert!(
            matches!(err.source, AwsError::Throttled { .. }),
            "SlowDown is S3's throttling: {err}"
        );
        assert_eq!(put.num_calls(), WRITE_ATTEMPTS as usize);
    }

    /// An S3 answer with HTTP `status` and the error `code`.
    fn s3_error(
        status: u16,
        code: &'static str,
    ) -> impl Fn() -> aws_smithy_runtime_api::http::Response + Send + Sync + 'static {
        move || {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(status).unwrap(),
                aws_smithy_types::body::SdkBody::from(format!(
                    "<Error><Code>{code}</Code><Message>{code}</Message></Error>"
                )),
            )
        }
    }

    /// One request per SDK call, so that the tests count the ledger's own calls.
    fn without_sdk_retries(config: aws_sdk_s3::config::Builder) -> aws_sdk_s3::config::Builder {
        config.retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
    }

    /// Any other refusal is an error: the caller acts on none of the intents.
    #[tokio::test]
    async fn a_refused_write_is_an_error() {
        let (result, _) = intend_against(
            403,
            "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
        )
        .await;
        let err = result.unwrap_err();
        assert!(err.to_string().contains("was denied"), "{err}");
    }
}
