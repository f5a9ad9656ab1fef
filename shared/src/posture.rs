//! The posture report: what the monitor found, for people. [`Report::from`] an [`Assessment`] gives the model
//! (serialised as `reports/posture.json`); [`Report::to_html`] renders it as one self-contained HTML page (inline
//! CSS, no scripts, no external assets: readable offline and in a mail client), worst problems first, with a
//! red / amber / green status at a glance.
//!
//! The page is rendered with `maud`: templates are checked at compile time and every interpolated value is
//! HTML-escaped unless marked otherwise, so a database named `<script>` is shown, never run.

use chrono::{DateTime, SecondsFormat, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Serialize;

use crate::monitor::{
    Assessment, Condition, ConditionKind, DatabaseAssessment, QuotaAssessment, RpoStatus, Severity,
    UnprotectedDatabase, human,
};

/// Red, amber or green.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// A critical condition: recovery is at risk now.
    Red,
    /// A warning: act this week.
    Amber,
    /// Nothing open.
    Green,
}

impl Status {
    /// The status of a set of conditions: red for any critical one, amber for any warning, else green.
    pub fn of<'a>(conditions: impl IntoIterator<Item = &'a Condition>) -> Status {
        conditions
            .into_iter()
            .map(|c| match c.severity {
                Severity::Critical => Status::Red,
                Severity::Warning => Status::Amber,
            })
            .min()
            .unwrap_or(Status::Green)
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Red => "red",
            Status::Amber => "amber",
            Status::Green => "green",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Status::Red => "ACTION NEEDED",
            Status::Amber => "WARNING",
            Status::Green => "OK",
        }
    }
}

/// The counts at the top of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Totals {
    /// Databases in the primary region (drill databases and cluster members left out).
    pub databases: usize,
    /// Selected by a plan and meeting the RPO objective in every region (or unknown there).
    pub protected: usize,
    /// Selected by a plan and breaching the RPO objective in some region.
    pub in_breach: usize,
    /// Selected by no plan.
    pub unprotected: usize,
    /// Open critical conditions.
    pub critical: usize,
    /// Open warnings.
    pub warnings: usize,
    /// Of the open conditions, those held open as last decided: this run could not re-check them (a read
    /// failed).
    pub not_rechecked: usize,
}

/// One database a plan selects, as the report shows it: its assessment, with its status and findings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatabaseRow {
    /// Its status: the worst of its findings.
    pub status: Status,
    /// What the monitor assessed (flattened into the row in JSON).
    #[serde(flatten)]
    pub database: DatabaseAssessment,
    /// The worst RPO fraction over its regions.
    pub worst_rpo_fraction: Option<f64>,
    /// Storage use in per cent, where known.
    pub storage_used_percent: Option<f64>,
    /// Its open conditions, worst first.
    pub findings: Vec<Condition>,
}

/// The posture report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// When the assessment was made.
    pub generated_at: DateTime<Utc>,
    /// The deployment's name.
    pub deployment: String,
    /// Its primary region.
    pub home_region: String,
    /// The policy's name.
    pub policy: String,
    /// Overall status: the worst of every open condition, including those held open unchecked.
    pub status: Status,
    /// Counts.
    pub totals: Totals,
    /// Every open condition, worst first: those this run found, and those it held open because it could not
    /// re-check them (their message says "not re-checked since ...: read failed").
    pub findings: Vec<Condition>,
    /// Databases a plan selects, worst first (status, then worst RPO fraction, then name).
    pub databases: Vec<DatabaseRow>,
    /// Databases no plan selects.
    pub unprotected: Vec<UnprotectedDatabase>,
    /// Manual-snapshot quota use.
    pub quotas: Vec<QuotaAssessment>,
}

