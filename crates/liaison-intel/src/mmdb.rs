//! A small MaxMind DB (MMDB, format 2.0) reader that walks the whole search tree, and a writer.
//!
//! The reader does not answer lookups itself: [`walk`] visits every network in the tree once so
//! [`crate::enrich::PrefixTable`] can compile the database into a sorted interval array. The
//! writer builds databases for tests and for the demo (see [`crate::demo::generate_mmdb`]).
//! Both follow the public MaxMind DB File Format Specification 2.0.

use std::collections::HashMap;
use std::io::Write;

const METADATA_MARKER: &[u8] = b"\xAB\xCD\xEFMaxMind.com";

/// Why an MMDB file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MmdbError {
    #[error("no MaxMind DB metadata marker found (is this an .mmdb file?)")]
    NoMetadata,
    #[error("invalid MaxMind DB metadata: {0}")]
    BadMetadata(String),
    #[error("unsupported record size {0} (expected 24, 28 or 32)")]
    RecordSize(u16),
    #[error("corrupt MaxMind DB: {0}")]
    Corrupt(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// A decoded MMDB data value.
#[derive(Debug, Clone, PartialEq)]
pub enum MmdbValue {
    Map(Vec<(String, MmdbValue)>),
    Array(Vec<MmdbValue>),
    Str(String),
    Bytes(Vec<u8>),
    /// An unsigned integer; decoding yields this for every width. The writer picks the
    /// smallest width unless a fixed-width variant below is used.
    Uint(u128),
    /// Written as `uint16` / `uint32` / `uint64` whatever the value (as the spec fixes for
    /// metadata and MaxMind uses for `autonomous_system_number`, `geoname_id`).
    Uint16(u16),
    Uint32(u32),
    Uint64(u64),
    Int(i32),
    Double(f64),
    Float(f32),
    Bool(bool),
}

impl MmdbValue {
    /// The value under `key` in a map.
    pub fn get(&self, key: &str) -> Option<&MmdbValue> {
        match self {
            MmdbValue::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MmdbValue::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_uint(&self) -> Option<u128> {
        match self {
            MmdbValue::Uint(u) => Some(*u),
            MmdbValue::Uint16(u) => Some(u128::from(*u)),
            MmdbValue::Uint32(u) => Some(u128::from(*u)),
            MmdbValue::Uint64(u) => Some(u128::from(*u)),
            MmdbValue::Int(i) => u128::try_from(*i).ok(),
            _ => None,
        }
    }
    /// Convenience constructor for a map of string keys.
    pub fn map<const N: usize>(pairs: [(&str, MmdbValue); N]) -> MmdbValue {
        MmdbValue::Map(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }
    pub fn str(s: &str) -> MmdbValue {
        MmdbValue::Str(s.to_string())
    }
}

/// The database metadata fields Liaison uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    pub node_count: u32,
    pub record_size: u16,
    pub ip_version: u16,
    pub database_type: String,
    pub build_epoch: u64,
}

struct Decoder<'a> {
    buf: &'a [u8],
    /// Where pointer offsets count from.
    base: usize,
}

fn corrupt(what: &str) -> MmdbError {
    MmdbError::Corrupt(what.to_string())
}

impl Decoder<'_> {
    fn byte(&self, at: usize) -> Result<u8, MmdbError> {
        self.buf
            .get(at)
            .copied()
            .ok_or_else(|| corrupt("data past end of file"))
    }

    fn uint_be(&self, at: usize, n: usize) -> Result<u128, MmdbError> {
        let bytes = self
            .buf
            .get(at..at + n)
            .ok_or_else(|| corrupt("number past end of file"))?;
        Ok(bytes.iter().fold(0u128, |acc, &b| (acc << 8) | u128::from(b)))
    }

    /// Decodes the value at `at`; returns it and the offset just after it.
    fn decode(&self, at: usize, depth: u32) -> Result<(MmdbValue, usize), MmdbError> {
        if depth > 64 {
            return Err(corrupt("data nested too deep"));
        }
        let ctrl = self.byte(at)?;
        let mut pos = at + 1;
        let mut ty = ctrl >> 5;
        if ty == 1 {
            // Pointer.
            let ss = (ctrl >> 3) & 0x3;
            let vvv = u128::from(ctrl & 0x7);
            let (p, n) = match ss {
                0 => ((vvv << 8) | self.uint_be(pos, 1)?, 1),
                1 => (((vvv << 16) | self.uint_be(pos, 2)?) + 2048, 2),
                2 => (((vvv << 24) | self.uint_be(pos, 3)?) + 526_336, 3),
                _ => (self.uint_be(pos, 4)?, 4),
            };
            let target = self.base + usize::try_from(p).map_err(|_| corrupt("pointer"))?;
            if self.byte(target)? >> 5 == 1 {
                return Err(corrupt("pointer to pointer"));
            }
            let (v, _) = self.decode(target, depth + 1)?;
            return Ok((v, pos + n));
        }
        if ty == 0 {
            ty = self.byte(pos)?.checked_add(7).ok_or_else(|| corrupt("extended type"))?;
            pos += 1;
        }
        let mut size = usize::from(ctrl & 0x1f);
        match size {
            29 => {
                size = 29 + self.uint_be(pos, 1)? as usize;
                pos += 1;
            }
            30 => {
                size = 285 + self.uint_be(pos, 2)? as usize;
                pos += 2;
            }
            31 => {
                size = 65_821 + self.uint_be(pos, 3)? as usize;
                pos += 3;
            }
            _ => {}
        }
        let take = |n: usize| -> Result<&[u8], MmdbError> {
            self.buf
                .get(pos..pos + n)
                .ok_or_else(|| corrupt("value past end of file"))
        };
        Ok(match ty {
            2 => {
                let s = std::str::from_utf8(take(size)?).map_err(|_| corrupt("string not UTF-8"))?;
                (MmdbValue::Str(s.to_string()), pos + size)
            }
            3 => {
                let b: [u8; 8] = take(8)?.try_into().map_err(|_| corrupt("double"))?;
                (MmdbValue::Double(f64::from_be_bytes(b)), pos + 8)
            }
            4 => (MmdbValue::Bytes(take(size)?.to_vec()), pos + size),
            5 | 6 | 9 | 10 => {
                if size > 16 {
                    return Err(corrupt("integer too wide"));
                }
                (MmdbValue::Uint(self.uint_be(pos, size)?), pos + size)
            }
            8 => {
                if size > 4 {
                    return Err(corrupt("int32 too wide"));
                }
                let u = self.uint_be(pos, size)? as u32;
                (MmdbValue::Int(u as i32), pos + size)
            }
            7 => {
                let mut m = Vec::with_capacity(size.min(64));
                for _ in 0..size {
                    let (k, next) = self.decode(pos, depth + 1)?;
                    let (v, next) = self.decode(next, depth + 1)?;
                    pos = next;
                    match k {
                        MmdbValue::Str(k) => m.push((k, v)),
                        _ => return Err(corrupt("map key is not a string")),
                    }
                }
                (MmdbValue::Map(m), pos)
            }
            11 => {
                let mut a = Vec::with_capacity(size.min(64));
                for _ in 0..size {
                    let (v, next) = self.decode(pos, depth + 1)?;
                    pos = next;
                    a.push(v);
                }
                (MmdbValue::Array(a), pos)
            }
            14 => (MmdbValue::Bool(size != 0), pos),
            15 => {
                let b: [u8; 4] = take(4)?.try_into().map_err(|_| corrupt("float"))?;
                (MmdbValue::Float(f32::from_be_bytes(b)), pos + 4)
            }
            _ => return Err(MmdbError::Corrupt(format!("unknown data type {ty}"))),
        })
    }
}

/// Reads the metadata of a database held in `buf`.
pub fn metadata(buf: &[u8]) -> Result<(Metadata, usize), MmdbError> {
    let search_from = buf.len().saturating_sub(128 * 1024);
    let pos = buf[search_from..]
        .windows(METADATA_MARKER.len())
        .rposition(|w| w == METADATA_MARKER)
        .map(|p| search_from + p)
        .ok_or(MmdbError::NoMetadata)?;
    let start = pos + METADATA_MARKER.len();
    let d = Decoder { buf, base: start };
    let (m, _) = d.decode(start, 0)?;
    let num = |k: &str| {
        m.get(k)
            .and_then(MmdbValue::as_uint)
            .ok_or_else(|| MmdbError::BadMetadata(format!("missing {k}")))
    };
    let md = Metadata {
        node_count: u32::try_from(num("node_count")?).map_err(|_| MmdbError::BadMetadata("node_count".into()))?,
        record_size: u16::try_from(num("record_size")?).map_err(|_| MmdbError::BadMetadata("record_size".into()))?,
        ip_version: u16::try_from(num("ip_version")?).map_err(|_| MmdbError::BadMetadata("ip_version".into()))?,
        database_type: m
            .get("database_type")
            .and_then(MmdbValue::as_str)
            .unwrap_or("")
            .to_string(),
        build_epoch: m.get("build_epoch").and_then(MmdbValue::as_uint).unwrap_or(0) as u64,
    };
    if !matches!(md.record_size, 24 | 28 | 32) {
        return Err(MmdbError::RecordSize(md.record_size));
    }
    if !matches!(md.ip_version, 4 | 6) {
        return Err(MmdbError::BadMetadata(format!("ip_version {}", md.ip_version)));
    }
    Ok((md, pos))
}

/// One network found in the tree: `[start, end]` in the 128-bit space (IPv4 as `::a.b.c.d` in an
/// IPv6 tree, plain 32-bit values in an IPv4 tree) and the offset of its data record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeLeaf {
    pub start: u128,
    pub prefix_len: u8,
    pub data_offset: usize,
}

