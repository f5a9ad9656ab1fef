//! Alert state transitions (pure): an open condition is announced once when it opens, reminded at most once per
//! [`REMIND_EVERY`], and announced once when it clears. The monitor runs every 15 minutes; without this state it
//! would page the on-call person 96 times a day about the same thing.
//!
//! The state is a serde-serialisable map of the open conditions, which the monitor function stores between runs
//! (in the reports bucket, written conditionally) and hands back to [`transition`] on the next run.
//!
//! A condition is cleared only when the run could decide it: an open condition the run could not decide (a read it
//! depends on failed: [`Undecided`]) is carried forward as it was, neither cleared nor announced, so a failed read
//! does not page "cleared" and then "opened" again on the next good run; it is still reminded daily, marked as not
//! re-checked since the last run that decided it.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::{Condition, ConditionKey, HeldOpen, Undecided};

/// The shortest time between two announcements of a condition that stays open.
pub const REMIND_EVERY: Duration = Duration::from_secs(24 * 3600);

/// A condition that is open, as stored between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenCondition {
    /// The condition as last seen (its message may change while it stays open).
    pub condition: Condition,
    /// When it was first seen open.
    pub opened_at: DateTime<Utc>,
    /// When it was last announced (opened or reminded).
    pub last_notified_at: DateTime<Utc>,
    /// The last run that decided it open; absent from the state of earlier versions (then: `last_notified_at`,
    /// the latest time it is known to have been decided).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<DateTime<Utc>>,
}

impl OpenCondition {
    /// The last run that decided it open, as far as is known.
    pub fn checked_at(&self) -> DateTime<Utc> {
        self.checked_at.unwrap_or(self.last_notified_at)
    }
}

/// The alert state kept between monitor runs: the open conditions by key.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AlertState {
    /// Open conditions by [`state_key`].
    pub open: BTreeMap<String, OpenCondition>,
}

impl AlertState {
    /// The open conditions that are not among `current` (the conditions this run found): those held open because
    /// the run could not re-check them, worst first.
    pub fn held_open(&self, current: &[Condition]) -> Vec<HeldOpen> {
        let mut held: Vec<HeldOpen> = self
            .open
            .values()
            .filter(|o| !current.iter().any(|c| c.key == o.condition.key))
            .map(|o| HeldOpen {
                condition: o.condition.clone(),
                open_since: o.opened_at,
                checked_at: o.checked_at(),
            })
            .collect();
        held.sort_by(|a, b| {
            (a.condition.severity, &a.condition.key).cmp(&(b.condition.severity, &b.condition.key))
        });
        held
    }
}

/// The key of a condition in [`AlertState::open`]: `kind region resource`, stable from run to run.
pub fn state_key(key: &ConditionKey) -> String {
    key.to_string()
}

/// A condition announced as still open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminder {
    /// The condition now.
    pub condition: Condition,
    /// Since when it is open.
    pub open_since: DateTime<Utc>,
    /// When this run could not re-check it (a read failed): the last run that decided it open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_rechecked_since: Option<DateTime<Utc>>,
}

/// A condition that was open and is no longer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cleared {
    /// The condition as last seen open.
    pub condition: Condition,
    /// When it opened.
    pub opened_at: DateTime<Utc>,
}

/// What to tell the on-call person this run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Announcements {
    /// Conditions that opened since the last run, worst first.
    pub opened: Vec<Condition>,
    /// Conditions still open and last announced at least [`REMIND_EVERY`] ago, worst first.
    pub reminders: Vec<Reminder>,
    /// Conditions that were open and are no longer.
    pub cleared: Vec<Cleared>,
}

impl Announcements {
    /// Whether there is nothing to announce.
    pub fn is_empty(&self) -> bool {
        self.opened.is_empty() && self.reminders.is_empty() && self.cleared.is_empty()
    }
}

