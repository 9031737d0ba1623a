//! The evidence package (docs/evidence.md, "Evidence package"): one ZIP file with a canonical
//! layout holding a request's evidence files, its history, the files' custody, signed receipts
//! and Merkle inclusion proofs, a cover page and a CASE/UCO document, all listed with their
//! SHA-256 in a manifest that the node signs.
//!
//! This module is the format: the ZIP records as written (a pure function of name, CRC, size
//! and offset, so the reader compares every byte of every record with what the writer would
//! have written), and the offline verifier ([`verify_package`]), which needs no database and no
//! node: only the package and the fingerprints of the keys the reader trusts. The use case
//! that writes a package is in `export`.
//!
//! Hostile input: the verifier reads the package once, front to back, in bounded memory
//! (the JSON entries at most [`MAX_JSON_ENTRY`] bytes each, evidence files streamed through
//! their hashes), accepts only stored entries (no decompression, so no zip bomb), at most
//! [`MAX_FILES`] files with names from a fixed pattern (no path can leave the package), and
//! stops at the first record that is not the canonical one.

mod case;
pub mod case_file;
mod export;

pub use export::PackageExport;

use liaison_wire::{LedgerEntry, ProofBundle, PublicKeyBytes, SignatureBytes, verify_bundle};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

/// The `format` of the manifest and of its signature.
pub const FORMAT: &str = "liaison-evidence-package/1";
/// What the manifest signature signs: this, then the bytes of `manifest.json`.
pub const SIGNING_CONTEXT: &[u8] = b"liaison-evidence-package/1 manifest\x1f";
/// The entries before the files, in this order.
pub const HEAD: [&str; 7] = [
    "cover.txt",
    "request.json",
    "history.json",
    "files.json",
    "custody.json",
    "ledger.json",
    "case.jsonld",
];
pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.sig";
/// Most evidence files in one package (`files/0001-…` to `files/9999-…`).
pub const MAX_FILES: usize = 9999;
/// Longest safe file-name part of a file entry (after `files/NNNN-`).
pub const MAX_NAME: usize = 120;
/// Largest JSON or text entry the verifier reads into memory.
pub const MAX_JSON_ENTRY: u64 = 64 << 20;

// ---------------------------------------------------------------------------------------
// ZIP records (APPNOTE 6.3.x, ZIP64 always, stored entries, fixed times)
// ---------------------------------------------------------------------------------------

const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const EOCD64_SIG: u32 = 0x0606_4b50;
const LOCATOR_SIG: u32 = 0x0706_4b50;
const EOCD_SIG: u32 = 0x0605_4b50;
/// "Version needed to extract" and "made by": 4.5 (ZIP64), MS-DOS attributes.
const VERSION: u16 = 45;
/// 00:00:00 in MS-DOS time.
const DOS_TIME: u16 = 0;
/// 1980-01-01 in MS-DOS date.
const DOS_DATE: u16 = 0x0021;
const LOCAL_FIXED: usize = 30;
const LOCAL_EXTRA: usize = 20;
const CENTRAL_FIXED: usize = 46;
const CENTRAL_EXTRA: usize = 28;
/// EOCD64 (56) + locator (20) + EOCD (22).
const END_LEN: usize = 98;

/// The local file header of an entry: stored, no flags, fixed time, sizes in the ZIP64 extra
/// field.
pub fn local_header(name: &str, crc: u32, size: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(LOCAL_FIXED + name.len() + LOCAL_EXTRA);
    b.extend_from_slice(&LOCAL_SIG.to_le_bytes());
    b.extend_from_slice(&VERSION.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes()); // flags
    b.extend_from_slice(&0u16.to_le_bytes()); // stored
    b.extend_from_slice(&DOS_TIME.to_le_bytes());
    b.extend_from_slice(&DOS_DATE.to_le_bytes());
    b.extend_from_slice(&crc.to_le_bytes());
    b.extend_from_slice(&u32::MAX.to_le_bytes()); // compressed size: in the extra field
    b.extend_from_slice(&u32::MAX.to_le_bytes()); // uncompressed size: in the extra field
    b.extend_from_slice(&(name.len() as u16).to_le_bytes());
    b.extend_from_slice(&(LOCAL_EXTRA as u16).to_le_bytes());
    b.extend_from_slice(name.as_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // ZIP64 extended information
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(&size.to_le_bytes());
    b.extend_from_slice(&size.to_le_bytes());
    b
}

/// The central directory header of an entry whose local header is at `offset`.
pub fn central_header(name: &str, crc: u32, size: u64, offset: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(CENTRAL_FIXED + name.len() + CENTRAL_EXTRA);
    b.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
    b.extend_from_slice(&VERSION.to_le_bytes()); // made by
    b.extend_from_slice(&VERSION.to_le_bytes()); // needed
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&DOS_TIME.to_le_bytes());
    b.extend_from_slice(&DOS_DATE.to_le_bytes());
    b.extend_from_slice(&crc.to_le_bytes());
    b.extend_from_slice(&u32::MAX.to_le_bytes());
    b.extend_from_slice(&u32::MAX.to_le_bytes());
    b.extend_from_slice(&(name.len() as u16).to_le_bytes());
    b.extend_from_slice(&(CENTRAL_EXTRA as u16).to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes()); // comment length
    b.extend_from_slice(&0u16.to_le_bytes()); // disk number start
    b.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
    b.extend_from_slice(&0u32.to_le_bytes()); // external attributes
    b.extend_from_slice(&u32::MAX.to_le_bytes()); // offset: in the extra field
    b.extend_from_slice(name.as_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&24u16.to_le_bytes());
    b.extend_from_slice(&size.to_le_bytes());
    b.extend_from_slice(&size.to_le_bytes());
    b.extend_from_slice(&offset.to_le_bytes());
    b
}

