//! Rate-limit settings: `RATE_LIMIT_ENABLED`, one `RATE_LIMIT_<CLASS>` per class (including
//! `RATE_LIMIT_LOGIN_FAILURES` and `RATE_LIMIT_LOGIN_CEILING`) and `TRUSTED_PROXIES`.

use std::fmt;
use std::time::Duration;

use super::Cidr;
use super::parse::{self, Vars};

/// What kind of traffic a limit applies to; each class has its own rate and its own buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitClass {
    /// Unauthenticated endpoints, per client IP.
    Public,
    /// Authenticated API calls, per user.
    App,
    /// Sign-in, sign-up and recovery, per client IP and per email.
    Auth,
    /// AI endpoints, per user.
    Ai,
    /// Incoming webhooks, per client IP.
    Webhooks,
    /// Failed sign-ins per email and client IP.
    LoginFailures,
    /// Failed sign-ins per email from every client: the ceiling a distributed guess meets.
    LoginCeiling,
    /// Realtime WebSocket handshakes, per client IP.
    Websocket,
    /// Realtime room subscriptions (joining or creating a room), per user.
    Rooms,
    /// Contact-form submissions, per client IP.
    Contact,
}

impl LimitClass {
    /// Every class.
    pub const ALL: [LimitClass; 10] = [
        LimitClass::Public,
        LimitClass::App,
        LimitClass::Auth,
        LimitClass::Ai,
        LimitClass::Webhooks,
        LimitClass::LoginFailures,
        LimitClass::LoginCeiling,
        LimitClass::Websocket,
        LimitClass::Rooms,
        LimitClass::Contact,
    ];

    /// The class's name in variables (`RATE_LIMIT_PUBLIC`) and Redis keys (`rl:public:…`).
    pub fn as_str(self) -> &'static str {
        match self {
            LimitClass::Public => "public",
            LimitClass::App => "app",
            LimitClass::Auth => "auth",
            LimitClass::Ai => "ai",
            LimitClass::Webhooks => "webhooks",
            LimitClass::LoginFailures => "login_failures",
            LimitClass::LoginCeiling => "login_ceiling",
            LimitClass::Websocket => "websocket",
            LimitClass::Rooms => "rooms",
            LimitClass::Contact => "contact",
        }
    }

    /// The class's position in [`LimitClass::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for LimitClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A number of requests per window, written `<n>/<second|minute|hour|day>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed per window (at least 1).
    pub limit: u32,
    /// The window's length.
    pub window: Duration,
}

impl Rate {
    /// `limit` requests per minute.
    pub const fn per_minute(limit: u32) -> Rate {
        Rate { limit, window: Duration::from_secs(60) }
    }
}

const WINDOWS: [(u64, &str, &[&str]); 4] = [
    (1, "second", &["s", "sec", "secs", "second", "seconds"]),
    (60, "minute", &["m", "min", "mins", "minute", "minutes"]),
    (3600, "hour", &["h", "hr", "hrs", "hour", "hours"]),
    (86_400, "day", &["d", "day", "days"]),
];

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.window.as_secs();
        match WINDOWS.iter().find(|(length, _, _)| *length == seconds) {
            Some((_, name, _)) => write!(f, "{}/{name}", self.limit),
            None => write!(f, "{}/{seconds}s", self.limit),
        }
    }
}

/// `<n>/<unit>`: `60/minute`, `60/min`, `60/m`, `5/s`, `1000/hour`, `10000/day`.
pub(super) fn rate(value: &str) -> Result<Rate, String> {
    let invalid = || format!("must be <requests>/<second|minute|hour|day> such as 60/minute, got {value:?}");
    let (count, unit) = value.split_once('/').ok_or_else(invalid)?;
    let limit = count.trim().parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(invalid)?;
    let unit = unit.trim().to_ascii_lowercase();
    let (seconds, _, _) = WINDOWS.iter().find(|(_, _, names)| names.contains(&unit.as_str())).ok_or_else(invalid)?;
    Ok(Rate { limit, window: Duration::from_secs(*seconds) })
}

