//! Route 53 adapter: reads and writes the record sets of one name and follows a change until it is in sync,
//! translating between SDK types and plain [`RecordSet`]s.
//!
//! Route 53 is a global service whose control plane lives in us-east-1 ([`super::AwsClients::route53`]).

use aws_sdk_route53::Client;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet,
    ResourceRecordSetFailover, RrType,
};
use serde::{Deserialize, Serialize};

use super::AwsError;

/// Role of a record in Route 53 failover routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FailoverRole {
    /// Answered while its health check is healthy (or when it has none).
    Primary,
    /// Answered while the primary's health check is unhealthy.
    Secondary,
}

/// One record set of a hosted zone, as plain values.
///
/// An alias record is reported with its alias target's DNS name as the single value and `alias: true`; the alias
/// target's hosted zone is not kept, so alias records are read, never written ([`Route53::upsert`] and
/// [`Route53::delete`] refuse them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSet {
    /// Fully qualified name, lower-case, without the trailing dot (`db.example.com`); Route 53's octal escapes
    /// (`\052` for `*`) decoded.
    pub name: String,
    /// Record type (`CNAME`, `A`, …).
    pub record_type: String,
    /// Time to live in seconds (`None` for alias records).
    pub ttl: Option<i64>,
    /// The values (a CNAME's target, an A record's addresses; an alias record's target DNS name).
    pub values: Vec<String>,
    /// What tells records of one name and type apart under a routing policy (failover, weighted, …).
    pub set_identifier: Option<String>,
    /// Its role in failover routing, if it is a failover record.
    pub failover: Option<FailoverRole>,
    /// The health check Route 53 consults before answering with it.
    pub health_check_id: Option<String>,
    /// Whether it is an alias record.
    pub alias: bool,
}

/// Route 53, through a client configured for its control plane.
#[derive(Clone, Debug)]
pub struct Route53 {
    client: Client,
    region: String,
}

impl Route53 {
    /// Route 53 through `client` (see [`super::AwsClients::route53`]).
    pub fn new(client: Client) -> Self {
        let region = client
            .config()
            .region()
            .map(ToString::to_string)
            .unwrap_or_else(|| "us-east-1".to_string());
        Self { client, region }
    }

    /// The record sets named `name` (any type, any set identifier; compared as [`RecordSet::name`] is) in hosted
    /// zone `zone_id`, in Route 53's order: ListResourceRecordSets from that name, stopping at the first other
    /// name, pages followed. Cost: one call per
    /// 300 record sets of the name (one call in practice).
    pub async fn records(&self, zone_id: &str, name: &str) -> Result<Vec<RecordSet>, AwsError> {
        let wanted = normalise(name);
        let mut found = Vec::new();
        let mut start = (wanted.clone(), None::<RrType>, None::<String>);
        loop {
            let out = self
                .client
                .list_resource_record_sets()
                .hosted_zone_id(zone_id)
                .start_record_name(&start.0)
                .set_start_record_type(start.1.clone())
                .set_start_record_identifier(start.2.clone())
                .send()
                .await
                .map_err(|e| {
                    AwsError::from_sdk("route53:ListResourceRecordSets", &self.region, &e)
                })?;
            for set in out.resource_record_sets() {
                if normalise(set.name()) != wanted {
                    return Ok(found);
                }
                found.push(record_set(set));
            }
            let next = match out.next_record_name() {
                Some(next) if out.is_truncated() && normalise(next) == wanted => (
                    next.to_string(),
                    out.next_record_type().cloned(),
                    out.next_record_identifier().map(str::to_string),
                ),
                _ => return Ok(found),
            };
            // A server that ignored the page's start would answer the same page forever.
            if next == start {
                return Ok(found);
            }
            start = next;
        }
    }

    /// UPSERT `records` in one change batch with `comment` (all or none take effect); returns the change's ID (for
    /// [`Route53::change_in_sync`]). Alias records are refused without a call.
    pub async fn upsert(
        &self,
        zone_id: &str,
        records: &[RecordSet],
        comment: &str,
    ) -> Result<String, AwsError> {
        self.change(ChangeAction::Upsert, zone_id, records, comment)
            .await
    }

