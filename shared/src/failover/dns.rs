//! Which Route 53 changes point a run's names at its new database (pure).
//!
//! Plain CNAME records are rewritten. Names that use Route 53 failover routing (a PRIMARY and a SECONDARY record,
//! the PRIMARY with a health check) get both records pointed at the new database: whatever the health check says
//! later (the old primary coming back, its check turning healthy), the name answers with the new database. Lifeboat
//! never flips the health check: inverting a check that is already failing would make it healthy and send the
//! traffic to the dead primary, and a check that follows the old primary would send it back when that recovers.

use crate::aws::route53::{FailoverRole, RecordSet};
use crate::policy::{Failover, normalize_name};

/// Set identifier of a SECONDARY record Lifeboat has to create.
pub const SECONDARY_ID: &str = "lifeboat-secondary";

/// The records to UPSERT (in one change batch) so that `names` answer with `endpoint`, given the records there now
/// (`current`, any names). Errors name a record shape Lifeboat will not change.
pub fn switch(
    settings: &Failover,
    names: &[&str],
    current: &[RecordSet],
    endpoint: &str,
) -> Result<Vec<RecordSet>, String> {
    let ttl = i64::from(settings.dns.ttl);
    let mut upserts = Vec::new();
    for name in names {
        let name = normalize_name(name);
        let here: Vec<&RecordSet> = current
            .iter()
            .filter(|r| normalize_name(&r.name) == name)
            .collect();
        if let Some(other) = here.iter().find(|r| {
            r.alias
                || r.record_type != "CNAME"
                || (r.set_identifier.is_some() && r.failover.is_none())
        }) {
            return Err(format!(
                "{name} has a {}{} record: Lifeboat rewrites only CNAME records, plain or with failover routing \
                 (point the application at a CNAME)",
                other.record_type,
                if other.alias {
                    " alias"
                } else if other.failover.is_none() && other.set_identifier.is_some() {
                    " weighted or latency"
                } else {
                    ""
                }
            ));
        }
        let routed: Vec<&RecordSet> = here
            .iter()
            .copied()
            .filter(|r| r.failover.is_some())
            .collect();
        if routed.is_empty() {
            upserts.push(cname(&name, endpoint, ttl));
            continue;
        }
        upserts.extend(
            routed
                .into_iter()
                .filter(|r| !r.values.iter().any(|v| same_host(v, endpoint)))
                .map(|r| RecordSet {
                    values: vec![endpoint.to_string()],
                    ..r.clone()
                }),
        );
        if !here
            .iter()
            .any(|r| r.failover == Some(FailoverRole::Secondary))
        {
            upserts.push(RecordSet {
                set_identifier: Some(SECONDARY_ID.to_string()),
                failover: Some(FailoverRole::Secondary),
                ..cname(&name, endpoint, ttl)
            });
        }
    }
    Ok(upserts)
}

/// The drill record as it is now, to delete when the drill ends (`None`: already gone).
pub fn drill_record(settings: &Failover, current: &[RecordSet]) -> Option<RecordSet> {
    let name = normalize_name(settings.dns.drill_record.as_deref()?);
    current
        .iter()
        .find(|r| normalize_name(&r.name) == name && r.record_type == "CNAME")
        .cloned()
}

/// A simple CNAME record.
fn cname(name: &str, endpoint: &str, ttl: i64) -> RecordSet {
    RecordSet {
        name: name.to_string(),
        record_type: "CNAME".into(),
        ttl: Some(ttl),
        values: vec![endpoint.to_string()],
        set_identifier: None,
        failover: None,
        health_check_id: None,
        alias: false,
    }
}

