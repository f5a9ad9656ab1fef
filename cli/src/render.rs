//! The functions' JSON answers as text for the person on call. The rendering knows the answers' shape, not their
//! types, so it stays right as they grow fields:
//! - `results` (per-item outcomes) is a table of database, region, action, status, resource and detail, any field
//!   a later version adds after them, and a row's `next_step` on its own line under it;
//! - `plan` is an aligned key/value block, nested objects flattened with dotted keys;
//! - `run_errors` become warnings;
//! - any other array of objects (`restores`, `drills`, …) is a table of the fields that fit in a cell (scalars,
//!   arrays of scalars), and an array of scalars a list;
//! - scalars are `key: value` lines, nested objects flattened with dotted keys.
//!
//! Fields come in the order the function wrote them (serde_json's `preserve_order`).

use comfy_table::{Table, presets};
use serde_json::{Map, Value};

/// Per-item outcomes, in every function's answer.
const RESULTS: &str = "results";
/// The columns of `results`, in this order, whether or not a row has them.
const RESULT_COLUMNS: [&str; 6] = [
    "database", "region", "action", "status", "resource", "detail",
];
/// Fields of `results` rows not shown (the database's kind does not help the person on call).
const RESULT_FIELDS_LEFT_OUT: [&str; 1] = ["kind"];
/// Problems with the run itself, printed as warnings.
const RUN_ERRORS: &str = "run_errors";
/// What the restore function would do.
const PLAN: &str = "plan";
/// What to do about a row: on a line of its own under it.
const NEXT_STEP: &str = "next_step";
/// Columns that say which row is which, first in any table that has them.
const LEADING_COLUMNS: [&str; 5] = ["database", "target", "region", "action", "status"];
/// The column a row's next step is written in when the table has it (else the last column).
const NEXT_STEP_COLUMN: &str = "detail";

/// An answer as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// What to print on standard output.
    pub report: String,
    /// The run's own problems (`run_errors`), to print as warnings.
    pub warnings: Vec<String>,
}

/// Renders a function's answer.
pub fn render(answer: &Value) -> Rendered {
    let mut layout = Layout::default();
    match answer {
        Value::Object(fields) => {
            for (key, value) in fields {
                layout.top_level(key, value);
            }
        }
        other => layout.walk("answer", other),
    }
    layout.into_rendered()
}

/// The parts of a rendered answer, collected in one pass and printed in a fixed order: facts, plan, results, the
/// other tables and lists.
#[derive(Default)]
struct Layout {
    facts: Vec<(String, String)>,
    plan: Option<String>,
    results: Option<String>,
    sections: Vec<String>,
    warnings: Vec<String>,
}

impl Layout {
    fn top_level(&mut self, key: &str, value: &Value) {
        match (key, value) {
            (RUN_ERRORS, Value::Array(errors)) => {
                self.warnings.extend(errors.iter().map(scalar_text));
            }
            (PLAN, Value::Object(plan)) => {
                let mut pairs = Vec::new();
                flatten("", &Value::Object(plan.clone()), &mut pairs);
                self.plan = Some(format!("{PLAN}:\n{}", aligned(&pairs, "  ")));
            }
            (RESULTS, Value::Array(items))
                if !items.is_empty() && items.iter().all(Value::is_object) =>
            {
                self.results =
                    titled_table(RESULTS, items, &RESULT_COLUMNS, &RESULT_FIELDS_LEFT_OUT);
            }
            _ => self.walk(key, value),
        }
    }