impl From<&Assessment> for Report {
    fn from(assessment: &Assessment) -> Self {
        // What this run found, and what it held open unchecked (a read failed): both are open.
        let mut open: Vec<Condition> = assessment
            .conditions
            .iter()
            .cloned()
            .chain(assessment.held_open.iter().map(|h| h.annotated()))
            .collect();
        open.sort_by(|a, b| (a.severity, &a.key).cmp(&(b.severity, &b.key)));
        let mut databases: Vec<DatabaseRow> = assessment
            .databases
            .iter()
            .map(|db| row(&open, db))
            .collect();
        databases.sort_by(|a, b| {
            let worst = |r: &DatabaseRow| r.worst_rpo_fraction.unwrap_or(f64::INFINITY);
            a.status
                .cmp(&b.status)
                .then(worst(b).total_cmp(&worst(a)))
                .then(a.database.identifier.cmp(&b.database.identifier))
        });
        let in_breach = assessment
            .databases
            .iter()
            .filter(|d| d.rpo_breached())
            .count();
        let count = |severity| open.iter().filter(|c| c.severity == severity).count();
        let totals = Totals {
            databases: assessment.databases.len() + assessment.unprotected.len(),
            protected: assessment.databases.len() - in_breach,
            in_breach,
            unprotected: assessment.unprotected.len(),
            critical: count(Severity::Critical),
            warnings: count(Severity::Warning),
            not_rechecked: assessment.held_open.len(),
        };
        Report {
            generated_at: assessment.at,
            deployment: assessment.deployment.clone(),
            home_region: assessment.home_region.clone(),
            policy: assessment.policy.clone(),
            status: Status::of(&open),
            totals,
            findings: open,
            databases,
            unprotected: assessment.unprotected.clone(),
            quotas: assessment.quotas.clone(),
        }
    }
}

fn row(open: &[Condition], db: &DatabaseAssessment) -> DatabaseRow {
    let findings: Vec<Condition> = open
        .iter()
        .filter(|c| c.database.as_deref() == Some(db.identifier.as_str()))
        .filter(|c| c.key.kind != ConditionKind::Unprotected)
        .cloned()
        .collect();
    DatabaseRow {
        status: Status::of(&findings),
        database: db.clone(),
        worst_rpo_fraction: db.worst_rpo_fraction(),
        storage_used_percent: db.storage.map(|s| s.used_fraction() * 100.0),
        findings,
    }
}

