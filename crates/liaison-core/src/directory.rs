//! The directory: agencies and their contact points, with time zones and office hours.

use crate::ids::{AgencyId, ContactId};
use crate::jurisdiction::CountryCode;
use crate::request::string_enum;
use jiff::civil::{Time, Weekday};
use jiff::{Timestamp, tz::TimeZone};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

string_enum! {
    /// What an agency is.
    AgencyKind {
        Police = "police",
        Prosecutor = "prosecutor",
        CentralAuthority = "central_authority",
        Cert = "cert",
        PointOfContact247 = "point_of_contact_24_7",
    }
}

/// An agency on this node or a peer's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agency {
    pub id: AgencyId,
    /// Short code used on the command line (`FBI`, `CN-MPS`).
    pub code: String,
    pub name_en: String,
    /// Name in the agency's own language (中华人民共和国公安部).
    pub name_native: String,
    /// Name for readers of Chinese pages, set by this node's administrator (empty: the native
    /// name, when it is written in Chinese, else the English one). Local: never sent to peers.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name_zh: String,
    pub jurisdiction: CountryCode,
    pub kind: AgencyKind,
    /// IANA time zone the agency works in; deadlines for requests it receives use it.
    pub time_zone: String,
}

/// A way to reach a person or desk at an agency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactPoint {
    pub id: ContactId,
    pub agency: AgencyId,
    pub name: String,
    pub phone: String,
    pub email: String,
    /// BCP 47 language tags (`en`, `zh`).
    pub languages: Vec<String>,
    pub time_zone: String,
    pub office_hours: OfficeHours,
}

/// When a contact point answers: always, or on given weekdays between two local times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfficeHours {
    AlwaysOpen,
    Weekly {
        days: Vec<Weekday>,
        open: Time,
        close: Time,
    },
}

/// Office hours that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("office hours '{0}': write 24/7 or days and hours like 'Mon-Fri 09:00-17:30'")]
pub struct OfficeHoursError(pub String);

fn weekday(s: &str) -> Option<Weekday> {
    Some(match s.to_ascii_lowercase().get(..3)? {
        "mon" => Weekday::Monday,
        "tue" => Weekday::Tuesday,
        "wed" => Weekday::Wednesday,
        "thu" => Weekday::Thursday,
        "fri" => Weekday::Friday,
        "sat" => Weekday::Saturday,
        "sun" => Weekday::Sunday,
        _ => return None,
    })
}

fn short(d: Weekday) -> &'static str {
    match d {
        Weekday::Monday => "Mon",
        Weekday::Tuesday => "Tue",
        Weekday::Wednesday => "Wed",
        Weekday::Thursday => "Thu",
        Weekday::Friday => "Fri",
        Weekday::Saturday => "Sat",
        Weekday::Sunday => "Sun",
    }
}

impl FromStr for OfficeHours {
    type Err = OfficeHoursError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || OfficeHoursError(s.to_string());
        let t = s.trim();
        if t == "24/7" {
            return Ok(OfficeHours::AlwaysOpen);
        }
        let (days_s, hours_s) = t.split_once(' ').ok_or_else(err)?;
        let mut days = Vec::new();
        for part in days_s.split(',') {
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (weekday(a).ok_or_else(err)?, weekday(b).ok_or_else(err)?);
                    let mut d = a;
                    loop {
                        days.push(d);
                        if d == b {
                            break;
                        }
                        d = d.wrapping_add(1);
                        if days.len() > 7 {
                            return Err(err());
                        }
                    }
                }
                None => days.push(weekday(part).ok_or_else(err)?),
            }
        }
        let (o, c) = hours_s.trim().split_once('-').ok_or_else(err)?;
        let open: Time = o.trim().parse().map_err(|_| err())?;
        let close: Time = c.trim().parse().map_err(|_| err())?;
        if close <= open {
            return Err(err());
        }
        Ok(OfficeHours::Weekly { days, open, close })
    }
}

impl fmt::Display for OfficeHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OfficeHours::AlwaysOpen => f.write_str("24/7"),
            OfficeHours::Weekly { days, open, close } => {
                let names: Vec<&str> = days.iter().map(|d| short(*d)).collect();
                let contiguous = days.windows(2).all(|w| w[0].wrapping_add(1) == w[1]);
                let days_s = if contiguous && days.len() >= 2 {
                    format!("{}-{}", names[0], names[names.len() - 1])
                } else {
                    names.join(",")
                };
                write!(f, "{days_s} {}-{}", open.strftime("%H:%M"), close.strftime("%H:%M"))
            }
        }
    }
}