    fn walk(&mut self, path: &str, value: &Value) {
        match value {
            Value::Object(fields) if !fields.is_empty() => {
                for (key, value) in fields {
                    self.walk(&format!("{path}.{key}"), value);
                }
            }
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
                match titled_table(path, items, &[], &[]) {
                    Some(table) => self.sections.push(table),
                    None => flatten(path, value, &mut self.facts),
                }
            }
            Value::Array(items) if !items.is_empty() && items.iter().all(is_scalar) => {
                let lines: Vec<String> = items
                    .iter()
                    .map(|item| format!("  - {}", scalar_text(item)))
                    .collect();
                self.sections.push(format!("{path}:\n{}", lines.join("\n")));
            }
            other => self.facts.push((path.to_string(), scalar_text(other))),
        }
    }

    fn into_rendered(self) -> Rendered {
        let blocks: Vec<String> = (!self.facts.is_empty())
            .then(|| aligned(&self.facts, ""))
            .into_iter()
            .chain(self.plan)
            .chain(self.results)
            .chain(self.sections)
            .collect();
        let mut report = blocks.join("\n\n");
        report.push('\n');
        Rendered {
            report,
            warnings: self.warnings,
        }
    }
}

/// `key: value` lines, values aligned.
fn aligned(pairs: &[(String, String)], indent: &str) -> String {
    let width = pairs
        .iter()
        .map(|(key, _)| key.len() + 1)
        .max()
        .unwrap_or(0);
    pairs
        .iter()
        .map(|(key, value)| format!("{indent}{:<width$} {value}", format!("{key}:")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every leaf of `value` as a dotted key and its text (array items by index; arrays of scalars joined).
fn flatten(prefix: &str, value: &Value, pairs: &mut Vec<(String, String)>) {
    let child = |key: &str| {
        if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        }
    };
    match value {
        Value::Object(fields) if !fields.is_empty() => {
            for (key, value) in fields {
                flatten(&child(key), value, pairs);
            }
        }
        Value::Array(items) if !items.iter().all(is_scalar) => {
            for (index, item) in items.iter().enumerate() {
                flatten(&child(&index.to_string()), item, pairs);
            }
        }
        other => pairs.push((prefix.to_string(), cell_text(other).unwrap_or_default())),
    }
}

/// A table of `items` under the heading `title`: `fixed_columns` first (always shown), then every other field
/// that fits in a cell and is set in some row (those that say which row is which first), except `left_out` and
/// the next step, which goes on a row of its own under its row. `None` when no field fits in a cell.
fn titled_table(
    title: &str,
    items: &[Value],
    fixed_columns: &[&str],
    left_out: &[&str],
) -> Option<String> {
    let rows: Vec<&Map<String, Value>> = items.iter().filter_map(Value::as_object).collect();
    let mut columns: Vec<String> = fixed_columns.iter().map(|c| c.to_string()).collect();
    let discovered = rows
        .iter()
        .flat_map(|row| row.iter())
        .filter(|(key, value)| {
            !value.is_null() && cell_text(value).is_some() && key.as_str() != NEXT_STEP
        })
        .map(|(key, _)| key.as_str())
        .filter(|key| !left_out.contains(key));
    for key in discovered {
        if !columns.iter().any(|column| column == key) {
            columns.push(key.to_string());
        }
    }
    let fixed = fixed_columns.len();
    columns[fixed..].sort_by_key(|column| {
        LEADING_COLUMNS
            .iter()
            .position(|leading| leading == column)
            .unwrap_or(LEADING_COLUMNS.len())
    });
    let last_column = columns.len().checked_sub(1)?;
    let next_step_column = columns
        .iter()
        .position(|column| column == NEXT_STEP_COLUMN)
        .unwrap_or(last_column);

    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    table.set_header(&columns);
    for row in rows {
        table.add_row(
            columns
                .iter()
                .map(|column| row.get(column).and_then(cell_text).unwrap_or_default()),
        );
        if let Some(next_step) = row.get(NEXT_STEP).filter(|step| !step.is_null()) {
            let mut follow_up = vec![String::new(); columns.len()];
            follow_up[next_step_column] = format!("↳ next step: {}", scalar_text(next_step));
            table.add_row(follow_up);
        }
    }
    Some(format!("{title}:\n{table}"))
}

fn is_scalar(value: &Value) -> bool {
    !value.is_array() && !value.is_object()
}

/// The text of a value that fits in a cell (a scalar, or an array of scalars joined), else `None`.
fn cell_text(value: &Value) -> Option<String> {
    match value {
        Value::Object(_) => None,
        Value::Array(items) if items.iter().all(is_scalar) => {
            Some(items.iter().map(scalar_text).collect::<Vec<_>>().join(", "))
        }
        Value::Array(_) => None,
        scalar => Some(scalar_text(scalar)),
    }
}

/// A value as text: strings bare, `null` as `-`, anything else as compact JSON.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".into(),
        Value::Array(items) if items.is_empty() => "none".into(),
        Value::Object(fields) if fields.is_empty() => "none".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A snapshot function's answer: one snapshot done, one failed with a next step, a run error.
    fn snapshot_answer() -> Value {
        json!({
            "run_id": "5f0c2b1e-aaaa",
            "trigger": "manual",
            "region": "us-east-1",
            "policy": "default",
            "counts": {"done": 1, "unchanged": 0, "skipped": 0, "waiting": 0, "failed": 1},
            "results": [
                {"database": "booking-db", "kind": "instance", "region": "us-east-1", "action": "create-snapshot",
                 "status": "done", "resource": "lifeboat-booking-db-2026-11-20-1345-manual"},
                {"database": "billing", "kind": "cluster", "region": "us-east-1", "action": "create-snapshot",
                 "status": "failed", "detail": "SnapshotQuotaExceeded: 100 manual snapshots",
                 "next_step": "raise the quota", "attempts": 3}
            ],
            "run_errors": ["ledger write failed: AccessDenied"]
        })
    }

    /// The line of `report` that mentions `needle`.
    fn line_with<'a>(report: &'a str, needle: &str) -> &'a str {
        report
            .lines()
            .find(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in\n{report}"))
    }

    #[test]
    fn results_are_a_table_with_each_rows_values_and_next_step_under_it() {
        let rendered = render(&snapshot_answer());
        let report = &rendered.report;
        let header = line_with(report, "database");
        for column in RESULT_COLUMNS {
            assert!(header.contains(column), "{header}");
        }
        assert!(!header.contains("kind"), "{header}");
        let done = line_with(report, "booking-db");
        for value in [
            "us-east-1",
            "create-snapshot",
            "done",
            "lifeboat-booking-db-2026-11-20-1345-manual",
        ] {
            assert!(done.contains(value), "{done}");
        }
        let failed = line_with(report, "billing");
        for value in ["failed", "SnapshotQuotaExceeded: 100 manual snapshots", "3"] {
            assert!(failed.contains(value), "{failed}");
        }
        let lines: Vec<&str> = report.lines().collect();
        let failed_at = lines
            .iter()
            .position(|line| line.contains("billing"))
            .unwrap();
        assert!(
            lines[failed_at + 1].contains("↳ next step: raise the quota"),
            "{report}"
        );
    }

    #[test]
    fn a_field_added_to_results_later_gets_a_column() {
        let report = render(&snapshot_answer()).report;
        assert!(
            line_with(&report, "database").contains("attempts"),
            "{report}"
        );
    }

    #[test]
    fn scalars_and_nested_objects_are_aligned_key_value_lines_before_the_tables() {
        let report = render(&snapshot_answer()).report;
        assert!(
            report.starts_with("run_id:"),
            "the function's order: {report}"
        );
        assert_eq!(line_with(&report, "counts.failed"), "counts.failed:    1");
        assert_eq!(
            line_with(&report, "run_id"),
            "run_id:           5f0c2b1e-aaaa"
        );
        assert_eq!(line_with(&report, "trigger"), "trigger:          manual");
    }

    #[test]
    fn run_errors_are_warnings_not_report_lines() {
        let rendered = render(&snapshot_answer());
        assert_eq!(rendered.warnings, vec!["ledger write failed: AccessDenied"]);
        assert!(
            !rendered.report.contains("AccessDenied"),
            "{}",
            rendered.report
        );
    }

    #[test]
    fn a_restore_plan_is_an_aligned_block_with_dotted_keys() {
        let answer = json!({
            "run_id": "r-2",
            "plan": {
                "database": "booking-db",
                "target": "booking-db-restored",
                "point_in_time": "2026-11-20T13:45:00Z",
                "source": {"kind": "point-in-time", "region": "us-west-2"},
                "restorable_window": {"earliest": "2026-11-13T02:00:00Z", "latest": "2026-11-20T14:55:00Z"},
                "checks": ["subnet group exists", "KMS key usable"]
            },
            "results": []
        });
        let report = render(&answer).report;
        let block: Vec<&str> = report
            .lines()
            .skip_while(|line| *line != "plan:")
            .skip(1)
            .take_while(|line| line.starts_with("  "))
            .collect();
        assert_eq!(
            block,
            vec![
                "  database:                   booking-db",
                "  target:                     booking-db-restored",
                "  point_in_time:              2026-11-20T13:45:00Z",
                "  source.kind:                point-in-time",
                "  source.region:              us-west-2",
                "  restorable_window.earliest: 2026-11-13T02:00:00Z",
                "  restorable_window.latest:   2026-11-20T14:55:00Z",
                "  checks:                     subnet group exists, KMS key usable",
            ],
            "{report}"
        );
        assert_eq!(line_with(&report, "results"), "results: none");
    }

    #[test]
    fn restores_are_a_table_of_their_scalar_fields() {
        let answer = json!({
            "restores": [
                {"target": "booking-db-restored", "database": "booking-db", "status": "available",
                 "expires_at": "2026-11-22T14:00:00Z", "requested_by": "arn:aws:sts::123456789012:assumed-role/OnCall/ana",
                 "source": {"snapshot": "rds:booking-db-2026-11-20-02-00"}},
                {"target": "billing-restored", "database": "billing", "status": "creating", "expires_at": null}
            ],
            "results": []
        });
        let report = render(&answer).report;
        let header = line_with(&report, "target");
        assert!(
            !header.contains("source"),
            "nested objects stay out of a table: {header}"
        );
        let columns: Vec<&str> = header
            .split(['│', '┆'])
            .map(str::trim)
            .filter(|cell| !cell.is_empty())
            .collect();
        assert_eq!(
            columns,
            vec!["database", "target", "status", "expires_at", "requested_by"]
        );
        let available = line_with(&report, "booking-db-restored");
        for value in [
            "booking-db",
            "available",
            "2026-11-22T14:00:00Z",
            "assumed-role/OnCall/ana",
        ] {
            assert!(available.contains(value), "{available}");
        }
        assert!(
            line_with(&report, "billing-restored").contains("creating"),
            "{report}"
        );
    }

    #[test]
    fn arrays_inside_objects_become_titled_tables_and_lists() {
        let answer = json!({
            "status": "amber",
            "assessment": {"databases": [{"database": "booking-db", "rpo_seconds": 3600, "findings": ["unencrypted"]}]},
            "reports": ["s3://lifeboat-reports/posture/2026-11-20.html"]
        });
        let report = render(&answer).report;
        assert!(report.contains("assessment.databases:\n"), "{report}");
        let row = line_with(&report, "booking-db");
        assert!(row.contains("3600") && row.contains("unencrypted"), "{row}");
        assert!(
            report.contains("reports:\n  - s3://lifeboat-reports/posture/2026-11-20.html"),
            "{report}"
        );
        assert_eq!(line_with(&report, "status"), "status: amber");
    }

    #[test]
    fn objects_with_nothing_for_a_cell_are_flattened_instead_of_an_empty_table() {
        let answer = json!({"regions": [{"slots": {"limit": 5, "in_flight": 2}}]});
        let report = render(&answer).report;
        assert_eq!(
            report,
            "regions.0.slots.limit:     5\nregions.0.slots.in_flight: 2\n"
        );
    }
}