const CSS: &str = "
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;padding:16px;color:#1b1f23;background:#f6f8fa}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}h3{font-size:15px;margin:0}
.meta{color:#57606a;font-size:13px}
.banner{padding:12px 16px;border-radius:6px;color:#fff;font-weight:bold;font-size:18px;margin:12px 0}
.red{background:#cf222e}.amber{background:#bf8700}.green{background:#1a7f37}
.totals{border-collapse:separate;border-spacing:8px 0;margin-left:-8px}
.totals td{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:8px 14px;text-align:center;font-size:12px;color:#57606a}
.totals b{display:block;font-size:22px;color:#1b1f23}
table.grid{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
.grid th,.grid td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
.grid th{background:#eaeef2}
.pill{display:inline-block;border-radius:10px;padding:1px 8px;color:#fff;font-size:12px;font-weight:bold}
.db{background:#fff;border:1px solid #d0d7de;border-left-width:8px;border-radius:6px;padding:10px 14px;margin:10px 0}
.db.red{border-left-color:#cf222e;background:#fff}.db.amber{border-left-color:#bf8700;background:#fff}.db.green{border-left-color:#1a7f37;background:#fff}
.finding{margin:4px 0;font-size:13px}.next{color:#57606a}
.bad{color:#cf222e;font-weight:bold}.ok{color:#1a7f37}
";

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn pill(status: Status) -> Markup {
    html! { span class={ "pill " (status.as_str()) } { (status.label()) } }
}

fn severity_status(severity: Severity) -> Status {
    match severity {
        Severity::Critical => Status::Red,
        Severity::Warning => Status::Amber,
    }
}

fn finding(c: &Condition) -> Markup {
    html! {
        div class="finding" {
            (pill(severity_status(c.severity))) " "
            b { (c.key.kind) } " " (c.message)
            br;
            span class="next" { "Next: " (c.next_step) }
        }
    }
}

fn rpo_table(db: &DatabaseRow) -> Markup {
    html! {
        table class="grid" {
            tr { th { "region" } th { "source" } th { "recovery point" } th { "RPO" } th { "of objective (" (human(db.database.rpo_objective_seconds)) ")" } }
            @for region in &db.database.regions {
                @if region.sources.is_empty() {
                    tr {
                        td { (region.region) @if region.primary { " (primary)" } }
                        td colspan="4" class={ @if region.status == RpoStatus::Breached { "bad" } } {
                            @if region.status == RpoStatus::Unknown {
                                "unknown: " (region.unknown_because.as_deref().unwrap_or("a read failed"))
                            } @else { "no recovery point" }
                        }
                    }
                }
                @for (i, source) in region.sources.iter().enumerate() {
                    tr {
                        td { @if i == 0 { (region.region) @if region.primary { " (primary)" } } }
                        td { (source.source) @if i == 0 { " (best)" } }
                        td { (time(source.recovery_point)) @if let Some(r) = &source.resource { br; small { (r) } } }
                        td { (human(source.rpo_seconds)) }
                        td class={ @if source.fraction > 1.0 { "bad" } @else { "ok" } } { (format!("{:.0} %", source.fraction * 100.0)) }
                    }
                }
            }
        }
    }
}

fn database(db: &DatabaseRow) -> Markup {
    let pitr = &db.database.point_in_time;
    html! {
        div class={ "db " (db.status.as_str()) } {
            h3 { (pill(db.status)) " " (db.database.identifier) }
            div class="meta" {
                (db.database.kind) " · " (db.database.engine) " · plan " (db.database.plan)
                " · RPO " (human(db.database.rpo_objective_seconds)) " · RTO " (human(db.database.rto_objective_seconds))
                @if !db.database.encrypted { " · " span class="bad" { "not encrypted" } }
                @if let Some(p) = db.storage_used_percent { " · storage " (format!("{p:.0} %")) " used" }
            }
            @for c in &db.findings { (finding(c)) }
            p { }
            (rpo_table(db))
            table class="grid" {
                tr { th { "last snapshot" } td {
                    @match &db.database.last_snapshot {
                        Some(s) => {
                            (s.identifier) " · "
                            @if s.status == "creating" { "creating since " (time(s.at)) } @else { (time(s.at)) " · " (s.status) }
                        }
                        None => { span class="bad" { "none" } }
                    }
                } }
                @for copies in &db.database.copies {
                    tr { th { "copies in " (copies.region) } td {
                        (copies.available) " available"
                        @if let Some(n) = &copies.newest { " · newest " (n.identifier) " · " (time(n.at)) }
                    } }
                }
                tr { th { "point in time" } td {
                    @if pitr.facts.retention_days == 0 { span class="bad" { "automated backups off" } }
                    @else {
                        (pitr.facts.retention_days) " days"
                        @if let Some(min) = pitr.min_retention_days { " (plan: at least " (min) ")" }
                        @if let Some(e) = pitr.facts.earliest_restorable { " · from " (time(e)) }
                        @if let Some(l) = pitr.facts.latest_restorable { " · to " (time(l)) }
                    }
                    @for r in &pitr.replication {
                        br;
                        "replicated to " (r.region) ": "
                        @match &r.present {
                            Some(p) => { (p.retention_days) " days" @if let Some(l) = p.latest { " · to " (time(l)) } }
                            None => { span class="bad" { "missing" } }
                        }
                    }
                } }
                tr { th { "last verified restore" } td {
                    @match &db.database.rto {
                        Some(e) => {
                            (time(e.drill.at)) " (" (human(e.age_seconds)) " ago) · "
                            @if e.drill.passed { span class="ok" { "passed" } } @else { span class="bad" { "FAILED" } }
                            " · restore " span class={ @if e.restore_within_rto { "ok" } @else { "bad" } } { (human(e.drill.restore_seconds)) }
                            " of RTO " (human(db.database.rto_objective_seconds))
                            " · drill " (human(e.drill.drill_seconds))
                            " · checks " (e.drill.checks.iter().filter(|c| c.passed).count()) "/" (e.drill.checks.len()) " passed"
                            @for c in e.drill.checks.iter().filter(|c| !c.passed) { br; span class="bad" { "failed: " (c.name) } }
                        }
                        None => { "never" }
                    }
                } }
            }
        }
    }
}

impl Report {
    /// The report as one self-contained HTML page.
    pub fn to_html(&self) -> String {
        let t = &self.totals;
        let page = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { "Lifeboat posture: " (self.status.label()) " · " (self.deployment) }
                    style { (PreEscaped(CSS)) }
                }
                body {
                    h1 { "Lifeboat posture · " (self.deployment) " (" (self.home_region) ")" }
                    div class="meta" { "policy " (self.policy) " · generated " (time(self.generated_at)) }
                    div class={ "banner " (self.status.as_str()) } {
                        (self.status.label()) ": "
                        (t.critical) " critical, " (t.warnings) " warning(s) · "
                        (t.in_breach) " database(s) in breach of RPO, " (t.unprotected) " unprotected"
                        @if t.not_rechecked > 0 { " · " (t.not_rechecked) " not re-checked this run (a read failed)" }
                    }
                    table class="totals" { tr {
                        td { b { (t.databases) } "databases" }
                        td { b { (t.protected) } "protected" }
                        td { b class={ @if t.in_breach > 0 { "bad" } } { (t.in_breach) } "in breach" }
                        td { b class={ @if t.unprotected > 0 { "bad" } } { (t.unprotected) } "unprotected" }
                    } }
                    @if !self.findings.is_empty() {
                        h2 { "Needs attention (" (self.findings.len()) ")" }
                        @for c in &self.findings { (finding(c)) }
                    }
                    h2 { "Databases (" (self.databases.len()) ")" }
                    @for db in &self.databases { (database(db)) }
                    @if !self.unprotected.is_empty() {
                        h2 { "Unprotected: no plan selects them (" (self.unprotected.len()) ")" }
                        table class="grid" {
                            tr { th { "database" } th { "kind" } th { "engine" } th { "encrypted" } }
                            @for u in &self.unprotected {
                                tr { td class="bad" { (u.identifier) } td { (u.kind) } td { (u.engine) } td { @if u.encrypted { "yes" } @else { span class="bad" { "no" } } } }
                            }
                        }
                    }
                    @if !self.quotas.is_empty() {
                        h2 { "Manual snapshot quotas" }
                        table class="grid" {
                            tr { th { "region" } th { "kind" } th { "used" } th { "full in" } }
                            @for q in &self.quotas {
                                tr {
                                    td { (q.region) } td { (q.kind) }
                                    td { (q.used) " of " (q.max) " (" (format!("{:.0} %", q.fraction * 100.0)) ")" }
                                    td { @match q.days_until_full { Some(d) => { (format!("about {d:.0} days")) } None => { "not growing" } } }
                                }
                            }
                        }
                    }
                }
            }
        };
        page.into_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DatabaseKind;
    use crate::monitor::{
        ConditionKey, HeldOpen, PointInTimeFacts, PointInTimePosture, RegionRpo, Source, SourceRpo,
    };

    fn condition(kind: ConditionKind, severity: Severity, database: &str) -> Condition {
        Condition {
            key: ConditionKey {
                kind,
                resource: database.into(),
                region: "us-east-1".into(),
            },
            severity,
            database: Some(database.into()),
            message: format!("{kind} for {database}"),
            next_step: "do something".into(),
        }
    }

    fn database(id: &str, fraction: f64) -> DatabaseAssessment {
        let rpo_seconds = (fraction * 3600.0) as u64;
        let status = if fraction > 1.0 {
            RpoStatus::Breached
        } else {
            RpoStatus::Met
        };
        DatabaseAssessment {
            identifier: id.into(),
            kind: DatabaseKind::Instance,
            engine: "postgres".into(),
            encrypted: true,
            plan: "prod".into(),
            rpo_objective_seconds: 3600,
            rto_objective_seconds: 4 * 3600,
            regions: vec![RegionRpo {
                region: "us-east-1".into(),
                primary: true,
                sources: vec![SourceRpo {
                    source: Source::Snapshot,
                    recovery_point: "2026-11-22T02:00:00Z".parse().unwrap(),
                    resource: Some(format!("lifeboat-{id}")),
                    rpo_seconds,
                    fraction,
                }],
                status,
                unknown_because: None,
            }],
            last_snapshot: None,
            copies: vec![],
            point_in_time: PointInTimePosture {
                facts: PointInTimeFacts::default(),
                min_retention_days: Some(7),
                replication: vec![],
            },
            rto: None,
            storage: None,
        }
    }

    fn assessment() -> Assessment {
        let hostile = "<script>alert(1)</script>";
        let mut conditions = vec![
            condition(ConditionKind::RpoBreach, Severity::Critical, "breached"),
            condition(ConditionKind::DrillStale, Severity::Warning, "stale"),
            condition(ConditionKind::Unprotected, Severity::Warning, hostile),
        ];
        conditions.sort_by(|a, b| (a.severity, &a.key).cmp(&(b.severity, &b.key)));
        Assessment {
            at: "2026-11-22T03:00:00Z".parse().unwrap(),
            deployment: "lifeboat".into(),
            home_region: "us-east-1".into(),
            policy: "default".into(),
            databases: vec![
                database("a-fine", 0.1),
                database("breached", 8.0),
                database("stale", 0.2),
                database("z-fine", 0.9),
                database("\"><img src=x onerror=alert(2)>", 0.5),
            ],
            unprotected: vec![UnprotectedDatabase {
                identifier: hostile.into(),
                kind: DatabaseKind::Cluster,
                engine: "aurora-postgresql".into(),
                encrypted: false,
            }],
            quotas: vec![],
            conditions,
            undecided: vec![],
            held_open: vec![],
        }
    }

    /// A condition this run held open because it could not re-check it (a read failed) is still open: a critical
    /// one keeps the report red and counts in the totals and the database's row, saying since when it is
    /// unchecked.
    #[test]
    fn a_critical_condition_held_open_unchecked_keeps_the_report_red() {
        let mut a = assessment();
        a.conditions.clear();
        a.unprotected.clear();
        a.databases.retain(|d| d.identifier.ends_with("fine"));
        a.held_open = vec![HeldOpen {
            condition: condition(ConditionKind::StorageHigh, Severity::Critical, "z-fine"),
            open_since: "2026-11-21T00:00:00Z".parse().unwrap(),
            checked_at: "2026-11-22T02:30:00Z".parse().unwrap(),
        }];
        let report = Report::from(&a);
        assert_eq!(report.status, Status::Red);
        assert_eq!(
            (
                report.totals.critical,
                report.totals.warnings,
                report.totals.not_rechecked
            ),
            (1, 0, 1)
        );
        assert_eq!(report.findings.len(), 1);
        assert_eq!(
            report.findings[0].message,
            "storage-high for z-fine (not re-checked since 2026-11-22T02:30:00Z: read failed)"
        );
        assert_eq!(report.databases[0].database.identifier, "z-fine");
        assert_eq!(report.databases[0].status, Status::Red);
        let html = report.to_html();
        assert!(html.contains("ACTION NEEDED: 1 critical"));
        assert!(html.contains("1 not re-checked this run (a read failed)"));
        assert!(html.contains("<title>Lifeboat posture: ACTION NEEDED"));
    }

    /// A snapshot still creating is shown "creating since" the time it was first seen, not with a date.
    #[test]
    fn a_creating_last_snapshot_says_since_when() {
        let mut a = assessment();
        a.databases[0].last_snapshot = Some(crate::monitor::RecoveryPoint {
            identifier: "lifeboat-a-fine-2026-11-22-0245".into(),
            at: "2026-11-22T02:45:00Z".parse().unwrap(),
            status: "creating".into(),
            encrypted: true,
        });
        let html = Report::from(&a).to_html();
        assert!(
            html.contains("lifeboat-a-fine-2026-11-22-0245 · creating since 2026-11-22T02:45:00Z"),
            "{html}"
        );
    }

    /// An unknown region says which read failed: its snapshots, or only its replicated automated backups.
    #[test]
    fn an_unknown_region_says_which_read_failed() {
        let mut a = assessment();
        a.databases[0].regions.push(RegionRpo {
            region: "us-west-2".into(),
            primary: false,
            sources: vec![],
            status: RpoStatus::Unknown,
            unknown_because: Some(
                "its replicated automated backups in us-west-2 could not be read".into(),
            ),
        });
        let html = Report::from(&a).to_html();
        assert!(
            html.contains(
                "unknown: its replicated automated backups in us-west-2 could not be read"
            )
        );
        assert!(!html.contains("the region could not be read"));
    }

    #[test]
    fn totals_count_protected_breached_and_unprotected() {
        let report = Report::from(&assessment());
        assert_eq!(
            report.totals,
            Totals {
                databases: 6,
                protected: 4,
                in_breach: 1,
                unprotected: 1,
                critical: 1,
                warnings: 2,
                not_rechecked: 0,
            }
        );
        assert_eq!(report.status, Status::Red);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["totals"]["in_breach"], 1);
        assert_eq!(json["status"], "red");
        assert_eq!(
            json["databases"][0]["regions"][0]["sources"][0]["source"],
            "snapshot"
        );
    }

    #[test]
    fn worst_databases_come_first() {
        let report = Report::from(&assessment());
        let order: Vec<&str> = report
            .databases
            .iter()
            .map(|d| d.database.identifier.as_str())
            .collect();
        assert_eq!(
            order,
            [
                "breached",
                "stale",
                "z-fine",
                "\"><img src=x onerror=alert(2)>",
                "a-fine"
            ],
            "red, amber, then green by worst RPO fraction"
        );
        assert_eq!(report.databases[0].status, Status::Red);
        assert_eq!(report.databases[1].status, Status::Amber);
        assert_eq!(report.databases[0].findings.len(), 1);
    }

    #[test]
    fn hostile_names_are_escaped_and_the_page_is_self_contained() {
        let html = Report::from(&assessment()).to_html();
        assert!(
            !html.contains("<script>"),
            "a database name must never become markup"
        );
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("<img"));
        assert!(html.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));
        for external in ["http://", "https://", "<link", "src=\"", "@import"] {
            assert!(!html.contains(external), "{external}");
        }
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("ACTION NEEDED"));
        // The worst problem is the first finding on the page.
        let breach = html.find("rpo-breach for breached").unwrap();
        let stale = html.find("drill-stale for stale").unwrap();
        assert!(breach < stale);
    }

    #[test]
    fn an_all_green_deployment_says_ok() {
        let mut a = assessment();
        a.conditions.clear();
        a.unprotected.clear();
        a.databases.retain(|d| d.identifier.ends_with("fine"));
        let report = Report::from(&a);
        assert_eq!(report.status, Status::Green);
        assert!(report.to_html().contains("OK: 0 critical, 0 warning(s)"));
    }
}
