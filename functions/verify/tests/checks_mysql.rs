//! Drill checks against the real MariaDB server on 127.0.0.1:3306 (root with an empty password; the server has
//! TLS disabled, so these tests use `TlsMode::Disable`, the test-only setting, and prove that `TlsMode::Require`
//! refuses to fall back to plain text). Each test creates its own database and a user with a password, and drops
//! both at the end. The tests fail, never skip, when the server is unreachable.

mod common;

use std::future::Future;
use std::time::Duration;

use chrono::{Duration as Minutes, NaiveDateTime};
use common::*;
use lifeboat::policy::Check;
use lifeboat_verify::checks::{Engine, Secret, Target, TlsMode, run_checks};
use mysql_async::prelude::Queryable;

async fn root(database: Option<&str>) -> mysql_async::Conn {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(3306)
        .user(Some("root"))
        .db_name(database)
        .prefer_socket(false);
    mysql_async::Conn::new(opts).await.unwrap_or_else(|e| {
        panic!("MariaDB on 127.0.0.1:3306 must be reachable for these tests: {e}")
    })
}

async fn seed(database: &str) {
    let mut db = root(Some(database)).await;
    let newest: NaiveDateTime = "2026-11-22T01:30:00".parse().expect("time");
    let bookings: Vec<String> = (0..1500)
        .map(|n| format!("('{}', 1.50)", newest - Minutes::minutes(n)))
        .collect();
    db.query_drop(format!(
        r#"
        SET time_zone = '+00:00';
        CREATE TABLE bookings (id INT AUTO_INCREMENT PRIMARY KEY, created_at DATETIME(6) NOT NULL,
                               amount DECIMAL(10,2) NOT NULL);
        INSERT INTO bookings (created_at, amount) VALUES {};
        CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL);
        INSERT INTO customers VALUES (1,'a'),(2,'b'),(3,'c'),(4,'d'),(5,'e'),(6,'f'),(7,'g'),(8,'h'),(9,'i'),(10,'j');
        CREATE TABLE events (id INT, at TIMESTAMP NULL);
        INSERT INTO events VALUES (1, '2026-11-18 09:00:00'), (2, '2026-11-19 02:00:00');
        CREATE TABLE empty_log (at DATETIME);
        CREATE TABLE null_times (id INT, at DATETIME NULL);
        INSERT INTO null_times VALUES (1, NULL);
        CREATE TABLE `odd``name` (x INT);
        INSERT INTO `odd``name` VALUES (1), (2);
        "#,
        bookings.join(",")
    ))
    .await
    .expect("seed the drill database");
    db.disconnect().await.expect("disconnect");
}