/// The ZIP64 end of central directory record, its locator and the end of central directory
/// record (every field that ZIP64 carries set to its "see ZIP64" value; no comment).
pub fn end_records(count: u64, cd_offset: u64, cd_size: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(END_LEN);
    b.extend_from_slice(&EOCD64_SIG.to_le_bytes());
    b.extend_from_slice(&44u64.to_le_bytes());
    b.extend_from_slice(&VERSION.to_le_bytes());
    b.extend_from_slice(&VERSION.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&count.to_le_bytes());
    b.extend_from_slice(&count.to_le_bytes());
    b.extend_from_slice(&cd_size.to_le_bytes());
    b.extend_from_slice(&cd_offset.to_le_bytes());
    b.extend_from_slice(&LOCATOR_SIG.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&(cd_offset + cd_size).to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&EOCD_SIG.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&u16::MAX.to_le_bytes());
    b.extend_from_slice(&u16::MAX.to_le_bytes());
    b.extend_from_slice(&u32::MAX.to_le_bytes());
    b.extend_from_slice(&u32::MAX.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b
}

/// The entry name of the `index`-th (from 1) evidence file called `file_name`: `files/NNNN-`
/// and the name with every character outside `A-Za-z0-9._-` replaced by `_`, at most
/// [`MAX_NAME`] characters, never starting with a dot.
pub fn file_entry_name(index: usize, file_name: &str) -> String {
    entry_name(FILES, index, file_name)
}

/// The prefix of an evidence package's numbered entries.
pub const FILES: &str = "files/";

/// The `index`-th (from 1) numbered entry under `prefix` (`files/`, `packages/`) called
/// `name`, made safe as [`file_entry_name`] says.
pub fn entry_name(prefix: &str, index: usize, name: &str) -> String {
    let mut safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_NAME)
        .collect();
    if safe.is_empty() || safe.starts_with('.') {
        safe.insert(0, '_');
        safe.truncate(MAX_NAME);
    }
    format!("{prefix}{index:04}-{safe}")
}

/// Whether `name` is the canonical name of the `index`-th file entry (any safe name part).
#[cfg(test)]
fn is_file_entry(name: &str, index: usize) -> bool {
    is_entry(FILES, name, index)
}

/// Whether `name` is the canonical name of the `index`-th numbered entry under `prefix`.
fn is_entry(prefix: &str, name: &str, index: usize) -> bool {
    let prefix = format!("{prefix}{index:04}-");
    let Some(rest) = name.strip_prefix(&prefix) else {
        return false;
    };
    !rest.is_empty()
        && rest.len() <= MAX_NAME
        && !rest.starts_with('.')
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// The entries of a package format (the evidence package, the case file): its head entries in
/// order, the prefix of its numbered entries, and, optionally, a reader of each numbered
/// entry's bytes as they stream past (the case file verifies the packages it holds so).
struct Layout<'a> {
    pub head: &'a [&'a str],
    pub numbered: &'a str,
    #[allow(clippy::type_complexity)]
    pub inspect: Option<&'a mut dyn FnMut(&str, &mut dyn Read)>,
}

impl Layout<'_> {
    /// The evidence package's layout.
    fn package() -> Layout<'static> {
        Layout {
            head: &HEAD,
            numbered: FILES,
            inspect: None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Manifest and signature
// ---------------------------------------------------------------------------------------

/// `manifest.json` (its bytes are the JCS form of this object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub node_id: String,
    pub request_id: String,
    pub exported_at: String,
    pub exported_by: String,
    pub signing_key: SigningKey,
    /// Every entry before the manifest, in package order.
    pub entries: Vec<ManifestEntry>,
}

/// The key that signs the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKey {
    pub key_id: String,
    /// Ed25519 public key, lower-case hex.
    pub public_key: String,
    /// SHA-256 of the 32 public key bytes, lower-case hex: what `--trust` names.
    pub fingerprint: String,
}

/// One entry as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// `manifest.sig`: an Ed25519 signature over [`SIGNING_CONTEXT`] followed by the manifest's
/// bytes (JCS form of this object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestSignature {
    pub format: String,
    pub key_id: String,
    pub public_key: String,
    pub signature: String,
}

/// The fingerprint of an Ed25519 public key: SHA-256 of its 32 bytes, lower-case hex (as the
/// letter and the cover page print it, in groups of four).
pub fn fingerprint(public_key: &PublicKeyBytes) -> String {
    hex::encode(Sha256::digest(public_key.0))
}