    /// DELETE `records`, exactly as they are now (every value, TTL and health check must match, or Route 53 refuses
    /// the whole batch with `InvalidChangeBatch`), in one batch with `comment`; returns the change's ID. Used to
    /// remove drill records. A record already gone is refused the same way: read the name again
    /// ([`Route53::records`]) and delete what is left. Alias records are refused without a call.
    pub async fn delete(
        &self,
        zone_id: &str,
        records: &[RecordSet],
        comment: &str,
    ) -> Result<String, AwsError> {
        self.change(ChangeAction::Delete, zone_id, records, comment)
            .await
    }

    async fn change(
        &self,
        action: ChangeAction,
        zone_id: &str,
        records: &[RecordSet],
        comment: &str,
    ) -> Result<String, AwsError> {
        const OPERATION: &str = "route53:ChangeResourceRecordSets";
        let invalid = |message: String| AwsError::Service {
            operation: OPERATION.to_string(),
            region: self.region.clone(),
            code: "InvalidInput".to_string(),
            message,
        };
        let changes = records
            .iter()
            .map(|record| {
                if record.alias {
                    return Err(invalid(format!(
                        "{} {} is an alias record: Lifeboat does not know its alias target's hosted zone and \
                         never writes alias records",
                        record.name, record.record_type
                    )));
                }
                Change::builder()
                    .action(action.clone())
                    .resource_record_set(sdk_record_set(record).map_err(|e| invalid(e.to_string()))?)
                    .build()
                    .map_err(|e| invalid(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let batch = ChangeBatch::builder()
            .comment(comment)
            .set_changes(Some(changes))
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        let out = self
            .client
            .change_resource_record_sets()
            .hosted_zone_id(zone_id)
            .change_batch(batch)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(OPERATION, &self.region, &e))?;
        Ok(change_id(
            out.change_info().map(|c| c.id()).unwrap_or_default(),
        ))
    }

    /// Whether the change `change_id` has reached every Route 53 name server (`INSYNC`; `false` while `PENDING`).
    pub async fn change_in_sync(&self, change_id: &str) -> Result<bool, AwsError> {
        let out = self
            .client
            .get_change()
            .id(change_id)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("route53:GetChange", &self.region, &e))?;
        Ok(out
            .change_info()
            .is_some_and(|c| *c.status() == ChangeStatus::Insync))
    }
}

/// Which of `records` (the record sets of one name, as [`Route53::records`] returns them) Route 53 answers a query
/// of type `record_type` with, given which health checks are unhealthy (`unhealthy(id)`; Lifeboat passes "is
/// failing"):
/// - the simple record of that type;
/// - of failover records, the PRIMARY unless its health check is unhealthy and the SECONDARY's is not (when every
///   record of a group is unhealthy Route 53 considers them all healthy); a record without a health check is
///   healthy; a lone PRIMARY or SECONDARY is the answer;
/// - `None` when the name has no record of that type, or only records of another routing policy (weighted,
///   latency, …), which this does not decide.
pub fn answer<'a>(
    records: &'a [RecordSet],
    record_type: &str,
    unhealthy: impl Fn(&str) -> bool,
) -> Option<&'a RecordSet> {
    let of_type = || {
        records
            .iter()
            .filter(|r| r.record_type.eq_ignore_ascii_case(record_type))
    };
    let role = |role| of_type().find(|r| r.failover == Some(role));
    let healthy = |r: &RecordSet| !r.health_check_id.as_deref().is_some_and(&unhealthy);
    match (role(FailoverRole::Primary), role(FailoverRole::Secondary)) {
        (None, None) => of_type().find(|r| r.set_identifier.is_none()),
        (Some(primary), Some(secondary)) => Some(if healthy(primary) || !healthy(secondary) {
            primary
        } else {
            secondary
        }),
        (primary, secondary) => primary.or(secondary),
    }
}

