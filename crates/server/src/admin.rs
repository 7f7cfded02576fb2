//! The admin console's services: what operators do, with the authorization rules checked
//! against the caller here, whatever guard stands in front of them. Every write leaves an
//! audit entry in the same transaction.
//!
//! | module            | what                                                          |
//! |-------------------|---------------------------------------------------------------|
//! | [`audit`]         | the tamper-evident audit log: record, list, export, verify    |
//! | [`users`]         | find, inspect, edit, deactivate and reactivate accounts       |
//! | [`impersonation`] | act as a user for a bounded time, and stop doing so           |
//! | [`flags`]         | feature flags: admin writes, evaluation from memory, propagation |
//! | [`dashboard`]     | the dashboard's stats, cached and single-flight, pushed on `admin:dashboard` |

pub mod audit;
pub mod dashboard;
pub mod flags;
pub mod impersonation;
pub mod users;
