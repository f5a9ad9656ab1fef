use chrono::TimeZone;
use proptest::prelude::*;

use super::*;
use crate::aws::rds::GlobalMember;
use crate::policy::Policy;

const NOW: i64 = 1_795_000_000;

fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(NOW, 0).unwrap()
}

fn policy(extra: &str) -> Policy {
    Policy::from_yaml(&format!(
        "version: 1\nname: live\nplans:\n  - name: app\n    select: {{identifiers: [app-db]}}\n    retention: {{keep_daily: 7}}\n    copies: [{{region: us-west-2, kms_key_id: alias/dr, retain_days: 90}}]\n    objectives: {{rpo: 5m, rto: 15m}}\n    failover:\n      region: us-west-2\n      database: app-db\n      subnet_group: dr-subnets\n      security_groups: [sg-app]\n      dns: {{hosted_zone_id: Z1, records: [db.example.com], drill_record: drill.example.com}}\n{extra}"
    ))
    .unwrap()
}

fn database(kind: DatabaseKind, status: &str) -> Database {
    Database {
        identifier: "app-db".into(),
        kind,
        arn: format!(
            "arn:aws:rds:us-east-1:123456789012:{}:app-db",
            if kind == DatabaseKind::Cluster {
                "cluster"
            } else {
                "db"
            }
        ),
        region: "us-east-1".into(),
        engine: "postgres".into(),
        engine_version: Some("16.4".into()),
        status: status.into(),
        encrypted: true,
        cluster: None,
        endpoint: None,
        master_username: Some("app".into()),
        replica_source: None,
        tags: Default::default(),
    }
}

fn copy(age_seconds: i64) -> Snapshot {
    Snapshot {
        identifier: format!("copy-{age_seconds}"),
        arn: format!("arn:aws:rds:us-west-2:123456789012:snapshot:copy-{age_seconds}"),
        region: "us-west-2".into(),
        kind: DatabaseKind::Instance,
        database: "app-db".into(),
        created_at: now() - TimeDelta::seconds(age_seconds),
        status: "available".into(),
        encrypted: true,
        copied_from: None,
        engine: Some("postgres".into()),
        tags: Default::default(),
    }
}

fn replica(status: &str) -> Replica {
    Replica {
        id: "app-db-replica".into(),
        arn: "arn:aws:rds:us-west-2:123456789012:db:app-db-replica".into(),
        status: status.into(),
        source: "arn:aws:rds:us-east-1:123456789012:db:app-db".into(),
        engine_version: "16.4".into(),
        endpoint: None,
    }
}

fn global() -> GlobalDatabase {
    GlobalDatabase {
        id: "app-global".into(),
        status: "available".into(),
        engine_version: "16.4".into(),
        members: vec![
            GlobalMember {
                cluster_arn: "arn:aws:rds:us-east-1:123456789012:cluster:app-db".into(),
                region: "us-east-1".into(),
                writer: true,
            },
            GlobalMember {
                cluster_arn: "arn:aws:rds:us-west-2:123456789012:cluster:app-db-west".into(),
                region: "us-west-2".into(),
                writer: false,
            },
        ],
    }
}

const GROUPS: [String; 0] = [];

struct World {
    policy: Policy,
    primary: Option<Database>,
    global: Option<GlobalDatabase>,
    replicas: Vec<Replica>,
    copies: Vec<Snapshot>,
    incident: bool,
}

impl World {
    fn new(policy: Policy) -> Self {
        World {
            policy,
            primary: Some(database(DatabaseKind::Instance, "available")),
            global: None,
            replicas: Vec::new(),
            copies: vec![copy(120)],
            incident: false,
        }
    }