/// How requests are limited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// `RATE_LIMIT_ENABLED`: when false nothing is limited and no headers are added.
    pub enabled: bool,
    /// `RATE_LIMIT_PUBLIC`, per client IP.
    pub public: Rate,
    /// `RATE_LIMIT_APP`, per user.
    pub app: Rate,
    /// `RATE_LIMIT_AUTH`, per client IP and, separately, per email.
    pub auth: Rate,
    /// `RATE_LIMIT_AI`, per user.
    pub ai: Rate,
    /// `RATE_LIMIT_WEBHOOKS`, per client IP.
    pub webhooks: Rate,
    /// `RATE_LIMIT_LOGIN_FAILURES`: failed sign-ins per email and client IP.
    pub login_failures: Rate,
    /// `RATE_LIMIT_LOGIN_CEILING`: failed sign-ins per email from every client.
    pub login_ceiling: Rate,
    /// `RATE_LIMIT_WEBSOCKET`: realtime handshakes, per client IP.
    pub websocket: Rate,
    /// `RATE_LIMIT_ROOMS`: realtime room subscriptions, per user.
    pub rooms: Rate,
    /// `RATE_LIMIT_CONTACT`: contact-form submissions, per client IP.
    pub contact: Rate,
    /// `TRUSTED_PROXIES`: peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<Cidr>,
}

impl RateLimitSettings {
    /// The rate of `class`.
    pub fn rate(&self, class: LimitClass) -> Rate {
        match class {
            LimitClass::Public => self.public,
            LimitClass::App => self.app,
            LimitClass::Auth => self.auth,
            LimitClass::Ai => self.ai,
            LimitClass::Webhooks => self.webhooks,
            LimitClass::LoginFailures => self.login_failures,
            LimitClass::LoginCeiling => self.login_ceiling,
            LimitClass::Websocket => self.websocket,
            LimitClass::Rooms => self.rooms,
            LimitClass::Contact => self.contact,
        }
    }

    fn rate_mut(&mut self, class: LimitClass) -> &mut Rate {
        match class {
            LimitClass::Public => &mut self.public,
            LimitClass::App => &mut self.app,
            LimitClass::Auth => &mut self.auth,
            LimitClass::Ai => &mut self.ai,
            LimitClass::Webhooks => &mut self.webhooks,
            LimitClass::LoginFailures => &mut self.login_failures,
            LimitClass::LoginCeiling => &mut self.login_ceiling,
            LimitClass::Websocket => &mut self.websocket,
            LimitClass::Rooms => &mut self.rooms,
            LimitClass::Contact => &mut self.contact,
        }
    }

    /// Every rate-limit setting as `(VARIABLE, value)`.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let mut described = vec![("RATE_LIMIT_ENABLED", self.enabled.to_string())];
        described.extend(LimitClass::ALL.iter().map(|class| (variable(*class), self.rate(*class).to_string())));
        let proxies = self.trusted_proxies.iter().map(Cidr::to_string).collect::<Vec<_>>().join(",");
        described.push(("TRUSTED_PROXIES", proxies));
        described
    }
}

impl Default for RateLimitSettings {
    /// Limiting on, the documented default rates, no trusted proxies.
    fn default() -> Self {
        RateLimitSettings {
            enabled: true,
            public: Rate::per_minute(60),
            app: Rate::per_minute(120),
            auth: Rate::per_minute(5),
            ai: Rate::per_minute(10),
            webhooks: Rate::per_minute(1000),
            login_failures: Rate::per_minute(5),
            login_ceiling: Rate { limit: 100, window: Duration::from_secs(3600) },
            websocket: Rate::per_minute(120),
            rooms: Rate::per_minute(60),
            contact: Rate { limit: 5, window: Duration::from_secs(3600) },
            trusted_proxies: Vec::new(),
        }
    }
}

/// The variable that sets `class`'s rate.
fn variable(class: LimitClass) -> &'static str {
    match class {
        LimitClass::Public => "RATE_LIMIT_PUBLIC",
        LimitClass::App => "RATE_LIMIT_APP",
        LimitClass::Auth => "RATE_LIMIT_AUTH",
        LimitClass::Ai => "RATE_LIMIT_AI",
        LimitClass::Webhooks => "RATE_LIMIT_WEBHOOKS",
        LimitClass::LoginFailures => "RATE_LIMIT_LOGIN_FAILURES",
        LimitClass::LoginCeiling => "RATE_LIMIT_LOGIN_CEILING",
        LimitClass::Websocket => "RATE_LIMIT_WEBSOCKET",
        LimitClass::Rooms => "RATE_LIMIT_ROOMS",
        LimitClass::Contact => "RATE_LIMIT_CONTACT",
    }
}

/// A comma-separated list of networks; empty trusts nobody.
fn trusted_proxies(value: &str) -> Result<Vec<Cidr>, String> {
    value.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::parse).collect()
}

