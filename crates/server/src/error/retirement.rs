//! A retired API version, as a 410 reports it.

use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::config::ApiVersion;

/// A version that has passed its sunset, as a 410 reports it.
#[derive(Clone, Debug)]
pub struct Retirement {
    /// The retired version.
    pub version: ApiVersion,
    /// When it was retired.
    pub sunset: DateTime<Utc>,
    /// The same path under the latest version.
    pub successor: Option<String>,
}

impl Retirement {
    /// `details` of the error body: the version, its sunset date and the successor path.
    pub fn details(&self) -> Value {
        json!({
            "version": self.version.as_str(),
            "sunset": self.sunset.date_naive().to_string(),
            "successor": self.successor,
        })
    }
}

impl fmt::Display for Retirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "API {} was retired on {}", self.version, self.sunset.date_naive())?;
        match &self.successor {
            Some(path) => write!(f, "; use {path}"),
            None => Ok(()),
        }
    }
}
