//! Authentication: passwords, the service's own tokens, external identity providers, and the
//! extractors and route-group guards that put the caller in each request.

pub mod activity;
pub mod external;
pub mod guard;
pub mod password;
pub mod role;
pub mod tokens;

pub use guard::{AdminUser, CurrentUser, Impersonator};
pub use role::Role;