/// Decide what to announce given the state stored by the previous run, the conditions open `now` and those this
/// run could not decide (`undecided`), and the state to store for the next run. Conditions with the same key count
/// once (the first). An open condition that is not open now is cleared, unless `undecided` covers it: then it is
/// kept as it was (its message, since when, when last decided), never announced cleared, and reminded when due
/// like any open condition, marked not re-checked since the last run that decided it. A clock that went
/// backwards reminds nothing.
pub fn transition(
    previous: &AlertState,
    current: &[Condition],
    undecided: &[Undecided],
    now: DateTime<Utc>,
) -> (Announcements, AlertState) {
    let remind_every = TimeDelta::from_std(REMIND_EVERY).unwrap_or(TimeDelta::MAX);
    let mut announcements = Announcements::default();
    let mut next = AlertState::default();
    let is_due = |before: &OpenCondition| {
        before
            .last_notified_at
            .checked_add_signed(remind_every)
            .is_some_and(|due| due <= now)
    };
    for condition in current {
        let key = state_key(&condition.key);
        if next.open.contains_key(&key) {
            continue;
        }
        let open = match previous.open.get(&key) {
            None => {
                announcements.opened.push(condition.clone());
                OpenCondition {
                    condition: condition.clone(),
                    opened_at: now,
                    last_notified_at: now,
                    checked_at: Some(now),
                }
            }
            Some(before) => {
                let due = is_due(before);
                if due {
                    announcements.reminders.push(Reminder {
                        condition: condition.clone(),
                        open_since: before.opened_at,
                        not_rechecked_since: None,
                    });
                }
                OpenCondition {
                    condition: condition.clone(),
                    opened_at: before.opened_at,
                    last_notified_at: if due { now } else { before.last_notified_at },
                    checked_at: Some(now),
                }
            }
        };
        next.open.insert(key, open);
    }
    for (key, before) in &previous.open {
        if next.open.contains_key(key) {
            continue;
        }
        if undecided.iter().any(|u| u.covers(&before.condition.key)) {
            // Held open as last decided; reminded when due like any open condition, saying it was not re-checked.
            let mut held = before.clone();
            if is_due(before) {
                announcements.reminders.push(Reminder {
                    condition: before.condition.clone(),
                    open_since: before.opened_at,
                    not_rechecked_since: Some(before.checked_at()),
                });
                held.last_notified_at = now;
            }
            next.open.insert(key.clone(), held);
        } else {
            announcements.cleared.push(Cleared {
                condition: before.condition.clone(),
                opened_at: before.opened_at,
            });
        }
    }
    let worst = |c: &Condition| (c.severity, c.key.clone());
    announcements.opened.sort_by_key(worst);
    announcements.reminders.sort_by_key(|r| worst(&r.condition));
    announcements.cleared.sort_by_key(|c| worst(&c.condition));
    (announcements, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::{ConditionKind, Severity};
    use proptest::prelude::*;

    fn condition(kind: ConditionKind, resource: &str) -> Condition {
        Condition {
            key: ConditionKey {
                kind,
                resource: resource.into(),
                region: "us-east-1".into(),
            },
            severity: Severity::Critical,
            database: Some(resource.into()),
            message: format!("{kind} on {resource}"),
            next_step: "fix it".into(),
        }
    }

    fn t0() -> DateTime<Utc> {
        "2026-11-22T02:00:00Z".parse().unwrap()
    }

    #[test]
    fn opened_once_reminded_daily_cleared_once() {
        let c = condition(ConditionKind::MissingDaily, "booking-db");
        let (a, state) = transition(&AlertState::default(), std::slice::from_ref(&c), &[], t0());
        assert_eq!(a.opened, vec![c.clone()]);
        let mut state = state;
        let mut reminders = 0;
        for quarter in 1..=(4 * 48) {
            let now = t0() + TimeDelta::minutes(15 * quarter);
            let (a, next) = transition(&state, std::slice::from_ref(&c), &[], now);
            assert!(a.opened.is_empty() && a.cleared.is_empty());
            reminders += a.reminders.len();
            state = next;
        }
        assert_eq!(reminders, 2, "48 hours open: reminded after 24 h and 48 h");
        let (a, state) = transition(&state, &[], &[], t0() + TimeDelta::hours(49));
        assert_eq!(a.cleared.len(), 1);
        assert_eq!(a.cleared[0].opened_at, t0());
        assert!(state.open.is_empty());
        let (a, _) = transition(&state, &[], &[], t0() + TimeDelta::hours(50));
        assert!(a.is_empty(), "cleared once");
    }

    #[test]
    fn the_newest_message_is_kept_and_duplicates_count_once() {
        let mut c = condition(ConditionKind::RpoBreach, "db");
        let (_, state) = transition(&AlertState::default(), &[c.clone(), c.clone()], &[], t0());
        assert_eq!(state.open.len(), 1);
        c.message = "worse now".into();
        let (a, state) = transition(
            &state,
            std::slice::from_ref(&c),
            &[],
            t0() + TimeDelta::hours(1),
        );
        assert!(a.is_empty());
        assert_eq!(
            state.open.values().next().unwrap().condition.message,
            "worse now"
        );
    }

    #[test]
    fn a_clock_going_backwards_reminds_nothing() {
        let c = condition(ConditionKind::QuotaHigh, "manual-instance-snapshots");
        let (_, state) = transition(&AlertState::default(), std::slice::from_ref(&c), &[], t0());
        let (a, _) = transition(
            &state,
            std::slice::from_ref(&c),
            &[],
            t0() - TimeDelta::days(3),
        );
        assert!(a.is_empty());
    }

    /// A storage read that fails for one run: the storage condition stays open as it was, unannounced, however long
    /// the reads fail; the next run that reads storage decides (here: cleared, announced once).
    #[test]
    fn a_condition_the_run_could_not_decide_is_kept_not_cleared() {
        let storage = condition(ConditionKind::StorageHigh, "booking-db");
        let quota = condition(ConditionKind::QuotaHigh, "manual-instance-snapshots");
        let (_, opened) = transition(
            &AlertState::default(),
            &[storage.clone(), quota.clone()],
            &[],
            t0(),
        );
        let unread = [Undecided::new(
            ConditionKind::StorageHigh,
            "us-east-1",
            Some("booking-db"),
        )];
        let mut state = opened.clone();
        for (run, hours) in [1, 25, 49].into_iter().enumerate() {
            let (a, next) = transition(&state, &[], &unread, t0() + TimeDelta::hours(hours));
            let cleared: Vec<ConditionKind> =
                a.cleared.iter().map(|c| c.condition.key.kind).collect();
            let expected = if run == 0 {
                vec![ConditionKind::QuotaHigh]
            } else {
                vec![]
            };
            assert_eq!(
                cleared, expected,
                "the quota was read: cleared once; the storage was not"
            );
            assert!(a.opened.is_empty(), "{a:?}");
            // Still open: reminded daily (after 24 h, then 48 h), marked not re-checked since the run that opened it.
            let expected = if run == 0 {
                vec![]
            } else {
                vec![Reminder {
                    condition: storage.clone(),
                    open_since: t0(),
                    not_rechecked_since: Some(t0()),
                }]
            };
            assert_eq!(a.reminders, expected, "run {run}");
            let (kept, was) = (
                &next.open[&state_key(&storage.key)],
                &opened.open[&state_key(&storage.key)],
            );
            assert_eq!(
                (&kept.condition, kept.opened_at, kept.checked_at),
                (&was.condition, was.opened_at, was.checked_at),
                "kept as last decided"
            );
            let held = next.held_open(&[]);
            assert_eq!(held.len(), 1, "held open, reported as such");
            assert_eq!(held[0].condition, storage);
            assert_eq!((held[0].open_since, held[0].checked_at), (t0(), t0()));
            state = next;
        }
        let (a, next) = transition(&state, &[], &[], t0() + TimeDelta::hours(50));
        assert_eq!(a.cleared.len(), 1, "storage read again: cleared, once");
        assert!(next.open.is_empty());
        // A region-wide scope covers every resource of its kind there, and nothing elsewhere.
        let everywhere = Undecided::new(ConditionKind::StorageHigh, "us-east-1", None);
        assert!(everywhere.covers(&storage.key));
        assert!(!everywhere.covers(&quota.key));
        let mut elsewhere = storage.key.clone();
        elsewhere.region = "us-west-2".into();
        assert!(!everywhere.covers(&elsewhere));
    }

    /// A run: minutes after the previous run, the conditions open then (indexes into [`universe`]), and the scopes
    /// it could not read (indexes into [`scopes`]).
    fn arb_runs() -> impl Strategy<Value = Vec<(u16, Vec<usize>, Vec<usize>)>> {
        prop::collection::vec(
            (
                1u16..2000,
                prop::collection::vec(0usize..5, 0..5),
                prop::collection::vec(0usize..4, 0..3),
            ),
            1..80,
        )
    }

    fn scopes() -> Vec<Undecided> {
        vec![
            Undecided::new(ConditionKind::RpoBreach, "us-east-1", Some("a")),
            Undecided::new(ConditionKind::StorageHigh, "us-east-1", None),
            Undecided::new(ConditionKind::MissingDaily, "us-east-1", Some("z")),
            Undecided::new(ConditionKind::RpoBreach, "us-west-2", None),
        ]
    }

    fn universe() -> Vec<Condition> {
        [
            (ConditionKind::RpoBreach, "a"),
            (ConditionKind::RpoBreach, "b"),
            (ConditionKind::MissingDaily, "a"),
            (ConditionKind::StorageHigh, "c"),
            (ConditionKind::Unprotected, "d"),
        ]
        .into_iter()
        .map(|(k, r)| condition(k, r))
        .collect()
    }

    proptest! {
        #[test]
        fn open_conditions_are_announced_at_most_once_a_day_and_cleared_exactly_once(runs in arb_runs()) {
            let universe = universe();
            let mut state = AlertState::default();
            let mut now = t0();
            // Per key: announcement times (opened or reminded) in the current open spell, opens and clears.
            let mut announced: BTreeMap<String, Vec<DateTime<Utc>>> = BTreeMap::new();
            let mut opens: BTreeMap<String, usize> = BTreeMap::new();
            let mut clears: BTreeMap<String, usize> = BTreeMap::new();
            let mut was_open: BTreeMap<String, bool> = BTreeMap::new();
            let scopes = scopes();
            let mut all_runs = runs.clone();
            all_runs.push((1, vec![], vec![])); // at the end everything disappears, every read succeeds
            for (minutes, open, unread) in all_runs {
                now += TimeDelta::minutes(i64::from(minutes));
                let current: Vec<Condition> = open.iter().map(|&i| universe[i].clone()).collect();
                let unread: Vec<Undecided> = unread.iter().map(|&i| scopes[i].clone()).collect();
                let (a, next) = transition(&state, &current, &unread, now);
                for c in &a.opened {
                    let key = state_key(&c.key);
                    prop_assert!(!was_open.get(&key).copied().unwrap_or(false), "opened while open: {key}");
                    *opens.entry(key.clone()).or_default() += 1;
                    announced.insert(key, vec![now]);
                }
                for r in &a.reminders {
                    let key = state_key(&r.condition.key);
                    let times = announced.entry(key.clone()).or_default();
                    if let Some(last) = times.last() {
                        prop_assert!(now - *last >= TimeDelta::hours(24), "{key} announced twice within 24 h");
                    }
                    times.push(now);
                }
                for c in &a.cleared {
                    let key = state_key(&c.condition.key);
                    prop_assert!(was_open.get(&key).copied().unwrap_or(false), "cleared while not open: {key}");
                    *clears.entry(key).or_default() += 1;
                }
                // A condition open now (or kept, undecided) but not announced this run was announced within the
                // last 24 h or is kept undecided.
                for c in &current {
                    let key = state_key(&c.key);
                    let last = announced.get(&key).and_then(|t| t.last()).copied();
                    prop_assert!(last.is_some_and(|l| now - l < TimeDelta::hours(24) || l == now));
                }
                was_open = universe.iter().map(|c| {
                    let key = state_key(&c.key);
                    let open = next.open.contains_key(&key);
                    (key, open)
                }).collect();
                state = next;
            }
            prop_assert!(state.open.is_empty());
            prop_assert_eq!(opens, clears, "every condition opened is cleared exactly once");
        }

        #[test]
        fn state_round_trips_through_json(runs in arb_runs()) {
            let universe = universe();
            let mut state = AlertState::default();
            let mut now = t0();
            let scopes = scopes();
            for (minutes, open, unread) in runs {
                now += TimeDelta::minutes(i64::from(minutes));
                let current: Vec<Condition> = open.iter().map(|&i| universe[i].clone()).collect();
                let unread: Vec<Undecided> = unread.iter().map(|&i| scopes[i].clone()).collect();
                let stored = serde_json::to_string(&state).unwrap();
                let restored: AlertState = serde_json::from_str(&stored).unwrap();
                prop_assert_eq!(&restored, &state);
                let from_original = transition(&state, &current, &unread, now);
                let from_restored = transition(&restored, &current, &unread, now);
                prop_assert_eq!(&from_original, &from_restored);
                state = from_original.1;
            }
        }

        /// The carry-forward rule: an open condition whose scope this run could not read is never announced
        /// cleared (nor announced at all unless it is open now); it stays in the state exactly as it was.
        #[test]
        fn a_condition_whose_scope_is_unread_is_never_announced_cleared(runs in arb_runs()) {
            let (universe, scopes) = (universe(), scopes());
            let mut state = AlertState::default();
            let mut now = t0();
            for (minutes, open, unread) in runs {
                now += TimeDelta::minutes(i64::from(minutes));
                let current: Vec<Condition> = open.iter().map(|&i| universe[i].clone()).collect();
                let unread: Vec<Undecided> = unread.iter().map(|&i| scopes[i].clone()).collect();
                let undecided = |key: &ConditionKey| unread.iter().any(|u| u.covers(key));
                let (a, next) = transition(&state, &current, &unread, now);
                for c in &a.cleared {
                    prop_assert!(!undecided(&c.condition.key), "{} cleared while unread", c.condition.key);
                }
                let is_current = |key: &ConditionKey| current.iter().any(|c| &c.key == key);
                for (key, before) in &state.open {
                    if undecided(&before.condition.key) && !is_current(&before.condition.key) {
                        let kept = next.open.get(key);
                        prop_assert!(kept.is_some(), "{} not kept", key);
                        let kept = kept.unwrap();
                        prop_assert_eq!(
                            (&kept.condition, kept.opened_at, kept.checked_at),
                            (&before.condition, before.opened_at, before.checked_at),
                            "{} not kept as it was", key
                        );
                    }
                }
                for c in &a.opened {
                    prop_assert!(is_current(&c.key), "{} announced but not open now", c.key);
                }
                // A reminder is of a condition open now, or of one held open, marked not re-checked.
                for r in &a.reminders {
                    let held = !is_current(&r.condition.key);
                    prop_assert_eq!(held, r.not_rechecked_since.is_some(), "{}", r.condition.key);
                    prop_assert!(!held || undecided(&r.condition.key), "{} reminded but not open", r.condition.key);
                }
                state = next;
            }
        }
    }
}
