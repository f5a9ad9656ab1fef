//! The policy document: which databases Lifeboat protects and how.
//!
//! One YAML document, shared by every function, parsed and validated at start-up. Every error names the field
//! that is wrong (for example `plans[0].retention.keep_daily`) and what is wrong with it. The format is described
//! in `docs/policy.md`; `infra/policy.yaml` is the default policy that encodes the plan in the design brief.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Datelike, Month, Months, NaiveDate, NaiveTime, TimeDelta, Utc, Weekday};
use serde::{Deserialize, Deserializer};

use crate::model::{Database, DatabaseKind};

mod failover;

pub use failover::{Failover, FailoverDns, FailoverMode, StrategyKind, normalize_name};

/// The default policy shipped with Lifeboat (`infra/policy.yaml`), compiled into every function.
pub const DEFAULT_POLICY_YAML: &str = include_str!("../../infra/policy.yaml");

/// The only policy format version this build understands.
pub const POLICY_VERSION: u32 = 1;

/// An error in a policy document: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid policy: {field}: {problem}")]
pub struct PolicyError {
    /// Path of the offending field, for example `plans[1].copies[0].kms_key_id`.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl PolicyError {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// A parsed and validated policy.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Format version; must be [`POLICY_VERSION`].
    pub version: u32,
    /// Name of the policy, written on every resource and ledger record it causes.
    pub name: String,
    /// Defaults for snapshots operators request by hand.
    #[serde(default)]
    pub manual_snapshots: ManualSnapshots,
    /// Where alerts and run summaries go.
    #[serde(default)]
    pub notifications: Notifications,
    /// Limits on restore drills across every plan.
    #[serde(default)]
    pub drills: DrillLimits,
    /// The plans, in priority order: a database selected by several plans belongs to the first.
    pub plans: Vec<Plan>,
}

/// Defaults for manual (operator-requested) snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualSnapshots {
    /// Days a manual snapshot is kept unless the request says otherwise.
    pub retain_days: u32,
    /// The longest retention a request may ask for.
    #[serde(default = "default_max_manual_retain_days")]
    pub max_retain_days: u32,
}

fn default_max_manual_retain_days() -> u32 {
    3650
}

impl Default for ManualSnapshots {
    fn default() -> Self {
        Self {
            retain_days: 90,
            max_retain_days: default_max_manual_retain_days(),
        }
    }
}

/// Limits on restore drills across every plan.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillLimits {
    /// Drills in progress at once in a region (each is a temporary DB instance, or a cluster and its instance,
    /// counted against the account's RDS quotas there: 40 DB instances by default). Drills due beyond it wait,
    /// the longest waiting first, for a later run. Drills asked for by hand start whatever the limit.
    #[serde(default = "default_max_drills_in_progress")]
    pub max_in_progress: u32,
}

fn default_max_drills_in_progress() -> u32 {
    10
}

impl Default for DrillLimits {
    fn default() -> Self {
        Self {
            max_in_progress: default_max_drills_in_progress(),
        }
    }
}

/// Where notifications go.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    /// SNS topic ARN; when absent, the function's `LIFEBOAT_TOPIC_ARN` environment variable is used.
    pub topic_arn: Option<String>,
}

/// One plan: a selection of databases and everything Lifeboat does for them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Name of the plan, unique within the policy.
    pub name: String,
    /// Which databases the plan covers.
    pub select: Selection,
    /// The calendar that decides which tiers a scheduled snapshot serves.
    #[serde(default)]
    pub schedule: TierCalendar,
    /// How long snapshots are kept.
    pub retention: Retention,
    /// Copies to disaster-recovery regions.
    #[serde(default)]
    pub copies: Vec<CopyTarget>,
    /// Point-in-time recovery requirements (automated backups).
    #[serde(default)]
    pub point_in_time: Option<PointInTime>,
    /// Restore drills.
    #[serde(default)]
    pub verification: Option<Verification>,
    /// Recovery objectives.
    pub objectives: Objectives,
    /// Alert thresholds.
    #[serde(default)]
    pub alerts: Alerts,
    /// Failover of the application's database to a DR region.
    #[serde(default)]
    pub failover: Option<Failover>,
}

/// Which databases a plan covers. A database is selected when it matches any of `tags`, `identifiers` or
/// `patterns`, is of one of `kinds`, and matches none of `exclude`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// Tags that must all be present with these values (`"*"` accepts any value).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Exact DB instance or cluster identifiers.
    #[serde(default)]
    pub identifiers: Vec<String>,
    /// Shell-style patterns over identifiers (`prod-*`, `booking-db-?`).
    #[serde(default)]
    pub patterns: Vec<String>,
    /// Identifiers or patterns never selected.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Kinds of database selected; both when absent.
    #[serde(default = "all_kinds")]
    pub kinds: Vec<DatabaseKind>,
}

fn all_kinds() -> Vec<DatabaseKind> {
    vec![DatabaseKind::Instance, DatabaseKind::Cluster]
}

impl Selection {
    /// Whether this selection covers `db`.
    pub fn matches(&self, db: &Database) -> bool {
        if !self.kinds.contains(&db.kind)
            || self.exclude.iter().any(|p| glob_matches(p, &db.identifier))
        {
            return false;
        }
        let by_tags = !self.tags.is_empty()
            && self.tags.iter().all(|(key, want)| {
                db.tags
                    .get(key)
                    .is_some_and(|have| want == "*" || have == want)
            });
        by_tags
            || self.identifiers.iter().any(|id| id == &db.identifier)
            || self
                .patterns
                .iter()
                .any(|p| glob_matches(p, &db.identifier))
    }
}

/// Shell-style match of `pattern` against `identifier`; patterns are validated when the policy loads.
fn glob_matches(pattern: &str, identifier: &str) -> bool {
    glob::Pattern::new(pattern).is_ok_and(|p| p.matches(identifier))
}

/// The calendar of snapshot tiers: every scheduled snapshot is a daily; the one taken on `weekly_on` is also a
/// weekly, on `monthly_on_day` also a monthly, and the monthly of `yearly_in_month` also a yearly.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierCalendar {
    /// Day of the week of the weekly snapshot.
    #[serde(default = "default_weekly_on", deserialize_with = "de_weekday")]
    pub weekly_on: Weekday,
    /// Day of the month (1 to 28) of the monthly snapshot.
    #[serde(default = "default_monthly_on_day")]
    pub monthly_on_day: u32,
    /// Month of the yearly snapshot.
    #[serde(default = "default_yearly_in_month", deserialize_with = "de_month")]
    pub yearly_in_month: Month,
    /// Time of day (UTC, `HH:MM`) the scheduled snapshot is due; the function runs hourly and takes it then.
    #[serde(default = "default_daily_at", deserialize_with = "de_time_of_day")]
    pub daily_at: NaiveTime,
    /// How long after `daily_at` a snapshot that could not be taken (the database was busy, RDS refused, the
    /// snapshot failed) is still tried, hourly, before it is reported missing.
    #[serde(default = "default_start_window", deserialize_with = "de_duration")]
    pub start_window: Duration,
}

fn default_daily_at() -> NaiveTime {
    NaiveTime::from_hms_opt(2, 0, 0).unwrap_or_default()
}

