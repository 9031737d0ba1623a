//! The node's own experience: how long each channel actually took, per requested state.
//!
//! The legal engine uses a channel's observed median instead of the rule pack's default once
//! enough answered requests exist (`liaison_law::MIN_OBSERVED_SAMPLES`). A request's channel is
//! the one its stored assessment told the officer to send it through (the plan's `send` step,
//! or `preserve` for preservation requests); its duration is submission to first answer.

use liaison_core::CountryCode;
use liaison_law::ObservedDuration;
use liaison_store::{AnsweredSample, Store};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Per requested state: channel id → observed median.
pub type Observed = HashMap<CountryCode, BTreeMap<String, ObservedDuration>>;

/// Recomputed from the database at most every `ttl`.
pub struct Experience {
    ttl: Duration,
    cache: Mutex<Option<(Instant, std::sync::Arc<Observed>)>>,
}

impl Default for Experience {
    fn default() -> Self {
        Experience {
            ttl: Duration::from_secs(600),
            cache: Mutex::new(None),
        }
    }
}

/// Groups samples by (requested state, channel) and takes medians.
pub fn summarise(samples: &[AnsweredSample]) -> Observed {
    let mut days: HashMap<(CountryCode, String), Vec<f64>> = HashMap::new();
    for s in samples {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&s.assessment) else {
            continue;
        };
        let Some(requested) = v["requested"].as_str().and_then(|c| CountryCode::parse(c).ok()) else {
            continue;
        };
        let plan = v["plan"].as_array().cloned().unwrap_or_default();
        let channel = plan
            .iter()
            .find(|st| st["action"] == "send")
            .or_else(|| plan.iter().find(|st| st["action"] == "preserve"))
            .and_then(|st| st["channel"].as_str());
        let Some(channel) = channel else { continue };
        let d = (s.answered_at.as_millisecond() - s.submitted_at.as_millisecond()) as f64 / 86_400_000.0;
        if d >= 0.0 {
            days.entry((requested, channel.to_string())).or_default().push(d);
        }
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
    /// Observed durations for requests to `requested`, from answered requests of the last two years.
    pub async fn for_state(
        &self,
        store: &Store,
        requested: CountryCode,
        now: jiff::Timestamp,
    ) -> BTreeMap<String, ObservedDuration> {
        let fresh = self.cache.lock().ok().and_then(|c| {
            c.as_ref()
                .filter(|(at, _)| at.elapsed() < self.ttl)
                .map(|(_, o)| o.clone())
        });
        let all = match fresh {
            Some(o) => o,
            None => {
                let since = now
                    .checked_sub(jiff::SignedDuration::from_hours(24 * 730))
                    .unwrap_or(now);
                let samples = match store.answered_samples(since, 200_000).await {
                    Ok(s) => s,
                    Err(e) => {
                        // Experience is an optimisation of estimates: fall back to pack defaults.
                        tracing::warn!(error = %e, "could not read answered requests for observed durations");
                        Vec::new()
                    }
                };
                let o = std::sync::Arc::new(summarise(&samples));
                if let Ok(mut c) = self.cache.lock() {
                    *c = Some((Instant::now(), o.clone()));
                }
                o
            }
        };
        all.get(&requested).cloned().unwrap_or_default()
    }

    /// Forgets the cache (after bulk changes, and in tests).
    pub fn invalidate(&self) {
        if let Ok(mut c) = self.cache.lock() {
            *c = None;
        }
    }
}