/// A name as Lifeboat compares names: Route 53's `\ddd` octal escapes decoded, lower-case, without the trailing
/// dot.
fn normalise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        let escaped = rest
            .strip_prefix('\\')
            .and_then(|tail| tail.get(..3))
            .filter(|digits| digits.bytes().all(|b| (b'0'..=b'7').contains(&b)))
            .and_then(|digits| u8::from_str_radix(digits, 8).ok());
        match escaped {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[4..];
            }
            None => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    let out = out.strip_suffix('.').unwrap_or(&out);
    out.to_ascii_lowercase()
}

/// A change ID without Route 53's `/change/` prefix.
fn change_id(id: &str) -> String {
    id.trim_start_matches("/change/").to_string()
}

fn record_set(set: &ResourceRecordSet) -> RecordSet {
    let (values, alias) = match set.alias_target() {
        Some(target) => (vec![normalise(target.dns_name())], true),
        None => (
            set.resource_records()
                .iter()
                .map(|r| r.value().to_string())
                .collect(),
            false,
        ),
    };
    RecordSet {
        name: normalise(set.name()),
        record_type: set.r#type().as_str().to_string(),
        ttl: set.ttl(),
        values,
        set_identifier: set.set_identifier().map(str::to_string),
        failover: match set.failover() {
            Some(ResourceRecordSetFailover::Primary) => Some(FailoverRole::Primary),
            Some(ResourceRecordSetFailover::Secondary) => Some(FailoverRole::Secondary),
            _ => None,
        },
        health_check_id: set.health_check_id().map(str::to_string),
        alias,
    }
}

