//! The node's own experience: how long each channel actually took, per requested state.
//!
//! The legal engine uses a channel's observed median instead of the rule pack's default once
//! enough answered requests exist (`liaison_law::MIN_OBSERVED_SAMPLES`). A request's channel is
//! the one its stored assessment told the officer to send it through (the plan's `send` step,
//! or `preserve` for preservation requests); its duration is submission to first answer.

use liaison_core::CountryCode;
use liaison_law::ObservedDuration;
use liaison_store::{AnsweredSample, Store};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Per requested state: channel id → observed median.
pub type Observed = HashMap<CountryCode, BTreeMap<String, ObservedDuration>>;

/// How many answered requests (the newest of the last two years) the medians are taken over.
/// Each carries a ~10 KB assessment: 20,000 of them are read in well under a second, off the
/// path of the request that found the medians stale.
pub const SAMPLE_LIMIT: i64 = 20_000;

/// Recomputed from the database at most every `ttl`; a stale value is still used while a
/// background task recomputes it, so no request waits for the recomputation but the first.
pub struct Experience {
    ttl: Duration,
    cache: Mutex<Option<(Instant, Arc<Observed>)>>,
    refreshing: AtomicBool,
}

impl Default for Experience {
    fn default() -> Self {
        Experience {
            ttl: Duration::from_secs(600),
            cache: Mutex::new(None),
            refreshing: AtomicBool::new(false),
        }
    }
}

/// What an assessment says that the medians need: the requested state and the plan's steps.
#[derive(Deserialize)]
struct Facts {
    requested: String,
    #[serde(default)]
    plan: Vec<Step>,
}

#[derive(Deserialize)]
struct Step {
    action: String,
    #[serde(default)]
    channel: Option<String>,
}

/// One answered request as (requested state, channel it was sent through, days from
/// submission to answer); `None` if its assessment names no channel or cannot be read.
pub fn sample(s: &AnsweredSample) -> Option<(CountryCode, String, f64)> {
    let facts: Facts = serde_json::from_str(&s.assessment).ok()?;
    let requested = CountryCode::parse(&facts.requested).ok()?;
    let step = facts
        .plan
        .iter()
        .find(|st| st.action == "send")
        .or_else(|| facts.plan.iter().find(|st| st.action == "preserve"))?;
    let channel = step.channel.clone()?;
    let d = (s.answered_at.as_millisecond() - s.submitted_at.as_millisecond()) as f64 / 86_400_000.0;
    (d >= 0.0).then_some((requested, channel, d))
}

/// Groups samples by (requested state, channel) and takes medians.
pub fn summarise(samples: impl IntoIterator<Item = (CountryCode, String, f64)>) -> Observed {
    let mut days: HashMap<(CountryCode, String), Vec<f64>> = HashMap::new();
    for (requested, channel, d) in samples {
        days.entry((requested, channel)).or_default().push(d);
    }
    let mut out: Observed = HashMap::new();
    for ((cc, ch), mut v) in days {
        v.sort_by(f64::total_cmp);
        let median = liaison_core::stats::percentile(&v, 0.5).unwrap_or(0.0);
        out.entry(cc).or_default().insert(
            ch,
            ObservedDuration {
                median_days: (median * 10.0).round() / 10.0,
                samples: v.len() as u32,
            },
        );
    }
    out
}

impl Experience {
    /// Medians recomputed at most every `ttl` (the node uses 10 minutes).
    pub fn with_ttl(ttl: Duration) -> Experience {
        Experience {
            ttl,
            ..Default::default()
        }
    }

    /// Observed durations for requests to `requested`, from answered requests of the last two years.
    /// [`Experience::for_state`] over `node`'s store.
    pub async fn for_node(
        self: &Arc<Self>,
        node: &crate::Node,
        requested: CountryCode,
        now: jiff::Timestamp,
    ) -> BTreeMap<String, ObservedDuration> {
        self.for_state(&node.store, requested, now).await
    }

    pub(crate) async fn for_state(
        self: &Arc<Self>,
        store: &Store,
        requested: CountryCode,
        now: jiff::Timestamp,
    ) -> BTreeMap<String, ObservedDuration> {
        let cached = self.cache.lock().ok().and_then(|c| c.clone());
        let all = match cached {
            Some((at, o)) if at.elapsed() < self.ttl => o,
            Some((_, stale)) => {
                if !self.refreshing.swap(true, Ordering::AcqRel) {
                    let (me, store) = (self.clone(), store.clone());
                    tokio::spawn(async move {
                        me.refresh(&store, now).await;
                        me.refreshing.store(false, Ordering::Release);
                    });
                }
                stale
            }
            None => self.refresh(store, now).await,
        };
        all.get(&requested).cloned().unwrap_or_default()
    }

    /// Reads the samples, takes the medians and caches them.
    async fn refresh(&self, store: &Store, now: jiff::Timestamp) -> Arc<Observed> {
        let since = now
            .checked_sub(jiff::SignedDuration::from_hours(24 * 730))
            .unwrap_or(now);
        let samples = match store.answered_samples(since, SAMPLE_LIMIT, |s| sample(&s)).await {
            Ok(s) => s,
            Err(e) => {
                // Experience is an optimisation of estimates: fall back to pack defaults.
                tracing::warn!(error = %e, "could not read answered requests for observed durations");
                Vec::new()
            }
        };
        let o = Arc::new(summarise(samples));
        if let Ok(mut c) = self.cache.lock() {
            *c = Some((Instant::now(), o.clone()));
        }
        o
    }

    /// Forgets the cache (after bulk changes, and in tests).
    pub fn invalidate(&self) {
        if let Ok(mut c) = self.cache.lock() {
            *c = None;
        }
    }
}