/// A fingerprint as a person may type it (groups separated by spaces or colons, any case),
/// normalised; `None` if it is not 64 hex digits.
pub fn normalise_fingerprint(s: &str) -> Option<String> {
    let f: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    (f.len() == 64 && f.bytes().all(|b| b.is_ascii_hexdigit())).then_some(f)
}

/// `abcd ef01 …`: a fingerprint in groups of four for people to compare.
pub fn grouped(fp: &str) -> String {
    fp.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `files.json`: the exported files' records, in entry order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilesDoc {
    pub files: Vec<FileRecord>,
    /// Files of the request whose content was deleted under retention: listed, not exported.
    #[serde(default)]
    pub deleted: Vec<serde_json::Value>,
}

/// One exported file: its entry and its record on the node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    pub path: String,
    pub id: String,
    pub sha256: String,
    pub size: u64,
    pub record: serde_json::Value,
}

/// `custody.json`: each exported file's audit entries, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustodyDoc {
    pub files: Vec<FileCustody>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileCustody {
    pub file: String,
    pub entries: Vec<CustodyEntry>,
}

/// An audit entry with what its chain hash covers (docs/evidence.md: the hash is
/// `SHA-256(prev_hash 0x1f seq 0x1f at_ms 0x1f actor 0x1f action 0x1f subject 0x1f detail)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustodyEntry {
    pub seq: i64,
    pub at: String,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The audit log's chain hash of an entry (the store's `chain_hash`, written down here so the
/// offline verifier has no store).
pub fn audit_chain_hash(e: &CustodyEntry) -> String {
    let mut h = Sha256::new();
    let seq = e.seq.to_string();
    let at = e.at_ms.to_string();
    for (i, part) in [
        e.prev_hash.as_str(),
        &seq,
        &at,
        &e.actor,
        &e.action,
        &e.subject,
        &e.detail,
    ]
    .iter()
    .enumerate()
    {
        if i > 0 {
            h.update([0x1f]);
        }
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// `ledger.json`: a proof bundle (docs/federation.md §6) for every ledger leaf about the
/// request, all against one signed tree head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerDoc {
    pub node_id: String,
    pub proofs: Vec<ProofBundle>,
}

// ---------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------

/// Something in a package that does not match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The entry (or `package` for the ZIP structure).
    pub entry: String,
    pub field: String,
    pub expected: String,
    pub got: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: expected {}, got {}",
            self.entry, self.field, self.expected, self.got
        )
    }
}

fn problem(entry: &str, field: &str, expected: impl Into<String>, got: impl Into<String>) -> Problem {
    Problem {
        entry: entry.to_string(),
        field: field.to_string(),
        expected: expected.into(),
        got: got.into(),
    }
}

/// A key that verified a signature in the package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyUse {
    pub node_id: String,
    pub key_id: String,
    pub fingerprint: String,
    pub trusted: bool,
}

/// What [`verify_package`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub valid: bool,
    pub format: String,
    pub node_id: String,
    pub request_id: String,
    pub exported_at: String,
    pub exported_by: String,
    pub entries: usize,
    pub files: usize,
    pub bytes: u64,
    pub signer: Option<KeyUse>,
    pub proofs: usize,
    pub receipts: usize,
    pub custody_entries: usize,
    pub keys_used: Vec<KeyUse>,
    /// Keys of other nodes that verified receipts or envelopes but are not among the trusted
    /// fingerprints: the proofs hold, but only as claims of those keys.
    pub warnings: Vec<String>,
    /// Everything that does not match; empty when the package verifies.
    pub problems: Vec<Problem>,
}

/// An entry as read: where it is, its size, CRC and digest, and (for the JSON and text
/// entries) its bytes.
struct ReadEntry {
    name: String,
    offset: u64,
    size: u64,
    crc: u32,
    sha256: String,
    bytes: Option<Vec<u8>>,
}

/// Reads and counts.
struct Counting<R> {
    inner: R,
    pos: u64,
}

impl<R: Read> Counting<R> {
    /// Fills `buf` completely; `Ok(false)` at a clean end of input before the first byte.
    fn fill(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            let k = match self.inner.read(&mut buf[n..]) {
                Ok(k) => k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if k == 0 {
                break;
            }
            n += k;
        }
        self.pos += n as u64;
        Ok(n)
    }
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}
fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(a)
}

/// The first byte where `got` differs from `expected`, named for the report.
fn first_difference(expected: &[u8], got: &[u8]) -> String {
    let i = expected
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(got.len()));
    format!(
        "byte {i} of the record (expected {}, got {})",
        expected
            .get(i)
            .map(|b| format!("{b:#04x}"))
            .unwrap_or_else(|| "end".into()),
        got.get(i).map(|b| format!("{b:#04x}")).unwrap_or_else(|| "end".into())
    )
}