fn sdk_record_set(
    record: &RecordSet,
) -> Result<ResourceRecordSet, aws_smithy_types::error::operation::BuildError> {
    let values = record
        .values
        .iter()
        .map(|value| ResourceRecord::builder().value(value).build())
        .collect::<Result<Vec<_>, _>>()?;
    ResourceRecordSet::builder()
        .name(&record.name)
        .r#type(RrType::from(record.record_type.as_str()))
        .set_ttl(record.ttl)
        .set_resource_records(Some(values))
        .set_set_identifier(record.set_identifier.clone())
        .set_failover(record.failover.map(|role| match role {
            FailoverRole::Primary => ResourceRecordSetFailover::Primary,
            FailoverRole::Secondary => ResourceRecordSetFailover::Secondary,
        }))
        .set_health_check_id(record.health_check_id.clone())
        .build()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use aws_sdk_route53::operation::change_resource_record_sets::ChangeResourceRecordSetsOutput;
    use aws_sdk_route53::operation::get_change::GetChangeOutput;
    use aws_sdk_route53::operation::list_resource_record_sets::ListResourceRecordSetsOutput;
    use aws_sdk_route53::types::{AliasTarget, ChangeInfo};
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use proptest::prelude::*;

    fn no_sdk_retries(
        config: aws_sdk_route53::config::Builder,
    ) -> aws_sdk_route53::config::Builder {
        config.retry_config(aws_sdk_route53::config::retry::RetryConfig::disabled())
    }

    fn route53(rules: &[&Rule]) -> Route53 {
        Route53::new(mock_client!(
            aws_sdk_route53,
            RuleMode::MatchAny,
            rules.iter().copied(),
            no_sdk_retries
        ))
    }

    /// Route 53's answer to a failed request: `status`, error `code` and `message`, as the REST-XML protocol has it.
    fn error(status: u16, code: &str, message: &str) -> aws_smithy_runtime_api::http::Response {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(status).unwrap(),
            aws_smithy_types::body::SdkBody::from(format!(
                "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">\
                 <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
                 <RequestId>4c5d2e3f</RequestId></ErrorResponse>"
            )),
        )
    }

    fn change_info(status: ChangeStatus) -> ChangeInfo {
        ChangeInfo::builder()
            .id("/change/C0441723226OZ66S5ZCNZ")
            .status(status)
            .submitted_at(aws_smithy_types::DateTime::from_secs(1_700_000_000))
            .build()
            .unwrap()
    }

    fn cname(name: &str, target: &str) -> RecordSet {
        RecordSet {
            name: name.into(),
            record_type: "CNAME".into(),
            ttl: Some(60),
            values: vec![target.into()],
            set_identifier: None,
            failover: None,
            health_check_id: None,
            alias: false,
        }
    }

    fn failover(role: FailoverRole, target: &str, health_check: Option<&str>) -> RecordSet {
        RecordSet {
            set_identifier: Some(format!("{role:?}").to_lowercase()),
            failover: Some(role),
            health_check_id: health_check.map(str::to_string),
            ..cname("db.example.com", target)
        }
    }

    fn sdk_cname(name: &str, set_identifier: Option<&str>) -> ResourceRecordSet {
        ResourceRecordSet::builder()
            .name(name)
            .r#type(RrType::Cname)
            .ttl(60)
            .resource_records(
                ResourceRecord::builder()
                    .value("x.example.net")
                    .build()
                    .unwrap(),
            )
            .set_set_identifier(set_identifier.map(str::to_string))
            .build()
            .unwrap()
    }

    #[test]
    fn names_are_compared_lower_case_without_the_dot_and_with_escapes_decoded() {
        assert_eq!(normalise("\\052.Example.COM."), "*.example.com");
        assert_eq!(normalise("db.example.com"), "db.example.com");
        assert_eq!(normalise("a\\0b.example.com."), "a\\0b.example.com");
        assert_eq!(change_id("/change/C123"), "C123");
        assert_eq!(change_id("C123"), "C123");
    }

    #[test]
    fn a_failing_primary_check_answers_with_the_secondary() {
        let records = vec![
            failover(FailoverRole::Primary, "primary.example.net", Some("hc-1")),
            failover(FailoverRole::Secondary, "dr.example.net", None),
        ];
        let failing: BTreeSet<&str> = BTreeSet::from(["hc-1"]);
        let chosen = answer(&records, "CNAME", |id| failing.contains(id)).unwrap();
        assert_eq!(chosen.values, ["dr.example.net"]);
        let chosen = answer(&records, "CNAME", |_| false).unwrap();
        assert_eq!(chosen.values, ["primary.example.net"]);
        assert_eq!(answer(&records, "A", |_| false), None);
        let weighted = vec![RecordSet {
            set_identifier: Some("blue".into()),
            ..cname("db.example.com", "blue.example.net")
        }];
        assert_eq!(answer(&weighted, "CNAME", |_| false), None);
    }

    /// Pages of one name are followed from where the last ended (name, type and set identifier), and the listing
    /// stops at the first other name.
    #[tokio::test]
    async fn records_follow_pages_and_stop_at_the_next_name() {
        let first = mock!(Client::list_resource_record_sets)
            .match_requests(|req| {
                req.hosted_zone_id() == Some("Z1")
                    && req.start_record_name() == Some("db.example.com")
                    && req.start_record_identifier().is_none()
            })
            .then_output(|| {
                ListResourceRecordSetsOutput::builder()
                    .resource_record_sets(sdk_cname("db.example.com.", Some("primary")))
                    .is_truncated(true)
                    .next_record_name("db.example.com.")
                    .next_record_type(RrType::Cname)
                    .next_record_identifier("secondary")
                    .max_items(1)
                    .build()
                    .unwrap()
            });
        let second = mock!(Client::list_resource_record_sets)
            .match_requests(|req| {
                req.start_record_name() == Some("db.example.com.")
                    && req.start_record_type() == Some(&RrType::Cname)
                    && req.start_record_identifier() == Some("secondary")
            })
            .then_output(|| {
                ListResourceRecordSetsOutput::builder()
                    .resource_record_sets(sdk_cname("db.example.com.", Some("secondary")))
                    .resource_record_sets(
                        ResourceRecordSet::builder()
                            .name("db.example.com.")
                            .r#type(RrType::A)
                            .alias_target(
                                AliasTarget::builder()
                                    .hosted_zone_id("Z35SXDOTRQ7X7K")
                                    .dns_name("DualStack.lb-1.us-east-1.elb.amazonaws.com.")
                                    .evaluate_target_health(false)
                                    .build()
                                    .unwrap(),
                            )
                            .build()
                            .unwrap(),
                    )
                    .resource_record_sets(sdk_cname("www.example.com.", None))
                    .is_truncated(true)
                    .next_record_name("zzz.example.com.")
                    .max_items(3)
                    .build()
                    .unwrap()
            });
        let found = route53(&[&first, &second])
            .records("Z1", "DB.example.com.")
            .await
            .unwrap();
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
        let ids: Vec<_> = found.iter().map(|r| r.set_identifier.as_deref()).collect();
        assert_eq!(ids, [Some("primary"), Some("secondary"), None]);
        assert!(found.iter().all(|r| r.name == "db.example.com"));
        assert_eq!(
            found[2],
            RecordSet {
                name: "db.example.com".into(),
                record_type: "A".into(),
                ttl: None,
                values: vec!["dualstack.lb-1.us-east-1.elb.amazonaws.com".into()],
                set_identifier: None,
                failover: None,
                health_check_id: None,
                alias: true,
            }
        );
    }

    #[tokio::test]
    async fn a_missing_zone_is_a_service_error_that_names_it() {
        let list = mock!(Client::list_resource_record_sets).then_http_response(|| {
            error(404, "NoSuchHostedZone", "No hosted zone found with ID: Z9")
        });
        let err = route53(&[&list])
            .records("Z9", "db.example.com")
            .await
            .unwrap_err();
        assert_eq!(
            err,
            AwsError::Service {
                operation: "route53:ListResourceRecordSets".into(),
                region: "us-east-1".into(),
                code: "NoSuchHostedZone".into(),
                message: "No hosted zone found with ID: Z9".into(),
            }
        );
        assert!(!err.is_retryable());
    }

    /// The batch carries every record as it is (failover role, set identifier, health check, TTL, values) under
    /// one comment, and the change ID comes back without its `/change/` prefix.
    #[tokio::test]
    async fn an_upsert_sends_one_batch_and_returns_the_change_id() {
        let upsert = mock!(Client::change_resource_record_sets)
            .match_requests(|req| {
                let Some(batch) = req.change_batch() else {
                    return false;
                };
                let sets: Vec<_> = batch
                    .changes()
                    .iter()
                    .map(|c| (c.action().clone(), c.resource_record_set().unwrap()))
                    .collect();
                req.hosted_zone_id() == Some("Z1")
                    && batch.comment() == Some("lifeboat failover drill")
                    && sets.len() == 2
                    && sets
                        .iter()
                        .all(|(action, _)| *action == ChangeAction::Upsert)
                    && sets[0].1.failover() == Some(&ResourceRecordSetFailover::Primary)
                    && sets[0].1.health_check_id() == Some("hc-1")
                    && sets[0].1.set_identifier() == Some("primary")
                    && sets[0].1.ttl() == Some(60)
                    && sets[1].1.failover() == Some(&ResourceRecordSetFailover::Secondary)
                    && sets[1].1.resource_records()[0].value() == "dr.example.net"
            })
            .then_output(|| {
                ChangeResourceRecordSetsOutput::builder()
                    .change_info(change_info(ChangeStatus::Pending))
                    .build()
            });
        let records = [
            failover(FailoverRole::Primary, "primary.example.net", Some("hc-1")),
            failover(FailoverRole::Secondary, "dr.example.net", None),
        ];
        let id = route53(&[&upsert])
            .upsert("Z1", &records, "lifeboat failover drill")
            .await
            .unwrap();
        assert_eq!(id, "C0441723226OZ66S5ZCNZ");
        assert_eq!(upsert.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_refused_batch_and_throttling_are_told_apart() {
        let refused = mock!(Client::change_resource_record_sets).then_http_response(|| {
            error(
                400,
                "InvalidChangeBatch",
                "[Tried to delete resource record set [name='db.example.com.', type='CNAME'] but it was not found]",
            )
        });
        let err = route53(&[&refused])
            .delete(
                "Z1",
                &[cname("db.example.com", "x.example.net")],
                "drill over",
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AwsError::Service { code, message, .. }
                if code == "InvalidChangeBatch" && message.contains("not found")),
            "{err:?}"
        );
        assert!(!err.is_retryable());

        let throttled = mock!(Client::change_resource_record_sets)
            .then_http_response(|| error(400, "Throttling", "Rate exceeded"));
        let err = route53(&[&throttled])
            .upsert("Z1", &[cname("db.example.com", "x.example.net")], "flip")
            .await
            .unwrap_err();
        assert!(matches!(err, AwsError::Throttled { .. }), "{err:?}");
        assert!(err.is_retryable());

        let busy = mock!(Client::change_resource_record_sets).then_http_response(|| {
            error(
                400,
                "PriorRequestNotComplete",
                "The request was rejected because Route 53 was still processing a prior request.",
            )
        });
        let err = route53(&[&busy])
            .upsert("Z1", &[cname("db.example.com", "x.example.net")], "flip")
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err:?}");
    }

    #[tokio::test]
    async fn alias_records_are_never_written() {
        let change = mock!(Client::change_resource_record_sets).then_output(|| {
            ChangeResourceRecordSetsOutput::builder()
                .change_info(change_info(ChangeStatus::Pending))
                .build()
        });
        let alias = RecordSet {
            record_type: "A".into(),
            ttl: None,
            alias: true,
            ..cname("db.example.com", "lb-1.us-east-1.elb.amazonaws.com")
        };
        let err = route53(&[&change])
            .delete("Z1", &[alias], "drill over")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("alias"), "{err}");
        assert_eq!(change.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_change_is_pending_until_it_is_in_sync() {
        let get = mock!(Client::get_change)
            .match_requests(|req| req.id() == Some("C0441723226OZ66S5ZCNZ"))
            .sequence()
            .output(|| {
                GetChangeOutput::builder()
                    .change_info(change_info(ChangeStatus::Pending))
                    .build()
            })
            .output(|| {
                GetChangeOutput::builder()
                    .change_info(change_info(ChangeStatus::Insync))
                    .build()
            })
            .build();
        let route53 = route53(&[&get]);
        assert!(
            !route53
                .change_in_sync("C0441723226OZ66S5ZCNZ")
                .await
                .unwrap()
        );
        assert!(
            route53
                .change_in_sync("C0441723226OZ66S5ZCNZ")
                .await
                .unwrap()
        );
        assert_eq!(get.num_calls(), 2);
    }

    /// How one record type of a name is set up in the generated zones.
    #[derive(Debug, Clone)]
    enum Group {
        /// One simple record.
        Simple,
        /// Weighted records (a routing policy `answer` does not decide).
        Weighted,
        /// Failover records: each role absent, or present with no health check (`None`) or one that is unhealthy
        /// (`Some(true)`) or healthy (`Some(false)`).
        Failover {
            primary: Option<Option<bool>>,
            secondary: Option<Option<bool>>,
        },
    }

    const TYPES: [&str; 3] = ["CNAME", "A", "TXT"];

    fn group() -> impl Strategy<Value = Group> {
        let role = || prop::option::of(prop::option::of(any::<bool>()));
        prop_oneof![
            Just(Group::Simple),
            Just(Group::Weighted),
            (role(), role())
                .prop_map(|(primary, secondary)| Group::Failover { primary, secondary }),
        ]
    }

    /// The records of one name (a group per record type, or none) and the health checks that are unhealthy.
    fn zone() -> impl Strategy<Value = (Vec<RecordSet>, BTreeSet<String>)> {
        prop::collection::vec(prop::option::of(group()), TYPES.len()).prop_map(|groups| {
            let mut records = Vec::new();
            let mut unhealthy = BTreeSet::new();
            for (record_type, group) in TYPES.iter().zip(groups) {
                let base = RecordSet {
                    record_type: record_type.to_string(),
                    ..cname("db.example.com", &format!("{record_type}-value"))
                };
                match group {
                    None => {}
                    Some(Group::Simple) => records.push(base),
                    Some(Group::Weighted) => {
                        for colour in ["blue", "green"] {
                            records.push(RecordSet {
                                set_identifier: Some(colour.into()),
                                ..base.clone()
                            });
                        }
                    }
                    Some(Group::Failover { primary, secondary }) => {
                        for (role, health) in [
                            (FailoverRole::Primary, primary),
                            (FailoverRole::Secondary, secondary),
                        ] {
                            let Some(health) = health else { continue };
                            let id = format!("hc-{record_type}-{role:?}");
                            if health == Some(true) {
                                unhealthy.insert(id.clone());
                            }
                            records.push(RecordSet {
                                set_identifier: Some(format!("{role:?}")),
                                failover: Some(role),
                                health_check_id: health.map(|_| id),
                                values: vec![format!("{record_type}-{role:?}")],
                                ..base.clone()
                            });
                        }
                    }
                }
            }
            (records, unhealthy)
        })
    }

    proptest! {
        /// The answer is a record of the type asked for; neither the order of the records nor the records of other
        /// types change it; and Route 53 answers whenever the name has a simple or failover record of that type.
        #[test]
        fn the_answer_is_one_record_of_the_type_asked_for(
            (records, unhealthy) in zone(),
            record_type in prop::sample::select(TYPES.to_vec()),
        ) {
            let unhealthy = |id: &str| unhealthy.contains(id);
            let chosen = answer(&records, record_type, unhealthy).cloned();
            if let Some(chosen) = &chosen {
                prop_assert_eq!(&chosen.record_type, record_type);
            }
            let reversed: Vec<_> = records.iter().rev().cloned().collect();
            prop_assert_eq!(&answer(&reversed, record_type, unhealthy).cloned(), &chosen);
            let alone: Vec<_> = records.iter().filter(|r| r.record_type == record_type).cloned().collect();
            prop_assert_eq!(&answer(&alone, record_type, unhealthy).cloned(), &chosen);
            let answerable = alone.iter().any(|r| r.failover.is_some() || r.set_identifier.is_none());
            prop_assert_eq!(chosen.is_some(), answerable);
        }

        /// With a PRIMARY and a SECONDARY whose health check (if any) is healthy, a failing PRIMARY health check
        /// answers with the SECONDARY, and healthy again with the PRIMARY; the
        /// SECONDARY's health never matters while the PRIMARY is healthy.
        #[test]
        fn failing_the_primary_check_answers_with_the_secondary(
            (records, unhealthy) in zone(),
            record_type in prop::sample::select(TYPES.to_vec()),
        ) {
            let of_type = |role| records.iter().find(|r| r.record_type == record_type && r.failover == Some(role));
            let (Some(primary), Some(secondary)) = (of_type(FailoverRole::Primary), of_type(FailoverRole::Secondary))
            else {
                return Ok(());
            };
            let Some(primary_check) = primary.health_check_id.clone() else {
                return Ok(());
            };
            let secondary_check = secondary.health_check_id.clone().unwrap_or_default();
            let failed = |id: &str| id == primary_check || (id == secondary_check && unhealthy.contains(id));
            let secondary_healthy = !unhealthy.contains(&secondary_check);
            let chosen = answer(&records, record_type, failed).unwrap();
            prop_assert_eq!(chosen.failover, Some(if secondary_healthy { FailoverRole::Secondary } else { FailoverRole::Primary }));
            for secondary_unhealthy in [false, true] {
                let recovered = |id: &str| id == secondary_check && secondary_unhealthy;
                prop_assert_eq!(answer(&records, record_type, recovered).unwrap().failover, Some(FailoverRole::Primary));
            }
        }
    }
}