fn default_start_window() -> Duration {
    Duration::from_secs(8 * 3600)
}

fn de_time_of_day<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
    let text = String::deserialize(d)?;
    NaiveTime::parse_from_str(&text, "%H:%M").map_err(|_| {
        serde::de::Error::custom(format!("`{text}` is not a UTC time of day like 02:00"))
    })
}

fn default_weekly_on() -> Weekday {
    Weekday::Sun
}
fn default_monthly_on_day() -> u32 {
    1
}
fn default_yearly_in_month() -> Month {
    Month::January
}

impl Default for TierCalendar {
    fn default() -> Self {
        Self {
            weekly_on: default_weekly_on(),
            monthly_on_day: default_monthly_on_day(),
            yearly_in_month: default_yearly_in_month(),
            daily_at: default_daily_at(),
            start_window: default_start_window(),
        }
    }
}

fn de_weekday<'de, D: Deserializer<'de>>(d: D) -> Result<Weekday, D::Error> {
    let text = String::deserialize(d)?;
    text.parse::<Weekday>().map_err(|_| {
        serde::de::Error::custom(format!(
            "`{text}` is not a day of the week (monday … sunday)"
        ))
    })
}

fn de_month<'de, D: Deserializer<'de>>(d: D) -> Result<Month, D::Error> {
    let text = String::deserialize(d)?;
    text.parse::<Month>().map_err(|_| {
        serde::de::Error::custom(format!("`{text}` is not a month (january … december)"))
    })
}

pub(crate) fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "`{text}` is not a duration like 90m, 4h or 30d: {e}"
        ))
    })
}

pub(crate) fn de_opt_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

/// Tiers a scheduled snapshot can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// Every scheduled snapshot.
    Daily,
    /// The snapshot of the weekly day.
    Weekly,
    /// The snapshot of the monthly day.
    Monthly,
    /// The monthly snapshot of the yearly month.
    Yearly,
}

impl Tier {
    /// Lower-case name used in tags and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Daily => "daily",
            Tier::Weekly => "weekly",
            Tier::Monthly => "monthly",
            Tier::Yearly => "yearly",
        }
    }
}

impl TierCalendar {
    /// When the scheduled snapshot owed at `now` was due: the latest `daily_at` on or before `now`.
    pub fn due_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let today = now.date_naive().and_time(self.daily_at).and_utc();
        if today <= now {
            today
        } else {
            today - chrono::Duration::days(1)
        }
    }

    /// The tiers a snapshot taken on `date` (UTC) serves, daily first.
    pub fn tiers_on(&self, date: chrono::NaiveDate) -> Vec<Tier> {
        let mut tiers = vec![Tier::Daily];
        if date.weekday() == self.weekly_on {
            tiers.push(Tier::Weekly);
        }
        if date.day() == self.monthly_on_day {
            tiers.push(Tier::Monthly);
            if date.month() == self.yearly_in_month.number_from_month() {
                tiers.push(Tier::Yearly);
            }
        }
        tiers
    }

    /// First day of the `tier` period that contains `date`: the latest day on or before `date` the calendar gives
    /// that tier. A daily period is the day; a weekly one runs from `weekly_on` for 7 days; a monthly one from
    /// `monthly_on_day` to the day before that day of the next month; a yearly one from `monthly_on_day` of
    /// `yearly_in_month` to the day before the same day a year later.
    pub fn period_start(&self, tier: Tier, date: NaiveDate) -> NaiveDate {
        // Validation keeps the day within 1 to 28; the clamp keeps a hand-built calendar valid in every month.
        let day = self.monthly_on_day.clamp(1, 28);
        let start = match tier {
            Tier::Daily => Some(date),
            Tier::Weekly => {
                let since = (7 + date.weekday().num_days_from_monday()
                    - self.weekly_on.num_days_from_monday())
                    % 7;
                date.checked_sub_days(chrono::Days::new(u64::from(since)))
            }
            Tier::Monthly => date.with_day(day).and_then(|this_month| {
                if this_month <= date {
                    Some(this_month)
                } else {
                    this_month.checked_sub_months(Months::new(1))
                }
            }),
            Tier::Yearly => date
                .with_day(day)
                .and_then(|d| d.with_month(self.yearly_in_month.number_from_month()))
                .and_then(|this_year| {
                    if this_year <= date {
                        Some(this_year)
                    } else {
                        this_year.checked_sub_months(Months::new(12))
                    }
                }),
        };
        // Only a date at the very edge of chrono's range has no earlier day to start on.
        start.unwrap_or(date)
    }
}

/// What a retention duration accepts, for error messages.
const RETENTION_DURATION_FORMS: &str = "write a whole number and a unit: `d` days, `w` weeks, `m` MONTHS \
     (calendar months, not minutes), `y` calendar years, or the words (`30d`, `12w`, `12m`, `7y`, `30 days`, \
     `12 months`)";

/// A calendar unit of a retention duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalendarUnit {
    /// Days of 24 hours (`d`, `days`).
    Days,
    /// Weeks of 7 days (`w`, `weeks`).
    Weeks,
    /// Calendar months (`m`, `months`): NOT minutes.
    Months,
    /// Calendar years (`y`, `years`).
    Years,
}

/// How long a tier's recovery points are kept: `30d`, `12w`, `12m` (months) or `7y`, or the long words
/// (`30 days`, `12 months`). Months and years are calendar months and years.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalendarDuration {
    /// How many units (at least 1).
    pub amount: u32,
    /// The unit.
    pub unit: CalendarUnit,
}

impl CalendarDuration {
    /// The time this long before `now` (calendar arithmetic for months and years, clamped to the end of a shorter
    /// month): a recovery point taken after it is younger than this duration. `None` when that lies before the
    /// earliest time chrono represents, so everything is younger.
    pub fn before(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let amount = i64::from(self.amount);
        match self.unit {
            CalendarUnit::Days => now.checked_sub_signed(TimeDelta::try_days(amount)?),
            CalendarUnit::Weeks => now.checked_sub_signed(TimeDelta::try_weeks(amount)?),
            CalendarUnit::Months => now.checked_sub_months(Months::new(self.amount)),
            CalendarUnit::Years => {
                now.checked_sub_months(Months::new(self.amount.checked_mul(12)?))
            }
        }
    }
}

impl FromStr for CalendarDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let digits = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(digits);
        let unit = match unit.trim().to_ascii_lowercase().as_str() {
            "d" | "day" | "days" => CalendarUnit::Days,
            "w" | "week" | "weeks" => CalendarUnit::Weeks,
            "m" | "month" | "months" => CalendarUnit::Months,
            "y" | "year" | "years" => CalendarUnit::Years,
            _ => {
                return Err(format!(
                    "`{text}` is not a retention duration: {RETENTION_DURATION_FORMS}"
                ));
            }
        };
        let amount: u32 = number.parse().map_err(|_| {
            format!("`{text}` is not a retention duration: {RETENTION_DURATION_FORMS}")
        })?;
        if amount == 0 {
            return Err(format!(
                "`{text}` keeps nothing: leave the tier out to keep none of its recovery points"
            ));
        }
        Ok(Self { amount, unit })
    }
}

