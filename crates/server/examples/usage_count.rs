//! The in-memory cost of `api_requests` metering: `COUNTS` (5 M by default) calls of the
//! recorder's `count` with an `endpoint` dimension, for 1,000 accounts and 20 route templates,
//! on 1 and 2 threads, with a `take` (the flush's swap) every 100,000 counts; prints nanoseconds
//! per count. Run through `bench/usage_metering.sh`.

use std::hint::black_box;
use std::time::Instant;

use omnistack::usage::recorder::Recorder;
use uuid::Uuid;

fn run(recorder: &Recorder, users: &[Uuid], endpoints: &[String], counts: usize, offset: usize) {
    for n in 0..counts {
        let i = n + offset;
        recorder.count(users[i % users.len()], "api_requests", 1, &[("endpoint", &endpoints[i % endpoints.len()])]);
        if n % 100_000 == 99_999 {
            black_box(recorder.take());
        }
    }
}

fn main() {
    let counts: usize = std::env::var("COUNTS").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000_000);
    let users: Vec<Uuid> = (0..1_000).map(|_| Uuid::now_v7()).collect();
    let endpoints: Vec<String> = (0..20).map(|n| format!("/api/v1/app/resource{n}/{{id}}")).collect();
    for threads in [1usize, 2] {
        let recorder = Recorder::default();
        let started = Instant::now();
        std::thread::scope(|scope| {
            for t in 0..threads {
                let (recorder, users, endpoints) = (&recorder, &users, &endpoints);
                scope.spawn(move || run(recorder, users, endpoints, counts / threads, t * 7919));
            }
        });
        let elapsed = started.elapsed();
        println!(
            "{threads} thread(s): {counts} counts in {:.2} s: {:.0} ns per count (wall clock, all threads)",
            elapsed.as_secs_f64(),
            elapsed.as_nanos() as f64 / counts as f64
        );
    }
}
