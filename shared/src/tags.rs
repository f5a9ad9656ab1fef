//! The `lifeboat:` tag namespace: the state Lifeboat keeps on AWS resources.

/// Marks a resource Lifeboat created and manages (`"true"`). Nothing without it is ever deleted.
pub const MANAGED: &str = "lifeboat:managed";
/// Name of the deployment (the stack) that made the resource: see [`crate::ownership`].
pub const DEPLOYMENT: &str = "lifeboat:deployment";
/// Home (primary) region of the deployment that made the resource: see [`crate::ownership`].
pub const HOME_REGION: &str = "lifeboat:home-region";
/// Name of the policy that caused the resource.
pub const POLICY: &str = "lifeboat:policy";
/// Name of the plan within the policy.
pub const PLAN: &str = "lifeboat:plan";
/// Identifier of the source database.
pub const SOURCE: &str = "lifeboat:source";
/// Kind of the source database (`instance` or `cluster`).
pub const SOURCE_KIND: &str = "lifeboat:source-kind";
/// Tiers a scheduled snapshot serves (`daily+weekly`), or `manual`.
pub const TIER: &str = "lifeboat:tier";
/// What caused the snapshot: `schedule` or `manual`.
pub const TRIGGER: &str = "lifeboat:trigger";
/// When Lifeboat requested the snapshot (RFC 3339, UTC).
pub const CREATED_AT: &str = "lifeboat:created-at";
/// When a manual snapshot stops being kept (RFC 3339, UTC).
pub const EXPIRES_AT: &str = "lifeboat:expires-at";
/// The operator's reason for a manual snapshot.
pub const REASON: &str = "lifeboat:reason";
/// Legal hold, set by operators only: retention never deletes a snapshot carrying it (whatever its value), nor any
/// other snapshot of the same lineage (its original and copies).
pub const LEGAL_HOLD: &str = "lifeboat:legal-hold";
/// When a restore of the snapshot was last verified (RFC 3339, UTC).
pub const VERIFIED_AT: &str = "lifeboat:verified-at";
/// On a cross-region copy: ARN of the snapshot it was copied from.
pub const COPIED_FROM: &str = "lifeboat:copied-from";
/// On a cross-region copy: region of the snapshot it was copied from.
pub const SOURCE_REGION: &str = "lifeboat:source-region";
/// On a cross-region copy: when Lifeboat requested the copy (RFC 3339, UTC). Copies age from their original's time
/// as RDS reports it (`OriginalSnapshotCreateTime`), never from this.
pub const COPIED_AT: &str = "lifeboat:copied-at";

