//! Deadlines: when a request must be acknowledged, answered, and how long preserved data is kept.
//!
//! Hour-based deadlines are elapsed time (an 8-hour emergency deadline is 8 real hours even
//! across a DST change). Day-based deadlines are calendar days in the *requested* agency's time
//! zone: "10 days" from 09:00 local ends at 09:00 local ten days later, whatever the clocks did.

use crate::lifecycle::State;
use crate::request::{RequestKind, Urgency};
use jiff::{Timestamp, ToSpan, tz::TimeZone};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A deadline length: hours of elapsed time or calendar days in the requested side's zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Hours(u32),
    Days(u32),
}

/// A period written wrongly in the SLA policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a period: write a whole number followed by h (hours) or d (days), e.g. 8h or 10d")]
pub struct PeriodError(pub String);

impl FromStr for Period {
    type Err = PeriodError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let (num, unit) = t.split_at(t.len().saturating_sub(1));
        let n: u32 = num.trim().parse().map_err(|_| PeriodError(s.to_string()))?;
        if n == 0 || n > 3660 {
            return Err(PeriodError(s.to_string()));
        }
        match unit {
            "h" => Ok(Period::Hours(n)),
            "d" => Ok(Period::Days(n)),
            _ => Err(PeriodError(s.to_string())),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Hours(n) => write!(f, "{n}h"),
            Period::Days(n) => write!(f, "{n}d"),
        }
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A deadline that cannot be computed (the instant would fall outside jiff's range).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("deadline out of range: {0}")]
pub struct DeadlineError(String);

impl Period {
    /// `start + self`, hours as elapsed time, days as calendar days in `zone`.
    pub fn after(self, start: Timestamp, zone: &TimeZone) -> Result<Timestamp, DeadlineError> {
        match self {
            Period::Hours(h) => start
                .checked_add(i64::from(h).hours())
                .map_err(|e| DeadlineError(e.to_string())),
            Period::Days(d) => start
                .to_zoned(zone.clone())
                .checked_add(i64::from(d).days())
                .map(|z| z.timestamp())
                .map_err(|e| DeadlineError(e.to_string())),
        }
    }
}

/// One row of the answer table: the most specific matching row wins (a row with a kind beats one without).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerRule {
    pub urgency: Urgency,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<RequestKind>,
    pub due: Period,
    /// Where the number comes from.
    pub source: String,
}

/// The node's service-level policy. Written to `liaison.toml` by `liaison init` with its sources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaPolicy {
    /// Time to acknowledge receipt, per urgency.
    pub acknowledge_emergency: Period,
    pub acknowledge_urgent: Period,
    pub acknowledge_routine: Period,
    /// A 24/7 point of contact acknowledges within this period whatever the urgency
    /// (Budapest Art 35: immediate assistance, around the clock). The shorter period wins.
    #[serde(default = "default_ack_24_7")]
    pub acknowledge_24_7: Period,
    /// Time to answer, per urgency and kind.
    pub answer: Vec<AnswerRule>,
    /// Default preservation period when the desk does not give one.
    pub preservation_days: u32,
    /// Preservation may not be shorter than this (Budapest Art 29(7): at least 60 days).
    pub preservation_min_days: u32,
    /// Days the requesting side has to supply information asked for before the request expires.
    pub needs_information_days: u32,
}

fn default_ack_24_7() -> Period {
    Period::Hours(24)
}

