//! Sortable identifiers (UUIDv7: time-ordered, so the newest rows sort last and indexes stay compact).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// A new, time-ordered id.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                $name(uuid::Uuid::now_v7())
            }

            /// An id for a given instant (used by the demo to back-date records so they still sort by time).
            pub fn at(ts: jiff::Timestamp, entropy: u64) -> Self {
                let ms = ts.as_millisecond().max(0) as u64;
                let mut b = [0u8; 16];
                b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
                b[6..14].copy_from_slice(&entropy.to_be_bytes());
                b[6] = 0x70 | (b[6] & 0x0f);
                b[8] = 0x80 | (b[8] & 0x3f);
                $name(uuid::Uuid::from_bytes(b))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                uuid::Uuid::parse_str(s).map($name)
            }
        }
    };
}

id_type!(
    /// An assistance request.
    RequestId
);
id_type!(
    /// An agency in the directory.
    AgencyId
);
id_type!(
    /// A contact point of an agency.
    ContactId
);
id_type!(
    /// A user of this node.
    UserId
);
id_type!(
    /// An event in a request's history.
    EventId
);
id_type!(
    /// A unit (team) within an agency.
    UnitId
);
id_type!(
    /// A notification in a user's inbox.
    NotificationId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backdated_ids_sort_by_time() {
        let a = RequestId::at("2025-01-01T00:00:00Z".parse().unwrap(), u64::MAX);
        let b = RequestId::at("2025-01-01T00:00:01Z".parse().unwrap(), 0);
        assert!(a < b);
        assert_eq!(a.0.get_version_num(), 7);
        assert_eq!(a.to_string().parse::<RequestId>().unwrap(), a);
    }
}
