//! Lifeboat: disaster recovery for Amazon RDS and Aurora.
//!
//! This crate is the library every function shares:
//! - [`policy`]: the YAML policy, parsed and validated;
//! - pure domain logic that never names SDK types: [`snapshot`] planning, [`policy::TierCalendar`] tiers;
//! - [`copy`]: cross-region copy scheduling (pure): which copies to start within RDS's in-flight limit;
//! - [`aws`]: SDK clients and thin per-service adapters with typed errors;
//! - [`ledger`] (audit trail in S3), [`notify`] (SNS summaries), [`metrics`] (EMF), [`clock`];
//! - [`input`] and [`lambda`]: reading invocation payloads and reporting failures to Lambda;
//! - [`ownership`]: which deployment made a resource (each touches only its own);
//! - [`services`]: what every function shares (policy, ledger, alert topic, clock) and its run summary;
//! - [`restore`]: the one restore engine of drills, ad-hoc restores and failover; [`drill`] schedules drills;
//! - [`failover`]: failover, failover drill and failback planning (pure); [`state`]: state objects in S3 written
//!   only if unchanged since read;
//! - `checks` (feature `sql-checks`): SQL checks of restored databases, linked only by functions that run them.

pub mod aws;
#[cfg(feature = "sql-checks")]
pub mod checks;
pub mod clock;
pub mod config;
pub mod copy;
pub mod drill;
#[cfg(feature = "failover")]
pub mod failover;
pub mod input;
pub mod lambda;
pub mod ledger;
pub mod metrics;
pub mod model;
pub mod monitor;
pub mod notify;
pub mod ownership;
pub mod policy;
pub mod posture;
pub mod report;
pub mod restore;
pub mod retention;
pub mod services;
pub mod snapshot;
pub mod state;
pub mod tags;
pub mod telemetry;
