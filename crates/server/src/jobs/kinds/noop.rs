//! `noop`: does nothing, so a benchmark measures the queue itself (enqueue → claim → done).

use omnistack_db::jobs::Job;
use serde_json::Value;

use crate::jobs::{JobContext, JobError, JobKind};

/// A job that succeeds at once.
#[derive(Debug)]
pub struct Noop;

impl JobKind for Noop {
    const KIND: &'static str = "noop";
    type Args = Value;

    async fn run(&self, _ctx: &JobContext, _job: &Job, _args: Value) -> Result<Option<Value>, JobError> {
        Ok(None)
    }
}