impl fmt::Display for CalendarDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            CalendarUnit::Days => 'd',
            CalendarUnit::Weeks => 'w',
            CalendarUnit::Months => 'm',
            CalendarUnit::Years => 'y',
        };
        write!(f, "{}{unit}", self.amount)
    }
}

impl<'de> Deserialize<'de> for CalendarDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = CalendarDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a retention duration such as 30d, 12w, 12m (months) or 7y")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                text.parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<Self::Value, E> {
                Err(E::custom(format!(
                    "`{number}` has no unit: {RETENTION_DURATION_FORMS}"
                )))
            }
            fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<Self::Value, E> {
                Err(E::custom(format!(
                    "`{number}` has no unit: {RETENTION_DURATION_FORMS}"
                )))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// How long snapshots are kept, per tier in one of two forms: a duration (`daily: 30d`: each period's recovery
/// point is kept that long after it was taken) or a count with the bucket semantics of restic `forget` / borg
/// `prune` (`keep_daily: 30`). A plan may mix the forms across tiers, never for the same tier.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Keep each day's recovery point this long (`30d`).
    #[serde(default)]
    pub daily: Option<CalendarDuration>,
    /// Keep each week's recovery point (weeks start on the calendar's `weekly_on`) this long (`12w`).
    #[serde(default)]
    pub weekly: Option<CalendarDuration>,
    /// Keep each month's recovery point (months start on `monthly_on_day`) this long (`12m`: months).
    #[serde(default)]
    pub monthly: Option<CalendarDuration>,
    /// Keep each year's recovery point (years start on `monthly_on_day` of `yearly_in_month`) this long (`7y`).
    #[serde(default)]
    pub yearly: Option<CalendarDuration>,
    /// Keep the newest snapshot of each of the last N days that have one.
    #[serde(default)]
    pub keep_daily: u32,
    /// Keep the newest snapshot of each of the last N ISO weeks that have one.
    #[serde(default)]
    pub keep_weekly: u32,
    /// Keep the newest snapshot of each of the last N months that have one.
    #[serde(default)]
    pub keep_monthly: u32,
    /// Keep the newest snapshot of each of the last N years that have one.
    #[serde(default)]
    pub keep_yearly: u32,
    /// Keep every snapshot younger than this.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub keep_within: Option<Duration>,
    /// Never keep fewer than this many snapshots of a database.
    #[serde(default = "default_min_count")]
    pub min_count: u32,
    /// Refuse a plan that would delete more than this fraction of a database's snapshots in one run.
    #[serde(default = "default_max_delete_fraction")]
    pub max_delete_fraction: f64,
    /// The plan's tier calendar (`schedule`), copied here when the policy loads: the periods the durations count.
    #[serde(skip)]
    pub calendar: TierCalendar,
}

impl Retention {
    /// The rules in a line, as the policy states them: `daily 30d, weekly 12w, monthly 12m, yearly 7y, min_count 3`.
    pub fn describe(&self) -> String {
        let durations = [
            ("daily", self.daily),
            ("weekly", self.weekly),
            ("monthly", self.monthly),
            ("yearly", self.yearly),
        ]
        .into_iter()
        .filter_map(|(tier, duration)| duration.map(|d| format!("{tier} {d}")));
        let counts = [
            ("keep_daily", self.keep_daily),
            ("keep_weekly", self.keep_weekly),
            ("keep_monthly", self.keep_monthly),
            ("keep_yearly", self.keep_yearly),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(rule, n)| format!("{rule} {n}"));
        let within = self
            .keep_within
            .map(|d| format!("keep_within {}", humantime::format_duration(d)));
        durations
            .chain(counts)
            .chain(within)
            .chain([format!("min_count {}", self.min_count)])
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn default_min_count() -> u32 {
    3
}
fn default_max_delete_fraction() -> f64 {
    0.5
}

/// A disaster-recovery region and how copies are made and kept there.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyTarget {
    /// Destination region, for example `us-west-2`.
    pub region: String,
    /// KMS key in the destination region for encrypted copies (key ID, key ARN or alias).
    pub kms_key_id: String,
    /// Option group to use in the destination region, for engines with non-default option groups.
    #[serde(default)]
    pub option_group: Option<String>,
    /// Days a copy is kept in the destination region.
    pub retain_days: u32,
}

/// Point-in-time recovery requirements: the automated-backup retention the database must have.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointInTime {
    /// Minimum automated-backup retention in days (1 to 35).
    pub min_retention_days: u32,
    /// DR regions (among the plan's copy regions) where the plan asks for point-in-time recovery: RDS must
    /// replicate the database's automated backups there, which costs money, so it is asked for here explicitly.
    /// The monitor reports a database without that replication.
    #[serde(default)]
    pub replicate_to: Vec<String>,
}

impl Policy {
    /// The regions where each plan asks for replicated automated backups (`point_in_time.replicate_to`), by plan.
    pub fn replication_wanted(
        &self,
    ) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
        self.plans
            .iter()
            .filter_map(|plan| {
                let regions = &plan.point_in_time.as_ref()?.replicate_to;
                (!regions.is_empty())
                    .then(|| (plan.name.clone(), regions.iter().cloned().collect()))
            })
            .collect()
    }
}

/// Restore drills.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    /// How often each database is drilled.
    #[serde(deserialize_with = "de_duration")]
    pub every: Duration,
    /// Instance class of the temporary DB instance (drills of DB instances).
    pub instance_class: String,
    /// Instance class of the one instance of a temporary Aurora cluster (drills of DB clusters). Aurora offers
    /// only some classes (`db.t3.micro` is not among them); the default, `db.t4g.medium`, is offered by Aurora
    /// PostgreSQL and Aurora MySQL.
    #[serde(default = "default_cluster_instance_class")]
    pub cluster_instance_class: String,
    /// DB subnet group the temporary instance is placed in (private subnets).
    pub subnet_group: String,
    /// Security groups of the temporary instance. Required and non-empty: without them RDS puts the drill in the
    /// VPC's default security group.
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// Database (schema) the checks connect to; the engine's default when absent.
    #[serde(default)]
    pub database_name: Option<String>,
    /// SQL checks run against the restored database.
    #[serde(default)]
    pub checks: Vec<Check>,
    /// Drills of the copies in DR regions, with that region's network (subnet groups and security groups are
    /// regional): `{us-west-2: {security_groups: [sg-...], subnet_group: ..., every: 30d}}`. A region listed here
    /// has its newest copy drilled on its own cadence (`every`, the plan's by default), proving that a copy
    /// encrypted with the DR key restores there.
    #[serde(default)]
    pub regions: BTreeMap<String, RegionDrill>,
}

/// Drill settings of one DR region.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionDrill {
    /// DB subnet group in that region (private subnets); the plan's `subnet_group` name by default (the verify
    /// function's role may restore into subnet groups of that name only).
    #[serde(default)]
    pub subnet_group: Option<String>,
    /// Security groups in that region for the drill databases (required, never the default security group).
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// How often the region's copies are drilled; the plan's `every` by default.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub every: Option<Duration>,
}

impl Verification {
    /// The subnet group and security groups of drills in `region` (`None`: the primary region).
    pub fn network_in(&self, region: Option<&str>) -> (&str, &[String]) {
        match region.and_then(|r| self.regions.get(r)) {
            Some(dr) => (
                dr.subnet_group.as_deref().unwrap_or(&self.subnet_group),
                &dr.security_groups,
            ),
            None => (&self.subnet_group, &self.security_groups),
        }
    }