/// Marks a restore drill's temporary instance or cluster; the value is the drill identifier.
pub const DRILL: &str = "lifeboat:drill";
/// The snapshot a drill restored.
pub const DRILL_SNAPSHOT: &str = "lifeboat:drill-snapshot";
/// The ARN of the snapshot a drill restored.
pub const DRILL_SNAPSHOT_ARN: &str = "lifeboat:drill-snapshot-arn";
/// When the recovery point a drill restored was taken (RFC 3339, UTC): what freshness checks measure against.
pub const DRILL_SNAPSHOT_TIME: &str = "lifeboat:drill-snapshot-time";
/// Where a drill is (`restoring`, `securing`, `cleaning-up`).
pub const DRILL_PHASE: &str = "lifeboat:drill-phase";
/// When a drill's restore was requested (RFC 3339, UTC).
pub const DRILL_STARTED_AT: &str = "lifeboat:drill-started-at";
/// When a drill's temporary database was first seen available (RFC 3339, UTC).
pub const DRILL_AVAILABLE_AT: &str = "lifeboat:drill-available-at";
/// How many check attempts of a drill failed for drill-infrastructure reasons (connection refused, time-outs, TLS,
/// authentication): the checks are retried on the same temporary database, up to
/// [`crate::restore::MAX_INFRASTRUCTURE_ATTEMPTS`].
pub const DRILL_ATTEMPTS: &str = "lifeboat:drill-attempts";
/// Marks a database the failover function made in a DR region (restored or a replica); the value is its
/// identifier.
pub const FAILOVER: &str = "lifeboat:failover";
/// The recovery point a failover database was restored from (`point-in-time` for replicated backups).
pub const FAILOVER_SNAPSHOT: &str = "lifeboat:failover-snapshot";
/// The ARN of that recovery point.
pub const FAILOVER_SNAPSHOT_ARN: &str = "lifeboat:failover-snapshot-arn";
/// The time of a failover database's data (RFC 3339, UTC).
pub const FAILOVER_SNAPSHOT_TIME: &str = "lifeboat:failover-snapshot-time";
/// Where a failover database's restore is (`restoring`, `securing`, `ready`).
pub const FAILOVER_PHASE: &str = "lifeboat:failover-phase";
/// When a failover database was requested (RFC 3339, UTC).
pub const FAILOVER_STARTED_AT: &str = "lifeboat:failover-started-at";
/// When a failover database was first seen available (RFC 3339, UTC).
pub const FAILOVER_AVAILABLE_AT: &str = "lifeboat:failover-available-at";
/// Check attempts of a failover database that failed for infrastructure reasons.
pub const FAILOVER_ATTEMPTS: &str = "lifeboat:failover-attempts";
/// The failover (or drill, or failback) that made a database: its identifier in the failover state.
pub const FAILOVER_RUN: &str = "lifeboat:failover-run";
/// On a failover drill's database: `true`. Drill databases are deleted when the drill ends; others never are.
pub const FAILOVER_DRILL: &str = "lifeboat:failover-drill";
/// Marks a database an operator restored ad hoc (the restore function); the value is its identifier.
pub const RESTORE: &str = "lifeboat:restore";
/// The snapshot an ad-hoc restore restored (`point-in-time` for a restore to a time).
pub const RESTORE_SNAPSHOT: &str = "lifeboat:restore-snapshot";
/// The ARN of what an ad-hoc restore restored (snapshot, source database or replicated automated backup).
pub const RESTORE_SNAPSHOT_ARN: &str = "lifeboat:restore-snapshot-arn";
/// The time of the data an ad-hoc restore holds (RFC 3339, UTC).
pub const RESTORE_SNAPSHOT_TIME: &str = "lifeboat:restore-snapshot-time";
/// Where an ad-hoc restore is (`restoring`, `securing`, `ready`, `retiring`, `cleaning-up`).
pub const RESTORE_PHASE: &str = "lifeboat:restore-phase";
/// When an ad-hoc restore was requested (RFC 3339, UTC).
pub const RESTORE_STARTED_AT: &str = "lifeboat:restore-started-at";
/// When an ad-hoc restore was first seen available (RFC 3339, UTC).
pub const RESTORE_AVAILABLE_AT: &str = "lifeboat:restore-available-at";
/// Check attempts of an ad-hoc restore that failed for infrastructure reasons.
pub const RESTORE_ATTEMPTS: &str = "lifeboat:restore-attempts";
/// Announcements sent about an ad-hoc restore (`ready`, `expiry`, joined by `+`).
pub const RESTORE_NOTIFIED: &str = "lifeboat:restore-notified";
/// The final snapshot an expired ad-hoc restore is deleted after.
pub const RESTORE_FINAL_SNAPSHOT: &str = "lifeboat:restore-final-snapshot";
/// `lifeboat:trigger` of an expired ad-hoc restore's final snapshot.
pub const RESTORE_EXPIRY_TRIGGER: &str = "restore-expiry";
/// Who asked for an ad-hoc restore (the caller's ARN, from STS).
pub const REQUESTED_BY: &str = "lifeboat:requested-by";
/// On a drilled snapshot: seconds its drill's restore took (requested to available); ad-hoc restore plans expect
/// as much.
pub const RESTORE_SECONDS: &str = "lifeboat:restore-seconds";
/// The result of the last restore drill of a snapshot (`passed` or `failed`).
pub const VERIFY_RESULT: &str = "lifeboat:verify-result";

/// Tag value `MANAGED` carries.
pub const TRUE: &str = "true";

/// The tier value of manual snapshots.
pub const MANUAL_TIER: &str = "manual";

/// RDS accepts at most 50 tags per resource.
pub const MAX_TAGS_PER_RESOURCE: usize = 50;

/// The longest tag value RDS accepts.
pub const MAX_TAG_VALUE_LEN: usize = 256;

/// Make free text (an operator's reason) acceptable as an RDS tag value: RDS allows letters, digits, white space
/// and `_ . : / = + - @`; anything else becomes `-`, and the result is cut to the length limit.
pub fn sanitize_value(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(MAX_TAG_VALUE_LEN)
        .collect()
}

/// Whether a tag key belongs to AWS (`aws:`) or Lifeboat (`lifeboat:`) rather than to the user.
pub fn is_reserved_key(key: &str) -> bool {
    key.starts_with("aws:") || key.starts_with("lifeboat:")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reason_keeps_allowed_characters() {
        assert_eq!(
            sanitize_value("pre-deploy v42: schema @ 10:00"),
            "pre-deploy v42: schema @ 10:00"
        );
        assert_eq!(
            sanitize_value("drop table; \"users\""),
            "drop table- -users-"
        );
    }

    proptest! {
        #[test]
        fn sanitized_values_are_always_valid(text in ".{0,400}") {
            let value = sanitize_value(&text);
            prop_assert!(value.chars().count() <= MAX_TAG_VALUE_LEN);
            prop_assert!(value.chars().all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)));
        }
    }
}
