//! Per-item results of a run, shared by every function's response, ledger and notification.

use serde::{Deserialize, Serialize};

use crate::model::DatabaseKind;

/// What happened to one item (a database, a snapshot, a copy) in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// The action was taken.
    Done,
    /// Nothing needed doing: the result already existed.
    Unchanged,
    /// Left for a later run, with a reason (an operator hears of it).
    Skipped,
    /// Left for a later run that retries by itself (the next hourly run, a free copy slot): reported, never alerted.
    Waiting,
    /// The action failed.
    Failed,
}

/// The result for one item of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemOutcome {
    /// Database the item belongs to.
    pub database: String,
    /// Kind of that database.
    pub kind: DatabaseKind,
    /// Region the action was taken in.
    pub region: String,
    /// What was attempted, for example `create-snapshot`.
    pub action: String,
    /// What happened.
    pub status: ItemStatus,
    /// The resource acted on (a snapshot identifier), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Why it was skipped or how it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// What an operator should do, for skipped and failed items.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_step: Option<String>,
}

impl ItemOutcome {
    /// Whether an operator should hear about this item.
    pub fn needs_attention(&self) -> bool {
        matches!(self.status, ItemStatus::Skipped | ItemStatus::Failed)
    }
}

/// The most per-item results a function's answer carries. Lambda answers a synchronous invoke with at most 6 MB, and
/// a first retention run over a large fleet can delete tens of thousands of snapshots; the ledger and the counts hold
/// every result.
pub const ANSWER_RESULTS: usize = 2_000;

/// Keep at most [`ANSWER_RESULTS`] of `results` for a function's answer: those that need attention first, then the
/// rest in their order. Returns how many were left out.
pub fn bound_for_answer(results: &mut Vec<ItemOutcome>) -> usize {
    let omitted = results.len().saturating_sub(ANSWER_RESULTS);
    if omitted > 0 {
        results.sort_by_key(|item| !item.needs_attention());
        results.truncate(ANSWER_RESULTS);
    }
    omitted
}

/// Counts of outcomes by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Items done.
    pub done: usize,
    /// Items already in the desired state.
    pub unchanged: usize,
    /// Items skipped.
    pub skipped: usize,
    /// Items waiting for a later run that retries by itself.
    #[serde(default)]
    pub waiting: usize,
    /// Items failed.
    pub failed: usize,
}

impl Counts {
    /// Count `items` by status.
    pub fn of(items: &[ItemOutcome]) -> Self {
        items.iter().fold(Counts::default(), |mut c, item| {
            match item.status {
                ItemStatus::Done => c.done += 1,
                ItemStatus::Unchanged => c.unchanged += 1,
                ItemStatus::Skipped => c.skipped += 1,
                ItemStatus::Waiting => c.waiting += 1,
                ItemStatus::Failed => c.failed += 1,
            }
            c
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: usize, status: ItemStatus) -> ItemOutcome {
        ItemOutcome {
            database: format!("db-{n}"),
            kind: DatabaseKind::Instance,
            region: "us-east-1".into(),
            action: "delete-snapshot".into(),
            status,
            resource: Some(format!("snap-{n}")),
            detail: None,
            next_step: None,
        }
    }

    #[test]
    fn an_answer_keeps_what_needs_attention_and_says_how_many_it_left_out() {
        let mut results: Vec<ItemOutcome> = (0..ANSWER_RESULTS + 10)
            .map(|n| item(n, ItemStatus::Done))
            .collect();
        results.push(item(99_999, ItemStatus::Failed));
        assert_eq!(bound_for_answer(&mut results), 11);
        assert_eq!(results.len(), ANSWER_RESULTS);
        assert_eq!(results[0].database, "db-99999");
        assert_eq!(results[1].database, "db-0", "the rest keep their order");

        let mut few = vec![item(1, ItemStatus::Done), item(2, ItemStatus::Failed)];
        assert_eq!(bound_for_answer(&mut few), 0);
        assert_eq!(few[0].database, "db-1", "a short list is left as it is");
    }
}
