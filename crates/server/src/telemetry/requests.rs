//! This instance's request counts since it started, for the admin dashboard: two relaxed
//! atomic increments per request, fed by the request-metrics layer (`http/observe.rs`), which
//! finds the counter in the request's extensions.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Requests answered, and those answered with a 5xx. Cheap to clone (one shared pair).
#[derive(Clone, Debug, Default)]
pub struct RequestCounts(Arc<[AtomicU64; 2]>);

impl RequestCounts {
    /// Counts one answered request.
    #[inline]
    pub fn record(&self, status: u16) {
        self.0[0].fetch_add(1, Ordering::Relaxed);
        if status >= 500 {
            self.0[1].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `(total, errors_5xx)` so far.
    pub fn read(&self) -> (u64, u64) {
        (self.0[0].load(Ordering::Relaxed), self.0[1].load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_5xx_counts_as_an_error_and_clones_share_the_counts() {
        let counts = RequestCounts::default();
        let layer = counts.clone();
        for status in [200, 404, 499, 500, 503] {
            layer.record(status);
        }
        assert_eq!(counts.read(), (5, 2));
    }
}