    /// How often drills run in `region` (`None`: the primary region).
    pub fn every_in(&self, region: Option<&str>) -> Duration {
        region
            .and_then(|r| self.regions.get(r))
            .and_then(|dr| dr.every)
            .unwrap_or(self.every)
    }
}

/// Default instance class of Aurora drill members: offered by Aurora PostgreSQL and Aurora MySQL.
pub const DEFAULT_CLUSTER_INSTANCE_CLASS: &str = "db.t4g.medium";

fn default_cluster_instance_class() -> String {
    DEFAULT_CLUSTER_INSTANCE_CLASS.to_string()
}

/// One SQL check of a restore drill.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum Check {
    /// These tables exist.
    TablesPresent {
        /// Table names (optionally schema-qualified).
        tables: Vec<String>,
    },
    /// A table holds at least this many rows.
    MinRows {
        /// Table name.
        table: String,
        /// Minimum row count.
        at_least: u64,
    },
    /// The newest value of a timestamp column is no older than the snapshot time minus `tolerance`.
    Freshness {
        /// Table name.
        table: String,
        /// Timestamp column.
        column: String,
        /// Allowed lag behind the snapshot time.
        #[serde(deserialize_with = "de_duration")]
        tolerance: Duration,
    },
    /// A query returning one value, compared with an expectation.
    Sql {
        /// Name shown in reports.
        name: String,
        /// The query; it must return one row with one column.
        query: String,
        /// Expected value (compared as text), unless `at_least` is given.
        #[serde(default)]
        equals: Option<String>,
        /// Minimum numeric value.
        #[serde(default)]
        at_least: Option<f64>,
    },
}

/// Recovery objectives.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objectives {
    /// Recovery point objective: the most data loss acceptable.
    #[serde(deserialize_with = "de_duration")]
    pub rpo: Duration,
    /// Recovery time objective: the longest acceptable restore.
    #[serde(deserialize_with = "de_duration")]
    pub rto: Duration,
    /// Recovery time objective for databases with a standby (Multi-AZ or a replica to promote).
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub rto_with_standby: Option<Duration>,
}

/// Alert thresholds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alerts {
    /// Alert when a snapshot takes longer than this.
    #[serde(
        default = "default_max_backup_duration",
        deserialize_with = "de_duration"
    )]
    pub max_backup_duration: Duration,
    /// Alert when manual-snapshot quota usage in a region passes this fraction.
    #[serde(default = "default_quota_usage")]
    pub snapshot_quota_usage: f64,
}

fn default_max_backup_duration() -> Duration {
    Duration::from_secs(30 * 60)
}
fn default_quota_usage() -> f64 {
    0.8
}

impl Default for Alerts {
    fn default() -> Self {
        Self {
            max_backup_duration: default_max_backup_duration(),
            snapshot_quota_usage: default_quota_usage(),
        }
    }
}

impl Policy {
    /// Parse and validate a policy document.
    pub fn from_yaml(text: &str) -> Result<Policy, PolicyError> {
        let deserializer = serde_yaml_ng::Deserializer::from_str(text);
        let mut policy: Policy = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." {
                "(document)".to_string()
            } else {
                path
            };
            // The YAML error repeats the path at its start; the field is already named once.
            let problem = e.into_inner().to_string();
            let problem = problem
                .strip_prefix(&format!("{field}: "))
                .unwrap_or(&problem)
                .to_string();
            PolicyError::new(field, problem)
        })?;
        for plan in &mut policy.plans {
            plan.retention.calendar = plan.schedule.clone();
        }
        policy.validate()?;
        Ok(policy)
    }

    /// The default policy shipped with Lifeboat.
    pub fn default_policy() -> Result<Policy, PolicyError> {
        Self::from_yaml(DEFAULT_POLICY_YAML)
    }

    /// The plan that covers `db`: the first plan whose selection matches it.
    pub fn plan_for(&self, db: &Database) -> Option<&Plan> {
        self.plans.iter().find(|plan| plan.select.matches(db))
    }

    /// The plan named `name`.
    pub fn plan_named(&self, name: &str) -> Option<&Plan> {
        self.plans.iter().find(|plan| plan.name == name)
    }

    /// Every disaster-recovery region any plan copies to.
    pub fn copy_regions(&self) -> std::collections::BTreeSet<String> {
        self.plans
            .iter()
            .flat_map(|plan| plan.copies.iter().map(|c| c.region.clone()))
            .collect()
    }

    /// Check everything the types alone cannot.
    fn validate(&self) -> Result<(), PolicyError> {
        if self.version != POLICY_VERSION {
            return Err(PolicyError::new(
                "version",
                format!(
                    "unsupported version {}; this build reads version {POLICY_VERSION}",
                    self.version
                ),
            ));
        }
        check_name("name", &self.name)?;
        let manual = &self.manual_snapshots;
        if manual.retain_days == 0 || manual.retain_days > manual.max_retain_days {
            return Err(PolicyError::new(
                "manual_snapshots.retain_days",
                format!(
                    "must be between 1 and max_retain_days ({})",
                    manual.max_retain_days
                ),
            ));
        }
        if self.drills.max_in_progress == 0 {
            return Err(PolicyError::new(
                "drills.max_in_progress",
                "must be at least 1 (drills are switched off by leaving `verification` out of a plan)",
            ));
        }
        if let Some(arn) = &self.notifications.topic_arn
            && (!arn.starts_with("arn:") || arn.split(':').count() != 6)
        {
            return Err(PolicyError::new(
                "notifications.topic_arn",
                format!("`{arn}` is not an SNS topic ARN"),
            ));
        }
        if self.plans.is_empty() {
            return Err(PolicyError::new("plans", "at least one plan is required"));
        }
        for (i, plan) in self.plans.iter().enumerate() {
            let at = format!("plans[{i}]");
            plan.validate(&at)?;
            if let Some(j) = self.plans[..i].iter().position(|p| p.name == plan.name) {
                return Err(PolicyError::new(
                    format!("{at}.name"),
                    format!("`{}` is already the name of plans[{j}]", plan.name),
                ));
            }
        }
        Ok(())
    }
}

/// Names end up in tags and snapshot identifiers: letters, digits and hyphens, 1 to 63 characters.
fn check_name(field: &str, name: &str) -> Result<(), PolicyError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(PolicyError::new(
            field,
            format!(
                "`{name}` must be 1 to 63 letters, digits or hyphens, not starting with a hyphen"
            ),
        ))
    }
}

