//! The admin console's services. Every function checks the caller's role itself, whatever
//! route group stands in front of it.
//!
//! | module | what |
//! |---|---|
//! | [`flags`] | feature flags: admin writes (audited), evaluation from memory, propagation |

pub mod flags;
