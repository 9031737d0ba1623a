//! `liaison backup` and `liaison restore`: one archive holding a consistent copy of the
//! database, the node's keys and TLS material, its configuration and rule packs, with a
//! manifest of SHA-256 digests.
//!
//! **Archive format `liaison-backup/1`** (one file, written mode 0600 because it holds the
//! node's secret keys): the line `liaison-backup/1`, then the manifest as one line of JSON,
//! then the bytes of each file the manifest lists, in its order, each exactly `size` bytes.
//! The manifest names every file (a relative path with no `..`), its size, SHA-256 and mode.
//!
//! - database: SQLite, a `VACUUM INTO` copy (`database/liaison.db`); PostgreSQL, the JSON-lines
//!   dump of every table of Liaison's schema read from one snapshot
//!   (`database/postgres.jsonl`, see `liaison_store::backup`);
//! - every other file of the data directory (configuration `liaison.toml`, `rules/`,
//!   `federation/` with the key files and TLS certificate, …), except the live SQLite files;
//! - `evidence`: an empty list in this version, the slot for evidence files (a later version
//!   stores them there, each with its digest).
//!
//! Restore reads the whole archive into a new directory beside the data directory and checks
//! every size and digest before anything else is touched; it refuses to replace a data
//! directory that holds a node unless forced; the old data directory is kept, renamed, until
//! the operator deletes it; if anything fails, the data directory is left as it was.

use crate::node::Node;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

pub const FORMAT: &str = "liaison-backup/1";
/// Where the database goes in the archive.
pub const SQLITE_ENTRY: &str = "database/liaison.db";
pub const POSTGRES_ENTRY: &str = "database/postgres.jsonl";
/// Largest manifest line accepted.
const MAX_MANIFEST: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Store(#[from] liaison_store::StoreError),
    #[error("the archive is not a valid {FORMAT} file: {0}")]
    Invalid(String),
    #[error("{0}")]
    Refused(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One file in the archive.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Relative path (`/`-separated) inside the data directory (or `database/…`).
    pub path: String,
    pub size: u64,
    /// SHA-256 of the contents, lower-case hex.
    pub sha256: String,
    /// Unix permission bits.
    pub mode: u32,
}

/// The archive's manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub created_at: Timestamp,
    /// The node's federation id, if it has one.
    pub node_id: Option<String>,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// The archive entry holding the database.
    pub database: String,
    /// The SQLite file name in the data directory (SQLite only).
    pub sqlite_file: Option<String>,
    pub files: Vec<Entry>,
    /// Evidence files (a later version): empty in this one.
    pub evidence: Vec<Entry>,
}

/// What a backup wrote.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub archive: PathBuf,
    pub bytes: u64,
    pub files: usize,
    pub backend: String,
    pub node_id: Option<String>,
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub data_dir: PathBuf,
    /// Where the data directory that was replaced is kept (delete it when satisfied).
    pub previous: Option<PathBuf>,
    pub files: usize,
    pub backend: String,
    pub node_id: Option<String>,
    pub created_at: Timestamp,
}

fn sha256_file(path: &Path) -> Result<(u64, String), BackupError> {
    let mut f = std::fs::File::open(path).map_err(io(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(io(path))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, hex::encode(h.finalize())))
}

#[cfg(unix)]
fn mode_of(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o777
}
#[cfg(not(unix))]
fn mode_of(_: &std::fs::Metadata) -> u32 {
    0o600
}

