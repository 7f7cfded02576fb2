//! The admin console's services. Every function checks the caller's role itself, whatever
//! route group stands in front of it.
//!
//! | module | what |
//! |---|---|
//! | [`dashboard`] | the dashboard's stats, cached and single-flight, pushed on `admin:dashboard` |
//! | [`flags`] | feature flags: admin writes (audited), evaluation from memory, propagation |

pub mod dashboard;
pub mod flags;
