//! The command line: where the functions are, one subcommand per operator action, and the request each sends.
//!
//! The payloads are the functions' contract: their field names are the functions' own. A new action is one
//! [`Command`] variant, one payload function and its arm in [`Command::request`].

use std::fmt;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use serde_json::{Map, Value};

use crate::time::{parse_point_in_time, rfc3339_utc};

/// The help heading of the options every subcommand takes.
const GLOBAL_OPTIONS: &str = "Global options";

/// `lifeboat`: run Lifeboat's disaster-recovery actions through its deployed functions.
#[derive(Debug, Parser)]
#[command(name = "lifeboat", version, about, long_about = None)]
pub struct Cli {
    /// Which deployment to talk to.
    #[command(flatten)]
    pub deployment: Deployment,
    /// Print the function's answer as JSON instead of tables.
    #[arg(long, global = true, help_heading = GLOBAL_OPTIONS)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Which deployment's functions to invoke, and how to reach them.
#[derive(Debug, Args)]
pub struct Deployment {
    /// Stack Lifeboat was deployed as: its functions are named `<stack>-<function>`.
    #[arg(long, global = true, default_value = "lifeboat", value_name = "STACK", help_heading = GLOBAL_OPTIONS)]
    pub stack: String,
    /// AWS region of the functions (default: the SDK's, from AWS_REGION or the profile). Give it before the
    /// subcommand: `drill` and `restore` have a --region of their own, the recovery point's.
    #[arg(long = "region", value_name = "REGION", help_heading = GLOBAL_OPTIONS)]
    pub functions_region: Option<String>,
    /// Invoke the functions of the local DR run (served by `cargo lambda watch`) instead of AWS.
    #[arg(long, global = true, help_heading = GLOBAL_OPTIONS)]
    pub local: bool,
    /// Invoke port of `cargo lambda watch`, with --local (default: env LIFEBOAT_INVOKE_PORT).
    #[arg(long, global = true, value_name = "PORT", help_heading = GLOBAL_OPTIONS)]
    pub invoke_port: Option<u16>,
}

/// An operator action.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Snapshot databases now, outside the schedule (before a deployment, a migration).
    Snapshot(SnapshotArgs),
    /// Delete the snapshots the retention policy no longer keeps, or list them (--dry-run).
    Retention(RetentionArgs),
    /// Start a restore drill now: restore a recovery point to a temporary database and check it.
    Drill(DrillArgs),
    /// The DR posture now: RPO per database and region, drills, findings.
    Report,
    /// Restore a database, to a point in time or from a snapshot, as a new database.
    Restore(RestoreArgs),
    /// Keep a restored database longer: push back the time it is deleted.
    Keep(KeepArgs),
    /// Advance the restores in progress and list them.
    Restores,
    /// Fail the application's database over to its DR region, approve, drill, fail back, or see where it is.
    #[command(subcommand)]
    Failover(FailoverCommand),
}

/// `lifeboat failover ...`.
#[derive(Debug, Subcommand)]
pub enum FailoverCommand {
    /// Ask for a failover of a plan's database: an approval request (what happens, the data lost) goes to on-call.
    Start(FailoverPlanArgs),
    /// Approve a failover, failback or cutover with the token from its approval request.
    Approve(ApproveArgs),
    /// Withdraw a request that awaits approval (nothing has changed yet).
    Cancel(FailoverPlanArgs),
    /// Run a failover drill now: the whole procedure on a drill database and the drill record, then cleaned up.
    Drill(FailoverPlanArgs),
    /// Ask to move the database back to the primary region (approval, then a cutover approval).
    Failback(FailoverPlanArgs),
    /// Where each plan's database is, the run in progress and the last one, what the names answer.
    Status(StatusArgs),
}

/// A failover action on one plan.
#[derive(Debug, Args)]
pub struct FailoverPlanArgs {
    /// The plan (its failover section says which database, region and names).
    #[arg(long, value_name = "PLAN")]
    pub plan: String,
    /// Why (an incident reference), recorded with the run.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// `lifeboat failover approve`.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The one-time token from the approval request.
    #[arg(value_name = "TOKEN")]
    pub token: String,
    /// Accept the data loss the request stated (required when it exceeds the RPO or writes may be lost).
    #[arg(long)]
    pub accept_data_loss: bool,
    /// Point the names at the new database even if the plan's checks fail.
    #[arg(long)]
    pub ignore_checks: bool,
}