/// Reads the rate-limit variables; each problem is recorded in `vars`.
pub(super) fn settings(vars: &mut Vars) -> RateLimitSettings {
    let defaults = RateLimitSettings::default();
    let mut settings = RateLimitSettings {
        enabled: vars.parse("RATE_LIMIT_ENABLED", "true", parse::boolean).unwrap_or(defaults.enabled),
        trusted_proxies: vars.parse("TRUSTED_PROXIES", "", trusted_proxies).unwrap_or_default(),
        ..defaults.clone()
    };
    for class in LimitClass::ALL {
        let default = defaults.rate(class).to_string();
        if let Some(rate) = vars.parse(variable(class), &default, rate) {
            *settings.rate_mut(class) = rate;
        }
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_accept_full_short_and_abbreviated_units() {
        let minute = Duration::from_secs(60);
        for value in ["60/minute", "60/min", "60/m", "60/MINUTE", " 60 / minutes "] {
            assert_eq!(rate(value), Ok(Rate { limit: 60, window: minute }), "{value}");
        }
        assert_eq!(rate("5/second").unwrap().window, Duration::from_secs(1));
        assert_eq!(rate("5/s").unwrap().window, Duration::from_secs(1));
        assert_eq!(rate("1000/hour").unwrap().window, Duration::from_secs(3600));
        assert_eq!(rate("1000/h").unwrap().window, Duration::from_secs(3600));
        assert_eq!(rate("10000/day").unwrap(), Rate { limit: 10000, window: Duration::from_secs(86_400) });
        assert_eq!(rate("10000/d").unwrap().window, Duration::from_secs(86_400));
    }

    #[test]
    fn windows_reject_what_they_cannot_read() {
        for bad in ["60", "0/minute", "-1/minute", "x/minute", "60/fortnight", "60/", "/minute", "60/minute/2", ""] {
            let err = rate(bad).unwrap_err();
            assert!(err.contains("such as 60/minute"), "{bad:?}: {err}");
        }
        assert!(rate("4294967296/minute").is_err(), "more than u32");
    }

    #[test]
    fn rates_print_as_they_are_written() {
        assert_eq!(Rate::per_minute(60).to_string(), "60/minute");
        assert_eq!(rate("5/s").unwrap().to_string(), "5/second");
        assert_eq!(rate("7/d").unwrap().to_string(), "7/day");
        assert_eq!(Rate { limit: 3, window: Duration::from_secs(90) }.to_string(), "3/90s");
    }

    #[test]
    fn trusted_proxies_are_a_comma_list_of_networks() {
        let list = trusted_proxies("10.0.0.0/8, ::1 ,,192.168.0.1").unwrap();
        let printed: Vec<String> = list.iter().map(Cidr::to_string).collect();
        assert_eq!(printed, ["10.0.0.0/8", "::1/128", "192.168.0.1/32"]);
        assert_eq!(trusted_proxies("").unwrap(), vec![]);
        assert!(trusted_proxies("10.0.0.0/8, proxy.internal").unwrap_err().contains("proxy.internal"));
    }

    #[test]
    fn settings_default_to_the_documented_rates_and_name_bad_variables() {
        let unset = |_: &str| None;
        let mut vars = Vars::new(&unset);
        assert_eq!(settings(&mut vars), RateLimitSettings::default());
        assert!(vars.into_problems().is_empty());

        let lookup = |name: &str| match name {
            "RATE_LIMIT_AUTH" => Some("3/h".to_owned()),
            "RATE_LIMIT_LOGIN_CEILING" => Some("20/day".to_owned()),
            "RATE_LIMIT_AI" => Some("lots".to_owned()),
            "RATE_LIMIT_ENABLED" => Some("false".to_owned()),
            "TRUSTED_PROXIES" => Some("10.0.0.0/8".to_owned()),
            _ => None,
        };
        let mut vars = Vars::new(&lookup);
        let parsed = settings(&mut vars);
        assert!(!parsed.enabled);
        assert_eq!(parsed.auth, Rate { limit: 3, window: Duration::from_secs(3600) });
        assert_eq!(parsed.public, Rate::per_minute(60));
        assert_eq!(parsed.login_ceiling, Rate { limit: 20, window: Duration::from_secs(86_400) });
        assert_eq!(parsed.login_failures, Rate::per_minute(5));
        assert_eq!(parsed.trusted_proxies.len(), 1);
        let problems = vars.into_problems();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("RATE_LIMIT_AI: "), "{problems:?}");
    }
}