    fn propose(&self, kind: Kind) -> Result<Proposal, Vec<String>> {
        let plan = &self.policy.plans[0];
        let settings = plan.failover.as_ref().unwrap();
        propose(&Situation {
            kind,
            settings,
            objectives: &plan.objectives,
            primary_region: "us-east-1",
            now: now(),
            primary: self.primary.as_ref(),
            incident: self.incident,
            global: self.global.as_ref(),
            replicas: &self.replicas,
            copies: &self.copies,
            replicated: None,
            engine: Some("postgres"),
            instance_class: Some("db.r6g.large"),
            network: Network {
                subnet_group: settings.subnet_group.as_deref(),
                security_groups: &settings.security_groups,
            },
            serving: None,
            failed_over_with: None,
            missing: Vec::new(),
            source_parameter_group: None,
            parameter_group: None,
        })
    }
}

#[test]
fn strategies_are_tried_in_the_policy_order() {
    let mut world = World::new(policy(""));
    world.replicas.push(replica("available"));
    let default = world.propose(Kind::Failover).unwrap();
    assert_eq!(
        default.action,
        Action::PromoteReplica {
            replica: "app-db-replica".into()
        }
    );
    let world = World {
        policy: policy("      strategies: [restore, replica]\n"),
        ..world
    };
    let restore_first = world.propose(Kind::Failover).unwrap();
    assert!(matches!(restore_first.action, Action::Restore { .. }));
    assert!(restore_first.target.starts_with(FAILOVER_PREFIX));
}

#[test]
fn a_healthy_global_database_switches_over_without_data_loss() {
    let mut world = World::new(policy(""));
    world.primary = Some(database(DatabaseKind::Cluster, "available"));
    world.global = Some(global());
    let proposal = world.propose(Kind::Failover).unwrap();
    assert!(matches!(proposal.action, Action::GlobalSwitchover { .. }));
    assert_eq!(proposal.target, "app-db-west");
    assert!(!proposal.loss.needs_acceptance);
    // An alarm says the primary is unhealthy, whatever its cluster reports: no switchover (it would wait for a
    // writer that is gone); without allow_data_loss the next strategy, a restore of the newest copy, is proposed.
    world.incident = true;
    let proposal = world.propose(Kind::Failover).unwrap();
    assert!(
        matches!(proposal.action, Action::Restore { .. }),
        "{proposal:?}"
    );
}

#[test]
fn an_unhealthy_global_primary_fails_over_only_when_data_loss_is_allowed() {
    let mut world = World::new(policy("      strategies: [global-database]\n"));
    world.primary = None;
    world.global = Some(global());
    let refused = world.propose(Kind::Failover).unwrap_err();
    assert!(refused.join(" ").contains("allow_data_loss"), "{refused:?}");
    let world = World {
        policy: policy("      strategies: [global-database]\n      allow_data_loss: true\n"),
        ..world
    };
    let proposal = world.propose(Kind::Failover).unwrap();
    assert_eq!(
        proposal.action,
        Action::GlobalFailover {
            global: "app-global".into(),
            target_arn: "arn:aws:rds:us-west-2:123456789012:cluster:app-db-west".into(),
            allow_data_loss: true
        }
    );
    assert!(proposal.loss.needs_acceptance);
}

#[test]
fn a_replica_backing_up_is_not_promoted() {
    let mut world = World::new(policy("      strategies: [replica]\n"));
    world.replicas.push(replica("backing-up"));
    let refused = world.propose(Kind::Failover).unwrap_err();
    assert!(refused[0].contains("backing-up"), "{refused:?}");
}

#[test]
fn a_drill_restores_even_where_a_replica_or_global_database_exists() {
    let mut world = World::new(policy(""));
    world.replicas.push(replica("available"));
    let proposal = world.propose(Kind::Drill).unwrap();
    assert!(matches!(proposal.action, Action::Restore { .. }));
    assert!(proposal.target.starts_with(DRILL_PREFIX));
}

#[test]
fn nothing_to_restore_says_so_with_every_reason() {
    let mut world = World::new(policy("      strategies: [restore]\n"));
    world.copies.clear();
    let refused = world.propose(Kind::Failover).unwrap_err();
    assert!(refused[0].contains("no recovery point"), "{refused:?}");
}

