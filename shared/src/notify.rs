//! Notifications: one SNS summary per run, written for the on-call person who has to act on it.

use std::fmt::Write;

use crate::aws::AwsError;
use crate::report::{Counts, ItemOutcome, ItemStatus};

/// SNS subjects are limited to 100 characters.
const MAX_SUBJECT_LEN: usize = 100;

/// What one run did, for the summary message.
#[derive(Debug, Clone)]
pub struct RunSummary<'a> {
    /// Function that ran (`snapshot`, `copy`, …).
    pub function: &'a str,
    /// Primary region of the run.
    pub region: &'a str,
    /// The invocation (Lambda request ID).
    pub run_id: &'a str,
    /// What caused the run.
    pub trigger: &'a str,
    /// Per-item results.
    pub items: &'a [ItemOutcome],
    /// Problems that are not about one item (ledger writes that failed, for example).
    pub run_errors: &'a [String],
    /// Where the ledger records of the run are.
    pub ledger_location: &'a str,
}

impl RunSummary<'_> {
    /// Whether anything in the run needs an operator.
    pub fn needs_attention(&self) -> bool {
        !self.run_errors.is_empty() || self.items.iter().any(ItemOutcome::needs_attention)
    }

    /// Subject line: what happened and where, within SNS's 100 characters.
    pub fn subject(&self) -> String {
        let c = Counts::of(self.items);
        let mut problems = Vec::new();
        if c.failed > 0 {
            problems.push(format!("{} failed", c.failed));
        }
        if c.skipped > 0 {
            problems.push(format!("{} skipped", c.skipped));
        }
        if !self.run_errors.is_empty() {
            problems.push(format!("{} run error(s)", self.run_errors.len()));
        }
        let what = if problems.is_empty() {
            "all ok".to_string()
        } else {
            problems.join(", ")
        };
        let subject = format!(
            "Lifeboat {} in {}: {what} of {} item(s)",
            self.function,
            self.region,
            self.items.len()
        );
        subject.chars().take(MAX_SUBJECT_LEN).collect()
    }

    /// Message body: every item that needs attention with database, region, action, error and next step, then
    /// what went well.
    pub fn body(&self) -> String {
        let c = Counts::of(self.items);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Lifeboat {} run {} ({} trigger) in {}",
            self.function, self.run_id, self.trigger, self.region
        );
        let _ = writeln!(
            out,
            "Result: {} done, {} already done, {} skipped, {} failed.\n",
            c.done, c.unchanged, c.skipped, c.failed
        );
        for (heading, status) in [
            ("FAILED", ItemStatus::Failed),
            ("SKIPPED", ItemStatus::Skipped),
        ] {
            for item in self.items.iter().filter(|i| i.status == status) {
                let _ = writeln!(
                    out,
                    "{heading}: {} {} in {}",
                    item.kind, item.database, item.region
                );
                let _ = writeln!(out, "  action:    {}", item.action);
                if let Some(resource) = &item.resource {
                    let _ = writeln!(out, "  resource:  {resource}");
                }
                if let Some(detail) = &item.detail {
                    let _ = writeln!(out, "  error:     {detail}");
                }
                if let Some(next) = &item.next_step {
                    let _ = writeln!(out, "  next step: {next}");
                }
                out.push('\n');
            }
        }
        for error in self.run_errors {
            let _ = writeln!(out, "RUN ERROR: {error}\n");
        }
        let fine: Vec<String> = self
            .items
            .iter()
            .filter(|i| !i.needs_attention())
            .map(|i| format!("{} ({})", i.database, i.resource.as_deref().unwrap_or("-")))
            .collect();
        if !fine.is_empty() {
            let _ = writeln!(out, "OK: {}", fine.join(", "));
        }
        let _ = writeln!(out, "Audit trail: {}", self.ledger_location);
        out
    }
}

/// Publishes to the operators' SNS topic.
#[derive(Clone, Debug)]
pub struct Notifier {
    sns: aws_sdk_sns::Client,
    topic_arn: String,
    region: String,
}

impl Notifier {
    /// A notifier publishing to `topic_arn`.
    pub fn new(
        sns: aws_sdk_sns::Client,
        topic_arn: impl Into<String>,
        region: impl Into<String>,
    ) -> Self {
        Self {
            sns,
            topic_arn: topic_arn.into(),
            region: region.into(),
        }
    }

    /// Publish `summary` if anything in it needs attention. Returns the SNS message ID when one was sent; a
    /// failed publish comes back as a message for the run's errors (reported, never swallowed).
    pub async fn publish_if_needed(
        &self,
        summary: &RunSummary<'_>,
    ) -> Result<Option<String>, String> {
        if !summary.needs_attention() {
            return Ok(None);
        }
        match self.publish(summary).await {
            Ok(message_id) => Ok(Some(message_id)),
            Err(e) => {
                tracing::warn!(error = %e, "summary notification failed");
                Err(format!("notification failed: {e}"))
            }
        }
    }