impl Default for SlaPolicy {
    fn default() -> Self {
        use RequestKind::*;
        use Urgency::*;
        let r = |urgency, kind: Option<RequestKind>, due: &str, source: &str| AnswerRule {
            urgency,
            kind,
            due: due.parse().unwrap_or(Period::Days(30)),
            source: source.to_string(),
        };
        SlaPolicy {
            acknowledge_emergency: Period::Hours(2),
            acknowledge_urgent: Period::Hours(24),
            acknowledge_routine: Period::Days(3),
            acknowledge_24_7: default_ack_24_7(),
            answer: vec![
                r(
                    Emergency,
                    None,
                    "8h",
                    "Reg (EU) 2023/1543 Art 10(4): emergency EPOC within 8 hours",
                ),
                r(
                    Urgent,
                    None,
                    "3d",
                    "Dir (EU) 2023/977 Art 5(1): urgent, indirectly accessible information within 3 calendar days",
                ),
                r(
                    Urgent,
                    Some(ExpeditedPreservation),
                    "24h",
                    "Budapest Art 29/35: preservation 'expeditiously' via the 24/7 network; node policy 24h",
                ),
                r(
                    Routine,
                    Some(ExpeditedPreservation),
                    "3d",
                    "Budapest Art 29: 'expeditiously'; node policy 3 days",
                ),
                r(
                    Routine,
                    Some(SubscriberInformation),
                    "10d",
                    "Reg (EU) 2023/1543 Art 10(3): EPOC within 10 days",
                ),
                r(
                    Routine,
                    Some(TrafficData),
                    "10d",
                    "Reg (EU) 2023/1543 Art 10(3): EPOC within 10 days",
                ),
                r(
                    Routine,
                    Some(ExpeditedTrafficDisclosure),
                    "3d",
                    "Budapest Art 30: 'expeditiously'; node policy 3 days",
                ),
                r(
                    Routine,
                    Some(StoredContent),
                    "10d",
                    "Reg (EU) 2023/1543 Art 10(3): EPOC within 10 days",
                ),
                r(
                    Routine,
                    Some(DomainRegistrationData),
                    "10d",
                    "Node policy, aligned with EPOC 10 days",
                ),
                r(Routine, Some(Takedown), "3d", "Node policy"),
                r(
                    Routine,
                    Some(SpontaneousInformation),
                    "7d",
                    "Dir (EU) 2023/977 Art 5(1): other requests within 7 calendar days (acknowledgement only)",
                ),
                r(
                    Routine,
                    None,
                    "90d",
                    "Dir 2014/41/EU Art 12: carry out the measure within 90 days",
                ),
            ],
            preservation_days: 90,
            preservation_min_days: 60,
            needs_information_days: 30,
        }
    }
}

/// Deadlines computed for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadlines {
    pub acknowledge_by: Timestamp,
    pub answer_by: Timestamp,
}

/// A policy that breaks its own rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SLA policy: {0}")]
pub struct PolicyError(pub String);

impl SlaPolicy {
    /// Checks internal consistency.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.preservation_days < self.preservation_min_days {
            return Err(PolicyError(format!(
                "preservation_days = {} is below preservation_min_days = {}",
                self.preservation_days, self.preservation_min_days
            )));
        }
        for u in Urgency::ALL {
            if !self.answer.iter().any(|r| r.urgency == *u && r.kind.is_none()) {
                return Err(PolicyError(format!(
                    "answer has no catch-all row (without kind) for urgency {u}"
                )));
            }
        }
        Ok(())
    }

    /// The acknowledgement period for an urgency.
    pub fn acknowledge(&self, urgency: Urgency) -> Period {
        match urgency {
            Urgency::Emergency => self.acknowledge_emergency,
            Urgency::Urgent => self.acknowledge_urgent,
            Urgency::Routine => self.acknowledge_routine,
        }
    }

    /// The answer row for an urgency and kind (kind-specific rows win).
    pub fn answer_rule(&self, urgency: Urgency, kind: RequestKind) -> Option<&AnswerRule> {
        self.answer
            .iter()
            .find(|r| r.urgency == urgency && r.kind == Some(kind))
            .or_else(|| self.answer.iter().find(|r| r.urgency == urgency && r.kind.is_none()))
    }

    /// Deadlines for a request submitted at `submitted`, in the requested side's `zone`;
    /// `to_24_7_point` when the requested agency is a 24/7 point of contact.
    pub fn deadlines(
        &self,
        urgency: Urgency,
        kind: RequestKind,
        submitted: Timestamp,
        zone: &TimeZone,
        to_24_7_point: bool,
    ) -> Result<Deadlines, DeadlineError> {
        let answer = self
            .answer_rule(urgency, kind)
            .map(|r| r.due)
            .unwrap_or(Period::Days(90));
        let mut acknowledge_by = self.acknowledge(urgency).after(submitted, zone)?;
        if to_24_7_point {
            acknowledge_by = acknowledge_by.min(self.acknowledge_24_7.after(submitted, zone)?);
        }
        Ok(Deadlines {
            acknowledge_by,
            answer_by: answer.after(submitted, zone)?,
        })
    }

    /// Default end of a preservation started at `at`.
    pub fn preserve_until(&self, at: Timestamp, zone: &TimeZone) -> Result<Timestamp, DeadlineError> {
        Period::Days(self.preservation_days).after(at, zone)
    }

    /// When information asked for at `at` must have been supplied (`needs_information_days`
    /// calendar days in the requested side's `zone`); the request then expires.
    pub fn information_due(&self, at: Timestamp, zone: &TimeZone) -> Result<Timestamp, DeadlineError> {
        Period::Days(self.needs_information_days).after(at, zone)
    }

    /// Earliest acceptable end of a preservation started at `at`.
    pub fn preserve_at_least(&self, at: Timestamp, zone: &TimeZone) -> Result<Timestamp, DeadlineError> {
        Period::Days(self.preservation_min_days).after(at, zone)
    }
}