/// The name expected at position `i` (0-based) given what came before, for the messages.
fn expected_name(layout: &Layout<'_>, i: usize, seen_manifest: bool) -> String {
    if let Some(h) = layout.head.get(i) {
        h.to_string()
    } else if seen_manifest {
        SIGNATURE.to_string()
    } else {
        format!("{}{:04}-NAME or {MANIFEST}", layout.numbered, i - layout.head.len() + 1)
    }
}

/// The bytes of one entry as they are read: counted, hashed (SHA-256 and CRC-32), kept when
/// asked, and never more than the entry's size.
struct EntryReader<'r, R> {
    r: &'r mut Counting<R>,
    left: u64,
    sha: Sha256,
    crc: crc32fast::Hasher,
    kept: Option<Vec<u8>>,
    /// The input ended before the entry did.
    short: bool,
}

impl<R: Read> Read for EntryReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = (self.left.min(buf.len() as u64)) as usize;
        let n = loop {
            match self.r.inner.read(&mut buf[..want]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            self.short = true;
            return Ok(0);
        }
        self.r.pos += n as u64;
        self.sha.update(&buf[..n]);
        self.crc.update(&buf[..n]);
        if let Some(k) = self.kept.as_mut() {
            k.extend_from_slice(&buf[..n]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Reads the ZIP structure of an evidence package (see [`read_layout_with`]).
fn read_layout<R: Read>(r: R) -> Result<(Vec<ReadEntry>, u64), Problem> {
    read_layout_with(r, &mut Layout::package())
}

/// Reads the ZIP structure, checking it is exactly the canonical one of `layout`, and digests
/// every entry. `Err`: the first layout problem (reading stops there).
fn read_layout_with<R: Read>(r: R, layout: &mut Layout<'_>) -> Result<(Vec<ReadEntry>, u64), Problem> {
    let mut r = Counting { inner: r, pos: 0 };
    let io = |e: std::io::Error| problem("package", "read", "readable input", e.to_string());
    let mut entries: Vec<ReadEntry> = Vec::new();
    let mut seen_manifest = false;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let offset = r.pos;
        let mut sig = [0u8; 4];
        let n = r.fill(&mut sig).map_err(io)?;
        if n < 4 {
            return Err(problem(
                "package",
                "end of central directory",
                "present",
                "end of input",
            ));
        }
        let sig = u32::from_le_bytes(sig);
        let i = entries.len();
        if sig == CENTRAL_SIG {
            break;
        }
        if sig != LOCAL_SIG {
            return Err(problem(
                &format!("entry {}", i + 1),
                "signature",
                format!("a local file header ({LOCAL_SIG:#010x}) or the central directory"),
                format!("{sig:#010x} at offset {offset}"),
            ));
        }
        if i >= layout.head.len() + MAX_FILES + 2 || (seen_manifest && i > 0 && entries[i - 1].name == SIGNATURE) {
            return Err(problem(
                "package",
                "entries",
                format!("nothing after {SIGNATURE} but the central directory"),
                format!("another local file header at offset {offset}"),
            ));
        }
        let mut fixed = [0u8; LOCAL_FIXED];
        fixed[..4].copy_from_slice(&LOCAL_SIG.to_le_bytes());
        if r.fill(&mut fixed[4..]).map_err(io)? < LOCAL_FIXED - 4 {
            return Err(problem(
                &format!("entry {}", i + 1),
                "local header",
                "30 bytes",
                "end of input",
            ));
        }
        let name_len = u16_at(&fixed, 26) as usize;
        let extra_len = u16_at(&fixed, 28) as usize;
        let longest = layout.numbered.len() + 5 + MAX_NAME;
        if name_len == 0 || name_len > longest {
            return Err(problem(
                &format!("entry {}", i + 1),
                "name length",
                format!("1 to {longest}"),
                name_len.to_string(),
            ));
        }
        let mut name = vec![0u8; name_len];
        if r.fill(&mut name).map_err(io)? < name_len {
            return Err(problem(
                &format!("entry {}", i + 1),
                "name",
                "the entry name",
                "end of input",
            ));
        }
        let name = String::from_utf8_lossy(&name).into_owned();
        let want = expected_name(layout, i, seen_manifest);
        let numbered = i >= layout.head.len() && !seen_manifest && name != MANIFEST;
        let name_ok = if let Some(h) = layout.head.get(i) {
            name == *h
        } else if seen_manifest {
            name == SIGNATURE
        } else {
            name == MANIFEST || is_entry(layout.numbered, &name, i - layout.head.len() + 1)
        };
        if !name_ok {
            return Err(problem(
                &format!("entry {}", i + 1),
                "name",
                want,
                format!("'{}'", name.escape_debug()),
            ));
        }
        if name == MANIFEST {
            seen_manifest = true;
        }
        if extra_len != LOCAL_EXTRA {
            return Err(problem(
                &name,
                "extra field length",
                LOCAL_EXTRA.to_string(),
                extra_len.to_string(),
            ));
        }
        let mut extra = [0u8; LOCAL_EXTRA];
        if r.fill(&mut extra).map_err(io)? < LOCAL_EXTRA {
            return Err(problem(&name, "extra field", "20 bytes", "end of input"));
        }
        let crc = u32_at(&fixed, 14);
        let size = u64_at(&extra, 4);
        let mut got = fixed.to_vec();
        got.extend_from_slice(name.as_bytes());
        got.extend_from_slice(&extra);
        let canonical = local_header(&name, crc, size);
        if got != canonical {
            return Err(problem(
                &name,
                "local header",
                "the canonical header",
                first_difference(&canonical, &got),
            ));
        }
        let keep = layout.head.contains(&name.as_str()) || name == MANIFEST || name == SIGNATURE;
        if keep && size > MAX_JSON_ENTRY {
            return Err(problem(
                &name,
                "size",
                format!("at most {MAX_JSON_ENTRY} bytes"),
                size.to_string(),
            ));
        }
        let mut er = EntryReader {
            r: &mut r,
            left: size,
            sha: Sha256::new(),
            crc: crc32fast::Hasher::new(),
            kept: keep.then(|| Vec::with_capacity(size.min(1 << 20) as usize)),
            short: false,
        };
        if numbered && let Some(f) = layout.inspect.as_mut() {
            f(&name, &mut er);
        }
        // What the inspector left unread.
        while er.left > 0 && !er.short {
            let n = er.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
        }
        if er.left > 0 {
            return Err(problem(
                &name,
                "content",
                format!("{size} bytes"),
                format!("{} bytes (end of input)", size - er.left),
            ));
        }
        let EntryReader {
            sha,
            crc: crc_calc,
            kept,
            ..
        } = er;
        let got_crc = crc_calc.finalize();
        if got_crc != crc {
            return Err(problem(
                &name,
                "crc32",
                format!("{crc:08x} (local header)"),
                format!("{got_crc:08x}"),
            ));
        }
        entries.push(ReadEntry {
            name,
            offset,
            size,
            crc,
            sha256: hex::encode(sha.finalize()),
            bytes: kept,
        });
    }
    if entries.last().map(|e| e.name.as_str()) != Some(SIGNATURE) {
        return Err(problem(
            "package",
            "entries",
            format!("the last entry {SIGNATURE}"),
            match entries.last() {
                Some(e) => format!("central directory after '{}'", e.name),
                None => "no entry".into(),
            },
        ));
    }
    // The central directory: exactly the canonical headers of the entries read.
    let cd_offset = r.pos - 4;
    for (i, e) in entries.iter().enumerate() {
        let canonical = central_header(&e.name, e.crc, e.size, e.offset);
        let mut got = vec![0u8; canonical.len()];
        let skip = if i == 0 { 4 } else { 0 };
        got[..skip].copy_from_slice(&canonical[..skip]);
        let n = r.fill(&mut got[skip..]).map_err(io)?;
        if n < canonical.len() - skip || got != canonical {
            return Err(problem(
                &e.name,
                "central directory header",
                "the canonical header",
                if n < canonical.len() - skip {
                    "end of input".into()
                } else {
                    first_difference(&canonical, &got)
                },
            ));
        }
    }
    let cd_size = r.pos - cd_offset;
    let canonical = end_records(entries.len() as u64, cd_offset, cd_size);
    let mut got = vec![0u8; canonical.len()];
    let n = r.fill(&mut got).map_err(io)?;
    if n < canonical.len() || got != canonical {
        return Err(problem(
            "package",
            "end of central directory",
            "the canonical records (ZIP64 end, locator, end; no comment)",
            if n < canonical.len() {
                "end of input".into()
            } else {
                first_difference(&canonical, &got)
            },
        ));
    }
    let mut probe = [0u8; 1];
    if r.fill(&mut probe).map_err(io)? != 0 {
        return Err(problem(
            "package",
            "end",
            "end of input after the end records",
            "more bytes",
        ));
    }
    Ok((entries, r.pos))
}

fn json_of<T: serde::de::DeserializeOwned>(
    entries: &[ReadEntry],
    name: &str,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let bytes = entries.iter().find(|e| e.name == name)?.bytes.as_ref()?;
    match serde_json::from_slice(bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push(problem(name, "content", "valid JSON of its format", e.to_string()));
            None
        }
    }
}

/// Verifies a package read from `r` against the trusted key fingerprints `trust` (64 hex
/// digits each, as [`normalise_fingerprint`] gives): the canonical layout, every entry's size
/// and SHA-256 against the manifest, the manifest signature by a trusted key, the custody
/// entries' chain hashes, every proof bundle (envelope and receipt signatures, inclusion in
/// the signed tree head, its signature by a trusted key of the exporting node), and that the
/// files' records and the CASE document name the files' digests. Offline: no database, no
/// network.
pub fn verify_package<R: Read>(r: R, trust: &[String]) -> VerifyReport {
    let mut report = VerifyReport {
        format: FORMAT.to_string(),
        ..Default::default()
    };
    let (entries, bytes) = match read_layout(r) {
        Ok(x) => x,
        Err(p) => {
            report.problems.push(p);
            return report;
        }
    };
    report.bytes = bytes;
    report.entries = entries.len();
    let trusted: BTreeSet<&str> = trust.iter().map(String::as_str).collect();
    let problems = &mut report.problems;

    // --- The manifest: canonical JSON listing every other entry. ---
    let Some((manifest, manifest_bytes)) = read_manifest::<Manifest>(&entries, "a manifest", problems) else {
        return report;
    };
    if manifest.format != FORMAT {
        problems.push(problem(MANIFEST, "format", FORMAT, &manifest.format));
    }
    report.node_id = manifest.node_id.clone();
    report.request_id = manifest.request_id.clone();
    report.exported_at = manifest.exported_at.clone();
    report.exported_by = manifest.exported_by.clone();
    let actual = listed_entries(&entries);
    check_listing(&manifest.entries, &actual, problems);
    report.files = actual.iter().filter(|e| e.name.starts_with("files/")).count();

    // --- The signature, by a trusted key. ---
    report.signer = check_signature(
        &entries,
        &manifest_bytes,
        &manifest.signing_key,
        &manifest.node_id,
        (FORMAT, SIGNING_CONTEXT),
        &trusted,
        problems,
    );

    // --- request.json and history.json name the manifest's request. ---
    if let Some(req) = json_of::<serde_json::Value>(&entries, "request.json", problems) {
        let id = req.get("id").and_then(|v| v.as_str()).unwrap_or("");
        if id != manifest.request_id {
            problems.push(problem("request.json", "id", &manifest.request_id, id));
        }
    }
    if let Some(h) = json_of::<Vec<serde_json::Value>>(&entries, "history.json", problems) {
        for (i, ev) in h.iter().enumerate() {
            let id = ev.get("request").and_then(|v| v.as_str()).unwrap_or("");
            if id != manifest.request_id {
                problems.push(problem(
                    "history.json",
                    &format!("[{i}].request"),
                    &manifest.request_id,
                    id,
                ));
            }
        }
    }

    // --- files.json: one record per file entry, with its digest and size. ---
    let files: Option<FilesDoc> = json_of(&entries, "files.json", problems);
    let file_entries: Vec<&&ReadEntry> = actual.iter().filter(|e| e.name.starts_with("files/")).collect();
    let mut file_ids = BTreeMap::new();
    if let Some(files) = &files {
        for i in 0..files.files.len().max(file_entries.len()) {
            match (files.files.get(i), file_entries.get(i)) {
                (Some(f), Some(e)) => {
                    let field = format!("files[{i}]");
                    check_record(("files.json", &field), (&f.path, &f.sha256, f.size), e, problems);
                    file_ids.insert(f.id.clone(), f.sha256.clone());
                }
                (Some(f), None) => problems.push(problem(
                    "files.json",
                    &format!("files[{i}]"),
                    "no record (no such entry)",
                    &f.path,
                )),
                (None, Some(e)) => problems.push(problem(
                    "files.json",
                    &format!("files[{i}]"),
                    format!("a record of {}", e.name),
                    "none",
                )),
                (None, None) => {}
            }
        }
    }

    // --- custody.json: every entry's chain hash recomputed, about an exported file. ---
    if let Some(c) = json_of::<CustodyDoc>(&entries, "custody.json", problems) {
        for (i, fc) in c.files.iter().enumerate() {
            if files.is_some() && !file_ids.contains_key(&fc.file) {
                problems.push(problem(
                    "custody.json",
                    &format!("files[{i}].file"),
                    "an exported file's id",
                    &fc.file,
                ));
            }
            for (j, e) in fc.entries.iter().enumerate() {
                report.custody_entries += 1;
                let h = audit_chain_hash(e);
                if h != e.hash {
                    problems.push(problem(
                        "custody.json",
                        &format!("files[{i}].entries[{j}].hash (seq {})", e.seq),
                        h,
                        &e.hash,
                    ));
                }
                if e.subject != fc.file {
                    problems.push(problem(
                        "custody.json",
                        &format!("files[{i}].entries[{j}].subject"),
                        &fc.file,
                        &e.subject,
                    ));
                }
            }
        }
    }

    // --- ledger.json: every proof bundle verifies, its tree head by a trusted key. ---
    if let Some(l) = json_of::<LedgerDoc>(&entries, "ledger.json", problems) {
        if l.node_id != manifest.node_id {
            problems.push(problem("ledger.json", "node_id", &manifest.node_id, &l.node_id));
        }
        let mut used: BTreeMap<(String, String), KeyUse> = BTreeMap::new();
        for (i, b) in l.proofs.iter().enumerate() {
            let field = format!("proofs[{i}]");
            match verify_bundle(b) {
                Ok(rep) => {
                    report.proofs += 1;
                    if rep.receipt_verified || matches!(b.entry, LedgerEntry::Receipt { .. }) {
                        report.receipts += 1;
                    }
                    if rep.log_node.as_str() != manifest.node_id {
                        problems.push(problem(
                            "ledger.json",
                            &format!("{field}.sth.node_id"),
                            &manifest.node_id,
                            rep.log_node.as_str(),
                        ));
                    }
                    for (node, key_id, pk) in rep.keys_used {
                        let fp = fingerprint(&pk);
                        let ok = trusted.contains(fp.as_str());
                        if node.as_str() == manifest.node_id && !ok {
                            problems.push(problem(
                                "ledger.json",
                                &format!("{field}: key of {node}"),
                                "a key with a trusted fingerprint",
                                format!("key {key_id} with fingerprint {fp}"),
                            ));
                        }
                        used.insert(
                            (node.to_string(), key_id.to_string()),
                            KeyUse {
                                node_id: node.to_string(),
                                key_id: key_id.to_string(),
                                fingerprint: fp,
                                trusted: ok,
                            },
                        );
                    }
                }
                Err(e) => problems.push(problem(
                    "ledger.json",
                    &field,
                    "a proof bundle that verifies",
                    e.to_string(),
                )),
            }
        }
        for k in used.values() {
            if !k.trusted && k.node_id != manifest.node_id {
                report.warnings.push(format!(
                    "key {} of node {} (fingerprint {}) is not among the trusted fingerprints: its signatures verify, but check it out of band",
                    k.key_id, k.node_id, k.fingerprint
                ));
            }
        }
        report.keys_used = used.into_values().collect();
    }

    // --- case.jsonld: JSON-LD naming every exported file's SHA-256. ---
    if let Some(case) = json_of::<serde_json::Value>(&entries, "case.jsonld", problems) {
        let mut hashes = BTreeSet::new();
        collect_hash_values(&case, &mut hashes, 0);
        for e in &file_entries {
            if !hashes.contains(&e.sha256) {
                problems.push(problem(
                    "case.jsonld",
                    "hashValue",
                    format!("the SHA-256 of {}", e.name),
                    "not present",
                ));
            }
        }
    }
    report.valid = report.problems.is_empty();
    report
}

/// The manifest entry parsed as `T` (a format's manifest), with its bytes, checked to be JCS
/// canonical JSON. `None` (the problem listed): absent or not of the format.
fn read_manifest<T: serde::de::DeserializeOwned>(
    entries: &[ReadEntry],
    what: &str,
    problems: &mut Vec<Problem>,
) -> Option<(T, Vec<u8>)> {
    let Some(bytes) = entries
        .iter()
        .find(|e| e.name == MANIFEST)
        .and_then(|e| e.bytes.clone())
    else {
        problems.push(problem(MANIFEST, "presence", "present", "absent"));
        return None;
    };
    match serde_json::from_slice(&bytes) {
        Ok(m) => {
            check_canonical(&bytes, problems);
            Some((m, bytes))
        }
        Err(e) => {
            problems.push(problem(MANIFEST, "content", what, e.to_string()));
            None
        }
    }
}

/// Every entry but the manifest and its signature: what a manifest lists.
fn listed_entries(entries: &[ReadEntry]) -> Vec<&ReadEntry> {
    entries
        .iter()
        .filter(|e| e.name != MANIFEST && e.name != SIGNATURE)
        .collect()
}

/// Checks a document's record of entry `e` (`doc` and the record's `field`): the same path,
/// SHA-256 and size as the entry read.
fn check_record(
    (doc, field): (&str, &str),
    (path, sha256, size): (&str, &str, u64),
    e: &ReadEntry,
    problems: &mut Vec<Problem>,
) {
    if path != e.name {
        problems.push(problem(doc, &format!("{field}.path"), &e.name, path));
    }
    if sha256 != e.sha256 {
        problems.push(problem(doc, &format!("{field}.sha256"), &e.sha256, sha256));
    }
    if size != e.size {
        problems.push(problem(
            doc,
            &format!("{field}.size"),
            e.size.to_string(),
            size.to_string(),
        ));
    }
}

/// Checks that `bytes` (the manifest) are JCS (RFC 8785) canonical JSON.
fn check_canonical(bytes: &[u8], problems: &mut Vec<Problem>) {
    match serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| liaison_wire::canonicalize(&v).ok())
    {
        Some(c) if c == bytes => {}
        _ => problems.push(problem(
            MANIFEST,
            "encoding",
            "JCS (RFC 8785) canonical JSON",
            "other bytes",
        )),
    }
}

