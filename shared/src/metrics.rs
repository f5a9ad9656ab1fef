//! Metrics as CloudWatch Embedded Metric Format (EMF) lines in the function's log: CloudWatch extracts them
//! with no API call and no per-datapoint cost.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// Namespace of every Lifeboat metric.
pub const NAMESPACE: &str = "Lifeboat";

/// Unit of a metric value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A count.
    Count,
    /// Seconds.
    Seconds,
    /// A percentage.
    Percent,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
            Unit::Percent => "Percent",
        }
    }
}

/// Dimension name/value pairs identifying one metric group.
type Dimensions = Vec<(String, String)>;

/// Metric name, value and unit.
type Datapoint = (String, f64, Unit);

/// Metrics collected during one run, grouped by dimension set; rendered as one EMF document per group.
#[derive(Debug, Clone)]
pub struct Metrics {
    function: String,
    deployment: String,
    timestamp: DateTime<Utc>,
    groups: BTreeMap<Dimensions, Vec<Datapoint>>,
}

impl Metrics {
    /// Metrics of `function` of the deployment (stack) named `deployment`, stamped with `timestamp`. Every
    /// metric carries both as dimensions, so two deployments in one account and region never mix their metrics.
    pub fn new(
        function: impl Into<String>,
        deployment: impl Into<String>,
        timestamp: DateTime<Utc>,
    ) -> Self {
        Self {
            function: function.into(),
            deployment: deployment.into(),
            timestamp,
            groups: BTreeMap::new(),
        }
    }

    /// Record `name = value` under the dimensions `Function` and `Deployment` plus `dimensions` (for example
    /// database and region). The caller does not name `Function` or `Deployment`: they come from [`Metrics::new`],
    /// and a caller's own entry under either name is ignored, so no dimension set names one twice.
    pub fn put(&mut self, dimensions: &[(&str, &str)], name: &str, value: f64, unit: Unit) {
        let mut key = vec![
            ("Function".to_string(), self.function.clone()),
            ("Deployment".to_string(), self.deployment.clone()),
        ];
        key.extend(
            dimensions
                .iter()
                .filter(|(k, _)| *k != "Function" && *k != "Deployment")
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        self.groups
            .entry(key)
            .or_default()
            .push((name.to_string(), value, unit));
    }

    /// The EMF documents, one JSON line per dimension set.
    pub fn render(&self) -> Vec<String> {
        self.groups
            .iter()
            .map(|(dimensions, values)| {
                let names: Vec<&str> = dimensions.iter().map(|(k, _)| k.as_str()).collect();
                let definitions: Vec<Value> = values
                    .iter()
                    .map(|(name, _, unit)| json!({"Name": name, "Unit": unit.as_str()}))
                    .collect();
                let mut doc = Map::new();
                doc.insert(
                    "_aws".into(),
                    json!({
                        "Timestamp": self.timestamp.timestamp_millis(),
                        "CloudWatchMetrics": [{
                            "Namespace": NAMESPACE,
                            "Dimensions": [names],
                            "Metrics": definitions,
                        }],
                    }),
                );
                for (k, v) in dimensions {
                    doc.insert(k.clone(), Value::String(v.clone()));
                }
                for (name, value, _) in values {
                    doc.insert(name.clone(), json!(value));
                }
                Value::Object(doc).to_string()
            })
            .collect()
    }

    /// Write the EMF documents to standard output, where Lambda's log capture picks them up.
    pub fn emit(&self) {
        for line in self.render() {
            println!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_emf_document_per_dimension_set() {
        let mut metrics = Metrics::new(
            "snapshot",
            "lifeboat-prod",
            "2026-11-21T02:00:00Z".parse().unwrap(),
        );
        metrics.put(
            &[("Database", "booking"), ("Region", "us-east-1")],
            "SnapshotCreated",
            1.0,
            Unit::Count,
        );
        metrics.put(
            &[("Database", "booking"), ("Region", "us-east-1")],
            "SnapshotFailed",
            0.0,
            Unit::Count,
        );
        metrics.put(
            &[("Region", "us-east-1")],
            "DatabasesSelected",
            2.0,
            Unit::Count,
        );
        let lines = metrics.render();
        assert_eq!(lines.len(), 2);
        let doc: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(doc["_aws"]["Timestamp"], 1_795_226_400_000i64);
        let cw = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "Lifeboat");
        assert_eq!(
            cw["Dimensions"],
            json!([["Function", "Deployment", "Database", "Region"]])
        );
        assert_eq!(
            cw["Metrics"][0],
            json!({"Name": "SnapshotCreated", "Unit": "Count"})
        );
        assert_eq!(doc["Function"], "snapshot");
        assert_eq!(doc["Deployment"], "lifeboat-prod");
        assert_eq!(doc["Database"], "booking");
        assert_eq!(doc["SnapshotCreated"], 1.0);
        assert_eq!(doc["SnapshotFailed"], 0.0);
        let run: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(
            run["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function", "Deployment", "Region"]])
        );
        assert_eq!(run["Deployment"], "lifeboat-prod");
        assert_eq!(run["DatabasesSelected"], 2.0);
    }

    #[test]
    fn every_dimension_set_names_the_deployment_once() {
        let mut metrics = Metrics::new(
            "monitor",
            "lifeboat-prod",
            "2026-11-21T02:00:00Z".parse().unwrap(),
        );
        metrics.put(&[], "MonitorRuns", 1.0, Unit::Count);
        // A caller's own Deployment (or Function) entry cannot duplicate or override the deployment's.
        metrics.put(
            &[("Deployment", "other"), ("Severity", "critical")],
            "OpenConditions",
            2.0,
            Unit::Count,
        );
        let lines = metrics.render();
        assert_eq!(lines.len(), 2);
        let mut sets = Vec::new();
        for line in &lines {
            let doc: Value = serde_json::from_str(line).unwrap();
            assert_eq!(doc["Deployment"], "lifeboat-prod");
            assert_eq!(doc["Function"], "monitor");
            sets.push(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"].clone());
        }
        assert_eq!(
            sets,
            [
                json!([["Function", "Deployment"]]),
                json!([["Function", "Deployment", "Severity"]]),
            ]
        );
    }
}
