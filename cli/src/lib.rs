//! `lifeboat`, the operator CLI of Lifeboat: runs its disaster-recovery actions through the deployed functions
//! (Lambda `Invoke`, their JSON payloads) and prints their answers for the person on call.
//!
//! - [`command`]: the command line and the request each action sends;
//! - [`time`]: the times a person may type (`restore --at`);
//! - [`invoke`]: Lambda and STS, in AWS or the local DR run, and every failure in words one can act on;
//! - [`render`]: the answers as tables, generically (no function's types: they grow fields).
//!
//! It never links the functions' library: their payloads and answers are its only contract with them.

#![warn(missing_docs)]

pub mod command;
pub mod invoke;
pub mod render;
pub mod time;

use serde_json::Value;

use crate::command::Cli;
use crate::invoke::{Failure, Lifeboat, Reach};

/// Runs the command line's action: invokes its function and returns the answer.
pub async fn run(cli: &Cli) -> Result<Value, Failure> {
    let reach = Reach::of(&cli.deployment)?;
    Lifeboat::connect(&reach, &cli.deployment.stack)
        .await
        .send(cli.command.request())
        .await
}
