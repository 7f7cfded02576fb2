//! The flags every instance evaluates from memory, and how they stay current: the instance
//! that writes reloads at once; every instance polls the flags' revision (one primary-key
//! read every [`POLL_INTERVAL`]) and reloads when it moved, so a change made anywhere, a
//! delete included, is seen everywhere within a second, with or without Redis
//! (`docs/adr/0011-feature-flag-propagation.md`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use omnistack_db::Db;
use omnistack_db::feature_flags as db_flags;

use super::rule::{CompiledFlag, Evaluation, Subject};

/// How often each instance reads the flags' revision.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Every flag of one revision, compiled.
#[derive(Debug, Default)]
pub struct FlagSet {
    revision: i64,
    /// By key, in key order.
    flags: Vec<CompiledFlag>,
    index: HashMap<String, usize>,
}

impl FlagSet {
    /// Compiles `flags` (as stored) at `revision`.
    pub fn new(revision: i64, flags: &[db_flags::FeatureFlag]) -> FlagSet {
        let mut compiled: Vec<CompiledFlag> = flags.iter().map(CompiledFlag::new).collect();
        compiled.sort_by(|a, b| a.key.cmp(&b.key));
        let index = compiled.iter().enumerate().map(|(i, flag)| (flag.key.clone(), i)).collect();
        FlagSet { revision, flags: compiled, index }
    }

    /// The revision it was loaded at.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The flag with this key.
    pub fn get(&self, key: &str) -> Option<&CompiledFlag> {
        self.index.get(key).map(|&i| &self.flags[i])
    }

    /// Every flag, in key order.
    pub fn iter(&self) -> impl Iterator<Item = &CompiledFlag> {
        self.flags.iter()
    }

    /// How many flags there are.
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// Whether any flag has a `plans` rule (evaluating then needs the subject's plan).
    pub fn needs_plans(&self) -> bool {
        self.flags.iter().any(CompiledFlag::has_plan_rule)
    }

    /// The flag `key` for `subject` at `now_ms`; `None` when there is no such flag.
    pub fn evaluate(&self, key: &str, subject: &Subject<'_>, now_ms: i64) -> Option<Evaluation> {
        self.get(key).map(|flag| flag.evaluate(subject, now_ms))
    }
}

/// This instance's flags. Cheap to clone; one per process, in `AppState::flags`.
#[derive(Clone, Debug, Default)]
pub struct FeatureFlags {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    current: RwLock<Arc<FlagSet>>,
    /// Serialises reloads, so a slow older read never replaces a newer one.
    reloading: tokio::sync::Mutex<()>,
}

impl FeatureFlags {
    /// Loads every flag once.
    pub async fn load(db: &Db) -> anyhow::Result<FeatureFlags> {
        let flags = FeatureFlags::default();
        flags.reload(db).await?;
        Ok(flags)
    }

    /// The flags as of now: evaluate as many as needed against this one snapshot.
    pub fn snapshot(&self) -> Arc<FlagSet> {
        self.inner.current.read().map_or_else(|poisoned| poisoned.into_inner().clone(), |set| set.clone())
    }

    /// Reads the revision and every flag again, unless a reload that started later already
    /// installed a newer revision.
    pub async fn reload(&self, db: &Db) -> omnistack_db::Result<()> {
        let _one_at_a_time = self.inner.reloading.lock().await;
        // The revision first: a write landing between the two reads leaves a newer flag list
        // under an older number, which the next poll reloads.
        let revision = db_flags::current_revision(db).await?;
        let flags = db_flags::list_flags(db).await?;
        let set = Arc::new(FlagSet::new(revision, &flags));
        match self.inner.current.write() {
            Ok(mut current) => *current = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
        Ok(())
    }

    /// Polls the revision every [`POLL_INTERVAL`] and reloads when another instance changed
    /// the flags; ends when the flags or the pool are dropped.
    pub fn spawn_watcher(&self, db: Db) {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            // The first tick one period from now: there is nothing to do at start.
            let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + POLL_INTERVAL, POLL_INTERVAL);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                if db.is_closed() {
                    return;
                }
                let flags = FeatureFlags { inner };
                match db_flags::current_revision(&db).await {
                    Ok(revision) if revision == flags.snapshot().revision() => {}
                    Ok(_) => {
                        if let Err(err) = flags.reload(&db).await {
                            tracing::warn!(error = %err, "feature flags: could not reload");
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "feature flags: could not read the revision"),
                }
            }
        });
    }
}
