//! Process metrics read from `/proc/self` at scrape time (Linux; elsewhere only uptime and
//! start time). Written as text because the `metrics` facade has no float counters, and
//! `process_cpu_seconds_total` must be one.

use std::fmt::Write;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

static STARTED: OnceLock<(Instant, f64)> = OnceLock::new();

/// `sysconf(_SC_CLK_TCK)`, which is 100 on every Linux the service targets.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// Notes the start time (the first call wins).
pub fn mark_start() {
    STARTED.get_or_init(|| {
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        (Instant::now(), unix)
    });
}

/// The process metrics in the Prometheus text format.
pub fn render() -> String {
    mark_start();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n\n");
    };
    if let Some((started, unix)) = STARTED.get() {
        metric("process_start_time_seconds", "gauge", "Start time of the process, unix seconds.", *unix);
        metric(
            "omnistack_uptime_seconds",
            "gauge",
            "Seconds since the process started.",
            started.elapsed().as_secs_f64(),
        );
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status.lines() {
            if let Some(kib) = line.strip_prefix("VmRSS:").and_then(first_number) {
                metric("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", kib * 1024.0);
            } else if let Some(threads) = line.strip_prefix("Threads:").and_then(first_number) {
                metric("process_threads", "gauge", "Operating-system threads.", threads);
            }
        }
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // The fields after the parenthesised command name; utime and stime come 12th and 13th.
        let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let seconds = (ticks(11) + ticks(12)) / CLOCK_TICKS_PER_SECOND;
        metric("process_cpu_seconds_total", "counter", "User and system CPU time, in seconds.", seconds);
    }
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        metric("process_open_fds", "gauge", "Open file descriptors.", entries.count() as f64);
    }
    out
}

fn first_number(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}
