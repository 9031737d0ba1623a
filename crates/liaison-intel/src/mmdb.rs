//! A small MaxMind DB (MMDB, format 2.0) reader that walks the whole search tree, and a writer.
//!
//! The reader does not answer lookups itself: [`walk`] visits every network in the tree once so
//! [`crate::enrich::PrefixTable`] can compile the database into a sorted interval array. The
//! writer builds databases for tests and for the demo (see [`crate::demo::generate_mmdb`]).
//! Both follow the public MaxMind DB File Format Specification 2.0.
//!
//! The reader treats the file as hostile. Decoding has a budget ([`DecodeLimits`]): a bound on
//! the values and bytes one record may expand to (a pointer re-expands its target each time it is
//! met, so a small file could otherwise describe an exponentially large value), on nesting and
//! pointer depth, and on the total decoded from one file. Going over it is a
//! [`MmdbError::Budget`] naming the limit. Every offset read from the file (search-tree records,
//! pointers, sizes) is checked against the section it must fall in before it is used.
//!
//! [`walk`]: Database::walk

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::io::Write;

const METADATA_MARKER: &[u8] = b"\xAB\xCD\xEFMaxMind.com";

/// Bytes of zeros between the search tree and the data section.
const SEPARATOR: usize = 16;

/// What each decoded value costs against the byte budget, on top of its string or byte payload
/// (roughly the memory a [`MmdbValue`] takes).
const VALUE_COST: u64 = 32;

/// Which decoding limit a file went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetLimit {
    ValuesPerRecord,
    BytesPerRecord,
    ValuesPerFile,
    BytesPerFile,
    Depth,
    PointerDepth,
}

impl fmt::Display for BudgetLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BudgetLimit::ValuesPerRecord => "values decoded for one record",
            BudgetLimit::BytesPerRecord => "bytes produced for one record",
            BudgetLimit::ValuesPerFile => "values decoded from the whole file",
            BudgetLimit::BytesPerFile => "bytes produced from the whole file",
            BudgetLimit::Depth => "levels of maps, arrays and pointers nested in one another",
            BudgetLimit::PointerDepth => "pointers followed inside one another",
        })
    }
}

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
    /// A search-tree record whose value is between `node_count + 1` and `node_count + 15`: it
    /// points into the 16-byte separator, not at a data record.
    #[error(
        "corrupt MaxMind DB: search tree node {node} has record {record}, which points into the \
         16-byte separator before the data section (node_count {node_count}: data records start at \
         node_count + 16)"
    )]
    RecordInSeparator { node: u32, record: u32, node_count: u32 },
    /// Decoding went over a [`DecodeLimits`] bound (a hostile or broken file).
    #[error("MaxMind DB decoding budget exceeded: more than {max} {limit} (record at byte {offset})")]
    Budget {
        limit: BudgetLimit,
        max: u64,
        offset: usize,
    },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Bounds on decoding, so that a small hostile file cannot make the reader run for long or
/// allocate much. The defaults leave real databases (GeoLite2 City/Country/ASN, DB-IP, IPinfo
/// Lite: records of at most a few hundred values and a few KiB) far below every bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Values one record (or the metadata) may decode to; a value reached through a pointer
    /// counts each time it is reached. Default 65,536.
    pub max_values_per_record: u64,
    /// Bytes one record may produce: string, key and byte payloads plus 32 per value.
    /// Default 4 MiB.
    pub max_bytes_per_record: u64,
    /// Maps, arrays and pointers nested inside one another. Default 32.
    pub max_depth: u32,
    /// Pointers followed inside one another (a pointer to a map holding a pointer...). Default 8.
    pub max_pointer_depth: u32,
    /// Values decoded from one file in total (metadata and all records).
    /// Default 1,000,000 + 64 per byte of file.
    pub max_values_per_file: u64,
    /// Bytes produced from one file in total. Default 32 MiB + 64 per byte of file.
    pub max_bytes_per_file: u64,
}

