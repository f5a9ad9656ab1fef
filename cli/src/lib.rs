//! `lifeboat`, the operator CLI of Lifeboat: runs its disaster-recovery actions through the deployed functions
//! (Lambda `Invoke`, their JSON payloads) and prints their answers for the person on call.
//!
//! - [`command`]: the command line and the request each action sends;
//! - [`time`]: the times a person may type (`restore --at`).
//!
//! It never links the functions' library: their payloads and answers are its only contract with them.

#![warn(missing_docs)]

pub mod command;
pub mod time;
