//! The rule packs embedded at build time.

use anyhow::{Context, Result};
use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/rules.rs"));

/// Writes the shipped packs into `dir` (creating it); existing files are left untouched so a
/// central authority's edits survive re-running `init`.
pub fn install(dir: &Path) -> Result<usize> {
    let mut written = 0;
    for (rel, text) in SHIPPED_RULES {
        let path = dir.join(rel);
        if path.exists() {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        written += 1;
    }
    Ok(written)
}