/// `lifeboat failover status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this plan (default: every plan with a failover section).
    #[arg(long, value_name = "PLAN")]
    pub plan: Option<String>,
}

/// `lifeboat snapshot`.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// DB instance or Aurora cluster identifiers.
    #[arg(required = true, value_name = "DB")]
    pub databases: Vec<String>,
    /// Why the snapshots are taken (kept in their tags and the ledger).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Days to keep the snapshots (default: the policy's manual_snapshots.retain_days).
    #[arg(long, value_name = "N")]
    pub retain_days: Option<u32>,
}

/// `lifeboat retention`.
#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// List what would be deleted and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only this database (repeat for more; default: every database with managed snapshots).
    #[arg(long = "database", value_name = "DB")]
    pub databases: Vec<String>,
    /// Confirm a large deletion that the policy's max_delete_fraction refused, for the databases named.
    #[arg(long, requires = "databases")]
    pub allow_large_deletions: bool,
}

/// `lifeboat drill`.
#[derive(Debug, Args)]
pub struct DrillArgs {
    /// The database whose recovery point to prove.
    #[arg(value_name = "DB")]
    pub database: String,
    /// Snapshot identifier, or `latest` (the function's default).
    #[arg(long, value_name = "ID|latest")]
    pub snapshot: Option<String>,
    /// Region of the recovery point (default: the primary region; a DR region drills its copies).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
}

/// `lifeboat restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The database to restore (DB instance or Aurora cluster identifier).
    #[arg(value_name = "DB")]
    pub database: String,
    /// Restore to this time: RFC 3339 (2026-11-20T13:45:00Z) or 2026-11-20 13:45[:30] [+02:00] (UTC unless an
    /// offset is given).
    #[arg(long, value_name = "TIME", value_parser = parse_point_in_time, conflicts_with = "snapshot")]
    pub at: Option<DateTime<Utc>>,
    /// Restore from this snapshot identifier, or `latest`.
    #[arg(long, value_name = "ID|latest")]
    pub snapshot: Option<String>,
    /// Region of the recovery point (default: the primary region; a DR region restores from its copies).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Name of the new database (default: the restore function names it).
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,
    /// Why the database is restored (kept in its tags and the ledger); required unless --plan.
    #[arg(long, value_name = "TEXT", required_unless_present = "plan")]
    pub reason: Option<String>,
    /// How long the restored database is kept before it is deleted, for example 48h.
    #[arg(long, value_name = "DURATION")]
    pub expires_in: Option<String>,
    /// Show what would be restored (source, restorable window) and change nothing.
    #[arg(long)]
    pub plan: bool,
}

/// `lifeboat keep`.
#[derive(Debug, Args)]
pub struct KeepArgs {
    /// The restored database to keep.
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// How long from now to keep it, for example 48h (default: the restore function's).
    #[arg(long, value_name = "DURATION")]
    pub expires_in: Option<String>,
}

/// A deployed Lifeboat function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// Takes snapshots.
    Snapshot,
    /// Deletes expired snapshots.
    Retention,
    /// Runs restore drills.
    Verify,
    /// Assesses the DR posture.
    Monitor,
    /// Restores databases for real.
    Restore,
    /// Fails over, drills failovers and fails back.
    Failover,
}

impl Function {
    /// The function's name within a deployment (`<stack>-<name>` is its Lambda name).
    pub fn name(self) -> &'static str {
        match self {
            Function::Snapshot => "snapshot",
            Function::Retention => "retention",
            Function::Verify => "verify",
            Function::Monitor => "monitor",
            Function::Restore => "restore",
            Function::Failover => "failover",
        }
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A function to invoke and what to send it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The function that does it.
    pub function: Function,
    /// The payload, without the caller.
    pub payload: Map<String, Value>,
    /// Whether the payload must name the caller (`requested_by`): a restore is never anonymous.
    pub names_caller: bool,
}