#[test]
fn missing_network_blocks_a_restore() {
    let world = World::new(policy(""));
    let plan = &world.policy.plans[0];
    let settings = plan.failover.as_ref().unwrap();
    let refused = propose(&Situation {
        kind: Kind::Failover,
        settings,
        objectives: &plan.objectives,
        primary_region: "us-east-1",
        now: now(),
        primary: world.primary.as_ref(),
        incident: false,
        global: None,
        replicas: &[],
        copies: &world.copies,
        replicated: None,
        engine: Some("postgres"),
        instance_class: None,
        network: Network {
            subnet_group: None,
            security_groups: &GROUPS,
        },
        serving: None,
        failed_over_with: None,
        missing: Vec::new(),
        source_parameter_group: None,
        parameter_group: None,
    })
    .unwrap_err();
    let all = refused.join(" | ");
    assert!(
        all.contains("instance class")
            && all.contains("subnet group")
            && all.contains("security groups"),
        "{all}"
    );
}

#[test]
fn the_newest_recovery_point_is_the_newer_of_copies_and_replicated_backups() {
    let copies = [copy(600), copy(60)];
    let window = Window {
        earliest: None,
        latest: now() - TimeDelta::seconds(30),
    };
    let point = newest_recovery_point(&copies, Some(("arn:backups", window))).unwrap();
    assert!(matches!(point, RecoveryPoint::ReplicatedBackup { .. }));
    let older = Window {
        earliest: None,
        latest: now() - TimeDelta::seconds(3000),
    };
    let point = newest_recovery_point(&copies, Some(("arn:backups", older))).unwrap();
    assert_eq!(point.time(), now() - TimeDelta::seconds(60));
}

fn run_of(proposal: Proposal, phase: Phase) -> Run {
    Run {
        id: "failover-1".into(),
        kind: Kind::Failover,
        plan: "app".into(),
        database: "app-db".into(),
        from_region: "us-east-1".into(),
        to_region: "us-west-2".into(),
        trigger: Trigger::Alarm {
            name: "app-down".into(),
            at: now() - TimeDelta::seconds(300),
        },
        detected_at: now() - TimeDelta::seconds(300),
        mode: FailoverMode::Approval,
        proposal,
        approval: Some(Approval {
            token_digest: token_digest("secret"),
            expires_at: now() + TimeDelta::hours(1),
            approved_by: None,
            approved_at: None,
            accepted_data_loss: false,
        }),
        cutover: None,
        phase,
        acted_at: None,
        ready_at: None,
        endpoint: None,
        checks: Vec::new(),
        checks_passed: None,
        dns_change: None,
        dns_submitted_at: None,
        dns_in_sync_at: None,
        old_primary: None,
        rto_seconds: None,
        rpo_seconds: None,
        outcome: None,
        notified: Vec::new(),
        failures: 0,
        history: Vec::new(),
        ended_at: None,
    }
}

#[test]
fn a_restore_run_goes_act_secure_check_switch_finish() {
    let world = World::new(policy(""));
    let mut run = run_of(world.propose(Kind::Failover).unwrap(), Phase::Preparing);
    let mut seen = Observed::default();
    assert_eq!(next_step(&run, &seen, now()), Step::Act);
    run.acted_at = Some(now());
    seen.exists = true;
    seen.acted = true;
    assert!(matches!(next_step(&run, &seen, now()), Step::Wait(_)));
    seen.available = true;
    assert_eq!(next_step(&run, &seen, now()), Step::Secure);
    seen.secured = true;
    assert_eq!(next_step(&run, &seen, now()), Step::Check);
    run.phase = Phase::SwitchingDns;
    assert_eq!(next_step(&run, &seen, now()), Step::SwitchDns);
    run.dns_submitted_at = Some(now());
    run.dns_change = Some("C1".into());
    assert!(matches!(next_step(&run, &seen, now()), Step::Wait(_)));
    seen.dns_in_sync = true;
    assert_eq!(next_step(&run, &seen, now()), Step::Finish);
    run.measure(now());
    assert_eq!(run.rto_seconds, Some(300));
    assert_eq!(run.rpo_seconds, Some(120));
}

