//! Statistics as pure functions over indicators or events.
//!
//! Example: "C2 servers controlling hosts in CN, by country of the C2" is
//! `StatsQuery { by: GroupBy::Country, class: Some(C2Server), victim_country: Some(CN), .. }`.

use crate::aggregate::Indicator;
use crate::model::{Classification, Event};
use crate::time::{UnixTime, format_day};
use liaison_core::CountryCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::str::FromStr;

/// What to group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupBy {
    /// Country of the malicious host (`source.geolocation.cc`).
    Country,
    /// Country of the victims (an indicator counts once per victim country).
    VictimCountry,
    Classification,
    Asn,
    /// UTC day (of first seen for indicators, of the sighting for events).
    Day,
    Partner,
    Malware,
}

impl FromStr for GroupBy {
    type Err = crate::model::UnknownWord;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "country" | "cc" => GroupBy::Country,
            "victim-country" | "victims" => GroupBy::VictimCountry,
            "class" | "classification" | "type" => GroupBy::Classification,
            "asn" | "as" => GroupBy::Asn,
            "day" | "date" => GroupBy::Day,
            "partner" => GroupBy::Partner,
            "malware" | "family" => GroupBy::Malware,
            _ => {
                return Err(crate::model::UnknownWord {
                    what: "stats grouping",
                    value: s.to_string(),
                });
            }
        })
    }
}

/// A statistics query: a grouping and optional filters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsQuery {
    pub by: GroupBy,
    #[serde(default)]
    pub class: Option<Classification>,
    /// Only indicators with victims in this country; victims are counted for it only.
    #[serde(default)]
    pub victim_country: Option<CountryCode>,
    #[serde(default)]
    pub country: Option<CountryCode>,
    #[serde(default)]
    pub asn: Option<u32>,
    /// Only what was (last) seen in `[since, until)`.
    #[serde(default)]
    pub since: Option<UnixTime>,
    #[serde(default)]
    pub until: Option<UnixTime>,
}

impl StatsQuery {
    pub fn by(by: GroupBy) -> StatsQuery {
        StatsQuery {
            by,
            class: None,
            victim_country: None,
            country: None,
            asn: None,
            since: None,
            until: None,
        }
    }
}

/// One line of a statistics table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatsRow {
    /// The group (`CN`, `AS4134`, `c2-server`, `2026-11-22`...; `unknown` when missing).
    pub key: String,
    /// Distinct indicators (or events, for event statistics).
    pub indicators: u64,
    pub sightings: u64,
    pub victims: u64,
}

/// What statistics need to know about an indicator or an event.
struct Subject<'a> {
    class: Classification,
    country: Option<CountryCode>,
    asn: Option<u32>,
    partner: Option<&'a str>,
    malware: Option<&'a str>,
    day: UnixTime,
    seen: UnixTime,
    sightings: u64,
    victims_total: u64,
    victim_first: Option<(CountryCode, u32)>,
    victim_more: &'a [(CountryCode, u32)],
}

impl Subject<'_> {
    fn victims(&self) -> impl Iterator<Item = (CountryCode, u32)> + '_ {
        self.victim_first.into_iter().chain(self.victim_more.iter().copied())
    }
}

fn tally(rows: &mut BTreeMap<String, StatsRow>, key: String, sightings: u64, victims: u64) {
    let r = rows.entry(key.clone()).or_insert(StatsRow {
        key,
        indicators: 0,
        sightings: 0,
        victims: 0,
    });
    r.indicators += 1;
    r.sightings += sightings;
    r.victims += victims;
}

fn run<'a>(subjects: impl Iterator<Item = Subject<'a>>, q: &StatsQuery) -> Vec<StatsRow> {
    let mut rows: BTreeMap<String, StatsRow> = BTreeMap::new();
    for s in subjects {
        if q.class.is_some_and(|c| c != s.class)
            || q.country.is_some_and(|c| Some(c) != s.country)
            || q.asn.is_some_and(|a| Some(a) != s.asn)
            || q.since.is_some_and(|t| s.seen < t)
            || q.until.is_some_and(|t| s.seen >= t)
        {
            continue;
        }
        let victims = match q.victim_country {
            Some(vc) => match s.victims().find(|(c, _)| *c == vc) {
                Some((_, n)) => u64::from(n),
                None => continue,
            },
            None => s.victims_total,
        };
        let unknown = || "unknown".to_string();
        match q.by {
            GroupBy::VictimCountry => {
                for (c, n) in s.victims() {
                    if q.victim_country.is_none_or(|vc| vc == c) {
                        tally(&mut rows, c.to_string(), s.sightings, u64::from(n));
                    }
                }
                if s.victim_first.is_none() {
                    tally(&mut rows, unknown(), s.sightings, victims);
                }
            }
            by => {
                let key = match by {
                    GroupBy::Country => s.country.map_or_else(unknown, |c| c.to_string()),
                    GroupBy::Classification => s.class.to_string(),
                    GroupBy::Asn => s.asn.map_or_else(unknown, |a| format!("AS{a}")),
                    GroupBy::Day => format_day(s.day),
                    GroupBy::Partner => s.partner.map_or_else(unknown, str::to_string),
                    GroupBy::Malware => s.malware.map_or_else(unknown, str::to_string),
                    GroupBy::VictimCountry => unknown(),
                };
                tally(&mut rows, key, s.sightings, victims);
            }
        }
    }
    let mut out: Vec<StatsRow> = rows.into_values().collect();
    if q.by != GroupBy::Day {
        out.sort_by(|a, b| b.indicators.cmp(&a.indicators).then_with(|| a.key.cmp(&b.key)));
    }
    out
}

/// Statistics over aggregated indicators (each counts once; day = day first seen).
pub fn indicator_stats<'a>(indicators: impl IntoIterator<Item = &'a Indicator>, q: &StatsQuery) -> Vec<StatsRow> {
    run(
        indicators.into_iter().map(|i| Subject {
            class: i.classification,
            country: i.source_country,
            asn: i.source_asn,
            partner: i.partner.as_ref().map(|p| p.as_str()),
            malware: i.malware.as_deref(),
            day: i.first_seen,
            seen: i.last_seen,
            sightings: i.sightings,
            victims_total: i.victims(),
            victim_first: i.victim_countries.iter().next(),
            victim_more: i.victim_countries.rest(),
        }),
        q,
    )
}

/// Statistics over raw events (each event counts once; day = day of the sighting).
pub fn event_stats<'a>(events: impl IntoIterator<Item = &'a Event>, q: &StatsQuery) -> Vec<StatsRow> {
    // A single-element victim slice per event, built on the fly.
    type WithVictims<'e> = (&'e Event, Option<[(CountryCode, u32); 1]>);
    let events: Vec<WithVictims<'_>> = events
        .into_iter()
        .map(|e| (e, e.victim_country.map(|c| [(c, e.victim_count.unwrap_or(1))])))
        .collect();
    run(
        events.iter().map(|(e, v)| Subject {
            class: e.classification,
            country: e.source_country,
            asn: e.source_asn,
            partner: e.partner.as_ref().map(|p| p.as_str()),
            malware: e.malware.as_deref(),
            day: e.seen_at(),
            seen: e.seen_at(),
            sightings: 1,
            victims_total: u64::from(e.victim_count.unwrap_or(0)),
            victim_first: v.map(|a| a[0]),
            victim_more: &[],
        }),
        q,
    )
}
