//! Enrichment: country, ASN and AS organisation of an indicator's host IP, from MMDB files.
//!
//! At start-up each database is compiled into a [`PrefixTable`]: sorted, disjoint
//! `[start, end]` intervals (separately for IPv4 and IPv6) with an index into a small table of
//! distinct [`NetInfo`] values. A lookup is a binary search over a flat `Vec<u32>`/`Vec<u128>`,
//! with no pointer chasing and no decoding on the hot path.
//!
//! Layouts understood (the first field found wins):
//! - country: `country.iso_code` (GeoLite2/GeoIP2 Country and City, DB-IP lite),
//!   `registered_country.iso_code`, `country_code` (IPinfo Lite);
//! - ASN: `autonomous_system_number` (GeoLite2 ASN, DB-IP ASN lite) or `asn` as `"AS123"`
//!   or a number (IPinfo Lite);
//! - AS organisation: `autonomous_system_organization` or `as_name`.

use crate::fast_hash::FastMap;
use crate::mmdb::{Database, MmdbError, MmdbValue};
use crate::model::{Event, IndicatorValue, parse_asn};
use liaison_core::CountryCode;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// What a database says about one network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NetInfo {
    pub country: Option<CountryCode>,
    pub asn: Option<u32>,
    /// Index into [`PrefixTable::org`].
    pub org: Option<u32>,
}

/// An MMDB database compiled into sorted interval arrays.
#[derive(Debug, Clone, Default)]
pub struct PrefixTable {
    v4_starts: Vec<u32>,
    v4_ends: Vec<u32>,
    v4_info: Vec<u32>,
    v6_starts: Vec<u128>,
    v6_ends: Vec<u128>,
    v6_info: Vec<u32>,
    infos: Vec<NetInfo>,
    orgs: Vec<Arc<str>>,
    /// `database_type` from the metadata (`GeoLite2-Country`, `ipinfo lite`...).
    pub database_type: String,
}

/// A database that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("cannot load MMDB '{path}': {source}")]
pub struct EnrichError {
    pub path: PathBuf,
    #[source]
    pub source: MmdbError,
}

/// A fast ISO code lookup from two bytes (feeds and databases give many).
pub fn country_from_bytes(b: &[u8]) -> Option<CountryCode> {
    static TABLE: OnceLock<Vec<Option<CountryCode>>> = OnceLock::new();
    let t = TABLE.get_or_init(|| {
        let mut t = vec![None; 26 * 26];
        for c in CountryCode::all().chain(CountryCode::parse("EU").ok()) {
            let s = c.as_str().as_bytes();
            t[usize::from(s[0] - b'A') * 26 + usize::from(s[1] - b'A')] = Some(c);
        }
        t
    });
    let b = b.trim_ascii();
    if b.len() != 2 || !b[0].is_ascii_alphabetic() || !b[1].is_ascii_alphabetic() {
        return None;
    }
    let i = usize::from(b[0].to_ascii_uppercase() - b'A') * 26 + usize::from(b[1].to_ascii_uppercase() - b'A');
    t[i]
}

fn extract(v: &MmdbValue) -> (Option<CountryCode>, Option<u32>, Option<&str>) {
    let cc = v
        .get("country")
        .and_then(|c| c.get("iso_code"))
        .or_else(|| v.get("registered_country").and_then(|c| c.get("iso_code")))
        .or_else(|| v.get("country_code"))
        .and_then(MmdbValue::as_str)
        .and_then(|s| country_from_bytes(s.as_bytes()));
    let asn = match v.get("autonomous_system_number").or_else(|| v.get("asn")) {
        Some(MmdbValue::Str(s)) => parse_asn(s),
        Some(other) => other.as_uint().and_then(|u| u32::try_from(u).ok()).filter(|&a| a > 0),
        None => None,
    };
    let org = v
        .get("autonomous_system_organization")
        .or_else(|| v.get("as_name"))
        .and_then(MmdbValue::as_str)
        .filter(|s| !s.is_empty());
    (cc, asn, org)
}