/// Create a database and a user with [`PASSWORD`] allowed into it, seed it, run `body` with its name (also the
/// user name), and drop both even if `body` panics.
async fn with_database<F, Fut>(tag: &str, body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let name = unique_name(tag);
    let mut admin = root(None).await;
    admin
        .query_drop(format!(
            "CREATE DATABASE `{name}`; CREATE USER '{name}'@'%' IDENTIFIED BY '{PASSWORD}'; \
             GRANT ALL ON `{name}`.* TO '{name}'@'%'"
        ))
        .await
        .expect("create the drill database and user");
    seed(&name).await;
    let outcome = tokio::spawn(body(name.clone())).await;
    admin
        .query_drop(format!("DROP DATABASE `{name}`; DROP USER '{name}'@'%'"))
        .await
        .expect("drop the drill database and user");
    admin.disconnect().await.expect("disconnect");
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

fn target(name: &str, port: u16, tls: TlsMode) -> Target {
    Target {
        engine: Engine::from_rds_engine("mariadb").expect("engine"),
        host: "127.0.0.1".into(),
        port,
        user: name.into(),
        password: Secret::new(PASSWORD),
        database: Some(name.into()),
        tls,
    }
}

#[tokio::test]
async fn all_checks_pass() {
    with_database("my_pass", |db| async move {
        let target = target(&db, 3306, TlsMode::Disable);
        let mut checks = passing_checks(&format!("{db}.customers"));
        checks.push(Check::TablesPresent {
            tables: vec!["odd`name".into()],
        });
        checks.push(Check::MinRows {
            table: format!("{db}.odd`name"),
            at_least: 2,
        });
        checks.push(Check::Freshness {
            // TIMESTAMP column, shown in UTC
            table: "events".into(),
            column: "at".into(),
            tolerance: Duration::from_secs(4 * 86_400),
        });
        let outcome = run_checks(&target, &checks, snapshot_time(), TIMEOUT).await;
        println!("{}", serde_json::to_string_pretty(&outcome).expect("json"));
        assert!(outcome.passed(), "{:#?}", outcome.results);
        assert_shape(&outcome, checks.len());
        assert_eq!(outcome.engine, Engine::MySql);

        assert_eq!(result(&outcome, "connectivity").actual, "connected");
        let tables = result(&outcome, "tables_present");
        assert_eq!(tables.actual, format!("present: bookings, {db}.customers"));
        let rows = result(&outcome, "min_rows:bookings");
        assert_eq!(
            (rows.expected.as_str(), rows.actual.as_str()),
            (">= 1000", "at least 1000")
        );
        let fresh = result(&outcome, "freshness:bookings.created_at");
        assert_eq!(fresh.expected, ">= 2026-11-22T01:00:00Z");
        assert_eq!(fresh.actual, "2026-11-22T01:30:00Z");
        assert_eq!(
            result(&outcome, "freshness:events.at").actual,
            "2026-11-19T02:00:00Z"
        );
        let count = result(&outcome, "customer-count");
        assert_eq!(
            (count.expected.as_str(), count.actual.as_str()),
            ("= 10", "10")
        );
        let revenue = result(&outcome, "revenue");
        assert_eq!(
            (revenue.expected.as_str(), revenue.actual.as_str()),
            (">= 1000", "2250.00")
        );
        assert_eq!(
            result(&outcome, &format!("min_rows:{db}.odd`name")).actual,
            "at least 2"
        );
        assert_no_secret(&target, &outcome);
    })
    .await;
}

#[tokio::test]
async fn failures_show_expected_and_actual() {
    with_database("my_fail", |db| async move {
        let target = target(&db, 3306, TlsMode::Disable);
        let checks = vec![
            Check::TablesPresent {
                tables: vec![
                    "bookings".into(),
                    "nosuch".into(),
                    "other_db.customers".into(),
                ],
            },
            Check::MinRows {
                table: "customers".into(),
                at_least: 100,
            },
            Check::MinRows {
                table: "nosuch".into(),
                at_least: 1,
            },
            Check::Freshness {
                table: "events".into(),
                column: "at".into(),
                tolerance: Duration::from_secs(3600),
            },
            Check::Freshness {
                table: "empty_log".into(),
                column: "at".into(),
                tolerance: Duration::from_secs(3600),
            },
            Check::Freshness {
                table: "null_times".into(),
                column: "at".into(),
                tolerance: Duration::from_secs(3600),
            },
            Check::Sql {
                name: "equals-fails".into(),
                query: "select count(*) from customers".into(),
                equals: Some("11".into()),
                at_least: None,
            },
            Check::Sql {
                name: "at-least-fails".into(),
                query: "select max(id) from customers".into(),
                equals: None,
                at_least: Some(10.5),
            },
            Check::Sql {
                name: "no-row".into(),
                query: "select 1 from customers where id < 0".into(),
                equals: Some("1".into()),
                at_least: None,
            },
            Check::Sql {
                name: "two-columns".into(),
                query: "select 1, 2".into(),
                equals: Some("1".into()),
                at_least: None,
            },
            Check::Sql {
                name: "bad-sql".into(),
                query: "select frobnicate()".into(),
                equals: Some("1".into()),
                at_least: None,
            },
            Check::MinRows {
                table: "bookings".into(),
                at_least: 1500,
            },
        ];
        let outcome = run_checks(&target, &checks, snapshot_time(), TIMEOUT).await;
        println!("{}", serde_json::to_string_pretty(&outcome).expect("json"));
        assert_shape(&outcome, checks.len());
        let passed: Vec<&str> = outcome
            .results
            .iter()
            .filter(|r| r.passed)
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(
            passed,
            ["connectivity", "min_rows:bookings"],
            "{:#?}",
            outcome.results
        );

        assert_eq!(
            result(&outcome, "tables_present").actual,
            "missing: nosuch, other_db.customers (present: bookings)"
        );
        let rows = result(&outcome, "min_rows:customers");
        assert_eq!(
            (rows.expected.as_str(), rows.actual.as_str()),
            (">= 100", "10")
        );
        let missing = result(&outcome, "min_rows:nosuch");
        assert!(
            missing
                .actual
                .contains(&format!("Table '{db}.nosuch' doesn't exist")),
            "{missing:?}"
        );
        let stale = result(&outcome, "freshness:events.at");
        assert_eq!(
            (stale.expected.as_str(), stale.actual.as_str()),
            (">= 2026-11-22T01:00:00Z", "2026-11-19T02:00:00Z")
        );
        assert_eq!(result(&outcome, "freshness:empty_log.at").actual, "no rows");
        assert!(
            result(&outcome, "freshness:null_times.at")
                .actual
                .starts_with("no timestamp values")
        );
        let equals = result(&outcome, "equals-fails");
        assert_eq!(
            (equals.expected.as_str(), equals.actual.as_str()),
            ("= 11", "10")
        );
        let at_least = result(&outcome, "at-least-fails");
        assert_eq!(
            (at_least.expected.as_str(), at_least.actual.as_str()),
            (">= 10.5", "10")
        );
        assert!(result(&outcome, "no-row").actual.starts_with("no row"));
        assert!(
            result(&outcome, "two-columns")
                .actual
                .starts_with("2 columns")
        );
        let bad = result(&outcome, "bad-sql");
        assert!(
            bad.actual.contains("FUNCTION") && bad.actual.contains("frobnicate does not exist"),
            "{bad:?}"
        );
        assert_no_secret(&target, &outcome);
    })
    .await;
}

#[tokio::test]
async fn unreachable_database_fails_connectivity_and_runs_nothing() {
    let target = target(
        "lifeboat_drill_unreachable",
        closed_port(),
        TlsMode::Disable,
    );
    let checks = passing_checks("customers");
    let outcome = run_checks(&target, &checks, snapshot_time(), TIMEOUT).await;
    println!("{}", serde_json::to_string_pretty(&outcome).expect("json"));
    assert_shape(&outcome, checks.len());
    let connectivity = result(&outcome, "connectivity");
    assert!(!connectivity.passed);
    assert!(
        connectivity
            .actual
            .starts_with(&format!("cannot connect to 127.0.0.1:{}: ", target.port)),
        "{connectivity:?}"
    );
    assert!(
        connectivity.actual.contains("Connection refused"),
        "{connectivity:?}"
    );
    for r in &outcome.results[1..] {
        assert!(!r.passed, "{r:?}");
        assert_eq!(r.actual, "not run: no connection");
    }
    assert_no_secret(&target, &outcome);
}

#[tokio::test]
async fn tls_required_never_falls_back_to_plain_text() {
    with_database("my_tls", |db| async move {
        // This MariaDB has TLS disabled: a required TLS connection must fail, not go on unencrypted.
        let target = target(&db, 3306, TlsMode::Require { ca_bundle: None });
        let checks = passing_checks("customers");
        let outcome = run_checks(&target, &checks, snapshot_time(), TIMEOUT).await;
        println!("{}", serde_json::to_string_pretty(&outcome).expect("json"));
        let connectivity = result(&outcome, "connectivity");
        assert!(!connectivity.passed);
        assert!(connectivity.actual.contains("SSL"), "{connectivity:?}");
        assert!(
            outcome.results[1..]
                .iter()
                .all(|r| r.actual == "not run: no connection")
        );
        assert_no_secret(&target, &outcome);
    })
    .await;
}

#[tokio::test]
async fn a_wrong_password_fails_connectivity_without_showing_it() {
    with_database("my_auth", |db| async move {
        let mut target = target(&db, 3306, TlsMode::Disable);
        target.password = Secret::new(format!("{PASSWORD}-wrong"));
        let outcome = run_checks(
            &target,
            &passing_checks("customers"),
            snapshot_time(),
            TIMEOUT,
        )
        .await;
        let connectivity = result(&outcome, "connectivity");
        assert!(!connectivity.passed);
        assert!(
            connectivity.actual.contains("Access denied"),
            "{connectivity:?}"
        );
        assert_no_secret(&target, &outcome);
        let all = format!("{outcome:?}");
        assert!(!all.contains("-wrong"), "{all}");
    })
    .await;
}

#[tokio::test]
async fn sessions_are_read_only_and_names_cannot_inject_sql() {
    with_database("my_safe", |db| async move {
        let target = target(&db, 3306, TlsMode::Disable);
        let checks = hostile_checks("delete from customers");
        let outcome = run_checks(&target, &checks, snapshot_time(), TIMEOUT).await;
        println!("{}", serde_json::to_string_pretty(&outcome).expect("json"));
        assert_shape(&outcome, checks.len());
        let write = result(&outcome, "tries-to-write");
        assert!(!write.passed);
        assert!(write.actual.contains("READ ONLY"), "{write:?}");
        for r in &outcome.results[2..5] {
            assert!(!r.passed, "{r:?}");
        }
        assert_eq!(
            result(&outcome, "echoes-the-password").actual,
            "pw=[redacted]"
        );
        assert_no_secret(&target, &outcome);

        let mut conn = root(Some(&db)).await;
        let customers: Option<u64> = conn
            .query_first("select count(*) from customers")
            .await
            .unwrap();
        let bookings: Option<u64> = conn
            .query_first("select count(*) from bookings")
            .await
            .unwrap();
        assert_eq!((customers, bookings), (Some(10), Some(1500)));
        conn.disconnect().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_query_that_times_out_fails_and_the_next_check_still_runs() {
    with_database("my_slow", |db| async move {
        let target = target(&db, 3306, TlsMode::Disable);
        let checks = vec![
            Check::Sql {
                name: "slow".into(),
                query: "select sleep(30)".into(),
                equals: Some("0".into()),
                at_least: None,
            },
            Check::MinRows {
                table: "customers".into(),
                at_least: 10,
            },
        ];
        let started = std::time::Instant::now();
        let outcome = run_checks(&target, &checks, snapshot_time(), Duration::from_secs(1)).await;
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
        let slow = result(&outcome, "slow");
        assert!(!slow.passed);
        assert_eq!(slow.actual, "error: timed out after 1000ms running query slow");
        assert!(result(&outcome, "min_rows:customers").passed, "{:#?}", outcome.results);

        // The abandoned query was killed on the server.
        let mut conn = root(None).await;
        let running: Option<u64> = conn
            .query_first(format!(
                "select count(*) from information_schema.processlist where user = '{db}' and info like 'select sleep(30)%'"
            ))
            .await
            .unwrap();
        assert_eq!(running, Some(0));
        conn.disconnect().await.unwrap();
    })
    .await;
}
