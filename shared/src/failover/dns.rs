//! Which Route 53 changes point a run's names at its new database (pure).
//!
//! Plain CNAME records are rewritten. Names that use Route 53 failover routing (a PRIMARY and a SECONDARY record,
//! the PRIMARY with a health check) keep their PRIMARY record: the SECONDARY is pointed at the DR database and the
//! PRIMARY's health check is inverted, so Route 53 answers with the SECONDARY. A failback points the PRIMARY at the
//! new primary database and turns the health check back.

use crate::aws::route53::{FailoverRole, RecordSet};
use crate::policy::{Failover, normalize_name};

use super::Kind;

/// Set identifier of a SECONDARY record Lifeboat has to create.
pub const SECONDARY_ID: &str = "lifeboat-secondary";

/// The changes of one switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsPlan {
    /// Records to UPSERT, in one change batch.
    pub upserts: Vec<RecordSet>,
    /// The health check to set, and its `Inverted` flag (after the records are in sync).
    pub health_check: Option<(String, bool)>,
}

/// The changes that make `names` answer with `endpoint` for a run of `kind`, given the records there now
/// (`current`, any names). Errors name a record shape Lifeboat will not change.
pub fn switch(
    settings: &Failover,
    kind: Kind,
    names: &[&str],
    current: &[RecordSet],
    endpoint: &str,
) -> Result<DnsPlan, String> {
    let ttl = i64::from(settings.dns.ttl);
    let routed = kind != Kind::Drill && settings.dns.health_check_id.is_some();
    let mut upserts = Vec::new();
    for name in names {
        let name = normalize_name(name);
        let here: Vec<&RecordSet> = current
            .iter()
            .filter(|r| normalize_name(&r.name) == name)
            .collect();
        if let Some(other) = here
            .iter()
            .find(|r| r.alias || (r.record_type != "CNAME" && r.set_identifier.is_none()))
        {
            return Err(format!(
                "{name} has a {} record{}: Lifeboat rewrites only CNAME records (point the application at a \
                 CNAME)",
                other.record_type,
                if other.alias { " (alias)" } else { "" }
            ));
        }
        if !routed {
            if here.iter().any(|r| r.failover.is_some()) {
                return Err(format!(
                    "{name} uses Route 53 failover routing: set failover.dns.health_check_id to the PRIMARY \
                     record's health check, so Lifeboat flips it rather than rewriting the records"
                ));
            }
            upserts.push(cname(&name, endpoint, ttl));
            continue;
        }
        let role = if kind == Kind::Failback {
            FailoverRole::Primary
        } else {
            FailoverRole::Secondary
        };
        match here.iter().find(|r| r.failover == Some(role)) {
            Some(record) if record.values.iter().any(|v| same_host(v, endpoint)) => {}
            Some(record) => upserts.push(RecordSet {
                values: vec![endpoint.to_string()],
                ..(*record).clone()
            }),
            None if role == FailoverRole::Secondary => upserts.push(RecordSet {
                set_identifier: Some(SECONDARY_ID.to_string()),
                failover: Some(FailoverRole::Secondary),
                ..cname(&name, endpoint, ttl)
            }),
            None => {
                return Err(format!(
                    "{name} has no PRIMARY failover record to point back at {endpoint}"
                ));
            }
        }
    }
    Ok(DnsPlan {
        upserts,
        health_check: settings
            .dns
            .health_check_id
            .clone()
            .filter(|_| routed)
            .map(|id| (id, kind == Kind::Failover)),
    })
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

    fn settings(health_check: bool) -> Failover {
        let yaml = format!(
            "version: 1\nname: t\nplans:\n  - name: app\n    select: {{identifiers: [app-db]}}\n    retention: {{keep_daily: 7}}\n    copies: [{{region: us-west-2, kms_key_id: alias/dr, retain_days: 7}}]\n    objectives: {{rpo: 5m, rto: 15m}}\n    failover:\n      region: us-west-2\n      database: app-db\n      subnet_group: dr\n      security_groups: [sg-1]\n      dns:\n        hosted_zone_id: Z1\n        records: [db.example.com, ro.example.com]\n        drill_record: drill.example.com\n{}",
            if health_check {
                "        health_check_id: hc-1\n"
            } else {
                ""
            }
        );
        Policy::from_yaml(&yaml).unwrap().plans[0]
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
        let s = settings(false);
        let current = [record("db.example.com.", "old.us-east-1.rds", None)];
        let plan = switch(
            &s,
            Kind::Failover,
            &["db.example.com", "ro.example.com"],
            &current,
            "new.us-west-2.rds",
        )
        .unwrap();
        assert_eq!(plan.health_check, None);
        assert_eq!(plan.upserts.len(), 2);
        assert!(
            plan.upserts
                .iter()
                .all(|r| r.values == ["new.us-west-2.rds"]
                    && r.record_type == "CNAME"
                    && r.ttl == Some(60))
        );
    }

    #[test]
    fn failover_routing_points_the_secondary_and_inverts_the_health_check() {
        let s = settings(true);
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
        let plan = switch(
            &s,
            Kind::Failover,
            &["db.example.com"],
            &current,
            "new.us-west-2.rds",
        )
        .unwrap();
        assert_eq!(plan.upserts.len(), 1);
        assert_eq!(plan.upserts[0].failover, Some(FailoverRole::Secondary));
        assert_eq!(plan.upserts[0].set_identifier.as_deref(), Some("secondary"));
        assert_eq!(plan.health_check, Some(("hc-1".into(), true)));
        // Failback points the PRIMARY at the new primary and turns the check back.
        let back = switch(
            &s,
            Kind::Failback,
            &["db.example.com"],
            &current,
            "back.us-east-1.rds",
        )
        .unwrap();
        assert_eq!(back.upserts[0].failover, Some(FailoverRole::Primary));
        assert_eq!(back.health_check, Some(("hc-1".into(), false)));
    }

    #[test]
    fn failover_routing_without_a_health_check_is_refused() {
        let s = settings(false);
        let current = [record("db.example.com", "a", Some(FailoverRole::Primary))];
        let err = switch(&s, Kind::Failover, &["db.example.com"], &current, "b").unwrap_err();
        assert!(err.contains("health_check_id"), "{err}");
    }

    #[test]
    fn alias_and_address_records_are_refused() {
        let s = settings(false);
        let mut a = record("db.example.com", "192.0.2.1", None);
        a.record_type = "A".into();
        let err = switch(&s, Kind::Failover, &["db.example.com"], &[a], "b").unwrap_err();
        assert!(err.contains("only CNAME"), "{err}");
    }

    proptest! {
        /// A drill changes only the drill record and never a health check, whatever the production records are.
        #[test]
        fn a_drill_changes_only_the_drill_record(health_check in any::<bool>(), endpoint in "[a-z]{1,12}\\.rds") {
            let s = settings(health_check);
            let current = [
                record("db.example.com", "old", Some(FailoverRole::Primary)),
                record("ro.example.com", "old", None),
            ];
            let names = [s.dns.drill_record.as_deref().unwrap()];
            let plan = switch(&s, Kind::Drill, &names, &current, &endpoint).unwrap();
            prop_assert_eq!(plan.health_check, None);
            prop_assert!(plan.upserts.iter().all(|r| r.name == "drill.example.com"));
        }

        /// Every name asked for answers with the endpoint once the plan is applied.
        #[test]
        fn every_name_ends_at_the_endpoint(health_check in any::<bool>(), secondary_exists in any::<bool>()) {
            let s = settings(health_check);
            let mut current = vec![];
            if health_check {
                current.push(record("db.example.com", "old", Some(FailoverRole::Primary)));
                if secondary_exists {
                    current.push(record("db.example.com", "stale", Some(FailoverRole::Secondary)));
                }
            }
            let plan = switch(&s, Kind::Failover, &["db.example.com"], &current, "new").unwrap();
            prop_assert!(plan.upserts.iter().any(|r| r.values == ["new"]));
        }
    }
}
