//! `liaison evidence export` and `liaison evidence verify`: the evidence package
//! (docs/evidence.md, "Evidence package"). Verifying needs no data directory, no database and
//! no node: only the package and the fingerprints the reader trusts.

use super::{Ctx, InputError, IntegrityFailure};
use crate::output::json;
use anyhow::{Context, Result};
use jiff::Timestamp;
use liaison_core::RequestId;
use liaison_service::evidence_package::{normalise_fingerprint, verify_package};
use std::path::Path;

fn bad(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(InputError(msg.into()))
}

/// Writes the package of `request` to `out` (a new file: written beside it, then renamed).
pub async fn export(ctx: &Ctx, request: &str, out: &Path) -> Result<()> {
    if out.exists() {
        return Err(bad(format!("{} exists: choose another --out", out.display())));
    }
    let (node, config) = ctx.node().await?;
    let p = ctx.principal(&node, &config).await?;
    let id: RequestId = node.resolve(&p, request, Timestamp::now()).await?;
    let done = write_beside(out, "package.zip", async |tmp: &Path| {
        Ok(node.evidence_export(&p, id, tmp, Timestamp::now()).await?)
    })
    .await?;
    if ctx.json {
        return json(&done);
    }
    println!(
        "{}: evidence package of request {} ({} bytes, {} file(s), {} ledger proof(s))",
        out.display(),
        done.request_id,
        done.size,
        done.files,
        done.proofs
    );
    println!("  SHA-256 {}", done.sha256);
    println!(
        "  signed by node {} key {} (fingerprint {})",
        done.node_id, done.key_id, done.fingerprint
    );
    Ok(())
}

/// The `--trust` fingerprints, normalised (an input error names the one that is not one).
pub fn trusted(trust: &[String]) -> Result<Vec<String>> {
    trust
        .iter()
        .map(|t| {
            normalise_fingerprint(t).ok_or_else(|| {
                bad(format!(
                    "--trust '{t}': not a key fingerprint (64 hex digits, spaces and colons allowed)"
                ))
            })
        })
        .collect()
}

/// Runs `write` on a new file beside `out` and renames it to `out` once it succeeded (so a
/// failed export leaves nothing); `out` must not exist.
pub async fn write_beside<T>(out: &Path, default_name: &str, write: impl AsyncFnOnce(&Path) -> Result<T>) -> Result<T> {
    if out.exists() {
        return Err(bad(format!("{} exists: choose another --out", out.display())));
    }
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| default_name.into());
    let tmp = out.with_file_name(format!(".{name}.tmp-{}", uuid::Uuid::now_v7()));
    let done = match write(&tmp).await {
        Ok(d) => d,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, out).with_context(|| format!("renaming {} to {}", tmp.display(), out.display()))?;
    Ok(done)
}

/// Verifies a package offline; exit 7 naming every mismatch.
pub fn verify(ctx: &Ctx, package: &Path, trust: &[String]) -> Result<()> {
    let fps = trusted(trust)?;
    let f = std::fs::File::open(package).with_context(|| format!("cannot read {}", package.display()))?;
    let report = verify_package(std::io::BufReader::with_capacity(1 << 20, f), &fps);
    if ctx.json {
        json(&report)?;
        if !report.valid {
            std::process::exit(7);
        }
        return Ok(());
    }
    if report.valid {
        println!("VALID: {}", package.display());
    } else {
        println!("INVALID: {}", package.display());
        for p in &report.problems {
            println!("  {p}");
        }
    }
    if !report.node_id.is_empty() {
        println!(
            "  request {} exported by {} at node {} on {}",
            report.request_id, report.exported_by, report.node_id, report.exported_at
        );
        println!(
            "  {} entries, {} file(s), {} bytes; {} ledger proof(s) with {} receipt(s); {} custody entries",
            report.entries, report.files, report.bytes, report.proofs, report.receipts, report.custody_entries
        );
    }
    if let Some(s) = &report.signer {
        println!(
            "  manifest signed by {} key {} (fingerprint {}, {})",
            s.node_id,
            s.key_id,
            s.fingerprint,
            if s.trusted { "trusted" } else { "NOT trusted" }
        );
    }
    for w in &report.warnings {
        println!("  warning: {w}");
    }
    if !report.valid {
        return Err(IntegrityFailure(format!(
            "the evidence package {} does not verify: {} problem(s), first: {}",
            package.display(),
            report.problems.len(),
            report.problems.first().map(|p| p.to_string()).unwrap_or_default()
        ))
        .into());
    }
    Ok(())
}