/// Checks a manifest's listing against the entries read (every entry but the manifest and its
/// signature): the same paths in the same order, each with its size and SHA-256.
fn check_listing(listed: &[ManifestEntry], actual: &[&ReadEntry], problems: &mut Vec<Problem>) {
    for i in 0..listed.len().max(actual.len()) {
        match (listed.get(i), actual.get(i)) {
            (Some(m), Some(a)) => {
                if m.path != a.name {
                    problems.push(problem(
                        &format!("entry {}", i + 1),
                        "path",
                        format!("'{}' (manifest)", m.path),
                        format!("'{}'", a.name),
                    ));
                    continue;
                }
                if m.size != a.size {
                    problems.push(problem(
                        &a.name,
                        "size",
                        format!("{} (manifest)", m.size),
                        a.size.to_string(),
                    ));
                }
                if m.sha256 != a.sha256 {
                    problems.push(problem(
                        &a.name,
                        "sha256",
                        format!("{} (manifest)", m.sha256),
                        &a.sha256,
                    ));
                }
            }
            (Some(m), None) => problems.push(problem(&m.path, "presence", "in the package (manifest)", "absent")),
            (None, Some(a)) => problems.push(problem(
                &a.name,
                "presence",
                "not in the package (absent from the manifest)",
                "present",
            )),
            (None, None) => {}
        }
    }
}

