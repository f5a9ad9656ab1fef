//! Helpers shared by the integration tests against the local PostgreSQL and MariaDB servers.

#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use lifeboat::policy::Check;
use lifeboat_verify::checks::{CheckResult, DrillChecks, Target};

/// The drill-only password used in tests; it must never show anywhere.
pub const PASSWORD: &str = "drill-only-S3cret-9f4e7c1a";

/// Time-out per connection and query in tests.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// When the restored snapshot was taken.
pub fn snapshot_time() -> DateTime<Utc> {
    "2026-11-22T02:00:00Z".parse().expect("valid time")
}

/// A database name unique to this test run: `lifeboat_drill_<pid>_<nanos>_<tag>`.
pub fn unique_name(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    format!(
        "lifeboat_drill_{}_{:x}_{tag}",
        std::process::id(),
        nanos % (1 << 40)
    )
}

/// A port on 127.0.0.1 that nothing listens on.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    port
}

/// The result named `name`, or a panic listing what there is.
pub fn result<'a>(checks: &'a DrillChecks, name: &str) -> &'a CheckResult {
    checks
        .get(name)
        .unwrap_or_else(|| panic!("no result named {name}: {:#?}", checks.results))
}

/// The password shows nowhere: not in the target's Debug, nor in any result, nor in the serialized report.
pub fn assert_no_secret(target: &Target, checks: &DrillChecks) {
    let debug = format!("{target:?}");
    assert!(
        !debug.contains(PASSWORD),
        "password in Debug of Target: {debug}"
    );
    assert!(debug.contains("[redacted]"), "{debug}");
    let all = format!(
        "{checks:?} {}",
        serde_json::to_string(checks).expect("json")
    );
    assert!(!all.contains(PASSWORD), "password in results: {all}");
}

/// The usual checks of a drill over the seeded tables, all of which pass.
pub fn passing_checks(qualified_customers: &str) -> Vec<Check> {
    vec![
        Check::TablesPresent {
            tables: vec!["bookings".into(), qualified_customers.into()],
        },
        Check::MinRows {
            table: "bookings".into(),
            at_least: 1000,
        },
        Check::Freshness {
            table: "bookings".into(),
            column: "created_at".into(),
            tolerance: Duration::from_secs(3600),
        },
        Check::Sql {
            name: "customer-count".into(),
            query: "select count(*) from customers".into(),
            equals: Some("10".into()),
            at_least: None,
        },
        Check::Sql {
            name: "revenue".into(),
            query: "select sum(amount) from bookings".into(),
            equals: None,
            at_least: Some(1000.0),
        },
    ]
}

/// Every result's duration is plausible and the connectivity check comes first.
pub fn assert_shape(checks: &DrillChecks, policy_checks: usize) {
    assert_eq!(
        checks.results.len(),
        policy_checks + 1,
        "{:#?}",
        checks.results
    );
    assert_eq!(checks.results[0].name, "connectivity");
    assert_eq!(checks.results[0].expected, "connect");
    for r in &checks.results {
        assert!(r.duration_ms <= checks.duration_ms + 1, "{r:?}");
    }
}

/// Checks that try to write, to inject SQL through identifiers and to echo the password; `write` is the engine's
/// form of a write that returns a value.
pub fn hostile_checks(write: &str) -> Vec<Check> {
    vec![
        Check::Sql {
            name: "tries-to-write".into(),
            query: write.into(),
            equals: Some("1".into()),
            at_least: None,
        },
        Check::MinRows {
            table: "customers; drop table bookings; --".into(),
            at_least: 1,
        },
        Check::Freshness {
            table: "bookings".into(),
            column: "created_at) from bookings; drop table bookings; --".into(),
            tolerance: Duration::from_secs(60),
        },
        Check::TablesPresent {
            tables: vec!["x'); drop table bookings; --".into()],
        },
        Check::Sql {
            name: "echoes-the-password".into(),
            query: format!("select 'pw={PASSWORD}'"),
            equals: Some("anything".into()),
            at_least: None,
        },
    ]
}