    /// Publish a message with `subject` (cut to SNS's 100 characters) and `body` (cut by [`fit_body`]); returns
    /// the SNS message ID.
    pub async fn publish_text(&self, subject: &str, body: &str) -> Result<String, AwsError> {
        let out = self
            .sns
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject.chars().take(MAX_SUBJECT_LEN).collect::<String>())
            .message(fit_body(body))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("sns:Publish", &self.region, &e))?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }

    /// Publish `summary` (its body cut by [`fit_body`]); returns the SNS message ID.
    pub async fn publish(&self, summary: &RunSummary<'_>) -> Result<String, AwsError> {
        let out = self
            .sns
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(summary.subject())
            .message(fit_body(&summary.body()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("sns:Publish", &self.region, &e))?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }
}

/// Bytes of a message body Lifeboat sends: SNS refuses messages over 256 KiB, and a refused announcement would be
/// refused again on every run.
pub const MAX_BODY_BYTES: usize = 200_000;

/// `body`, cut at a line end to at most [`MAX_BODY_BYTES`] with a last line saying so.
pub fn fit_body(body: &str) -> std::borrow::Cow<'_, str> {
    if body.len() <= MAX_BODY_BYTES {
        return std::borrow::Cow::Borrowed(body);
    }
    let note =
        "\n… cut here: the message was longer than SNS allows; the posture report has all of it.";
    let mut end = MAX_BODY_BYTES - note.len();
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    let end = body[..end].rfind('\n').unwrap_or(end);
    std::borrow::Cow::Owned(format!("{}{note}", &body[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_longer_than_sns_allows_is_cut_at_a_line_and_says_so() {
        let short = "one line";
        assert_eq!(fit_body(short), short);
        let long: String = (0..20_000).map(|i| format!("condition {i}: é\n")).collect();
        let fitted = fit_body(&long);
        assert!(fitted.len() <= MAX_BODY_BYTES, "{}", fitted.len());
        assert!(fitted.ends_with("the posture report has all of it."));
        let kept = fitted.lines().rev().nth(1).unwrap();
        assert!(kept.ends_with(": é"), "cut at a line end: {kept}");
    }
    use crate::model::DatabaseKind;

    fn item(db: &str, status: ItemStatus, detail: Option<&str>) -> ItemOutcome {
        ItemOutcome {
            database: db.into(),
            kind: DatabaseKind::Instance,
            region: "us-east-1".into(),
            action: "create-snapshot".into(),
            status,
            resource: Some(format!("lifeboat-{db}-2026-11-21-0200")),
            detail: detail.map(Into::into),
            next_step: detail.map(|_| "raise the quota".into()),
        }
    }

    #[test]
    fn summary_names_what_failed_where_and_what_to_do() {
        let items = [
            item(
                "booking",
                ItemStatus::Failed,
                Some("manual snapshot quota exceeded"),
            ),
            item("billing", ItemStatus::Done, None),
            item(
                "reports",
                ItemStatus::Skipped,
                Some("status is `backing-up`"),
            ),
        ];
        let summary = RunSummary {
            function: "snapshot",
            region: "us-east-1",
            run_id: "req-1",
            trigger: "schedule",
            items: &items,
            run_errors: &[],
            ledger_location: "s3://ledger/ledger/2026/11/21/",
        };
        assert!(summary.needs_attention());
        assert_eq!(
            summary.subject(),
            "Lifeboat snapshot in us-east-1: 1 failed, 1 skipped of 3 item(s)"
        );
        let body = summary.body();
        assert!(
            body.contains("FAILED: instance booking in us-east-1"),
            "{body}"
        );
        assert!(body.contains("error:     manual snapshot quota exceeded"));
        assert!(body.contains("next step: raise the quota"));
        assert!(body.contains("SKIPPED: instance reports"));
        assert!(body.contains("OK: billing (lifeboat-billing-2026-11-21-0200)"));
    }

    #[test]
    fn subject_fits_sns_limit() {
        let items = [item("booking", ItemStatus::Done, None)];
        let long_region = "x".repeat(200);
        let summary = RunSummary {
            function: "snapshot",
            region: &long_region,
            run_id: "r",
            trigger: "manual",
            items: &items,
            run_errors: &[],
            ledger_location: "",
        };
        assert!(!summary.needs_attention());
        assert_eq!(summary.subject().chars().count(), MAX_SUBJECT_LEN);
    }
}