impl PrefixTable {
    /// Reads and compiles a database file. The file is read once and dropped after compiling.
    pub fn open(path: &Path) -> Result<PrefixTable, EnrichError> {
        let err = |source| EnrichError {
            path: path.to_path_buf(),
            source,
        };
        let buf = std::fs::read(path).map_err(|e| err(MmdbError::Io(e)))?;
        PrefixTable::from_bytes(&buf).map_err(err)
    }

    /// Compiles a database held in memory.
    pub fn from_bytes(buf: &[u8]) -> Result<PrefixTable, MmdbError> {
        let db = Database::open(buf)?;
        let mut table = PrefixTable {
            database_type: db.metadata.database_type.clone(),
            ..PrefixTable::default()
        };
        let mut by_offset: FastMap<usize, Option<u32>> = FastMap::default();
        let mut by_info: FastMap<NetInfo, u32> = FastMap::default();
        let mut by_org: FastMap<String, u32> = FastMap::default();
        let v6_tree = db.bits() == 128;
        // Leaves arrive in address order, so the interval arrays are built sorted, streaming.
        let mut failure = None;
        db.walk(|leaf| {
            if failure.is_none()
                && let Err(e) = table.add_leaf(&db, leaf, v6_tree, &mut by_offset, &mut by_info, &mut by_org)
            {
                failure = Some(e);
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        table.v4_starts.shrink_to_fit();
        table.v4_ends.shrink_to_fit();
        table.v4_info.shrink_to_fit();
        table.v6_starts.shrink_to_fit();
        table.v6_ends.shrink_to_fit();
        table.v6_info.shrink_to_fit();
        Ok(table)
    }

    fn add_leaf(
        &mut self,
        db: &Database<'_>,
        leaf: crate::mmdb::TreeLeaf,
        v6_tree: bool,
        by_offset: &mut FastMap<usize, Option<u32>>,
        by_info: &mut FastMap<NetInfo, u32>,
        by_org: &mut FastMap<String, u32>,
    ) -> Result<(), MmdbError> {
        let table = self;
        {
            let info_ix = match by_offset.get(&leaf.data_offset) {
                Some(ix) => *ix,
                None => {
                    let v = db.decode(leaf.data_offset)?;
                    let (country, asn, org) = extract(&v);
                    let ix = if country.is_none() && asn.is_none() && org.is_none() {
                        None
                    } else {
                        let org = org.map(|o| match by_org.get(o) {
                            Some(&i) => i,
                            None => {
                                let i = table.orgs.len() as u32;
                                table.orgs.push(Arc::from(o));
                                by_org.insert(o.to_string(), i);
                                i
                            }
                        });
                        let info = NetInfo { country, asn, org };
                        Some(*by_info.entry(info).or_insert_with(|| {
                            table.infos.push(info);
                            (table.infos.len() - 1) as u32
                        }))
                    };
                    by_offset.insert(leaf.data_offset, ix);
                    ix
                }
            };
            let Some(ix) = info_ix else { return Ok(()) };
            let plen = u32::from(leaf.prefix_len);
            if !v6_tree {
                let start = leaf.start as u32;
                let end = start | u32::MAX.checked_shr(plen).unwrap_or(0);
                table.push_v4(start, end, ix);
                return Ok(());
            }
            let end = leaf.start | u128::MAX.checked_shr(plen).unwrap_or(0);
            if leaf.start >> 32 == 0 && plen >= 96 {
                table.push_v4(leaf.start as u32, end as u32, ix);
            } else {
                if leaf.start == 0 {
                    // A network such as ::/8 that contains the whole IPv4 subtree.
                    table.push_v4(0, u32::MAX, ix);
                }
                table.push_v6(leaf.start, end, ix);
            }
        }
        Ok(())
    }

    fn push_v4(&mut self, start: u32, end: u32, ix: u32) {
        if let (Some(last_end), Some(&last_ix)) = (self.v4_ends.last_mut(), self.v4_info.last())
            && last_ix == ix
            && last_end.checked_add(1) == Some(start)
        {
            *last_end = end;
            return;
        }
        self.v4_starts.push(start);
        self.v4_ends.push(end);
        self.v4_info.push(ix);
    }

    fn push_v6(&mut self, start: u128, end: u128, ix: u32) {
        if let (Some(last_end), Some(&last_ix)) = (self.v6_ends.last_mut(), self.v6_info.last())
            && last_ix == ix
            && last_end.checked_add(1) == Some(start)
        {
            *last_end = end;
            return;
        }
        self.v6_starts.push(start);
        self.v6_ends.push(end);
        self.v6_info.push(ix);
    }

    /// Number of IPv4 and IPv6 intervals after merging adjacent equal networks.
    pub fn len(&self) -> (usize, usize) {
        (self.v4_starts.len(), self.v6_starts.len())
    }

    pub fn is_empty(&self) -> bool {
        self.v4_starts.is_empty() && self.v6_starts.is_empty()
    }

    /// What the database says about `ip`.
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Option<&NetInfo> {
        let ix = match ip {
            IpAddr::V4(a) => {
                let x = u32::from(a);
                let i = self.v4_starts.partition_point(|&s| s <= x).checked_sub(1)?;
                (x <= self.v4_ends[i]).then(|| self.v4_info[i])?
            }
            IpAddr::V6(a) => {
                if let Some(v4) = a.to_ipv4_mapped() {
                    return self.lookup(IpAddr::V4(v4));
                }
                let x = u128::from(a);
                let i = self.v6_starts.partition_point(|&s| s <= x).checked_sub(1)?;
                (x <= self.v6_ends[i]).then(|| self.v6_info[i])?
            }
        };
        self.infos.get(ix as usize)
    }

    /// The AS organisation name for an index found in a [`NetInfo`].
    pub fn org(&self, ix: u32) -> Option<&Arc<str>> {
        self.orgs.get(ix as usize)
    }
}

/// Where the enrichment databases are (a serde struct for the TOML config).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichConfig {
    /// MMDB files, most trusted first (for example GeoLite2-Country then GeoLite2-ASN).
    #[serde(default)]
    pub mmdb: Vec<PathBuf>,
}

/// Country/ASN/AS-organisation enrichment from one or more compiled databases.
#[derive(Debug, Clone, Default)]
pub struct Enricher {
    tables: Vec<PrefixTable>,
}

/// The combined answer of all databases for one IP.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Enrichment {
    pub country: Option<CountryCode>,
    pub asn: Option<u32>,
    pub as_org: Option<Arc<str>>,
}

impl Enricher {
    pub fn new(tables: Vec<PrefixTable>) -> Enricher {
        Enricher { tables }
    }

