//! Who is calling: verification of the credentials a request carries.

pub mod external;