fn set_mode(path: &Path, mode: u32) -> Result<(), BackupError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io(path))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Files of `dir` (recursively), relative, sorted, leaving out what `skip` says.
fn walk(
    dir: &Path,
    rel: &str,
    skip: &dyn Fn(&str) -> bool,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<(), BackupError> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .collect::<Result<_, _>>()
        .map_err(io(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let r = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if skip(&r) {
            continue;
        }
        let ft = e.file_type().map_err(io(&e.path()))?;
        if ft.is_dir() {
            walk(&e.path(), &r, skip, out)?;
        } else if ft.is_file() {
            out.push((r, e.path()));
        }
    }
    Ok(())
}

/// Where the database is, as far as a backup needs to know.
#[derive(Debug, Clone)]
pub enum DatabaseLocation {
    /// The SQLite file (its `-wal`/`-shm` companions are left out of the file list).
    Sqlite(PathBuf),
    Postgres,
}

/// Writes a backup of the node to `out` (which must not exist): the database from one
/// snapshot, and every file of `data_dir`.
pub async fn backup(
    node: &Node,
    data_dir: &Path,
    db: &DatabaseLocation,
    out: &Path,
) -> Result<BackupReport, BackupError> {
    if out.exists() {
        return Err(BackupError::Refused(format!(
            "{} exists; choose a new file",
            out.display()
        )));
    }
    let out_abs = std::path::absolute(out).map_err(io(out))?;
    let data_abs = std::path::absolute(data_dir).map_err(io(data_dir))?;
    if out_abs.starts_with(&data_abs) {
        return Err(BackupError::Refused(format!(
            "write the archive outside the data directory {}",
            data_dir.display()
        )));
    }
    let parent = out_abs.parent().unwrap_or(Path::new(".")).to_path_buf();
    let work = parent.join(format!(".liaison-backup-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir(&work).map_err(io(&work))?;
    set_mode(&work, 0o700)?;
    let result = write_archive(node, &data_abs, db, &out_abs, &work).await;
    let _ = std::fs::remove_dir_all(&work);
    result
}

async fn write_archive(
    node: &Node,
    data_dir: &Path,
    db: &DatabaseLocation,
    out: &Path,
    work: &Path,
) -> Result<BackupReport, BackupError> {
    let store = &node.store;
    let (backend, db_entry, db_file, sqlite_name) = match db {
        DatabaseLocation::Sqlite(path) => {
            let copy = work.join("liaison.db");
            store.snapshot_sqlite(&copy).await?;
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            ("sqlite", SQLITE_ENTRY, copy, name)
        }
        DatabaseLocation::Postgres => {
            let copy = work.join("postgres.jsonl");
            let f = std::fs::File::create(&copy).map_err(io(&copy))?;
            let mut w = std::io::BufWriter::new(f);
            store.dump_postgres(&mut w).await?;
            w.flush().map_err(io(&copy))?;
            ("postgres", POSTGRES_ENTRY, copy, None)
        }
    };
    let node_id = store.fed_identity().await?.map(|i| i.node_id);
    // Every file of the data directory except the live database files and leftovers of
    // earlier restores.
    let live: Vec<String> = match db {
        DatabaseLocation::Sqlite(p) => {
            let p = std::path::absolute(p).map_err(io(p))?;
            match (p.parent(), p.file_name()) {
                (Some(dir), Some(name)) if dir == data_dir => {
                    let name = name.to_string_lossy();
                    vec![
                        name.to_string(),
                        format!("{name}-wal"),
                        format!("{name}-shm"),
                        format!("{name}-journal"),
                    ]
                }
                _ => Vec::new(),
            }
        }
        DatabaseLocation::Postgres => Vec::new(),
    };
    let skip = |rel: &str| live.iter().any(|l| l == rel);
    let mut sources = Vec::new();
    walk(data_dir, "", &skip, &mut sources)?;
    sources.push((db_entry.to_string(), db_file));
    let mut files = Vec::with_capacity(sources.len());
    for (rel, path) in &sources {
        let meta = std::fs::metadata(path).map_err(io(path))?;
        let (size, sha256) = sha256_file(path)?;
        files.push(Entry {
            path: rel.clone(),
            size,
            sha256,
            mode: mode_of(&meta),
        });
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        created_at: Timestamp::now(),
        node_id: node_id.clone(),
        backend: backend.into(),
        database: db_entry.into(),
        sqlite_file: sqlite_name,
        files,
        evidence: Vec::new(),
    };
    let partial = work.join("archive.partial");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let f = opts.open(&partial).map_err(io(&partial))?;
        let mut w = std::io::BufWriter::new(f);
        let line = serde_json::to_string(&manifest).map_err(|e| BackupError::Invalid(e.to_string()))?;
        writeln!(w, "{FORMAT}").map_err(io(&partial))?;
        writeln!(w, "{line}").map_err(io(&partial))?;
        for ((_, path), entry) in sources.iter().zip(&manifest.files) {
            let mut f = std::fs::File::open(path).map_err(io(path))?;
            // A file that changed since it was hashed would not match its digest: copy exactly
            // what was hashed or fail.
            let mut h = Sha256::new();
            let mut left = entry.size;
            let mut buf = vec![0u8; 1 << 16];
            while left > 0 {
                let want = buf.len().min(left as usize);
                let k = f.read(&mut buf[..want]).map_err(io(path))?;
                if k == 0 {
                    return Err(BackupError::Refused(format!(
                        "{} changed while it was backed up; try again",
                        path.display()
                    )));
                }
                h.update(&buf[..k]);
                w.write_all(&buf[..k]).map_err(io(&partial))?;
                left -= k as u64;
            }
            if hex::encode(h.finalize()) != entry.sha256 {
                return Err(BackupError::Refused(format!(
                    "{} changed while it was backed up; try again",
                    path.display()
                )));
            }
        }
        let f = w.into_inner().map_err(|e| io(&partial)(e.into_error()))?;
        f.sync_all().map_err(io(&partial))?;
    }
    std::fs::hard_link(&partial, out)
        .or_else(|_| std::fs::rename(&partial, out))
        .map_err(io(out))?;
    set_mode(out, 0o600)?;
    let bytes = std::fs::metadata(out).map_err(io(out))?.len();
    Ok(BackupReport {
        archive: out.to_path_buf(),
        bytes,
        files: manifest.files.len(),
        backend: backend.into(),
        node_id,
    })
}

/// A relative archive path, checked: `/`-separated normal components only.
fn safe_relative(p: &str) -> Result<PathBuf, BackupError> {
    let path = Path::new(p);
    if p.is_empty() || p.contains('\\') || path.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(BackupError::Invalid(format!("unsafe path '{p}' in the manifest")));
    }
    Ok(path.to_path_buf())
}

/// Reads and checks an archive into `stage` (a new, empty directory): every file written with
/// its mode after its size and digest matched the manifest. Returns the manifest.
pub fn unpack_verified(archive: &Path, stage: &Path) -> Result<Manifest, BackupError> {
    let f = std::fs::File::open(archive).map_err(io(archive))?;
    let mut r = BufReader::new(f);
    let mut line = String::new();
    (&mut r).take(64).read_line(&mut line).map_err(io(archive))?;
    if line.trim_end() != FORMAT {
        return Err(BackupError::Invalid(format!("it does not start with '{FORMAT}'")));
    }
    let mut mline = String::new();
    (&mut r).take(MAX_MANIFEST).read_line(&mut mline).map_err(io(archive))?;
    if !mline.ends_with('\n') {
        return Err(BackupError::Invalid("the manifest line is cut off or too long".into()));
    }
    let manifest: Manifest =
        serde_json::from_str(mline.trim_end()).map_err(|e| BackupError::Invalid(format!("manifest: {e}")))?;
    if manifest.format != FORMAT {
        return Err(BackupError::Invalid(format!("manifest format '{}'", manifest.format)));
    }
    if !matches!(manifest.backend.as_str(), "sqlite" | "postgres") {
        return Err(BackupError::Invalid(format!(
            "unknown database backend '{}'",
            manifest.backend
        )));
    }
    if !manifest.files.iter().any(|e| e.path == manifest.database) {
        return Err(BackupError::Invalid(format!(
            "the database entry '{}' is missing",
            manifest.database
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for e in manifest.files.iter().chain(&manifest.evidence) {
        safe_relative(&e.path)?;
        if !seen.insert(e.path.clone()) {
            return Err(BackupError::Invalid(format!("'{}' appears twice", e.path)));
        }
        if e.sha256.len() != 64
            || !e
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(BackupError::Invalid(format!(
                "'{}': bad SHA-256 '{}'",
                e.path, e.sha256
            )));
        }
    }
    for e in manifest.files.iter().chain(&manifest.evidence) {
        let dest = stage.join(safe_relative(&e.path)?);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
            set_mode(parent, 0o700)?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let out = opts.open(&dest).map_err(io(&dest))?;
        let mut w = std::io::BufWriter::new(out);
        let mut h = Sha256::new();
        let mut left = e.size;
        let mut buf = vec![0u8; 1 << 16];
        while left > 0 {
            let want = buf.len().min(left as usize);
            let k = r.read(&mut buf[..want]).map_err(io(archive))?;
            if k == 0 {
                return Err(BackupError::Invalid(format!(
                    "'{}' is cut off ({} of {} bytes)",
                    e.path,
                    e.size - left,
                    e.size
                )));
            }
            h.update(&buf[..k]);
            w.write_all(&buf[..k]).map_err(io(&dest))?;
            left -= k as u64;
        }
        if hex::encode(h.finalize()) != e.sha256 {
            return Err(BackupError::Invalid(format!(
                "'{}' does not match its SHA-256 in the manifest",
                e.path
            )));
        }
        let f = w.into_inner().map_err(|err| io(&dest)(err.into_error()))?;
        f.sync_all().map_err(io(&dest))?;
        drop(f);
        // Keys stay 0600 whatever the archive says; nothing is made wider than 0755.
        set_mode(
            &dest,
            e.mode & 0o755 & if e.path.contains("key") { 0o600 } else { 0o777 },
        )?;
    }
    let mut rest = [0u8; 1];
    if r.read(&mut rest).map_err(io(archive))? != 0 {
        return Err(BackupError::Invalid("bytes after the last file".into()));
    }
    Ok(manifest)
}

/// Options of a restore.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Replace a data directory that holds a node (or a PostgreSQL schema that holds data).
    pub force: bool,
    /// PostgreSQL: the database to load into (default: the restored configuration's).
    pub database_url: Option<String>,
}

/// Whether a data directory holds a node (its configuration file).
pub fn is_live(data_dir: &Path) -> bool {
    data_dir.join("liaison.toml").exists()
}

/// Restores `archive` into `data_dir`. `database_url_of` reads the PostgreSQL URL from the
/// restored configuration (the CLI knows the file's format). The federation key directory of
/// the restored node gets the restore marker, so the node recovers its links at start
/// (docs/federation.md §7.2).
pub async fn restore(
    archive: &Path,
    data_dir: &Path,
    opts: &RestoreOptions,
    database_url_of: &dyn Fn(&Path) -> Result<String, String>,
) -> Result<RestoreReport, BackupError> {
    let data_abs = std::path::absolute(data_dir).map_err(io(data_dir))?;
    if is_live(&data_abs) && !opts.force {
        return Err(BackupError::Refused(format!(
            "{} holds a node; stop it and pass --force to replace it (the old directory is kept beside it)",
            data_dir.display()
        )));
    }
    let parent = data_abs.parent().unwrap_or(Path::new("/")).to_path_buf();
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let name = data_abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "liaison-data".into());
    let stamp = Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let stage = parent.join(format!(".{name}.restore-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir(&stage).map_err(io(&stage))?;
    set_mode(&stage, 0o700)?;
    let result = restore_staged(
        archive,
        &data_abs,
        &stage,
        &format!("{name}.before-restore-{stamp}"),
        opts,
        database_url_of,
    )
    .await;
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&stage);
    }
    result
}

async fn restore_staged(
    archive: &Path,
    data_dir: &Path,
    stage: &Path,
    keep_name: &str,
    opts: &RestoreOptions,
    database_url_of: &dyn Fn(&Path) -> Result<String, String>,
) -> Result<RestoreReport, BackupError> {
    let manifest = unpack_verified(archive, stage)?;
    // The database: SQLite into place inside the staged directory; PostgreSQL loaded in one
    // transaction (nothing changes if it fails).
    let db_staged = stage.join(safe_relative(&manifest.database)?);
    // The ledger as restored: the restore point the link recovery requests declare.
    let ledger_size: i64;
    match manifest.backend.as_str() {
        "sqlite" => {
            let file = manifest.sqlite_file.clone().unwrap_or_else(|| "liaison.db".into());
            let dest = stage.join(safe_relative(&file)?);
            std::fs::rename(&db_staged, &dest).map_err(io(&dest))?;
            set_mode(&dest, 0o600)?;
            let store = liaison_store::Store::open_sqlite(&dest).await?;
            let size = store.fed_ledger_size().await;
            store.close().await;
            ledger_size = size?;
        }
        _ => {
            let url = match &opts.database_url {
                Some(u) => u.clone(),
                None => database_url_of(stage).map_err(BackupError::Refused)?,
            };
            let store = liaison_store::Store::open(&url).await?;
            if store.has_data().await? && !opts.force {
                store.close().await;
                return Err(BackupError::Refused(
                    "the PostgreSQL database holds a node's data; stop every instance and pass --force to replace it"
                        .into(),
                ));
            }
            let f = std::fs::File::open(&db_staged).map_err(io(&db_staged))?;
            let loaded = store.load_postgres(&mut BufReader::new(f)).await;
            let size = match &loaded {
                Ok(_) => store.fed_ledger_size().await,
                Err(_) => Ok(0),
            };
            store.close().await;
            loaded?;
            ledger_size = size?;
            std::fs::remove_file(&db_staged).map_err(io(&db_staged))?;
        }
    }
    let _ = std::fs::remove_dir(stage.join("database"));
    // The restore marker: the node recovers its links with every peer before it sends.
    let key_dir = stage.join("federation");
    if key_dir.is_dir() {
        let marker = key_dir.join(crate::federation::recovery::MARKER);
        let text = serde_json::json!({
            "restored_at": Timestamp::now().to_string(),
            "backup_created_at": manifest.created_at.to_string(),
            "ledger_size": ledger_size,
        })
        .to_string();
        std::fs::write(&marker, text).map_err(io(&marker))?;
    }
    // Swap: the old directory is renamed aside (kept), the staged one takes its place.
    let mut previous = None;
    if data_dir.exists() {
        let aside = data_dir.with_file_name(keep_name);
        std::fs::rename(data_dir, &aside).map_err(io(data_dir))?;
        previous = Some(aside);
    }
    if let Err(e) = std::fs::rename(stage, data_dir) {
        if let Some(aside) = &previous {
            let _ = std::fs::rename(aside, data_dir);
        }
        return Err(io(data_dir)(e));
    }
    set_mode(data_dir, 0o700)?;
    Ok(RestoreReport {
        data_dir: data_dir.to_path_buf(),
        previous,
        files: manifest.files.len(),
        backend: manifest.backend,
        node_id: manifest.node_id,
        created_at: manifest.created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_paths_are_refused() {
        for p in ["../x", "/etc/passwd", "a/../../b", "", "a\\b", "./a"] {
            assert!(safe_relative(p).is_err(), "{p}");
        }
        assert!(safe_relative("federation/node-key.json").is_ok());
    }

    #[test]
    fn a_tampered_or_cut_archive_is_refused_before_anything_is_written() {
        let dir = std::env::temp_dir().join(format!("liaison-backup-unit-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let body = b"hello";
        let manifest = Manifest {
            format: FORMAT.into(),
            created_at: Timestamp::now(),
            node_id: None,
            backend: "sqlite".into(),
            database: SQLITE_ENTRY.into(),
            sqlite_file: Some("liaison.db".into()),
            files: vec![Entry {
                path: SQLITE_ENTRY.into(),
                size: body.len() as u64,
                sha256: hex::encode(Sha256::digest(body)),
                mode: 0o600,
            }],
            evidence: vec![],
        };
        let write = |name: &str, content: &[u8]| {
            let p = dir.join(name);
            let mut f = std::fs::File::create(&p).unwrap();
            writeln!(f, "{FORMAT}").unwrap();
            writeln!(f, "{}", serde_json::to_string(&manifest).unwrap()).unwrap();
            f.write_all(content).unwrap();
            p
        };
        let good = write("good", body);
        let stage = dir.join("s1");
        std::fs::create_dir(&stage).unwrap();
        unpack_verified(&good, &stage).unwrap();
        assert_eq!(std::fs::read(stage.join(SQLITE_ENTRY)).unwrap(), body);
        let bad = write("bad", b"hellO");
        let stage = dir.join("s2");
        std::fs::create_dir(&stage).unwrap();
        let e = unpack_verified(&bad, &stage).unwrap_err().to_string();
        assert!(e.contains("does not match its SHA-256"), "{e}");
        let cut = write("cut", b"hel");
        let stage = dir.join("s3");
        std::fs::create_dir(&stage).unwrap();
        let e = unpack_verified(&cut, &stage).unwrap_err().to_string();
        assert!(e.contains("cut off"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