/// A database loaded in memory, ready to be walked.
pub struct Database<'a> {
    buf: &'a [u8],
    pub metadata: Metadata,
    tree_size: usize,
}

impl<'a> Database<'a> {
    pub fn open(buf: &'a [u8]) -> Result<Database<'a>, MmdbError> {
        let (metadata, marker_pos) = metadata(buf)?;
        let tree_size = metadata.node_count as usize * usize::from(metadata.record_size) / 4;
        if tree_size + 16 > marker_pos {
            return Err(corrupt("search tree larger than file"));
        }
        Ok(Database {
            buf,
            metadata,
            tree_size,
        })
    }

    /// Bits per address in the tree (32 or 128).
    pub fn bits(&self) -> u32 {
        if self.metadata.ip_version == 6 { 128 } else { 32 }
    }

    fn read_node(&self, node: u32) -> Result<[u32; 2], MmdbError> {
        let rs = usize::from(self.metadata.record_size);
        let off = node as usize * rs / 4;
        let b = self
            .buf
            .get(off..off + rs / 4)
            .ok_or_else(|| corrupt("node past end of tree"))?;
        Ok(match rs {
            24 => [
                u32::from_be_bytes([0, b[0], b[1], b[2]]),
                u32::from_be_bytes([0, b[3], b[4], b[5]]),
            ],
            28 => [
                u32::from_be_bytes([b[3] >> 4, b[0], b[1], b[2]]),
                u32::from_be_bytes([b[3] & 0x0f, b[4], b[5], b[6]]),
            ],
            _ => [
                u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            ],
        })
    }

    /// Visits every network that has data, in address order. In an IPv6 tree the IPv4
    /// aliases (`::ffff:0:0/96`, `2002::/16`, and any other pointer back into the `::/96`
    /// subtree) are skipped so each IPv4 network is reported once, under `::/96`.
    pub fn walk(&self, mut visit: impl FnMut(TreeLeaf)) -> Result<(), MmdbError> {
        let n = self.metadata.node_count;
        let bits = self.bits();
        // The node reached after 96 zero bits is the IPv4 subtree of an IPv6 tree.
        let mut v4_node = None;
        if bits == 128 {
            let mut node = 0u32;
            for _ in 0..96 {
                if node >= n {
                    break;
                }
                node = self.read_node(node)?[0];
            }
            if node < n {
                v4_node = Some(node);
            }
        }
        // Depth-first, left before right, so leaves come out in address order. Leaves wait on
        // the stack like nodes so that a leaf on the right comes after the left subtree.
        enum Item {
            Node(u32, u32, u128),
            Leaf(TreeLeaf),
        }
        let mut stack: Vec<Item> = vec![Item::Node(0, 0, 0)];
        // A corrupt tree could share subtrees in ways that explode the walk.
        let mut budget = u64::from(n).saturating_mul(4).saturating_add(1024);
        while let Some(item) = stack.pop() {
            let (node, depth, prefix) = match item {
                Item::Leaf(l) => {
                    visit(l);
                    continue;
                }
                Item::Node(node, depth, prefix) => (node, depth, prefix),
            };
            budget = budget
                .checked_sub(1)
                .ok_or_else(|| corrupt("search tree has cycles or shared subtrees"))?;
            if depth >= bits {
                return Err(corrupt("tree deeper than address size"));
            }
            let recs = self.read_node(node)?;
            for bit in [1u32, 0] {
                let rec = recs[bit as usize];
                let child_depth = depth + 1;
                let child_prefix = prefix | (u128::from(bit) << (bits - child_depth));
                if rec < n {
                    let is_alias = Some(rec) == v4_node && !(child_depth == 96 && child_prefix == 0);
                    if !is_alias {
                        stack.push(Item::Node(rec, child_depth, child_prefix));
                    }
                } else if rec > n {
                    let off = (rec - n) as usize - 16;
                    if self.tree_size + 16 + off >= self.buf.len() {
                        return Err(corrupt("data pointer past end of file"));
                    }
                    stack.push(Item::Leaf(TreeLeaf {
                        start: child_prefix,
                        prefix_len: child_depth as u8,
                        data_offset: self.tree_size + 16 + off,
                    }));
                }
            }
        }
        Ok(())
    }

    /// Decodes the data record at an offset given by [`Database::walk`].
    pub fn decode(&self, data_offset: usize) -> Result<MmdbValue, MmdbError> {
        let d = Decoder {
            buf: self.buf,
            base: self.tree_size + 16,
        };
        d.decode(data_offset, 0).map(|(v, _)| v)
    }
}

// ---------------------------------------------------------------------------------------------
// Writer

#[derive(Clone, Copy, PartialEq, Eq)]
enum Rec {
    Empty,
    Node(u32),
    Data(u32),
}

/// Builds a MaxMind DB file (record size 32) in memory.
///
/// Insert general networks before more specific ones: an insert overwrites whatever the
/// prefix covered before.
pub struct MmdbWriter {
    ip_version: u16,
    database_type: String,
    description: String,
    nodes: Vec<[Rec; 2]>,
    data: Vec<u8>,
    dedup: HashMap<Vec<u8>, u32>,
    ipv4_aliases: bool,
}

impl MmdbWriter {
    /// `ip_version` 6 stores IPv4 networks under `::/96` and adds the standard
    /// `::ffff:0:0/96` alias; 4 builds a 32-bit tree.
    pub fn new(ip_version: u16, database_type: &str) -> MmdbWriter {
        MmdbWriter {
            ip_version: if ip_version == 4 { 4 } else { 6 },
            database_type: database_type.to_string(),
            description: format!("{database_type} (generated by Liaison)"),
            nodes: vec![[Rec::Empty; 2]],
            data: Vec::new(),
            dedup: HashMap::new(),
            ipv4_aliases: true,
        }
    }

