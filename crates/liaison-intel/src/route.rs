//! Routing: which partner is responsible for an indicator.
//!
//! Most specific wins: a manual entry for the exact indicator, then the longest matching CIDR,
//! then the AS number, then the country. Unroutable indicators are counted, not dropped.
//! Nested CIDRs are flattened at build time into disjoint intervals, so a lookup is one binary
//! search whatever the nesting.

use crate::enrich::country_from_bytes;
use crate::fast_hash::FastMap;
use crate::model::{Event, IndicatorValue, PartnerId};
use liaison_core::CountryCode;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// One routing rule; exactly one of `indicator`, `cidr`, `asn`, `country` is set.
///
/// ```toml
/// [[intel.routes]]
/// partner = "cn-cncert"
/// country = "CN"
/// [[intel.routes]]
/// partner = "isp-abuse-desk"
/// cidr = "198.51.100.0/24"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    pub partner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indicator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<ipnet::IpNet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<CountryCode>,
}

impl RouteRule {
    pub fn country(partner: &str, cc: CountryCode) -> RouteRule {
        RouteRule {
            partner: partner.into(),
            indicator: None,
            cidr: None,
            asn: None,
            country: Some(cc),
        }
    }
    pub fn asn(partner: &str, asn: u32) -> RouteRule {
        RouteRule {
            partner: partner.into(),
            indicator: None,
            cidr: None,
            asn: Some(asn),
            country: None,
        }
    }
    pub fn cidr(partner: &str, net: ipnet::IpNet) -> RouteRule {
        RouteRule {
            partner: partner.into(),
            indicator: None,
            cidr: Some(net),
            asn: None,
            country: None,
        }
    }
    pub fn manual(partner: &str, indicator: &str) -> RouteRule {
        RouteRule {
            partner: partner.into(),
            indicator: Some(indicator.into()),
            cidr: None,
            asn: None,
            country: None,
        }
    }
}

/// The routing table in config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    #[serde(default)]
    pub routes: Vec<RouteRule>,
}

/// A rule that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("route #{index} for partner '{partner}' must set exactly one of indicator, cidr, asn, country")]
    Matchers { index: usize, partner: String },
    #[error("route #{index}: {message}")]
    BadIndicator { index: usize, message: String },
    #[error("route #{index}: empty partner id")]
    EmptyPartner { index: usize },
}

/// Why an indicator went to its partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouteReason {
    Manual,
    Cidr,
    Asn,
    Country,
}

/// The compiled routing table.
#[derive(Debug, Clone, Default)]
pub struct Router {
    partners: Vec<PartnerId>,
    manual: FastMap<IndicatorValue, u32>,
    v4_starts: Vec<u32>,
    v4_ends: Vec<u32>,
    v4_partner: Vec<u32>,
    v6_starts: Vec<u128>,
    v6_ends: Vec<u128>,
    v6_partner: Vec<u32>,
    asn: FastMap<u32, u32>,
    country: Vec<Option<u32>>,
}

/// Flattens possibly nested intervals (sorted by start, then widest first) into disjoint
/// intervals where the innermost wins.
fn flatten(mut nets: Vec<(u128, u128, u32)>) -> Vec<(u128, u128, u32)> {
    nets.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut out: Vec<(u128, u128, u32)> = Vec::with_capacity(nets.len());
    let mut stack: Vec<(u128, u32)> = Vec::new();
    let mut cur: u128 = 0;
    let emit = |out: &mut Vec<(u128, u128, u32)>, s: u128, e: u128, p: u32| {
        if s <= e {
            out.push((s, e, p));
        }
    };
    for (start, end, p) in nets {
        while let Some(&(top_end, top_p)) = stack.last() {
            if top_end >= start {
                break;
            }
            if cur <= top_end {
                emit(&mut out, cur, top_end, top_p);
                cur = top_end.saturating_add(1);
            }
            stack.pop();
        }
        if let Some(&(_, top_p)) = stack.last()
            && cur < start
        {
            emit(&mut out, cur, start - 1, top_p);
        }
        cur = start;
        stack.push((end, p));
    }
    while let Some((top_end, top_p)) = stack.pop() {
        if cur <= top_end {
            emit(&mut out, cur, top_end, top_p);
            if top_end == u128::MAX {
                break;
            }
            cur = top_end + 1;
        }
    }
    out
}