impl DecodeLimits {
    /// The default limits for a file of `file_len` bytes.
    pub fn for_file(file_len: usize) -> DecodeLimits {
        let len = file_len as u64;
        DecodeLimits {
            max_values_per_record: 65_536,
            max_bytes_per_record: 4 << 20,
            max_depth: 32,
            max_pointer_depth: 8,
            max_values_per_file: len.saturating_mul(64).saturating_add(1_000_000),
            max_bytes_per_file: len.saturating_mul(64).saturating_add(32 << 20),
        }
    }
}

/// What decoding has spent so far in one file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeSpent {
    pub values: u64,
    pub bytes: u64,
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

/// Decodes one record (or the metadata) under a budget.
struct Decoder<'a> {
    /// The section values may be read from: a value or pointer target outside it is corrupt.
    buf: &'a [u8],
    /// Where pointer offsets count from.
    base: usize,
    limits: &'a DecodeLimits,
    /// Where this record starts (for error messages).
    start: usize,
    /// Spent on this record.
    values: u64,
    bytes: u64,
    /// Spent on the file before this record.
    file: DecodeSpent,
}

fn corrupt(what: &str) -> MmdbError {
    MmdbError::Corrupt(what.to_string())
}

impl<'a> Decoder<'a> {
    fn new(buf: &'a [u8], base: usize, limits: &'a DecodeLimits, start: usize, file: DecodeSpent) -> Decoder<'a> {
        Decoder {
            buf,
            base,
            limits,
            start,
            values: 0,
            bytes: 0,
            file,
        }
    }

    fn over(&self, limit: BudgetLimit, max: u64) -> MmdbError {
        MmdbError::Budget {
            limit,
            max,
            offset: self.start,
        }
    }

    /// Counts one value with `payload` bytes against the record and file budgets.
    fn charge(&mut self, payload: usize) -> Result<(), MmdbError> {
        let l = self.limits;
        self.values += 1;
        self.bytes = self.bytes.saturating_add(VALUE_COST).saturating_add(payload as u64);
        if self.values > l.max_values_per_record {
            return Err(self.over(BudgetLimit::ValuesPerRecord, l.max_values_per_record));
        }
        if self.bytes > l.max_bytes_per_record {
            return Err(self.over(BudgetLimit::BytesPerRecord, l.max_bytes_per_record));
        }
        if self.file.values.saturating_add(self.values) > l.max_values_per_file {
            return Err(self.over(BudgetLimit::ValuesPerFile, l.max_values_per_file));
        }
        if self.file.bytes.saturating_add(self.bytes) > l.max_bytes_per_file {
            return Err(self.over(BudgetLimit::BytesPerFile, l.max_bytes_per_file));
        }
        Ok(())
    }

    /// The file's spending including this record.
    fn spent(&self) -> DecodeSpent {
        DecodeSpent {
            values: self.file.values.saturating_add(self.values),
            bytes: self.file.bytes.saturating_add(self.bytes),
        }
    }

    fn slice(&self, at: usize, n: usize, what: &str) -> Result<&'a [u8], MmdbError> {
        at.checked_add(n)
            .and_then(|end| self.buf.get(at..end))
            .ok_or_else(|| MmdbError::Corrupt(format!("{what} at byte {at} runs past the end of its section")))
    }

    fn byte(&self, at: usize) -> Result<u8, MmdbError> {
        Ok(self.slice(at, 1, "control byte")?[0])
    }

    fn uint_be(&self, at: usize, n: usize) -> Result<u128, MmdbError> {
        let bytes = self.slice(at, n, "number")?;
        Ok(bytes.iter().fold(0u128, |acc, &b| (acc << 8) | u128::from(b)))
    }

    /// Decodes the value at `at`; returns it and the offset just after it.
    fn decode(&mut self, at: usize, depth: u32, pointers: u32) -> Result<(MmdbValue, usize), MmdbError> {
        if depth > self.limits.max_depth {
            return Err(self.over(BudgetLimit::Depth, u64::from(self.limits.max_depth)));
        }
        let ctrl = self.byte(at)?;
        let mut pos = at + 1;
        let mut ty = ctrl >> 5;
        if ty == 1 {
            // Pointer: the value lives at `base + p`; decoding goes on after the pointer.
            if pointers >= self.limits.max_pointer_depth {
                return Err(self.over(BudgetLimit::PointerDepth, u64::from(self.limits.max_pointer_depth)));
            }
            let ss = (ctrl >> 3) & 0x3;
            let vvv = u128::from(ctrl & 0x7);
            let (p, n) = match ss {
                0 => ((vvv << 8) | self.uint_be(pos, 1)?, 1),
                1 => (((vvv << 16) | self.uint_be(pos, 2)?) + 2048, 2),
                2 => (((vvv << 24) | self.uint_be(pos, 3)?) + 526_336, 3),
                _ => (self.uint_be(pos, 4)?, 4),
            };
            let target = usize::try_from(p)
                .ok()
                .and_then(|p| self.base.checked_add(p))
                .filter(|&t| t < self.buf.len())
                .ok_or_else(|| {
                    MmdbError::Corrupt(format!("pointer at byte {at} points past the end of its section"))
                })?;
            if self.byte(target)? >> 5 == 1 {
                return Err(MmdbError::Corrupt(format!(
                    "pointer at byte {at} points to another pointer"
                )));
            }
            let (v, _) = self.decode(target, depth + 1, pointers + 1)?;
            return Ok((v, pos + n));
        }
        if ty == 0 {
            let ext = self.byte(pos)?;
            if ext == 0 || ext > 8 {
                return Err(MmdbError::Corrupt(format!("unknown extended type {ext} at byte {at}")));
            }
            ty = ext + 7;
            pos += 1;
        }
        let mut size = usize::from(ctrl & 0x1f);
        match size {
            29 => {
                size = 29 + usize::from(self.slice(pos, 1, "size")?[0]);
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
        let fixed = |want: usize, what: &str| -> Result<(), MmdbError> {
            if size == want {
                Ok(())
            } else {
                Err(MmdbError::Corrupt(format!(
                    "{what} at byte {at} has size {size}, not {want}"
                )))
            }
        };
        let at_most = |max: usize, what: &str| -> Result<(), MmdbError> {
            if size <= max {
                Ok(())
            } else {
                Err(MmdbError::Corrupt(format!(
                    "{what} at byte {at} is {size} bytes wide, over {max}"
                )))
            }
        };
        Ok(match ty {
            2 => {
                let b = self.slice(pos, size, "string")?;
                let s = std::str::from_utf8(b)
                    .map_err(|_| MmdbError::Corrupt(format!("string at byte {at} is not UTF-8")))?;
                self.charge(size)?;
                (MmdbValue::Str(s.to_string()), pos + size)
            }
            3 => {
                fixed(8, "double")?;
                let b: [u8; 8] = self
                    .slice(pos, 8, "double")?
                    .try_into()
                    .map_err(|_| corrupt("double"))?;
                self.charge(0)?;
                (MmdbValue::Double(f64::from_be_bytes(b)), pos + 8)
            }
            4 => {
                let b = self.slice(pos, size, "bytes")?;
                self.charge(size)?;
                (MmdbValue::Bytes(b.to_vec()), pos + size)
            }
            5 | 6 | 9 | 10 => {
                let (max, what) = match ty {
                    5 => (2, "uint16"),
                    6 => (4, "uint32"),
                    9 => (8, "uint64"),
                    _ => (16, "uint128"),
                };
                at_most(max, what)?;
                let u = self.uint_be(pos, size)?;
                self.charge(0)?;
                (MmdbValue::Uint(u), pos + size)
            }
            8 => {
                at_most(4, "int32")?;
                let u = self.uint_be(pos, size)? as u32;
                self.charge(0)?;
                (MmdbValue::Int(u as i32), pos + size)
            }
            7 => {
                // Each entry takes at least two bytes here (a key and a value, or pointers).
                if size > self.buf.len().saturating_sub(pos) / 2 {
                    return Err(MmdbError::Corrupt(format!(
                        "map at byte {at} claims {size} entries, more than its section can hold"
                    )));
                }
                self.charge(0)?;
                let mut m = Vec::with_capacity(size.min(64));
                for _ in 0..size {
                    let (k, next) = self.decode(pos, depth + 1, pointers)?;
                    let (v, next) = self.decode(next, depth + 1, pointers)?;
                    pos = next;
                    match k {
                        MmdbValue::Str(k) => m.push((k, v)),
                        _ => {
                            return Err(MmdbError::Corrupt(format!(
                                "map at byte {at} has a key that is not a string"
                            )));
                        }
                    }
                }
                (MmdbValue::Map(m), pos)
            }
            11 => {
                if size > self.buf.len().saturating_sub(pos) {
                    return Err(MmdbError::Corrupt(format!(
                        "array at byte {at} claims {size} items, more than its section can hold"
                    )));
                }
                self.charge(0)?;
                let mut a = Vec::with_capacity(size.min(64));
                for _ in 0..size {
                    let (v, next) = self.decode(pos, depth + 1, pointers)?;
                    pos = next;
                    a.push(v);
                }
                (MmdbValue::Array(a), pos)
            }
            14 => {
                at_most(1, "boolean")?;
                self.charge(0)?;
                (MmdbValue::Bool(size != 0), pos)
            }
            15 => {
                fixed(4, "float")?;
                let b: [u8; 4] = self.slice(pos, 4, "float")?.try_into().map_err(|_| corrupt("float"))?;
                self.charge(0)?;
                (MmdbValue::Float(f32::from_be_bytes(b)), pos + 4)
            }
            _ => return Err(MmdbError::Corrupt(format!("unknown data type {ty} at byte {at}"))),
        })
    }
}

/// Reads the metadata of a database held in `buf`: the metadata and the offset of the marker
/// (where the data section ends).
pub fn metadata(buf: &[u8]) -> Result<(Metadata, usize), MmdbError> {
    metadata_with(buf, &DecodeLimits::for_file(buf.len())).map(|(m, pos, _)| (m, pos))
}

fn metadata_with(buf: &[u8], limits: &DecodeLimits) -> Result<(Metadata, usize, DecodeSpent), MmdbError> {
    let search_from = buf.len().saturating_sub(128 * 1024);
    let pos = buf[search_from..]
        .windows(METADATA_MARKER.len())
        .rposition(|w| w == METADATA_MARKER)
        .map(|p| search_from + p)
        .ok_or(MmdbError::NoMetadata)?;
    let start = pos + METADATA_MARKER.len();
    // Metadata pointers count from the start of the metadata.
    let mut d = Decoder::new(buf, start, limits, start, DecodeSpent::default());
    let (m, _) = d.decode(start, 0, 0)?;
    let spent = d.spent();
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
        build_epoch: m
            .get("build_epoch")
            .and_then(MmdbValue::as_uint)
            .and_then(|e| u64::try_from(e).ok())
            .unwrap_or(0),
    };
    if !matches!(md.record_size, 24 | 28 | 32) {
        return Err(MmdbError::RecordSize(md.record_size));
    }
    if !matches!(md.ip_version, 4 | 6) {
        return Err(MmdbError::BadMetadata(format!("ip_version {}", md.ip_version)));
    }
    if md.node_count == 0 {
        return Err(MmdbError::BadMetadata(
            "node_count 0: the search tree has no root".into(),
        ));
    }
    Ok((md, pos, spent))
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
    /// Where the data section ends (the metadata marker).
    data_end: usize,
    limits: DecodeLimits,
    spent: Cell<DecodeSpent>,
}