/// Checks `manifest.sig`: of `format`, by the manifest's `signing_key`, over `context` and the
/// manifest's bytes, by a key whose fingerprint is `trusted`. Returns the key that signed.
fn check_signature(
    entries: &[ReadEntry],
    manifest_bytes: &[u8],
    signing_key: &SigningKey,
    node_id: &str,
    (format, context): (&str, &[u8]),
    trusted: &BTreeSet<&str>,
    problems: &mut Vec<Problem>,
) -> Option<KeyUse> {
    let mut signer = None;
    let sig: Option<ManifestSignature> = json_of(entries, SIGNATURE, problems);
    if let Some(sig) = sig {
        let pk = PublicKeyBytes::from_hex(&sig.public_key);
        let s = SignatureBytes::from_hex(&sig.signature);
        match (pk, s) {
            (Ok(pk), Ok(s)) => {
                let fp = fingerprint(&pk);
                if sig.format != format {
                    problems.push(problem(SIGNATURE, "format", format, &sig.format));
                }
                if fp != signing_key.fingerprint || sig.public_key != signing_key.public_key {
                    problems.push(problem(
                        SIGNATURE,
                        "public_key",
                        format!("the manifest's signing key (fingerprint {})", signing_key.fingerprint),
                        format!("fingerprint {fp}"),
                    ));
                }
                let key = liaison_wire::PublishedKey {
                    key_id: liaison_wire::KeyId::of(&pk),
                    public_key: pk,
                    valid_from: jiff::Timestamp::UNIX_EPOCH,
                    valid_until: None,
                };
                if key.key_id.as_str() != sig.key_id {
                    problems.push(problem(SIGNATURE, "key_id", key.key_id.as_str(), &sig.key_id));
                }
                let mut msg = context.to_vec();
                msg.extend_from_slice(manifest_bytes);
                if key.verify(&msg, &s).is_err() {
                    problems.push(problem(
                        SIGNATURE,
                        "signature",
                        format!("a signature of {MANIFEST} by key {}", sig.key_id),
                        "a signature that does not verify",
                    ));
                }
                let ok = trusted.contains(fp.as_str());
                if !ok {
                    problems.push(problem(
                        SIGNATURE,
                        "signer",
                        if trusted.is_empty() {
                            "a trusted key (none given: --trust FINGERPRINT)".to_string()
                        } else {
                            format!(
                                "a key with a trusted fingerprint ({})",
                                trusted.iter().copied().collect::<Vec<_>>().join(", ")
                            )
                        },
                        format!("key {} with fingerprint {fp}", sig.key_id),
                    ));
                }
                signer = Some(KeyUse {
                    node_id: node_id.to_string(),
                    key_id: sig.key_id.clone(),
                    fingerprint: fp,
                    trusted: ok,
                });
            }
            _ => problems.push(problem(
                SIGNATURE,
                "public_key/signature",
                "lower-case hex of 32 and 64 bytes",
                "other text",
            )),
        }
    }
    signer
}