impl Router {
    /// Compiles the rules. Later rules of the same key override earlier ones.
    pub fn new(config: &RoutingConfig) -> Result<Router, RouteError> {
        let mut r = Router {
            country: vec![None; 26 * 26],
            ..Router::default()
        };
        let mut ix: FastMap<String, u32> = FastMap::default();
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (index, rule) in config.routes.iter().enumerate() {
            if rule.partner.trim().is_empty() {
                return Err(RouteError::EmptyPartner { index });
            }
            let set = usize::from(rule.indicator.is_some())
                + usize::from(rule.cidr.is_some())
                + usize::from(rule.asn.is_some())
                + usize::from(rule.country.is_some());
            if set != 1 {
                return Err(RouteError::Matchers {
                    index,
                    partner: rule.partner.clone(),
                });
            }
            let p = *ix.entry(rule.partner.clone()).or_insert_with(|| {
                r.partners.push(PartnerId::new(&rule.partner));
                (r.partners.len() - 1) as u32
            });
            if let Some(ind) = &rule.indicator {
                let v = IndicatorValue::detect(ind).map_err(|e| RouteError::BadIndicator {
                    index,
                    message: e.to_string(),
                })?;
                r.manual.insert(v, p);
            } else if let Some(net) = rule.cidr {
                match net.trunc() {
                    ipnet::IpNet::V4(n) => v4.push((
                        u128::from(u32::from(n.network())),
                        u128::from(u32::from(n.broadcast())),
                        p,
                    )),
                    ipnet::IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()), p)),
                }
            } else if let Some(a) = rule.asn {
                r.asn.insert(a, p);
            } else if let Some(c) = rule.country {
                let b = c.as_str().as_bytes();
                r.country[usize::from(b[0] - b'A') * 26 + usize::from(b[1] - b'A')] = Some(p);
            }
        }
        for (s, e, p) in flatten(v4) {
            r.v4_starts.push(s as u32);
            r.v4_ends.push(e as u32);
            r.v4_partner.push(p);
        }
        for (s, e, p) in flatten(v6) {
            r.v6_starts.push(s);
            r.v6_ends.push(e);
            r.v6_partner.push(p);
        }
        Ok(r)
    }

    /// Every partner named in the table.
    pub fn partners(&self) -> &[PartnerId] {
        &self.partners
    }

    fn cidr(&self, ip: IpAddr) -> Option<u32> {
        match ip {
            IpAddr::V4(a) => {
                let x = u32::from(a);
                let i = self.v4_starts.partition_point(|&s| s <= x).checked_sub(1)?;
                (x <= self.v4_ends[i]).then(|| self.v4_partner[i])
            }
            IpAddr::V6(a) => {
                let x = u128::from(a);
                let i = self.v6_starts.partition_point(|&s| s <= x).checked_sub(1)?;
                (x <= self.v6_ends[i]).then(|| self.v6_partner[i])
            }
        }
    }

    fn country_ix(&self, cc: CountryCode) -> Option<u32> {
        let b = cc.as_str().as_bytes();
        let i = usize::from(b[0].checked_sub(b'A')?) * 26 + usize::from(b[1].checked_sub(b'A')?);
        self.country.get(i).copied().flatten()
    }

    /// The partner for an indicator with its (enriched) country and ASN, and why.
    pub fn route(
        &self,
        value: &IndicatorValue,
        country: Option<CountryCode>,
        asn: Option<u32>,
    ) -> Option<(&PartnerId, RouteReason)> {
        let (p, why) = self.route_ix(value, country, asn)?;
        Some((self.partners.get(p as usize)?, why))
    }

    #[inline]
    fn route_ix(
        &self,
        value: &IndicatorValue,
        country: Option<CountryCode>,
        asn: Option<u32>,
    ) -> Option<(u32, RouteReason)> {
        if !self.manual.is_empty()
            && let Some(&p) = self.manual.get(value)
        {
            return Some((p, RouteReason::Manual));
        }
        if let Some(p) = value.host_ip().and_then(|ip| self.cidr(ip)) {
            return Some((p, RouteReason::Cidr));
        }
        if let Some(p) = asn.and_then(|a| self.asn.get(&a)) {
            return Some((*p, RouteReason::Asn));
        }
        country
            .and_then(|c| self.country_ix(c))
            .map(|p| (p, RouteReason::Country))
    }

    /// Sets `ev.partner`; returns whether a rule matched.
    #[inline]
    pub fn route_event(&self, ev: &mut Event) -> bool {
        match self.route_ix(&ev.value, ev.source_country, ev.source_asn) {
            Some((p, _)) => {
                ev.partner = self.partners.get(p as usize).cloned();
                ev.partner.is_some()
            }
            None => {
                ev.partner = None;
                false
            }
        }
    }
}

/// Parses a two-letter country code quickly (re-exported for callers building rules).
pub fn country(s: &str) -> Option<CountryCode> {
    country_from_bytes(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_nested() {
        let out = flatten(vec![(0, 100, 1), (10, 20, 2), (15, 16, 3), (50, 60, 4)]);
        assert_eq!(
            out,
            vec![
                (0, 9, 1),
                (10, 14, 2),
                (15, 16, 3),
                (17, 20, 2),
                (21, 49, 1),
                (50, 60, 4),
                (61, 100, 1)
            ]
        );
        assert_eq!(flatten(vec![(0, u128::MAX, 1)]), vec![(0, u128::MAX, 1)]);
    }
}