impl Plan {
    fn validate(&self, at: &str) -> Result<(), PolicyError> {
        check_name(&format!("{at}.name"), &self.name)?;
        let select = &self.select;
        if select.tags.is_empty() && select.identifiers.is_empty() && select.patterns.is_empty() {
            return Err(PolicyError::new(
                format!("{at}.select"),
                "selects nothing: give at least one of tags, identifiers or patterns",
            ));
        }
        if select.kinds.is_empty() {
            return Err(PolicyError::new(
                format!("{at}.select.kinds"),
                "must list instance, cluster or both",
            ));
        }
        for (field, list) in [("patterns", &select.patterns), ("exclude", &select.exclude)] {
            for (k, pattern) in list.iter().enumerate() {
                if let Err(e) = glob::Pattern::new(pattern) {
                    return Err(PolicyError::new(
                        format!("{at}.select.{field}[{k}]"),
                        format!("`{pattern}` is not a valid pattern: {e}"),
                    ));
                }
            }
        }
        let window = self.schedule.start_window;
        if window < Duration::from_secs(3600) || window >= Duration::from_secs(24 * 3600) {
            return Err(PolicyError::new(
                format!("{at}.schedule.start_window"),
                "must be from 1h to under 24h (the snapshot is tried hourly until the window closes, before the next day's is due)",
            ));
        }
        if !(1..=28).contains(&self.schedule.monthly_on_day) {
            return Err(PolicyError::new(
                format!("{at}.schedule.monthly_on_day"),
                format!(
                    "{} is not a day every month has (1 to 28)",
                    self.schedule.monthly_on_day
                ),
            ));
        }
        self.retention.validate(&format!("{at}.retention"))?;
        for (k, copy) in self.copies.iter().enumerate() {
            let field = format!("{at}.copies[{k}]");
            if !is_region(&copy.region) {
                return Err(PolicyError::new(
                    format!("{field}.region"),
                    format!("`{}` is not an AWS region name", copy.region),
                ));
            }
            if copy.kms_key_id.trim().is_empty() {
                return Err(PolicyError::new(
                    format!("{field}.kms_key_id"),
                    "a destination-region KMS key is required (copies never reuse the source key)",
                ));
            }
            if copy.retain_days == 0 {
                return Err(PolicyError::new(
                    format!("{field}.retain_days"),
                    "must be at least 1",
                ));
            }
            if let Some(j) = self.copies[..k]
                .iter()
                .position(|c| c.region == copy.region)
            {
                return Err(PolicyError::new(
                    format!("{field}.region"),
                    format!("`{}` is already the region of copies[{j}]", copy.region),
                ));
            }
        }
        if let Some(pitr) = &self.point_in_time {
            if !(1..=35).contains(&pitr.min_retention_days) {
                return Err(PolicyError::new(
                    format!("{at}.point_in_time.min_retention_days"),
                    "RDS keeps automated backups 1 to 35 days",
                ));
            }
            for (i, region) in pitr.replicate_to.iter().enumerate() {
                if !self.copies.iter().any(|c| &c.region == region) {
                    return Err(PolicyError::new(
                        format!("{at}.point_in_time.replicate_to[{i}]"),
                        format!(
                            "`{region}` is not a region this plan copies to (copies[].region): point-in-time \
                             recovery is asked for only in the plan's DR regions"
                        ),
                    ));
                }
            }
        }
        if let Some(verification) = &self.verification {
            verification.validate(&format!("{at}.verification"))?;
        }
        for (field, value) in [("rpo", self.objectives.rpo), ("rto", self.objectives.rto)] {
            if value.is_zero() {
                return Err(PolicyError::new(
                    format!("{at}.objectives.{field}"),
                    "must be longer than zero",
                ));
            }
        }
        let quota = self.alerts.snapshot_quota_usage;
        if !(quota > 0.0 && quota <= 1.0) {
            return Err(PolicyError::new(
                format!("{at}.alerts.snapshot_quota_usage"),
                format!("{quota} is not a fraction between 0 (exclusive) and 1"),
            ));
        }
        if let Some(failover) = &self.failover {
            let regions: Vec<&str> = self.copies.iter().map(|c| c.region.as_str()).collect();
            failover.validate(&format!("{at}.failover"), &regions)?;
        }
        Ok(())
    }
}

impl Retention {
    /// Each tier's duration and count, with their field names.
    fn tiers(&self) -> [(&'static str, Option<CalendarDuration>, &'static str, u32); 4] {
        [
            ("daily", self.daily, "keep_daily", self.keep_daily),
            ("weekly", self.weekly, "keep_weekly", self.keep_weekly),
            ("monthly", self.monthly, "keep_monthly", self.keep_monthly),
            ("yearly", self.yearly, "keep_yearly", self.keep_yearly),
        ]
    }

    fn validate(&self, at: &str) -> Result<(), PolicyError> {
        let tiers = self.tiers();
        for (tier, duration, count_field, count) in tiers {
            if let Some(duration) = duration
                && count > 0
            {
                return Err(PolicyError::new(
                    format!("{at}.{count_field}"),
                    format!(
                        "`{tier}: {duration}` already says how long {tier} recovery points are kept; give each \
                         tier one form, a duration (`{tier}: {duration}`) or a restic count (`{count_field}: {count}`)"
                    ),
                ));
            }
        }
        let keeps_any = tiers
            .iter()
            .any(|(_, duration, _, count)| duration.is_some() || *count > 0)
            || self.keep_within.is_some_and(|d| !d.is_zero());
        if !keeps_any {
            return Err(PolicyError::new(
                at,
                "keeps nothing: set at least one of daily, weekly, monthly, yearly (durations), keep_daily, \
                 keep_weekly, keep_monthly, keep_yearly (counts) or keep_within",
            ));
        }
        if self.min_count == 0 {
            return Err(PolicyError::new(
                format!("{at}.min_count"),
                "must be at least 1 (the last recovery point is never deleted)",
            ));
        }
        let fraction = self.max_delete_fraction;
        if !(fraction > 0.0 && fraction <= 1.0) {
            return Err(PolicyError::new(
                format!("{at}.max_delete_fraction"),
                format!("{fraction} is not a fraction between 0 (exclusive) and 1"),
            ));
        }
        Ok(())
    }
}