impl Request {
    /// The request with the caller's ARN as `requested_by`.
    pub fn requested_by(mut self, caller_arn: &str) -> Self {
        self.payload
            .insert("requested_by".into(), caller_arn.into());
        self
    }
}

/// A payload under construction: the action first, then its fields; absent optional fields are left out.
struct Payload(Map<String, Value>);

impl Payload {
    fn action(action: &str) -> Self {
        Payload(Map::from_iter([("action".to_string(), action.into())]))
    }

    fn field(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.insert(key.to_string(), value.into());
        self
    }

    fn optional(self, key: &str, value: Option<impl Into<Value>>) -> Self {
        match value {
            Some(value) => self.field(key, value),
            None => self,
        }
    }

    fn sent_to(self, function: Function) -> Request {
        Request {
            function,
            payload: self.0,
            names_caller: false,
        }
    }

    fn sent_naming_the_caller_to(self, function: Function) -> Request {
        Request {
            names_caller: true,
            ..self.sent_to(function)
        }
    }
}

impl Command {
    /// The function this action invokes and the payload it sends.
    pub fn request(&self) -> Request {
        match self {
            Command::Snapshot(args) => snapshot_request(args),
            Command::Retention(args) => retention_request(args),
            Command::Drill(args) => drill_request(args),
            Command::Report => report_request(),
            Command::Restore(args) => restore_request(args),
            Command::Keep(args) => keep_request(args),
            Command::Restores => restores_request(),
            Command::Failover(command) => failover_request(command),
        }
    }
}

fn snapshot_request(args: &SnapshotArgs) -> Request {
    Payload::action("snapshot")
        .field("databases", args.databases.clone())
        .optional("reason", args.reason.clone())
        .optional("retain_days", args.retain_days)
        .sent_to(Function::Snapshot)
}

fn retention_request(args: &RetentionArgs) -> Request {
    Payload::action("retention")
        .field("dry_run", args.dry_run)
        .field("databases", args.databases.clone())
        .field("allow_large_deletions", args.allow_large_deletions)
        .sent_to(Function::Retention)
}

fn drill_request(args: &DrillArgs) -> Request {
    Payload::action("verify")
        .field("database", args.database.clone())
        .optional("snapshot", args.snapshot.clone())
        .optional("region", args.region.clone())
        .sent_to(Function::Verify)
}

fn report_request() -> Request {
    Payload::action("report").sent_to(Function::Monitor)
}

fn restore_request(args: &RestoreArgs) -> Request {
    Payload::action("restore")
        .field("database", args.database.clone())
        .optional("point_in_time", args.at.as_ref().map(rfc3339_utc))
        .optional("snapshot", args.snapshot.clone())
        .optional("region", args.region.clone())
        .optional("target", args.target.clone())
        .optional("reason", args.reason.clone())
        .optional("expires_in", args.expires_in.clone())
        .field("plan", args.plan)
        .sent_naming_the_caller_to(Function::Restore)
}

fn keep_request(args: &KeepArgs) -> Request {
    Payload::action("restore")
        .field("target", args.target.clone())
        .field("keep", true)
        .optional("expires_in", args.expires_in.clone())
        .sent_naming_the_caller_to(Function::Restore)
}

fn restores_request() -> Request {
    Payload::action("restore").sent_to(Function::Restore)
}