    /// Whether to write the `::ffff:0:0/96` alias in an IPv6 tree (default true).
    pub fn ipv4_aliases(mut self, yes: bool) -> MmdbWriter {
        self.ipv4_aliases = yes;
        self
    }

    fn store(&mut self, value: &MmdbValue) -> u32 {
        let mut enc = Vec::new();
        encode(&mut enc, value);
        if let Some(&off) = self.dedup.get(&enc) {
            return off;
        }
        let off = self.data.len() as u32;
        self.data.extend_from_slice(&enc);
        self.dedup.insert(enc, off);
        off
    }

    fn set(&mut self, bits: u128, prefix_len: u32, total: u32, rec: Rec) {
        if prefix_len == 0 {
            return;
        }
        let mut node = 0usize;
        for depth in 0..prefix_len - 1 {
            let bit = ((bits >> (total - 1 - depth)) & 1) as usize;
            match self.nodes[node][bit] {
                Rec::Node(m) => node = m as usize,
                other => {
                    let m = self.nodes.len();
                    let fill = if matches!(other, Rec::Data(_)) {
                        other
                    } else {
                        Rec::Empty
                    };
                    self.nodes.push([fill, fill]);
                    self.nodes[node][bit] = Rec::Node(m as u32);
                    node = m;
                }
            }
        }
        let bit = ((bits >> (total - prefix_len)) & 1) as usize;
        self.nodes[node][bit] = rec;
    }

