//! Drill checks against the real PostgreSQL server on 127.0.0.1:5432 (trust authentication, TLS with Debian's
//! snakeoil certificate for `localhost`). Each test creates its own database and drops it at the end. The tests
//! fail, never skip, when the server is unreachable.

mod common;

use std::future::Future;
use std::time::Duration;

use common::*;
use lifeboat::policy::Check;
use lifeboat_verify::checks::{CaBundle, Engine, Secret, Target, TlsMode, run_checks};

const SNAKEOIL_CERT: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

async fn admin(dbname: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port=5432 user=postgres dbname={dbname}"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap_or_else(|e| {
        panic!("PostgreSQL on 127.0.0.1:5432 must be reachable for these tests: {e}")
    });
    tokio::spawn(connection);
    client
}

async fn seed(dbname: &str) {
    let db = admin(dbname).await;
    db.batch_execute(
        r#"
        CREATE TABLE bookings (id serial PRIMARY KEY, created_at timestamptz NOT NULL, amount numeric(10,2) NOT NULL);
        INSERT INTO bookings (created_at, amount)
            SELECT timestamptz '2026-11-22 01:30:00+00' - n * interval '1 minute', 1.50
            FROM generate_series(0, 1499) AS n;
        CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
        INSERT INTO customers SELECT n, 'customer ' || n FROM generate_series(1, 10) AS n;
        CREATE TABLE events (id int, at timestamp without time zone);
        INSERT INTO events VALUES (1, '2026-11-18 09:00:00'), (2, '2026-11-19 02:00:00');
        CREATE TABLE empty_log (at timestamptz);
        CREATE TABLE null_times (id int, at timestamptz);
        INSERT INTO null_times VALUES (1, NULL);
        CREATE SCHEMA audit;
        CREATE TABLE audit."odd""name" (x int);
        INSERT INTO audit."odd""name" VALUES (1), (2);
        "#,
    )
    .await
    .expect("seed the drill database");
}

/// Create a database, seed it, run `body` with its name, and drop the database even if `body` panics.
async fn with_database<F, Fut>(tag: &str, body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let name = unique_name(tag);
    let postgres = admin("postgres").await;
    postgres
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create the drill database");
    seed(&name).await;
    let outcome = tokio::spawn(body(name.clone())).await;
    postgres
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .expect("drop the drill database");
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

fn target(database: &str, host: &str, port: u16, tls: TlsMode) -> Target {
    Target {
        engine: Engine::from_rds_engine("aurora-postgresql").expect("engine"),
        host: host.into(),
        port,
        user: "postgres".into(),
        password: Secret::new(PASSWORD),
        database: Some(database.into()),
        tls,
    }
}

fn unverified() -> TlsMode {
    TlsMode::Require { ca_bundle: None }
}

fn snakeoil() -> TlsMode {
    TlsMode::Require {
        ca_bundle: Some(CaBundle::from_path(SNAKEOIL_CERT).expect("snakeoil certificate")),
    }
}

/// A check that passes only over TLS: proves the session is encrypted.
fn over_tls() -> Check {
    Check::Sql {
        name: "session-uses-tls".into(),
        query: "select ssl::text from pg_stat_ssl where pid = pg_backend_pid()".into(),
        equals: Some("true".into()),
        at_least: None,
    }
}

#[tokio::test]
async fn all_checks_pass_over_tls() {
    with_database("pg_pass", |db| async move {
        let target = target(&db, "127.0.0.1", 5432, unverified());
        let mut checks = passing_checks("public.customers");
        checks.push(Check::TablesPresent {
            tables: vec!["audit.odd\"name".into()],
        });
        checks.push(Check::MinRows {
            table: "audit.odd\"name".into(),
            at_least: 2,
        });
        checks.push(Check::Freshness {
            // timestamp without time zone, read as UTC
            table: "events".into(),
            column: "at".into(),
            tolerance: Duration::from_secs(4 * 86_400),
        });
        checks.push(over_tls());
        let outcome = run_checks(&target, &checks, snapshot_time(), TIMEOUT).await;
        println!("{}", serde_json::to_string_pretty(&outcome).expect("json"));
        assert!(outcome.passed(), "{:#?}", outcome.results);
        assert_shape(&outcome, checks.len());
        assert_eq!(outcome.engine, Engine::Postgres);

        let connectivity = result(&outcome, "connectivity");
        assert_eq!(connectivity.actual, "connected");
        let tables = &outcome.results[1];
        assert_eq!(tables.name, "tables_present");
        assert_eq!(tables.expected, "present: bookings, public.customers");
        assert_eq!(tables.actual, "present: bookings, public.customers");
        let rows = result(&outcome, "min_rows:bookings");
        assert_eq!(
            (rows.expected.as_str(), rows.actual.as_str()),
            (">= 1000", "at least 1000")
        );
        let fresh = result(&outcome, "freshness:bookings.created_at");
        assert_eq!(fresh.expected, ">= 2026-11-22T01:00:00Z");
        assert_eq!(fresh.actual, "2026-11-22T01:30:00Z");
        let events = result(&outcome, "freshness:events.at");
        assert_eq!(events.actual, "2026-11-19T02:00:00Z");
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
            result(&outcome, "min_rows:audit.odd\"name").actual,
            "at least 2"
        );
        assert_eq!(result(&outcome, "session-uses-tls").actual, "true");
        assert_no_secret(&target, &outcome);
    })
    .await;
}