/// Which deadline a state is waiting on, if any.
pub fn running_deadline(state: State) -> Option<DeadlineKind> {
    match state {
        State::Submitted | State::Received => Some(DeadlineKind::Acknowledge),
        State::Acknowledged | State::InReview | State::Accepted | State::Executing | State::AnsweredPartial => {
            Some(DeadlineKind::Answer)
        }
        State::Preserved | State::Extended => Some(DeadlineKind::PreservationExpiry),
        State::NeedsInformation => Some(DeadlineKind::Information),
        _ => None,
    }
}

/// The deadlines a request can miss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineKind {
    Acknowledge,
    Answer,
    PreservationExpiry,
    /// The requesting side's time to supply information asked for (`needs_information`);
    /// when it passes, the requested side's node expires the request.
    Information,
}

impl DeadlineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadlineKind::Acknowledge => "acknowledge",
            DeadlineKind::Answer => "answer",
            DeadlineKind::PreservationExpiry => "preservation_expiry",
            DeadlineKind::Information => "information",
        }
    }

    /// Every deadline kind.
    pub const ALL: &'static [DeadlineKind] = &[
        DeadlineKind::Acknowledge,
        DeadlineKind::Answer,
        DeadlineKind::PreservationExpiry,
        DeadlineKind::Information,
    ];

    /// The states in which this deadline runs (the inverse of [`running_deadline`]).
    pub fn states(self) -> Vec<State> {
        State::ALL
            .iter()
            .copied()
            .filter(|s| running_deadline(*s) == Some(self))
            .collect()
    }

    /// The side whose move the deadline waits for: the requested side acknowledges, answers
    /// and keeps preserved data; the requesting side supplies information asked for.
    pub fn owed_by(self) -> crate::lifecycle::Side {
        match self {
            DeadlineKind::Information => crate::lifecycle::Side::Requesting,
            _ => crate::lifecycle::Side::Requested,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ny() -> TimeZone {
        TimeZone::get("America/New_York").unwrap()
    }

    #[test]
    fn default_policy_is_valid_and_specific_rows_win() {
        let p = SlaPolicy::default();
        p.validate().unwrap();
        assert_eq!(
            p.answer_rule(Urgency::Emergency, RequestKind::StoredContent)
                .unwrap()
                .due,
            Period::Hours(8)
        );
        assert_eq!(
            p.answer_rule(Urgency::Routine, RequestKind::SubscriberInformation)
                .unwrap()
                .due,
            Period::Days(10)
        );
        assert_eq!(
            p.answer_rule(Urgency::Routine, RequestKind::OtherMutualAssistance)
                .unwrap()
                .due,
            Period::Days(90)
        );
    }

    #[test]
    fn day_deadline_keeps_local_wall_clock_across_spring_forward() {
        // 2026-03-05 09:00 EST; DST starts 2026-03-08. Ten days later is 09:00 EDT = 13:00Z, not 14:00Z.
        let start: Timestamp = "2026-03-05T14:00:00Z".parse().unwrap();
        let due = Period::Days(10).after(start, &ny()).unwrap();
        assert_eq!(due.to_string(), "2026-03-15T13:00:00Z");
        // Hours are elapsed time.
        let due = Period::Hours(72).after(start, &ny()).unwrap();
        assert_eq!(due.to_string(), "2026-03-08T14:00:00Z");
    }

    #[test]
    fn a_24_7_point_acknowledges_within_a_day() {
        let p = SlaPolicy::default();
        let start: Timestamp = "2026-03-05T14:00:00Z".parse().unwrap();
        let routine = p
            .deadlines(Urgency::Routine, RequestKind::TrafficData, start, &ny(), false)
            .unwrap();
        let desk = p
            .deadlines(Urgency::Routine, RequestKind::TrafficData, start, &ny(), true)
            .unwrap();
        assert_eq!(routine.acknowledge_by.to_string(), "2026-03-08T13:00:00Z");
        assert_eq!(desk.acknowledge_by.to_string(), "2026-03-06T14:00:00Z");
        let emergency = p
            .deadlines(Urgency::Emergency, RequestKind::TrafficData, start, &ny(), true)
            .unwrap();
        assert_eq!(emergency.acknowledge_by.to_string(), "2026-03-05T16:00:00Z");
        assert_eq!(emergency.answer_by.to_string(), "2026-03-05T22:00:00Z");
    }

    #[test]
    fn parses_periods() {
        assert_eq!("8h".parse::<Period>().unwrap(), Period::Hours(8));
        assert_eq!(" 10d".parse::<Period>().unwrap(), Period::Days(10));
        assert!("10".parse::<Period>().is_err());
        assert!("0d".parse::<Period>().is_err());
        assert!("1w".parse::<Period>().is_err());
    }

    const ZONES: &[&str] = &[
        "America/New_York",
        "Europe/London",
        "Europe/Berlin",
        "Asia/Shanghai",
        "Australia/Sydney",
        "America/Sao_Paulo",
        "Pacific/Chatham",
        "UTC",
    ];

    proptest! {
        /// Calendar-day deadlines land on the same local wall-clock time (or the first valid time
        /// after a gap), and elapsed time differs from n×24h by at most the zone's DST shift.
        #[test]
        fn day_deadlines_are_calendar_days(secs in 1_500_000_000i64..1_900_000_000i64, days in 1u32..400, zi in 0usize..ZONES.len()) {
            let zone = TimeZone::get(ZONES[zi]).unwrap();
            let start = Timestamp::from_second(secs).unwrap();
            let due = Period::Days(days).after(start, &zone).unwrap();
            let (s, d) = (start.to_zoned(zone.clone()), due.to_zoned(zone.clone()));
            prop_assert_eq!(s.date().checked_add(i64::from(days).days()).unwrap(), d.date());
            let elapsed = due.as_second() - start.as_second();
            prop_assert!((elapsed - i64::from(days) * 86_400).abs() <= 3_600 * 2, "elapsed {}", elapsed);
            if s.datetime().time() != d.datetime().time() {
                // Only possible when the target wall-clock time does not exist (a DST gap).
                let off_s = s.offset().seconds();
                let off_d = d.offset().seconds();
                prop_assert!(off_s != off_d);
            }
        }

        /// Hour deadlines are exact elapsed durations in every zone.
        #[test]
        fn hour_deadlines_are_elapsed_time(secs in 1_500_000_000i64..1_900_000_000i64, hours in 1u32..1000, zi in 0usize..ZONES.len()) {
            let zone = TimeZone::get(ZONES[zi]).unwrap();
            let start = Timestamp::from_second(secs).unwrap();
            let due = Period::Hours(hours).after(start, &zone).unwrap();
            prop_assert_eq!(due.as_second() - start.as_second(), i64::from(hours) * 3600);
        }
    }
}