impl<'a> Database<'a> {
    /// Opens a database with the default [`DecodeLimits`] for its size.
    pub fn open(buf: &'a [u8]) -> Result<Database<'a>, MmdbError> {
        Database::open_with(buf, DecodeLimits::for_file(buf.len()))
    }

    /// Opens a database with explicit decoding limits.
    pub fn open_with(buf: &'a [u8], limits: DecodeLimits) -> Result<Database<'a>, MmdbError> {
        let (metadata, marker_pos, spent) = metadata_with(buf, &limits)?;
        // At most 2^32 nodes of at most 8 bytes: no overflow in 64-bit usize.
        let tree_size = metadata.node_count as usize * usize::from(metadata.record_size) / 4;
        if tree_size + SEPARATOR > marker_pos {
            return Err(MmdbError::Corrupt(format!(
                "search tree of {} nodes ({tree_size} bytes) and separator do not fit before the metadata at byte {marker_pos}",
                metadata.node_count
            )));
        }
        Ok(Database {
            buf,
            metadata,
            tree_size,
            data_end: marker_pos,
            limits,
            spent: Cell::new(spent),
        })
    }

    /// Bits per address in the tree (32 or 128).
    pub fn bits(&self) -> u32 {
        if self.metadata.ip_version == 6 { 128 } else { 32 }
    }

    /// What decoding has spent so far (metadata and every record decoded).
    pub fn spent(&self) -> DecodeSpent {
        self.spent.get()
    }

    fn read_node(&self, node: u32) -> Result<[u32; 2], MmdbError> {
        let rs = usize::from(self.metadata.record_size);
        let off = node as usize * rs / 4;
        let b = self.buf[..self.tree_size]
            .get(off..off + rs / 4)
            .ok_or_else(|| MmdbError::Corrupt(format!("search tree node {node} is past the end of the tree")))?;
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

    /// The file offset of the data record a search-tree record (`> node_count`) points at.
    fn data_offset(&self, node: u32, record: u32) -> Result<usize, MmdbError> {
        let n = self.metadata.node_count;
        let past = (record - n) as usize;
        if past < SEPARATOR {
            return Err(MmdbError::RecordInSeparator {
                node,
                record,
                node_count: n,
            });
        }
        let off = self.tree_size + past;
        if off >= self.data_end {
            return Err(MmdbError::Corrupt(format!(
                "search tree node {node} has record {record}, which points to byte {off}, past the data section (ends at {})",
                self.data_end
            )));
        }
        Ok(off)
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
                    let data_offset = self.data_offset(node, rec)?;
                    stack.push(Item::Leaf(TreeLeaf {
                        start: child_prefix,
                        prefix_len: child_depth as u8,
                        data_offset,
                    }));
                }
            }
        }
        Ok(())
    }