    /// Maps `net` to `value`.
    pub fn insert(&mut self, net: ipnet::IpNet, value: &MmdbValue) {
        let off = self.store(value);
        let rec = Rec::Data(off);
        match net.trunc() {
            ipnet::IpNet::V4(n) => {
                let bits = u128::from(u32::from(n.network()));
                if self.ip_version == 4 {
                    self.set(bits, u32::from(n.prefix_len()), 32, rec);
                } else {
                    self.set(bits, 96 + u32::from(n.prefix_len()), 128, rec);
                }
            }
            ipnet::IpNet::V6(n) => {
                if self.ip_version == 6 {
                    self.set(u128::from(n.network()), u32::from(n.prefix_len()), 128, rec);
                }
            }
        }
    }

    /// Writes the finished database.
    pub fn write(mut self, mut out: impl Write) -> std::io::Result<()> {
        if self.ip_version == 6 && self.ipv4_aliases {
            // Make sure ::/96 is a node, then point ::ffff:0:0/96 at it.
            let mut node = 0usize;
            let mut ok = true;
            for _ in 0..96 {
                match self.nodes[node][0] {
                    Rec::Node(m) => node = m as usize,
                    _ => {
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                self.set(0xffff_u128 << 32, 96, 128, Rec::Node(node as u32));
            }
        }
        let n = self.nodes.len() as u32;
        let mut tree = Vec::with_capacity(self.nodes.len() * 8);
        for pair in &self.nodes {
            for rec in pair {
                let v = match *rec {
                    Rec::Empty => n,
                    Rec::Node(m) => m,
                    Rec::Data(off) => n + 16 + off,
                };
                tree.extend_from_slice(&v.to_be_bytes());
            }
        }
        out.write_all(&tree)?;
        out.write_all(&[0u8; 16])?;
        out.write_all(&self.data)?;
        out.write_all(METADATA_MARKER)?;
        let meta = MmdbValue::Map(vec![
            ("binary_format_major_version".into(), MmdbValue::Uint16(2)),
            ("binary_format_minor_version".into(), MmdbValue::Uint16(0)),
            ("build_epoch".into(), MmdbValue::Uint64(1_700_000_000)),
            ("database_type".into(), MmdbValue::Str(self.database_type.clone())),
            (
                "description".into(),
                MmdbValue::Map(vec![("en".into(), MmdbValue::Str(self.description.clone()))]),
            ),
            ("ip_version".into(), MmdbValue::Uint16(self.ip_version)),
            ("languages".into(), MmdbValue::Array(vec![MmdbValue::str("en")])),
            ("node_count".into(), MmdbValue::Uint32(n)),
            ("record_size".into(), MmdbValue::Uint16(32)),
        ]);
        let mut enc = Vec::new();
        encode(&mut enc, &meta);
        out.write_all(&enc)
    }
}

fn control(out: &mut Vec<u8>, ty: u8, size: usize) {
    let (bits, extra): (u8, Vec<u8>) = if size < 29 {
        (size as u8, vec![])
    } else if size < 285 {
        (29, vec![(size - 29) as u8])
    } else if size < 65_821 {
        (30, ((size - 285) as u16).to_be_bytes().to_vec())
    } else {
        (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec())
    };
    if ty <= 7 {
        out.push((ty << 5) | bits);
    } else {
        out.push(bits);
        out.push(ty - 7);
    }
    out.extend_from_slice(&extra);
}

fn encode_uint(out: &mut Vec<u8>, ty: u8, v: u128) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    control(out, ty, 16 - skip);
    out.extend_from_slice(&bytes[skip..]);
}

fn encode(out: &mut Vec<u8>, v: &MmdbValue) {
    match v {
        MmdbValue::Str(s) => {
            control(out, 2, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        MmdbValue::Double(d) => {
            control(out, 3, 8);
            out.extend_from_slice(&d.to_be_bytes());
        }
        MmdbValue::Bytes(b) => {
            control(out, 4, b.len());
            out.extend_from_slice(b);
        }
        MmdbValue::Uint(u) => {
            let ty = if *u <= u128::from(u16::MAX) {
                5
            } else if *u <= u128::from(u32::MAX) {
                6
            } else if *u <= u128::from(u64::MAX) {
                9
            } else {
                10
            };
            encode_uint(out, ty, *u);
        }
        MmdbValue::Uint16(u) => {
            control(out, 5, 2);
            out.extend_from_slice(&u.to_be_bytes());
        }
        MmdbValue::Uint32(u) => {
            control(out, 6, 4);
            out.extend_from_slice(&u.to_be_bytes());
        }
        MmdbValue::Uint64(u) => {
            control(out, 9, 8);
            out.extend_from_slice(&u.to_be_bytes());
        }
        MmdbValue::Int(i) => {
            control(out, 8, 4);
            out.extend_from_slice(&i.to_be_bytes());
        }
        MmdbValue::Map(m) => {
            control(out, 7, m.len());
            for (k, v) in m {
                control(out, 2, k.len());
                out.extend_from_slice(k.as_bytes());
                encode(out, v);
            }
        }
        MmdbValue::Array(a) => {
            control(out, 11, a.len());
            for v in a {
                encode(out, v);
            }
        }
        MmdbValue::Bool(b) => control(out, 14, usize::from(*b)),
        MmdbValue::Float(f) => {
            control(out, 15, 4);
            out.extend_from_slice(&f.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_values_and_tree() {
        let mut w = MmdbWriter::new(6, "Test");
        let long = "x".repeat(300);
        let v = MmdbValue::map([
            ("country", MmdbValue::map([("iso_code", MmdbValue::str("CN"))])),
            ("n", MmdbValue::Uint(70_000)),
            ("big", MmdbValue::Uint(u128::from(u64::MAX))),
            ("neg", MmdbValue::Int(-5)),
            ("ok", MmdbValue::Bool(true)),
            ("d", MmdbValue::Double(1.5)),
            ("long", MmdbValue::Str(long)),
            ("arr", MmdbValue::Array(vec![MmdbValue::Uint(1), MmdbValue::Float(2.0)])),
        ]);
        w.insert("1.2.0.0/16".parse().unwrap(), &v);
        w.insert("2001:db8::/32".parse().unwrap(), &MmdbValue::str("six"));
        let mut buf = Vec::new();
        w.write(&mut buf).unwrap();
        let db = Database::open(&buf).unwrap();
        assert_eq!(db.metadata.ip_version, 6);
        let mut leaves = Vec::new();
        db.walk(|l| leaves.push(l)).unwrap();
        assert_eq!(leaves.len(), 2, "alias must be skipped: {leaves:?}");
        let v4 = leaves.iter().find(|l| l.prefix_len == 112).unwrap();
        assert_eq!(v4.start, u128::from(u32::from(std::net::Ipv4Addr::new(1, 2, 0, 0))));
        assert_eq!(db.decode(v4.data_offset).unwrap(), v);
    }
}