/// Two host names are the same host (case and the final dot aside).
fn same_host(a: &str, b: &str) -> bool {
    normalize_name(a) == normalize_name(b)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::policy::Policy;

    fn settings() -> Failover {
        let yaml = "version: 1\nname: t\nplans:\n  - name: app\n    select: {identifiers: [app-db]}\n    retention: {keep_daily: 7}\n    copies: [{region: us-west-2, kms_key_id: alias/dr, retain_days: 7}]\n    objectives: {rpo: 5m, rto: 15m}\n    failover:\n      region: us-west-2\n      database: app-db\n      subnet_group: dr\n      security_groups: [sg-1]\n      dns:\n        hosted_zone_id: Z1\n        records: [db.example.com, ro.example.com]\n        drill_record: drill.example.com\n";
        Policy::from_yaml(yaml).unwrap().plans[0]
            .failover
            .clone()
            .unwrap()
    }

    fn record(name: &str, value: &str, role: Option<FailoverRole>) -> RecordSet {
        RecordSet {
            set_identifier: role.map(|r| format!("{r:?}").to_lowercase()),
            failover: role,
            health_check_id: (role == Some(FailoverRole::Primary)).then(|| "hc-1".to_string()),
            ..cname(name, value, 60)
        }
    }

    #[test]
    fn plain_records_are_rewritten_to_the_endpoint() {
        let current = [record("db.example.com.", "old.us-east-1.rds", None)];
        let upserts = switch(
            &settings(),
            &["db.example.com", "ro.example.com"],
            &current,
            "new.us-west-2.rds",
        )
        .unwrap();
        assert_eq!(upserts.len(), 2);
        assert!(upserts.iter().all(|r| r.values == ["new.us-west-2.rds"]
            && r.record_type == "CNAME"
            && r.ttl == Some(60)
            && r.failover.is_none()));
    }

    #[test]
    fn failover_routing_points_both_records_at_the_endpoint_keeping_their_health_checks() {
        let current = [
            record(
                "db.example.com",
                "old.us-east-1.rds",
                Some(FailoverRole::Primary),
            ),
            record(
                "db.example.com",
                "stale.us-west-2.rds",
                Some(FailoverRole::Secondary),
            ),
        ];
        let upserts = switch(
            &settings(),
            &["db.example.com"],
            &current,
            "new.us-west-2.rds",
        )
        .unwrap();
        assert_eq!(upserts.len(), 2);
        assert!(upserts.iter().all(|r| r.values == ["new.us-west-2.rds"]));
        let primary = upserts
            .iter()
            .find(|r| r.failover == Some(FailoverRole::Primary))
            .unwrap();
        assert_eq!(primary.health_check_id.as_deref(), Some("hc-1"));
        assert_eq!(primary.set_identifier.as_deref(), Some("primary"));
        // A PRIMARY alone gets a SECONDARY beside it.
        let lone = switch(&settings(), &["db.example.com"], &current[..1], "new").unwrap();
        assert!(
            lone.iter()
                .any(|r| r.failover == Some(FailoverRole::Secondary)
                    && r.set_identifier.as_deref() == Some(SECONDARY_ID))
        );
    }

    #[test]
    fn alias_address_and_weighted_records_are_refused() {
        let mut a = record("db.example.com", "192.0.2.1", None);
        a.record_type = "A".into();
        let err = switch(&settings(), &["db.example.com"], &[a], "b").unwrap_err();
        assert!(err.contains("only CNAME"), "{err}");
        let mut weighted = record("db.example.com", "x", None);
        weighted.set_identifier = Some("blue".into());
        let err = switch(&settings(), &["db.example.com"], &[weighted], "b").unwrap_err();
        assert!(err.contains("weighted"), "{err}");
    }

    proptest! {
        /// Whatever the records' shape, once the changes are applied every record of every name asked for holds
        /// the endpoint, and a record already there is not rewritten.
        #[test]
        fn every_record_of_the_names_ends_at_the_endpoint(primary in any::<bool>(), secondary in any::<bool>(), done in any::<bool>()) {
            let value = if done { "new" } else { "old" };
            let mut current = vec![];
            if primary { current.push(record("db.example.com", value, Some(FailoverRole::Primary))); }
            if secondary { current.push(record("db.example.com", value, Some(FailoverRole::Secondary))); }
            let upserts = switch(&settings(), &["db.example.com"], &current, "new").unwrap();
            let mut after: Vec<RecordSet> = current.clone();
            for change in &upserts {
                after.retain(|r| (r.set_identifier.clone(), r.failover) != (change.set_identifier.clone(), change.failover));
                after.push(change.clone());
            }
            prop_assert!(!after.is_empty());
            prop_assert!(after.iter().all(|r| r.values == ["new"]));
            prop_assert!(upserts.iter().all(|u| !current.contains(u)));
        }
    }
}