    /// Loads every database in the config.
    pub fn open(config: &EnrichConfig) -> Result<Enricher, EnrichError> {
        let tables = config
            .mmdb
            .iter()
            .map(|p| PrefixTable::open(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Enricher { tables })
    }

    pub fn tables(&self) -> &[PrefixTable] {
        &self.tables
    }

    /// Country, ASN and AS organisation of `ip`; earlier databases win per field.
    pub fn lookup(&self, ip: IpAddr) -> Enrichment {
        let mut e = Enrichment::default();
        for t in &self.tables {
            if let Some(info) = t.lookup(ip) {
                e.country = e.country.or(info.country);
                e.asn = e.asn.or(info.asn);
                if e.as_org.is_none() {
                    e.as_org = info.org.and_then(|o| t.org(o)).cloned();
                }
            }
        }
        e
    }

    /// Fills the `source_*` fields of `ev` that the feed left empty. AS-number indicators get
    /// their own number as `source_asn`; domains are not resolved (no DNS).
    #[inline]
    pub fn enrich(&self, ev: &mut Event) {
        if let IndicatorValue::Asn(a) = ev.value {
            ev.source_asn = ev.source_asn.or(Some(a));
            return;
        }
        let Some(ip) = ev.value.host_ip() else { return };
        for t in &self.tables {
            if ev.source_country.is_some() && ev.source_asn.is_some() && ev.as_org.is_some() {
                break;
            }
            if let Some(info) = t.lookup(ip) {
                if ev.source_country.is_none() {
                    ev.source_country = info.country;
                }
                if ev.source_asn.is_none() {
                    ev.source_asn = info.asn;
                }
                if ev.as_org.is_none()
                    && let Some(o) = info.org.and_then(|o| t.org(o))
                {
                    ev.as_org = Some(o.clone());
                }
            }
        }
    }
}