fn failover_request(command: &FailoverCommand) -> Request {
    let on_plan = |action: &str, args: &FailoverPlanArgs| {
        Payload::action(action)
            .field("plan", args.plan.clone())
            .optional("reason", args.reason.clone())
            .sent_naming_the_caller_to(Function::Failover)
    };
    match command {
        FailoverCommand::Start(args) => on_plan("failover", args),
        FailoverCommand::Cancel(args) => on_plan("cancel", args),
        FailoverCommand::Drill(args) => on_plan("drill", args),
        FailoverCommand::Failback(args) => on_plan("failback", args),
        FailoverCommand::Approve(args) => Payload::action("approve")
            .field("token", args.token.clone())
            .field("accept_data_loss", args.accept_data_loss)
            .field("ignore_checks", args.ignore_checks)
            .sent_naming_the_caller_to(Function::Failover),
        FailoverCommand::Status(args) => Payload::action("status")
            .optional("plan", args.plan.clone())
            .sent_to(Function::Failover),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use serde_json::json;

    const CALLER: &str = "arn:aws:sts::123456789012:assumed-role/OnCall/ana";

    /// What `lifeboat <words>` sends: the function and the payload (signed by [`CALLER`] when it must be).
    fn sent(words: &[&str]) -> (Function, Value) {
        let cli = Cli::try_parse_from(std::iter::once("lifeboat").chain(words.iter().copied()))
            .unwrap_or_else(|e| panic!("{words:?}: {e}"));
        let request = cli.command.request();
        let request = if request.names_caller {
            request.requested_by(CALLER)
        } else {
            request
        };
        (request.function, Value::Object(request.payload))
    }

    fn usage_error(words: &[&str]) -> clap::Error {
        Cli::try_parse_from(std::iter::once("lifeboat").chain(words.iter().copied()))
            .expect_err("a usage error")
    }

    #[test]
    fn snapshot_sends_the_databases_reason_and_retention() {
        assert_eq!(
            sent(&[
                "snapshot",
                "booking-db",
                "billing",
                "--reason",
                "pre-deploy v42",
                "--retain-days",
                "90"
            ]),
            (
                Function::Snapshot,
                json!({"action": "snapshot", "databases": ["booking-db", "billing"],
                       "reason": "pre-deploy v42", "retain_days": 90})
            )
        );
        assert_eq!(
            sent(&["snapshot", "booking-db"]),
            (
                Function::Snapshot,
                json!({"action": "snapshot", "databases": ["booking-db"]})
            )
        );
        assert_eq!(
            usage_error(&["snapshot"]).kind(),
            ErrorKind::MissingRequiredArgument
        );
    }

    #[test]
    fn failover_actions_send_the_plan_token_and_caller() {
        assert_eq!(
            sent(&[
                "failover",
                "start",
                "--plan",
                "liveevent",
                "--reason",
                "INC-1"
            ]),
            (
                Function::Failover,
                json!({"action": "failover", "plan": "liveevent", "reason": "INC-1", "requested_by": CALLER})
            )
        );
        assert_eq!(
            sent(&["failover", "approve", "abc123", "--accept-data-loss"]),
            (
                Function::Failover,
                json!({"action": "approve", "token": "abc123", "accept_data_loss": true,
                       "ignore_checks": false, "requested_by": CALLER})
            )
        );
        for (word, action) in [
            ("drill", "drill"),
            ("failback", "failback"),
            ("cancel", "cancel"),
        ] {
            assert_eq!(
                sent(&["failover", word, "--plan", "liveevent"]),
                (
                    Function::Failover,
                    json!({"action": action, "plan": "liveevent", "requested_by": CALLER})
                )
            );
        }
        assert_eq!(
            sent(&["failover", "status"]),
            (Function::Failover, json!({"action": "status"}))
        );
        assert_eq!(
            usage_error(&["failover", "drill"]).kind(),
            ErrorKind::MissingRequiredArgument
        );
    }

    #[test]
    fn retention_sends_every_field() {
        assert_eq!(
            sent(&["retention", "--dry-run"]),
            (
                Function::Retention,
                json!({"action": "retention", "dry_run": true, "databases": [], "allow_large_deletions": false})
            )
        );
        assert_eq!(
            sent(&[
                "retention",
                "--database",
                "booking-db",
                "--database",
                "billing",
                "--allow-large-deletions"
            ]),
            (
                Function::Retention,
                json!({"action": "retention", "dry_run": false, "databases": ["booking-db", "billing"],
                       "allow_large_deletions": true})
            )
        );
    }

    #[test]
    fn retention_refuses_large_deletions_for_no_database_named() {
        assert_eq!(
            usage_error(&["retention", "--allow-large-deletions"]).kind(),
            ErrorKind::MissingRequiredArgument
        );
    }

    #[test]
    fn drill_asks_the_verify_function() {
        assert_eq!(
            sent(&[
                "drill",
                "booking-db",
                "--snapshot",
                "latest",
                "--region",
                "us-west-2"
            ]),
            (
                Function::Verify,
                json!({"action": "verify", "database": "booking-db", "snapshot": "latest", "region": "us-west-2"})
            )
        );
        assert_eq!(
            sent(&["drill", "booking-db"]),
            (
                Function::Verify,
                json!({"action": "verify", "database": "booking-db"})
            )
        );
    }

    #[test]
    fn report_asks_the_monitor() {
        assert_eq!(
            sent(&["report"]),
            (Function::Monitor, json!({"action": "report"}))
        );
    }

    #[test]
    fn restore_to_a_point_in_time_sends_it_in_utc_and_names_the_caller() {
        assert_eq!(
            sent(&[
                "restore",
                "booking-db",
                "--at",
                "2026-11-20 15:45 +02:00",
                "--region",
                "us-west-2",
                "--target",
                "booking-db-restored",
                "--reason",
                "INC-1234 bad migration",
                "--expires-in",
                "48h"
            ]),
            (
                Function::Restore,
                json!({"action": "restore", "database": "booking-db", "point_in_time": "2026-11-20T13:45:00Z",
                       "region": "us-west-2", "target": "booking-db-restored", "reason": "INC-1234 bad migration",
                       "expires_in": "48h", "plan": false, "requested_by": CALLER})
            )
        );
    }

    #[test]
    fn restore_plan_from_a_snapshot_needs_no_reason() {
        assert_eq!(
            sent(&["restore", "booking-db", "--snapshot", "latest", "--plan"]),
            (
                Function::Restore,
                json!({"action": "restore", "database": "booking-db", "snapshot": "latest", "plan": true,
                       "requested_by": CALLER})
            )
        );
    }

    #[test]
    fn restore_refuses_a_missing_reason_two_sources_and_an_unreadable_time() {
        assert_eq!(
            usage_error(&["restore", "booking-db"]).kind(),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            usage_error(&[
                "restore",
                "booking-db",
                "--reason",
                "x",
                "--at",
                "2026-11-20 13:45",
                "--snapshot",
                "latest"
            ])
            .kind(),
            ErrorKind::ArgumentConflict
        );
        let unreadable = usage_error(&["restore", "booking-db", "--plan", "--at", "yesterday"]);
        assert_eq!(unreadable.kind(), ErrorKind::ValueValidation);
        assert!(
            unreadable.to_string().contains("2026-11-20 13:45 +02:00"),
            "{unreadable}"
        );
    }

    #[test]
    fn keep_extends_a_restored_database_as_the_caller() {
        assert_eq!(
            sent(&["keep", "booking-db-restored", "--expires-in", "72h"]),
            (
                Function::Restore,
                json!({"action": "restore", "target": "booking-db-restored", "keep": true, "expires_in": "72h",
                       "requested_by": CALLER})
            )
        );
    }

    #[test]
    fn restores_only_asks_for_the_list() {
        assert_eq!(
            sent(&["restores"]),
            (Function::Restore, json!({"action": "restore"}))
        );
    }

    #[test]
    fn the_functions_region_comes_before_the_subcommand_and_the_recovery_points_after() {
        let cli = Cli::try_parse_from([
            "lifeboat",
            "--region",
            "eu-west-1",
            "drill",
            "booking-db",
            "--region",
            "eu-central-1",
            "--stack",
            "lifeboat-dr",
            "--json",
        ])
        .unwrap();
        assert_eq!(
            cli.deployment.functions_region.as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(cli.deployment.stack, "lifeboat-dr");
        assert!(cli.json);
        assert_eq!(
            cli.command.request().payload.get("region"),
            Some(&json!("eu-central-1"))
        );
    }

    #[test]
    fn the_stack_defaults_to_lifeboat() {
        let cli = Cli::try_parse_from(["lifeboat", "report", "--local", "--invoke-port", "9001"])
            .unwrap();
        assert_eq!(cli.deployment.stack, "lifeboat");
        assert!(cli.deployment.local);
        assert_eq!(cli.deployment.invoke_port, Some(9001));
    }
}