impl Serialize for OfficeHours {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for OfficeHours {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A contact point's situation at a given instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalStatus {
    /// Local date and time, e.g. `2026-11-22 18:31 CST`.
    pub local_time: String,
    pub open: bool,
}

/// An IANA zone name that the time-zone database does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an IANA time zone (e.g. Asia/Shanghai, America/New_York)")]
pub struct TimeZoneError(pub String);

/// Looks up an IANA time zone by name.
pub fn time_zone(name: &str) -> Result<TimeZone, TimeZoneError> {
    TimeZone::get(name).map_err(|_| TimeZoneError(name.to_string()))
}

impl ContactPoint {
    /// Local time and whether the contact point is within office hours at `now`.
    pub fn status_at(&self, now: Timestamp) -> Result<LocalStatus, TimeZoneError> {
        let zone = time_zone(&self.time_zone)?;
        let local = now.to_zoned(zone);
        let open = match &self.office_hours {
            OfficeHours::AlwaysOpen => true,
            OfficeHours::Weekly { days, open, close } => {
                let t = local.time();
                days.contains(&local.weekday()) && t >= *open && t < *close
            }
        };
        Ok(LocalStatus {
            local_time: local.strftime("%Y-%m-%d %H:%M %Z").to_string(),
            open,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(tz: &str, hours: &str) -> ContactPoint {
        ContactPoint {
            id: ContactId::new(),
            agency: AgencyId::new(),
            name: "Duty desk".into(),
            phone: "+1 555 0100".into(),
            email: "desk@example.invalid".into(),
            languages: vec!["en".into()],
            time_zone: tz.into(),
            office_hours: hours.parse().unwrap(),
        }
    }

    #[test]
    fn office_hours_round_trip() {
        for s in [
            "24/7",
            "Mon-Fri 09:00-17:30",
            "Mon,Wed 08:00-12:00",
            "Sat-Sun 10:00-14:00",
        ] {
            assert_eq!(s.parse::<OfficeHours>().unwrap().to_string(), s);
        }
        assert!("Mon-Fri 17:00-09:00".parse::<OfficeHours>().is_err());
        assert!("weekdays".parse::<OfficeHours>().is_err());
    }

    #[test]
    fn open_depends_on_local_time() {
        // 2026-11-23 (Monday) 02:00Z = 10:00 in Shanghai, 21:00 Sunday in New York.
        let now: Timestamp = "2026-11-23T02:00:00Z".parse().unwrap();
        let sh = contact("Asia/Shanghai", "Mon-Fri 09:00-17:30").status_at(now).unwrap();
        assert!(sh.open);
        assert_eq!(sh.local_time, "2026-11-23 10:00 CST");
        let ny = contact("America/New_York", "Mon-Fri 09:00-17:30")
            .status_at(now)
            .unwrap();
        assert!(!ny.open);
        assert!(contact("America/New_York", "24/7").status_at(now).unwrap().open);
        assert!(contact("Mars/Olympus", "24/7").status_at(now).is_err());
    }
}

/// An instant typed by a person, read in `zone` (the zone of the agency the date is about):
/// - an instant with an offset or `Z` (`2026-12-31T17:00:00Z`, `2026-12-31T12:00:00-05:00`);
/// - a local date and time (`2026-12-31 17:00` or `2026-12-31T17:00`) in `zone`;
/// - a date alone (`2026-12-31`): the whole day counts, so the instant is the end of that day
///   in `zone` (midnight at the start of the next day).
pub fn instant_in_zone(text: &str, zone: &TimeZone) -> Result<Timestamp, String> {
    let t = text.trim();
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts);
    }
    let expected = "expected a date (2026-12-31, the end of that day), a local time (2026-12-31 17:00) or an instant (2026-12-31T17:00:00Z)";
    if let Ok(dt) = t.replacen(' ', "T", 1).parse::<jiff::civil::DateTime>()
        && t.len() > 10
    {
        return dt
            .to_zoned(zone.clone())
            .map(|z| z.timestamp())
            .map_err(|e| format!("'{t}' is not a time in that zone: {e}"));
    }
    match t.parse::<jiff::civil::Date>() {
        Ok(d) => {
            let next = d
                .tomorrow()
                .map_err(|e| format!("'{t}': {e}"))?
                .to_zoned(zone.clone())
                .map_err(|e| format!("'{t}' is not a date in that zone: {e}"))?;
            Ok(next.timestamp())
        }
        Err(_) => Err(format!("'{t}' is not a date or time; {expected}")),
    }
}

#[cfg(test)]
mod instant_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn dates_times_and_instants_in_the_agency_zone() {
        let ny = time_zone("America/New_York").unwrap();
        let sh = time_zone("Asia/Shanghai").unwrap();
        // A date alone: through the end of that day in the zone.
        assert_eq!(
            instant_in_zone("2026-12-31", &ny).unwrap(),
            "2027-01-01T05:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            instant_in_zone("2026-12-31", &sh).unwrap(),
            "2026-12-31T16:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            instant_in_zone("2026-07-01 09:30", &ny).unwrap(),
            "2026-07-01T13:30:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            instant_in_zone("2026-07-01T09:30:00Z", &sh).unwrap(),
            "2026-07-01T09:30:00Z".parse::<Timestamp>().unwrap()
        );
        let e = instant_in_zone("soon", &ny).unwrap_err();
        assert!(e.contains("'soon' is not a date or time; expected a date"), "{e}");
    }
}