#[tokio::test]
async fn failures_show_expected_and_actual() {
    with_database("pg_fail", |db| async move {
        let target = target(&db, "127.0.0.1", 5432, unverified());
        let checks = vec![
            Check::TablesPresent {
                tables: vec![
                    "bookings".into(),
                    "nosuch".into(),
                    "public.Customers".into(),
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
            Check::Freshness {
                table: "customers".into(),
                column: "id".into(),
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
                query: "select 1 where false".into(),
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
                name: "two-rows".into(),
                query: "select id from customers where id <= 2".into(),
                equals: Some("1".into()),
                at_least: None,
            },
            Check::Sql {
                name: "bad-sql".into(),
                query: "select frobnicate()".into(),
                equals: Some("1".into()),
                at_least: None,
            },
            // Passing after all the failures: one failed query does not poison the session.
            Check::MinRows {
                table: "bookings".into(),
                at_least: 1500,
            },
        ];
        let outcome = run_checks(&target, &checks, snapshot_time(), TIMEOUT).await;
        println!("{}", serde_json::to_string_pretty(&outcome).expect("json"));
        assert_shape(&outcome, checks.len());
        assert!(!outcome.passed());
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

        let tables = result(&outcome, "tables_present");
        assert_eq!(
            tables.expected,
            "present: bookings, nosuch, public.Customers"
        );
        assert_eq!(
            tables.actual,
            "missing: nosuch, public.Customers (present: bookings)"
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
                .contains(r#"relation "nosuch" does not exist"#),
            "{missing:?}"
        );
        let stale = result(&outcome, "freshness:events.at");
        assert_eq!(stale.expected, ">= 2026-11-22T01:00:00Z");
        assert_eq!(stale.actual, "2026-11-19T02:00:00Z");
        assert_eq!(result(&outcome, "freshness:empty_log.at").actual, "no rows");
        assert!(
            result(&outcome, "freshness:null_times.at")
                .actual
                .starts_with("no timestamp values"),
            "{:?}",
            result(&outcome, "freshness:null_times.at")
        );
        let not_time = result(&outcome, "freshness:customers.id");
        assert!(
            not_time.actual.contains("cannot cast type integer"),
            "{not_time:?}"
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
        assert!(result(&outcome, "two-rows").actual.starts_with("2 rows"));
        let bad = result(&outcome, "bad-sql");
        assert!(
            bad.actual.contains("function frobnicate() does not exist"),
            "{bad:?}"
        );
        assert_eq!(
            result(&outcome, "min_rows:bookings").actual,
            "at least 1500"
        );
        assert_no_secret(&target, &outcome);
    })
    .await;
}

#[tokio::test]
async fn certificates_are_verified_against_the_ca_bundle() {
    with_database("pg_tls", |db| async move {
        // The snakeoil certificate is issued to `localhost`: verified TLS works under that name...
        let verified = target(&db, "localhost", 5432, snakeoil());
        let checks = vec![over_tls()];
        let outcome = run_checks(&verified, &checks, snapshot_time(), TIMEOUT).await;
        assert!(outcome.passed(), "{:#?}", outcome.results);

        // ...but not under an address the certificate does not name,
        let wrong_name = target(&db, "127.0.0.1", 5432, snakeoil());
        let outcome = run_checks(&wrong_name, &checks, snapshot_time(), TIMEOUT).await;
        let connectivity = result(&outcome, "connectivity");
        assert!(!connectivity.passed);
        assert!(
            connectivity
                .actual
                .starts_with("cannot connect to 127.0.0.1:5432: error performing TLS handshake")
                && connectivity
                    .actual
                    .contains("certificate not valid for name"),
            "{connectivity:?}"
        );
        assert_eq!(
            result(&outcome, "session-uses-tls").actual,
            "not run: no connection"
        );

        // ...nor against public roots, which do not include the server's issuer (as with RDS's CAs).
        let public_roots = TlsMode::Require {
            ca_bundle: Some(
                CaBundle::from_path("/etc/ssl/certs/ca-certificates.crt").expect("public roots"),
            ),
        };
        let outcome = run_checks(
            &target(&db, "localhost", 5432, public_roots),
            &checks,
            snapshot_time(),
            TIMEOUT,
        )
        .await;
        let connectivity = result(&outcome, "connectivity");
        assert!(!connectivity.passed);
        assert!(
            connectivity
                .actual
                .starts_with("cannot connect to localhost:5432: error performing TLS handshake")
                && connectivity.actual.contains("UnknownIssuer"),
            "{connectivity:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn plain_text_when_tls_is_disabled() {
    with_database("pg_plain", |db| async move {
        let plain = target(&db, "127.0.0.1", 5432, TlsMode::Disable);
        let checks = vec![Check::Sql {
            name: "session-uses-tls".into(),
            query: "select ssl::text from pg_stat_ssl where pid = pg_backend_pid()".into(),
            equals: Some("false".into()),
            at_least: None,
        }];
        let outcome = run_checks(&plain, &checks, snapshot_time(), TIMEOUT).await;
        assert!(outcome.passed(), "{:#?}", outcome.results);
    })
    .await;
}

#[tokio::test]
async fn unreachable_database_fails_connectivity_and_runs_nothing() {
    let target = target(
        "lifeboat_drill_unreachable",
        "127.0.0.1",
        closed_port(),
        unverified(),
    );
    let checks = passing_checks("public.customers");
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
        assert_eq!(r.duration_ms, 0);
    }
    assert_eq!(
        outcome
            .results
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        [
            "connectivity",
            "tables_present",
            "min_rows:bookings",
            "freshness:bookings.created_at",
            "customer-count",
            "revenue"
        ]
    );
    assert_eq!(
        result(&outcome, "freshness:bookings.created_at").expected,
        ">= 2026-11-22T01:00:00Z"
    );
    assert_no_secret(&target, &outcome);
}

#[tokio::test]
async fn sessions_are_read_only_and_names_cannot_inject_sql() {
    with_database("pg_safe", |db| async move {
        let target = target(&db, "127.0.0.1", 5432, unverified());
        let checks = hostile_checks("delete from customers returning 1");
        let outcome = run_checks(&target, &checks, snapshot_time(), TIMEOUT).await;
        println!("{}", serde_json::to_string_pretty(&outcome).expect("json"));
        assert_shape(&outcome, checks.len());
        let write = result(&outcome, "tries-to-write");
        assert!(!write.passed);
        assert!(write.actual.contains("read-only transaction"), "{write:?}");
        for r in &outcome.results[2..5] {
            assert!(!r.passed, "{r:?}");
        }
        assert_eq!(
            result(&outcome, "echoes-the-password").actual,
            "pw=[redacted]"
        );
        assert_no_secret(&target, &outcome);

        let db = admin(&db).await;
        let customers: i64 = db
            .query_one("select count(*) from customers", &[])
            .await
            .unwrap()
            .get(0);
        let bookings: i64 = db
            .query_one("select count(*) from bookings", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!((customers, bookings), (10, 1500));
    })
    .await;
}

#[tokio::test]
async fn a_query_that_times_out_fails_and_the_next_check_still_runs() {
    with_database("pg_slow", |db| async move {
        let target = target(&db, "127.0.0.1", 5432, unverified());
        let checks = vec![
            Check::Sql {
                name: "slow".into(),
                query: "select pg_sleep(30)::text".into(),
                equals: Some("".into()),
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

        // The abandoned query was cancelled on the server: within half a second of the run's end, well before the
        // server's own backstop (`statement_timeout`, a second after the client's time-out) would have stopped it.
        let db_admin = admin("postgres").await;
        let mut still_running = 1;
        for _ in 0..5 {
            still_running = db_admin
                .query_one(
                    "select count(*) from pg_stat_activity where datname = $1 and state = 'active' and query like '%pg_sleep(30)%' and pid <> pg_backend_pid()",
                    &[&db],
                )
                .await
                .unwrap()
                .get::<_, i64>(0);
            if still_running == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(still_running, 0, "the timed-out query still runs");
    })
    .await;
}