impl Verification {
    fn validate(&self, at: &str) -> Result<(), PolicyError> {
        if self.every < Duration::from_secs(3600) {
            return Err(PolicyError::new(
                format!("{at}.every"),
                "drills more often than hourly are not supported",
            ));
        }
        if !self.instance_class.starts_with("db.") {
            return Err(PolicyError::new(
                format!("{at}.instance_class"),
                format!(
                    "`{}` is not an RDS instance class (db.*)",
                    self.instance_class
                ),
            ));
        }
        if !self.cluster_instance_class.starts_with("db.") {
            return Err(PolicyError::new(
                format!("{at}.cluster_instance_class"),
                format!(
                    "`{}` is not an RDS instance class (db.*)",
                    self.cluster_instance_class
                ),
            ));
        }
        for (region, dr) in &self.regions {
            let field = format!("{at}.regions.{region}");
            if dr.security_groups.iter().all(|g| g.trim().is_empty()) {
                return Err(PolicyError::new(
                    format!("{field}.security_groups"),
                    "name at least one VPC security group of that region for the drill databases (sg-...)",
                ));
            }
            if dr
                .subnet_group
                .as_deref()
                .is_some_and(|g| g.trim().is_empty())
            {
                return Err(PolicyError::new(
                    format!("{field}.subnet_group"),
                    "is empty: leave it out to use the plan's subnet group name",
                ));
            }
            if dr.every.is_some_and(|e| e < Duration::from_secs(3600)) {
                return Err(PolicyError::new(
                    format!("{field}.every"),
                    "drills more often than hourly are not supported",
                ));
            }
        }
        if self.security_groups.iter().all(|g| g.trim().is_empty()) {
            return Err(PolicyError::new(
                format!("{at}.security_groups"),
                "name at least one VPC security group for the drill databases (sg-...): without one RDS puts \
                 them in the VPC's default security group",
            ));
        }
        if self.subnet_group.trim().is_empty() {
            return Err(PolicyError::new(
                format!("{at}.subnet_group"),
                "a DB subnet group of private subnets is required",
            ));
        }
        for (k, check) in self.checks.iter().enumerate() {
            let field = format!("{at}.checks[{k}]");
            match check {
                Check::TablesPresent { tables } if tables.is_empty() => {
                    return Err(PolicyError::new(
                        format!("{field}.tables"),
                        "names no table",
                    ));
                }
                Check::Sql {
                    equals: None,
                    at_least: None,
                    ..
                } => {
                    return Err(PolicyError::new(
                        field,
                        "give `equals` or `at_least` to compare the result with",
                    ));
                }
                Check::Sql { query, .. } if query.trim().is_empty() => {
                    return Err(PolicyError::new(format!("{field}.query"), "is empty"));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// A plausible AWS region name such as `us-west-2` or `ap-southeast-1`.
pub(crate) fn is_region(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal(extra_plan: &str) -> String {
        format!(
            "version: 1\nname: test\nplans:\n  - name: prod\n    select:\n      identifiers: [db1]\n    retention:\n      keep_daily: 7\n    objectives:\n      rpo: 1h\n      rto: 4h\n{extra_plan}"
        )
    }

    #[test]
    fn replicated_point_in_time_is_asked_for_only_in_the_plans_dr_regions() {
        let copies =
            "    copies:\n      - {region: us-west-2, kms_key_id: alias/dr, retain_days: 30}\n";
        let policy = Policy::from_yaml(&minimal(&format!(
            "{copies}    point_in_time:\n      min_retention_days: 7\n      replicate_to: [us-west-2]\n"
        )))
        .unwrap();
        assert_eq!(
            policy.replication_wanted()["prod"],
            ["us-west-2".to_string()].into()
        );
        let err = Policy::from_yaml(&minimal(&format!(
            "{copies}    point_in_time:\n      min_retention_days: 7\n      replicate_to: [eu-west-1]\n"
        )))
        .unwrap_err();
        assert_eq!(err.field, "plans[0].point_in_time.replicate_to[0]");
        assert!(
            err.to_string()
                .contains("`eu-west-1` is not a region this plan copies to"),
            "{err}"
        );
        // Without the setting nothing is asked for.
        let none = Policy::from_yaml(&minimal(
            "    point_in_time:\n      min_retention_days: 7\n",
        ))
        .unwrap();
        assert!(none.replication_wanted().is_empty());
    }

    /// A retention's durations per tier, as written in a policy (`30d`), `-` for none.
    fn durations(retention: &Retention) -> [String; 4] {
        [
            retention.daily,
            retention.weekly,
            retention.monthly,
            retention.yearly,
        ]
        .map(|d| d.map_or("-".to_string(), |d| d.to_string()))
    }

    /// A retention's restic counts per tier.
    fn counts(retention: &Retention) -> [u32; 4] {
        [
            retention.keep_daily,
            retention.keep_weekly,
            retention.keep_monthly,
            retention.keep_yearly,
        ]
    }

    #[test]
    fn default_policy_encodes_the_seed_plan() {
        let policy = Policy::default_policy().expect("default policy is valid");
        let plan = &policy.plans[0];
        assert_eq!(
            plan.retention.describe(),
            "daily 30d, weekly 12w, monthly 12m, yearly 7y, min_count 3"
        );
        assert_eq!(durations(&plan.retention), ["30d", "12w", "12m", "7y"]);
        assert_eq!(counts(&plan.retention), [0; 4]);
        assert_eq!(plan.retention.calendar, plan.schedule);
        assert_eq!(plan.schedule.weekly_on, Weekday::Sun);
        assert_eq!(policy.manual_snapshots.retain_days, 90);
        assert!(plan.copies.iter().all(|c| c.retain_days == 90));
        assert_eq!(plan.objectives.rpo, Duration::from_secs(3600));
        assert_eq!(plan.objectives.rto, Duration::from_secs(4 * 3600));
        assert_eq!(
            plan.verification.as_ref().map(|v| v.every),
            Some(Duration::from_secs(7 * 86400))
        );
    }

    #[test]
    fn seed_plans_are_expressible_as_policies() {
        let days = |d: u64| Duration::from_secs(d * 86_400);
        let booking =
            Policy::from_yaml(include_str!("../../infra/examples/nbne-booking.yaml")).unwrap();
        let plan = &booking.plans[0];
        assert_eq!(durations(&plan.retention), ["30d", "90d", "12m", "7y"]);
        assert_eq!(counts(&plan.retention), [0; 4]);
        assert_eq!(
            plan.point_in_time.as_ref().map(|p| p.min_retention_days),
            Some(7)
        );
        assert_eq!(
            plan.alerts.max_backup_duration,
            Duration::from_secs(30 * 60)
        );
        assert_eq!(
            plan.verification
                .as_ref()
                .map(|v| (v.every, v.checks.len())),
            Some((days(7), 3))
        );

        let luxhedge =
            Policy::from_yaml(include_str!("../../infra/examples/luxhedge.yaml")).unwrap();
        let plan = &luxhedge.plans[0];
        assert_eq!(durations(&plan.retention), ["30d", "12w", "12m", "7y"]);
        assert_eq!(counts(&plan.retention), [0; 4]);
        assert_eq!(plan.objectives.rto, Duration::from_secs(2 * 3600));
        assert_eq!(plan.copies[0].region, "eu-central-1");

        let live = Policy::from_yaml(include_str!("../../infra/examples/live-event-service.yaml"))
            .unwrap();
        let plan = &live.plans[0];
        assert_eq!(durations(&plan.retention), ["35d", "12w", "12m", "-"]);
        assert_eq!(plan.retention.min_count, 7);
        assert_eq!(live.manual_snapshots.retain_days, 90);
        assert_eq!(
            (plan.copies[0].region.as_str(), plan.copies[0].retain_days),
            ("us-west-2", 90)
        );
        assert_eq!(plan.objectives.rpo, Duration::from_secs(5 * 60));
        assert_eq!(
            plan.point_in_time.as_ref().map(|p| p.min_retention_days),
            Some(35)
        );
        // "Route 53 DNS failover ... to us-west-2", confirmed by the on-call engineer, tested quarterly.
        let failover = plan.failover.as_ref().unwrap();
        assert_eq!(failover.region, "us-west-2");
        assert_eq!(failover.mode, FailoverMode::Approval);
        assert_eq!(failover.drill_every, Some(Duration::from_secs(90 * 86400)));
        assert_eq!(plan.objectives.rto, Duration::from_secs(15 * 60));
    }

    #[test]
    fn failover_sections_are_checked() {
        let section = |body: &str| {
            minimal("").replace(
                "    objectives:",
                &format!(
                    "    copies: [{{region: us-west-2, kms_key_id: alias/dr, retain_days: 7}}]\n    failover:\n{body}    objectives:"
                ),
            )
        };
        let ok = "      region: us-west-2\n      database: db-1\n      dns: {hosted_zone_id: Z1, records: [db.example.com], drill_record: drill.example.com}\n";
        let policy = Policy::from_yaml(&section(ok)).unwrap();
        let failover = policy.plans[0].failover.as_ref().unwrap();
        assert_eq!(failover.mode, FailoverMode::Approval);
        assert_eq!(
            failover.strategies,
            [
                StrategyKind::GlobalDatabase,
                StrategyKind::Replica,
                StrategyKind::Restore
            ]
        );
        assert_eq!(failover.dns.ttl, 60);
        for (change, field, problem) in [
            (
                ok.replace("us-west-2", "eu-west-1"),
                "failover.region",
                "not a region this plan copies to",
            ),
            (
                ok.replace("drill.example.com", "DB.example.com."),
                "failover.dns.drill_record",
                "production record",
            ),
            (
                format!("{ok}      mode: automatic\n"),
                "failover.alarms",
                "automatic mode",
            ),
            (
                format!("{ok}      drill_every: 1h\n"),
                "failover.drill_every",
                "at least 1d",
            ),
            (
                ok.replace("records: [db.example.com]", "records: []"),
                "failover.dns.records",
                "at least one",
            ),
            (
                format!("{ok}      strategies: [restore, restore]\n"),
                "failover.strategies[1]",
                "twice",
            ),
        ] {
            let err = Policy::from_yaml(&section(&change)).unwrap_err();
            assert!(err.field.ends_with(field), "{field}: {err}");
            assert!(err.problem.contains(problem), "{field}: {err}");
        }
    }

    #[test]
    fn minimal_policy_parses() {
        let policy = Policy::from_yaml(&minimal("")).unwrap();
        assert_eq!(policy.plans[0].retention.min_count, 3);
        assert_eq!(policy.plans[0].select.kinds, all_kinds());
    }

    #[test]
    fn the_drill_limit_defaults_to_ten_and_is_at_least_one() {
        let with = |drills: &str| {
            Policy::from_yaml(&minimal("").replace("plans:\n", &format!("{drills}plans:\n")))
        };
        assert_eq!(with("").unwrap().drills.max_in_progress, 10);
        assert_eq!(with("drills: {}\n").unwrap().drills.max_in_progress, 10);
        assert_eq!(
            with("drills: {max_in_progress: 3}\n")
                .unwrap()
                .drills
                .max_in_progress,
            3
        );
        let zero = with("drills: {max_in_progress: 0}\n").unwrap_err();
        assert_eq!(zero.field, "drills.max_in_progress", "{zero}");
        let unknown = with("drills: {max_running: 3}\n").unwrap_err();
        assert_eq!(unknown.field, "drills.max_running", "{unknown}");
    }

    #[test]
    fn unknown_field_is_named_with_its_path() {
        let err = Policy::from_yaml(&minimal("").replace("keep_daily", "keep_dayly")).unwrap_err();
        assert_eq!(err.field, "plans[0].retention.keep_dayly");
        assert!(err.problem.contains("unknown field `keep_dayly`"), "{err}");
        assert!(err.problem.contains("expected one of"), "{err}");
    }

    #[test]
    fn a_retention_error_names_its_field_once() {
        let err =
            Policy::from_yaml(&minimal("").replace("keep_daily: 7", "monthly: 12min")).unwrap_err();
        assert_eq!(err.field, "plans[0].retention.monthly");
        assert!(
            err.to_string().starts_with(
                "invalid policy: plans[0].retention.monthly: `12min` is not a retention duration"
            ),
            "{err}"
        );
    }

    #[test]
    fn bad_duration_names_field() {
        let err = Policy::from_yaml(&minimal("").replace("rpo: 1h", "rpo: soon")).unwrap_err();
        assert_eq!(err.field, "plans[0].objectives.rpo");
        assert!(err.problem.contains("soon"));
    }

    #[test]
    fn empty_selection_is_rejected() {
        let err =
            Policy::from_yaml(&minimal("").replace("identifiers: [db1]", "kinds: [instance]"))
                .unwrap_err();
        assert_eq!(err.field, "plans[0].select");
    }

    #[test]
    fn copy_without_key_is_rejected() {
        let err = Policy::from_yaml(&minimal("    copies:\n      - region: us-west-2\n        kms_key_id: ''\n        retain_days: 90\n"))
            .unwrap_err();
        assert_eq!(err.field, "plans[0].copies[0].kms_key_id");
    }

    #[test]
    fn bad_region_and_month_day_are_rejected() {
        let err = Policy::from_yaml(&minimal(
            "    copies:\n      - region: oregon\n        kms_key_id: k\n        retain_days: 9\n",
        ))
        .unwrap_err();
        assert_eq!(err.field, "plans[0].copies[0].region");
        let err =
            Policy::from_yaml(&minimal("    schedule:\n      monthly_on_day: 31\n")).unwrap_err();
        assert_eq!(err.field, "plans[0].schedule.monthly_on_day");
        let err =
            Policy::from_yaml(&minimal("    schedule:\n      weekly_on: someday\n")).unwrap_err();
        assert_eq!(err.field, "plans[0].schedule.weekly_on");
    }

    #[test]
    fn runaway_fraction_and_wrong_version_are_rejected() {
        let err = Policy::from_yaml(&minimal("").replace(
            "keep_daily: 7",
            "keep_daily: 7\n      max_delete_fraction: 1.5",
        ))
        .unwrap_err();
        assert_eq!(err.field, "plans[0].retention.max_delete_fraction");
        let err = Policy::from_yaml(&minimal("").replace("version: 1", "version: 2")).unwrap_err();
        assert_eq!(err.field, "version");
    }

    #[test]
    fn broken_yaml_is_located() {
        let err = Policy::from_yaml("plans: [").unwrap_err();
        assert_eq!(err.field, "plans");
        assert!(err.problem.contains("line 2 column 1"), "{err}");
        let err = Policy::from_yaml("- just\n- a list\n").unwrap_err();
        assert_eq!(err.field, "(document)");
    }

    #[test]
    fn retention_durations_parse_in_short_and_long_forms() {
        let parse = |text: &str| text.parse::<CalendarDuration>();
        let of = |amount, unit| Ok(CalendarDuration { amount, unit });
        assert_eq!(parse("30d"), of(30, CalendarUnit::Days));
        assert_eq!(parse("30 days"), of(30, CalendarUnit::Days));
        assert_eq!(parse("1 day"), of(1, CalendarUnit::Days));
        assert_eq!(parse("12w"), of(12, CalendarUnit::Weeks));
        assert_eq!(parse("12 weeks"), of(12, CalendarUnit::Weeks));
        assert_eq!(parse("12m"), of(12, CalendarUnit::Months));
        assert_eq!(parse("12 Months"), of(12, CalendarUnit::Months));
        assert_eq!(parse("7y"), of(7, CalendarUnit::Years));
        assert_eq!(parse(" 7 years "), of(7, CalendarUnit::Years));
        for bad in [
            "30",
            "d",
            "12 min",
            "90 minutes",
            "4h",
            "1.5y",
            "-1d",
            "0d",
            "7 years ago",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse("12 months").unwrap().to_string(), "12m");
    }

    #[test]
    fn a_retention_duration_counts_calendar_months_and_years() {
        let now = "2027-03-31T03:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let before = |text: &str| text.parse::<CalendarDuration>().unwrap().before(now);
        let at = |text: &str| Some(text.parse::<DateTime<Utc>>().unwrap());
        assert_eq!(before("30d"), at("2027-03-01T03:00:00Z"));
        assert_eq!(before("2w"), at("2027-03-17T03:00:00Z"));
        // February has no 31st: a month before 31 March is the end of February.
        assert_eq!(before("1m"), at("2027-02-28T03:00:00Z"));
        assert_eq!(before("12m"), at("2026-03-31T03:00:00Z"));
        assert_eq!(before("7y"), at("2020-03-31T03:00:00Z"));
        assert_eq!(before("4294967295y"), None);
    }

    #[test]
    fn bad_retention_duration_names_the_field_and_the_accepted_forms() {
        let with = |retention: &str| minimal("").replace("keep_daily: 7", retention);
        for (retention, field) in [
            ("monthly: 12 minutes", "plans[0].retention.monthly"),
            ("daily: 30", "plans[0].retention.daily"),
            ("yearly: seven years", "plans[0].retention.yearly"),
        ] {
            let err = Policy::from_yaml(&with(retention)).unwrap_err();
            assert_eq!(err.field, field, "{retention}");
            assert!(err.problem.contains("`m` MONTHS"), "{err}");
            assert!(err.problem.contains("`30 days`"), "{err}");
        }
        let err = Policy::from_yaml(&with("weekly: 0w")).unwrap_err();
        assert_eq!(err.field, "plans[0].retention.weekly");
        assert!(err.problem.contains("keeps nothing"), "{err}");
    }

    #[test]
    fn a_tier_takes_one_form() {
        let with = |retention: &str| minimal("").replace("keep_daily: 7", retention);
        let err = Policy::from_yaml(&with("daily: 30d\n      keep_daily: 30")).unwrap_err();
        assert_eq!(err.field, "plans[0].retention.keep_daily");
        assert!(err.problem.contains("`daily: 30d`"), "{err}");
        let mixed = Policy::from_yaml(&with("daily: 30d\n      keep_weekly: 12")).unwrap();
        assert_eq!(durations(&mixed.plans[0].retention), ["30d", "-", "-", "-"]);
        assert_eq!(counts(&mixed.plans[0].retention), [0, 12, 0, 0]);
        let err = Policy::from_yaml(&with("min_count: 3")).unwrap_err();
        assert_eq!(err.field, "plans[0].retention");
        assert!(err.problem.contains("keeps nothing"), "{err}");
    }

    #[test]
    fn retention_counts_in_the_plans_calendar() {
        let policy = Policy::from_yaml(&minimal(
            "    schedule:\n      weekly_on: monday\n      monthly_on_day: 15\n      yearly_in_month: july\n",
        ))
        .unwrap();
        let plan = &policy.plans[0];
        assert_eq!(plan.retention.calendar, plan.schedule);
        assert_eq!(plan.retention.calendar.monthly_on_day, 15);
    }

    #[test]
    fn a_period_starts_on_the_latest_day_the_calendar_gives_its_tier() {
        let calendars = [
            TierCalendar::default(),
            TierCalendar {
                weekly_on: Weekday::Wed,
                monthly_on_day: 28,
                yearly_in_month: Month::February,
                ..TierCalendar::default()
            },
            TierCalendar {
                weekly_on: Weekday::Mon,
                monthly_on_day: 15,
                yearly_in_month: Month::December,
                ..TierCalendar::default()
            },
        ];
        let first = "2023-01-01".parse::<NaiveDate>().unwrap();
        let last = "2025-12-31".parse::<NaiveDate>().unwrap();
        for calendar in &calendars {
            for tier in [Tier::Daily, Tier::Weekly, Tier::Monthly, Tier::Yearly] {
                // Walking the days forward, the latest day labelled with the tier so far.
                let mut latest_labelled = None;
                for date in first.iter_days().take_while(|d| *d <= last) {
                    if calendar.tiers_on(date).contains(&tier) {
                        latest_labelled = Some(date);
                    }
                    if let Some(expected) = latest_labelled {
                        assert_eq!(
                            calendar.period_start(tier, date),
                            expected,
                            "{tier:?} {date} {calendar:?}"
                        );
                    }
                }
            }
        }
        // Before the first labelled day of the walk, the period starts in the year before.
        let calendar = &calendars[2];
        assert_eq!(
            calendar.period_start(Tier::Yearly, first),
            "2022-12-15".parse::<NaiveDate>().unwrap()
        );
    }

    #[test]
    fn tiers_follow_the_calendar() {
        let calendar = TierCalendar::default();
        let date = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
        assert_eq!(calendar.tiers_on(date("2026-11-19")), vec![Tier::Daily]);
        assert_eq!(
            calendar.tiers_on(date("2026-11-22")),
            vec![Tier::Daily, Tier::Weekly]
        );
        assert_eq!(
            calendar.tiers_on(date("2026-12-01")),
            vec![Tier::Daily, Tier::Monthly]
        );
        assert_eq!(
            calendar.tiers_on(date("2028-01-01")),
            vec![Tier::Daily, Tier::Monthly, Tier::Yearly]
        );
        assert_eq!(
            calendar.tiers_on(date("2023-01-01")),
            vec![Tier::Daily, Tier::Weekly, Tier::Monthly, Tier::Yearly]
        );
    }

    #[test]
    fn drills_need_their_own_security_groups_and_aurora_gets_an_aurora_class() {
        let drill = |extra: &str| {
            Policy::from_yaml(&minimal(&format!(
                "    verification:\n      every: 7d\n      instance_class: db.t3.micro\n      subnet_group: drills\n{extra}"
            )))
        };
        for extra in [
            "",
            "      security_groups: []\n",
            "      security_groups: ['']\n",
        ] {
            let err =
                drill(extra).expect_err("a drill in the VPC's default security group is refused");
            assert!(
                err.to_string()
                    .contains("plans[0].verification.security_groups"),
                "{err}"
            );
        }
        let ok = drill("      security_groups: [sg-0drills]\n").expect("valid");
        let v = ok.plans[0].verification.as_ref().expect("verification");
        assert_eq!(v.instance_class, "db.t3.micro");
        assert_eq!(v.cluster_instance_class, DEFAULT_CLUSTER_INSTANCE_CLASS);
        let err =
            drill("      security_groups: [sg-1]\n      cluster_instance_class: t4g.medium\n")
                .expect_err("not a class");
        assert!(
            err.to_string()
                .contains("verification.cluster_instance_class"),
            "{err}"
        );
        let policy = Policy::default_policy().expect("default policy is valid");
        for plan in &policy.plans {
            if let Some(v) = &plan.verification {
                assert!(!v.security_groups.is_empty(), "{}", plan.name);
                assert_ne!(
                    v.cluster_instance_class, "db.t3.micro",
                    "Aurora does not offer db.t3.micro"
                );
                assert!(
                    ["db.t4g.", "db.t3.medium", "db.r", "db.x2g", "db.serverless"]
                        .iter()
                        .any(|p| v.cluster_instance_class.starts_with(p)),
                    "{}: {}",
                    plan.name,
                    v.cluster_instance_class
                );
            }
        }
    }
}