/// Every `types:hashValue` `@value` in a JSON-LD document, lower-cased.
fn collect_hash_values(v: &serde_json::Value, out: &mut BTreeSet<String>, depth: usize) {
    if depth > 64 {
        return;
    }
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if k.ends_with("hashValue")
                    && let Some(s) = x.get("@value").and_then(|s| s.as_str()).or(x.as_str())
                {
                    out.insert(s.to_ascii_lowercase());
                }
                collect_hash_values(x, out, depth + 1);
            }
        }
        serde_json::Value::Array(a) => {
            for x in a {
                collect_hash_values(x, out, depth + 1);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_entry_names_are_safe_and_recognised() {
        let n = file_entry_name(1, "../../etc/passwd");
        assert_eq!(n, "files/0001-_.._.._etc_passwd");
        assert!(is_file_entry(&n, 1));
        assert!(!is_file_entry(&n, 2));
        assert!(!is_file_entry("files/0001-a/b", 1));
        assert!(!is_file_entry("files/0001-", 1));
        assert!(is_file_entry(&file_entry_name(7, "报告 2026.pdf"), 7));
        assert_eq!(file_entry_name(3, ""), "files/0003-_");
    }

    #[test]
    fn fingerprints_are_normalised() {
        let f = "ABCD ef01:".to_string() + &"0".repeat(56);
        assert_eq!(
            normalise_fingerprint(&f).unwrap(),
            "abcdef01".to_string() + &"0".repeat(56)
        );
        assert!(normalise_fingerprint("abcd").is_none());
    }

    #[test]
    fn garbage_is_a_named_layout_problem() {
        for input in [&b""[..], b"PK\x03\x04", b"not a zip at all", &[0u8; 100]] {
            let r = verify_package(input, &[]);
            assert!(!r.valid);
            assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        }
    }
}
