//! The HTTP API: thin handlers per version that call services and map to DTOs.
//!
//! A released version is frozen: its DTOs live in its own module. [`version`] lists the
//! versions; [`lifecycle`] applies their deprecation schedule; [`openapi`] completes each
//! version's OpenAPI document.

pub mod lifecycle;
pub mod ofrep;
pub mod openapi;
pub mod v1;
pub mod v2;
pub mod version;