    /// Decodes the data record at an offset given by [`Database::walk`], within the decoding
    /// budget (what it spends counts against the file's total).
    pub fn decode(&self, data_offset: usize) -> Result<MmdbValue, MmdbError> {
        let base = self.tree_size + SEPARATOR;
        if data_offset < base || data_offset >= self.data_end {
            return Err(MmdbError::Corrupt(format!(
                "data offset {data_offset} is outside the data section (bytes {base} to {})",
                self.data_end
            )));
        }
        let mut d = Decoder::new(
            &self.buf[..self.data_end],
            base,
            &self.limits,
            data_offset,
            self.spent.get(),
        );
        let result = d.decode(data_offset, 0, 0);
        self.spent.set(d.spent());
        result.map(|(v, _)| v)
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

    // Hostile files, built byte by byte. Each must be refused with an error that names the
    // problem, after a bounded amount of work (checked through `Database::spent`).

    /// A record-size-32 file: `nodes` as the search tree, `data` as the data section.
    fn hostile(ip_version: u16, nodes: &[[u32; 2]], data: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        for pair in nodes {
            for r in pair {
                f.extend_from_slice(&r.to_be_bytes());
            }
        }
        f.extend_from_slice(&[0u8; 16]);
        f.extend_from_slice(data);
        f.extend_from_slice(METADATA_MARKER);
        let meta = MmdbValue::Map(vec![
            ("ip_version".into(), MmdbValue::Uint16(ip_version)),
            ("record_size".into(), MmdbValue::Uint16(32)),
            ("node_count".into(), MmdbValue::Uint32(nodes.len() as u32)),
        ]);
        encode(&mut f, &meta);
        f
    }

    fn key(out: &mut Vec<u8>, k: &str) {
        control(out, 2, k.len());
        out.extend_from_slice(k.as_bytes());
    }

    /// A 5-byte pointer (size class 3: a plain 32-bit offset).
    fn pointer(out: &mut Vec<u8>, to: usize) {
        out.push(0x20 | (3 << 3));
        out.extend_from_slice(&(to as u32).to_be_bytes());
    }

    /// `levels` maps of `fanout` entries, each entry pointing at the map below: one record
    /// that expands to fanout^levels values from a few hundred bytes. Returns the data section
    /// and the offset of the top map.
    fn pointer_bomb(levels: usize, fanout: usize) -> (Vec<u8>, usize) {
        let mut data = Vec::new();
        let mut below = data.len();
        key(&mut data, "leaf");
        for _ in 0..levels {
            let here = data.len();
            control(&mut data, 7, fanout);
            for i in 0..fanout {
                key(&mut data, &format!("{i:x}"));
                pointer(&mut data, below);
            }
            below = here;
        }
        (data, below)
    }

    /// A one-node IPv4 tree whose two halves point at data offset `off`.
    fn both_halves(off: usize) -> [u32; 2] {
        let rec = 1 + 16 + off as u32;
        [rec, rec]
    }

    fn budget_limit(e: &MmdbError) -> Option<BudgetLimit> {
        match e {
            MmdbError::Budget { limit, .. } => Some(*limit),
            _ => None,
        }
    }

    #[test]
    fn a_pointer_bomb_in_a_record_is_refused_by_the_per_record_budget() {
        // 6 levels of 16 pointers: 16^6 = 16.7 million values (about 500 MB decoded) from a
        // data section of a few hundred bytes.
        let (data, top) = pointer_bomb(6, 16);
        let file = hostile(4, &[both_halves(top)], &data);
        assert!(file.len() < 1024, "{} bytes", file.len());
        let db = Database::open(&file).unwrap();
        let mut leaves = Vec::new();
        db.walk(|l| leaves.push(l)).unwrap();
        let e = db.decode(leaves[0].data_offset).unwrap_err();
        assert_eq!(budget_limit(&e), Some(BudgetLimit::ValuesPerRecord), "{e}");
        assert!(
            e.to_string().contains("more than 65536 values decoded for one record"),
            "{e}"
        );
        assert!(db.spent().values <= 65_536 + 64, "{:?}", db.spent());
        // The same file through enrichment is refused with the same error.
        let e = crate::enrich::PrefixTable::from_bytes(&file).unwrap_err();
        assert_eq!(budget_limit(&e), Some(BudgetLimit::ValuesPerRecord), "{e}");
    }

    #[test]
    fn bytes_per_record_bound_long_strings_reached_many_times() {
        // A 60 KB string referenced from a map of 100 pointers: 6 MB from 60 KB.
        let mut data = Vec::new();
        control(&mut data, 2, 60_000);
        data.extend(std::iter::repeat_n(b'x', 60_000));
        let top = data.len();
        control(&mut data, 7, 100);
        for i in 0..100 {
            key(&mut data, &format!("{i}"));
            pointer(&mut data, 0);
        }
        let file = hostile(4, &[both_halves(top)], &data);
        let db = Database::open(&file).unwrap();
        let e = db.decode(db.tree_size + 16 + top).unwrap_err();
        assert_eq!(budget_limit(&e), Some(BudgetLimit::BytesPerRecord), "{e}");
    }

    #[test]
    fn many_records_each_under_the_record_budget_are_refused_by_the_file_budget() {
        // One shared value of 55,861 values (3 levels of 30 pointers), under the per-record
        // budget of 65,536.
        let (mut data, shared) = pointer_bomb(3, 30);
        // 32 small records, each a map pointing at the shared one, one per /5 of IPv4.
        let mut offsets = Vec::new();
        for i in 0..32 {
            offsets.push(data.len());
            control(&mut data, 7, 1);
            key(&mut data, &format!("r{i}"));
            pointer(&mut data, shared);
        }
        // A full tree of depth 5: 31 nodes, leaves at depth 5.
        let n = 31u32;
        let mut nodes = Vec::new();
        for i in 0..15u32 {
            nodes.push([2 * i + 1, 2 * i + 2]);
        }
        for i in 0..16usize {
            let rec = |o: usize| n + 16 + o as u32;
            nodes.push([rec(offsets[2 * i]), rec(offsets[2 * i + 1])]);
        }
        let file = hostile(4, &nodes, &data);
        let limits = DecodeLimits::for_file(file.len());
        assert!(file.len() < 4096, "{} bytes", file.len());
        let e = crate::enrich::PrefixTable::from_bytes(&file).unwrap_err();
        // At 32 bytes and more per value, the two file limits are reached at about the same
        // point; whichever comes first names itself.
        assert!(
            matches!(
                budget_limit(&e),
                Some(BudgetLimit::ValuesPerFile | BudgetLimit::BytesPerFile)
            ),
            "{e}"
        );
        assert!(e.to_string().contains("from the whole file"), "{e}");
        // Every record alone is within the per-record budget.
        let db = Database::open(&file).unwrap();
        let one = db.decode(db.tree_size + 16 + offsets[0]).unwrap();
        assert!(matches!(one, MmdbValue::Map(_)));
        assert!(db.spent().values < limits.max_values_per_record);
    }

    #[test]
    fn pointers_nested_too_deep_are_refused() {
        // Ten maps, each holding a pointer to the one before: fine for the value budget, over
        // the pointer depth.
        let (data, top) = pointer_bomb(10, 1);
        let file = hostile(4, &[both_halves(top)], &data);
        let db = Database::open(&file).unwrap();
        let e = db.decode(db.tree_size + 16 + top).unwrap_err();
        assert_eq!(budget_limit(&e), Some(BudgetLimit::PointerDepth), "{e}");
        assert!(
            e.to_string()
                .contains("more than 8 pointers followed inside one another"),
            "{e}"
        );
        // Eight levels are fine.
        let (data, top) = pointer_bomb(8, 1);
        let file = hostile(4, &[both_halves(top)], &data);
        let db = Database::open(&file).unwrap();
        db.decode(db.tree_size + 16 + top).unwrap();
    }

    #[test]
    fn nesting_too_deep_is_refused() {
        // 40 arrays, each holding the next.
        let mut data = Vec::new();
        for _ in 0..40 {
            control(&mut data, 11, 1);
        }
        control(&mut data, 14, 1);
        let file = hostile(4, &[both_halves(0)], &data);
        let db = Database::open(&file).unwrap();
        let e = db.decode(db.tree_size + 16).unwrap_err();
        assert_eq!(budget_limit(&e), Some(BudgetLimit::Depth), "{e}");
    }

    #[test]
    fn a_pointer_bomb_in_the_metadata_is_refused() {
        // The metadata map holds the usual keys plus a key whose value re-expands a map of 16
        // pointers to a map of 16 pointers... Pointers in the metadata count from its start.
        let mut meta = Vec::new();
        control(&mut meta, 7, 4);
        key(&mut meta, "ip_version");
        encode(&mut meta, &MmdbValue::Uint16(4));
        key(&mut meta, "node_count");
        encode(&mut meta, &MmdbValue::Uint32(1));
        key(&mut meta, "record_size");
        encode(&mut meta, &MmdbValue::Uint16(32));
        key(&mut meta, "bomb");
        // The bomb's levels come right after; pointers are relative to the metadata start.
        let (bomb, top) = pointer_bomb(6, 16);
        let base = meta.len() + 5; // after the pointer written next
        pointer(&mut meta, base + top);
        // pointer_bomb's own pointers count from its start; rebuild them relative to `base`.
        let mut shifted = Vec::new();
        let mut below = 0usize;
        key(&mut shifted, "leaf");
        for _ in 0..6 {
            let here = shifted.len();
            control(&mut shifted, 7, 16);
            for i in 0..16 {
                key(&mut shifted, &format!("{i:x}"));
                pointer(&mut shifted, base + below);
            }
            below = here;
        }
        assert_eq!(shifted.len(), bomb.len());
        meta.extend_from_slice(&shifted);
        let mut file = Vec::new();
        file.extend_from_slice(&(1u32 + 16).to_be_bytes());
        file.extend_from_slice(&1u32.to_be_bytes());
        file.extend_from_slice(&[0u8; 16]);
        file.push(0xe0); // an empty map as the only data record
        file.extend_from_slice(METADATA_MARKER);
        file.extend_from_slice(&meta);
        let e = Database::open(&file).err().expect("refused");
        assert_eq!(budget_limit(&e), Some(BudgetLimit::ValuesPerRecord), "{e}");
    }

    #[test]
    fn a_record_pointing_into_the_separator_is_refused() {
        for past in [1u32, 8, 15] {
            let file = hostile(4, &[[1 + past, 1]], &[0xe0]);
            let db = Database::open(&file).unwrap();
            let e = db.walk(|_| {}).unwrap_err();
            assert!(
                matches!(e, MmdbError::RecordInSeparator { node: 0, record, node_count: 1 } if record == 1 + past),
                "{e:?}"
            );
            assert!(e.to_string().contains("points into the 16-byte separator"), "{e}");
        }
        // node_count + 16 is the first data byte, and fine.
        let file = hostile(4, &[[17, 1]], &[0xe0]);
        let db = Database::open(&file).unwrap();
        let mut leaves = Vec::new();
        db.walk(|l| leaves.push(l)).unwrap();
        assert_eq!(db.decode(leaves[0].data_offset).unwrap(), MmdbValue::Map(vec![]));
    }

    #[test]
    fn offsets_outside_their_section_are_refused() {
        // A record past the data section (into the metadata).
        let file = hostile(4, &[[1 + 16 + 5, 1]], &[0xe0]);
        let db = Database::open(&file).unwrap();
        let e = db.walk(|_| {}).unwrap_err();
        assert!(e.to_string().contains("past the data section"), "{e}");
        // A pointer into the metadata: the data section ends at the marker.
        let mut data = Vec::new();
        control(&mut data, 7, 1);
        key(&mut data, "k");
        data.extend_from_slice(&[0x20, 8]); // pointer to data offset 8 = the marker
        let file = hostile(4, &[both_halves(0)], &data);
        let db = Database::open(&file).unwrap();
        let e = db.decode(db.tree_size + 16).unwrap_err();
        assert!(e.to_string().contains("points past the end of its section"), "{e}");
        // Decoding an offset that is not in the data section.
        assert!(
            db.decode(0)
                .unwrap_err()
                .to_string()
                .contains("outside the data section")
        );
        assert!(db.decode(usize::MAX).is_err());
        // A map or array claiming more entries than bytes remain.
        for ty in [7u8, 11] {
            let mut data = Vec::new();
            control(&mut data, ty, 1_000_000);
            let file = hostile(4, &[both_halves(0)], &data);
            let db = Database::open(&file).unwrap();
            let e = db.decode(db.tree_size + 16).unwrap_err();
            assert!(e.to_string().contains("more than its section can hold"), "{e}");
        }
        // A string longer than what is left.
        let mut data = Vec::new();
        control(&mut data, 2, 70_000);
        let file = hostile(4, &[both_halves(0)], &data);
        let db = Database::open(&file).unwrap();
        assert!(
            db.decode(db.tree_size + 16)
                .unwrap_err()
                .to_string()
                .contains("runs past the end")
        );
    }

    #[test]
    fn malformed_numbers_and_headers_are_refused() {
        let cases: &[(&[u8], &str)] = &[
            (&[0xa3, 1, 2, 3], "uint16 at byte"),                 // uint16 of 3 bytes
            (&[0x09, 0x02, 1, 2, 3, 4, 5, 6, 7, 8, 9], "uint64"), // uint64 of 9 bytes
            (&[0x64, 0, 0, 0, 0], "double at byte"),              // double of size 4
            (&[0x02, 0x07, 1, 2, 3, 4], "boolean"),               // boolean of size 2
            (&[0x00, 0x09], "unknown extended type 9"),
            (&[0x00, 0x05], "unknown data type 12"), // data cache container
            (&[0x00, 0x00], "unknown extended type 0"),
        ];
        for (data, want) in cases {
            let file = hostile(4, &[both_halves(0)], data);
            let db = Database::open(&file).unwrap();
            let e = db.decode(db.tree_size + 16).unwrap_err();
            assert!(e.to_string().contains(want), "{data:?}: {e}");
        }
        // No root node.
        let file = hostile(4, &[], &[0xe0]);
        assert!(matches!(Database::open(&file), Err(MmdbError::BadMetadata(m)) if m.contains("node_count 0")));
        // A tree larger than the file.
        let mut file = hostile(4, &[[1, 1]], &[]);
        let at = file.len() - 4; // the Uint32 node_count value, last in the metadata
        file[at..at + 4].copy_from_slice(&1_000_000u32.to_be_bytes());
        let e = Database::open(&file).err().expect("refused");
        assert!(e.to_string().contains("do not fit before the metadata"), "{e}");
    }
}