#[test]
fn a_failed_restore_stops_the_run() {
    let world = World::new(policy(""));
    let run = run_of(world.propose(Kind::Failover).unwrap(), Phase::Preparing);
    let seen = Observed {
        exists: true,
        failed: true,
        acted: true,
        ..Observed::default()
    };
    assert!(matches!(next_step(&run, &seen, now()), Step::Fail(_)));
}

#[test]
fn approval_tokens_are_checked_for_value_and_expiry() {
    let world = World::new(policy(""));
    let run = run_of(
        world.propose(Kind::Failover).unwrap(),
        Phase::AwaitingApproval,
    );
    assert!(run.accepts(&token_digest("secret"), now()).is_ok());
    assert!(run.accepts(&token_digest("guess"), now()).is_err());
    let later = now() + TimeDelta::hours(2);
    assert!(
        run.accepts(&token_digest("secret"), later)
            .unwrap_err()
            .contains("expired")
    );
    assert_eq!(next_step(&run, &Observed::default(), later), Step::Expire);
}

fn observed() -> impl Strategy<Value = Observed> {
    (any::<[bool; 6]>(), proptest::option::of("[a-z]{1,8}")).prop_map(|(b, endpoint)| Observed {
        exists: b[0],
        available: b[1],
        failed: b[2],
        acted: b[3],
        secured: b[4],
        dns_in_sync: b[5],
        endpoint,
    })
}

proptest! {
    /// Nothing acts before approval: a run awaiting it only waits or expires, whatever RDS and Route 53 say.
    #[test]
    fn nothing_acts_before_approval(seen in observed(), minutes in 0i64..200) {
        let world = World::new(policy(""));
        let run = run_of(world.propose(Kind::Failover).unwrap(), Phase::AwaitingApproval);
        let step = next_step(&run, &seen, now() + TimeDelta::minutes(minutes));
        prop_assert!(matches!(step, Step::Wait(_) | Step::Expire), "{step:?}");
    }

    /// A restore asks for explicit acceptance exactly when its recovery point is older than the RPO.
    #[test]
    fn acceptance_is_needed_exactly_beyond_the_rpo(age in 0i64..7200) {
        let mut world = World::new(policy("      strategies: [restore]\n"));
        world.copies = vec![copy(age)];
        let proposal = world.propose(Kind::Failover).unwrap();
        prop_assert_eq!(proposal.loss.seconds, Some(age));
        prop_assert_eq!(proposal.loss.needs_acceptance, age > 300);
        prop_assert_eq!(proposal.loss.over_rpo, age > 300);
    }

    /// A drill never proposes anything but a restore under the drill prefix, whatever exists in the DR region.
    #[test]
    fn drills_never_touch_replicas_or_global_databases(with_replica in any::<bool>(), with_global in any::<bool>()) {
        let mut world = World::new(policy(""));
        if with_replica { world.replicas.push(replica("available")); }
        if with_global {
            world.primary = Some(database(DatabaseKind::Cluster, "available"));
            world.global = Some(global());
        }
        let proposal = world.propose(Kind::Drill).unwrap();
        let is_restore = matches!(proposal.action, Action::Restore { .. });
        prop_assert!(is_restore);
        prop_assert!(proposal.target.starts_with(DRILL_PREFIX));
    }

    /// Names of new databases are valid RDS identifiers: at most 63 characters, under their prefix.
    #[test]
    fn target_names_fit_rds(database in "[a-z]([a-z0-9]|-[a-z0-9]){0,40}", prefix in prop_oneof![Just(FAILOVER_PREFIX), Just(DRILL_PREFIX), Just(FAILBACK_PREFIX)]) {
        let name = target_name(prefix, &database, now());
        prop_assert!(name.len() <= 63);
        prop_assert!(name.starts_with(prefix));
        prop_assert!(!name.contains("--"));
    }
}
