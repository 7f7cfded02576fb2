//! Background job settings (`JOBS_*`, `SOFT_DELETE_RETENTION_DAYS`).

use std::time::Duration;

use super::cron::Cron;
use super::parse::{self, Vars};

/// How background jobs run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSettings {
    /// `JOBS_WORKERS`: jobs run at once by this process (`0`: none; `omnistack worker` runs them).
    pub workers: usize,
    /// `JOBS_MAX_ATTEMPTS`: runs before a job is `dead`, unless its kind says otherwise.
    pub max_attempts: u32,
    /// `JOBS_RETRY_BASE_SECONDS`: the first retry's delay; each later one doubles (with jitter).
    pub retry_base: Duration,
    /// `JOBS_LEASE_SECONDS`: how long a claimed job is its worker's; a job still running when
    /// its process died is taken over after this. Also the longest a job may run.
    pub lease: Duration,
    /// `JOBS_POLL_INTERVAL_MS`: how often idle workers look for due jobs (jobs enqueued by this
    /// process wake them at once).
    pub poll_interval: Duration,
    /// `JOBS_RETENTION_DAYS`: finished jobs are deleted after this many days.
    pub retention_days: u32,
    /// `SOFT_DELETE_RETENTION_DAYS`: deleted projects are purged after this many days.
    pub soft_delete_retention_days: u32,
    /// `JOBS_SCHEDULE_<NAME>`: each scheduled job's cron expression; `None` when `off`.
    pub schedules: Vec<(&'static str, Option<Cron>)>,
}

/// Scheduled jobs and their default schedules (UTC).
pub const SCHEDULES: [(&str, &str, &str); 3] = [
    ("daily_report", "JOBS_SCHEDULE_DAILY_REPORT", "0 9 * * *"),
    ("cleanup", "JOBS_SCHEDULE_CLEANUP", "0 3 * * *"),
    ("files_cleanup", "JOBS_SCHEDULE_FILES_CLEANUP", "17 * * * *"),
];

impl JobSettings {
    /// The cron expression of the scheduled job `name`, when it is on.
    pub fn schedule(&self, name: &str) -> Option<&Cron> {
        self.schedules.iter().find(|(n, _)| *n == name).and_then(|(_, cron)| cron.as_ref())
    }

    /// Every job setting as `(VARIABLE, value)`.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let mut described = vec![
            ("JOBS_WORKERS", self.workers.to_string()),
            ("JOBS_MAX_ATTEMPTS", self.max_attempts.to_string()),
            ("JOBS_RETRY_BASE_SECONDS", self.retry_base.as_secs().to_string()),
            ("JOBS_LEASE_SECONDS", self.lease.as_secs().to_string()),
            ("JOBS_POLL_INTERVAL_MS", self.poll_interval.as_millis().to_string()),
            ("JOBS_RETENTION_DAYS", self.retention_days.to_string()),
            ("SOFT_DELETE_RETENTION_DAYS", self.soft_delete_retention_days.to_string()),
        ];
        for (name, variable, _) in SCHEDULES {
            let value = self.schedule(name).map_or_else(|| "off".to_owned(), ToString::to_string);
            described.push((variable, value));
        }
        described
    }
}

pub(super) fn settings(vars: &mut Vars<'_>) -> JobSettings {
    let schedules = SCHEDULES
        .iter()
        .map(|(name, variable, default)| {
            let cron = vars
                .parse(variable, default, |v| if v == "off" { Ok(None) } else { Cron::parse(v).map(Some) })
                .flatten();
            (*name, cron)
        })
        .collect();
    JobSettings {
        workers: vars.parse("JOBS_WORKERS", "2", |v| parse::number(v, 0, 256)).unwrap_or(2) as usize,
        max_attempts: vars.parse("JOBS_MAX_ATTEMPTS", "5", |v| parse::number(v, 1, 100)).unwrap_or(5) as u32,
        retry_base: Duration::from_secs(
            vars.parse("JOBS_RETRY_BASE_SECONDS", "10", |v| parse::number(v, 0, 86_400)).unwrap_or(10),
        ),
        lease: Duration::from_secs(
            vars.parse("JOBS_LEASE_SECONDS", "300", |v| parse::number(v, 1, 86_400)).unwrap_or(300),
        ),
        poll_interval: Duration::from_millis(
            vars.parse("JOBS_POLL_INTERVAL_MS", "1000", |v| parse::number(v, 10, 60_000)).unwrap_or(1000),
        ),
        retention_days: vars.parse("JOBS_RETENTION_DAYS", "14", |v| parse::number(v, 1, 3650)).unwrap_or(14) as u32,
        soft_delete_retention_days: vars
            .parse("SOFT_DELETE_RETENTION_DAYS", "30", |v| parse::number(v, 1, 3650))
            .unwrap_or(30) as u32,
        schedules,
    }
}
