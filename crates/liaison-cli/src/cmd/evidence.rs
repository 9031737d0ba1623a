//! `liaison evidence …`: evidence files on requests (docs/evidence.md), through the same use
//! cases as the API.

use super::request::MarkingArgs;
use super::{Ctx, InputError};
use crate::output::{json, table, when};
use anyhow::{Context, Result};
use clap::Subcommand;
use jiff::Timestamp;
use liaison_core::RequestId;
use liaison_core::record::EvidenceKind;
use liaison_service::evidence::{CHUNK, NewEvidence};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum EvidenceCmd {
    /// Add a file to a request (supporting document from the requesting agency, answer from
    /// the requested agency, or --kind comment with --comment EVENT).
    Add {
        request: String,
        /// The file to add ('-' for standard input, e.g. from a tool's output; give --name).
        file: PathBuf,
        /// supporting, answer or comment (default: by your side of the request).
        #[arg(long)]
        kind: Option<String>,
        /// comment files: the comment's event id.
        #[arg(long)]
        comment: Option<String>,
        /// The media type you claim (it is also sniffed from the content).
        #[arg(long)]
        media_type: Option<String>,
        /// The file name to record (default: the file's own name).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        marking: MarkingArgs,
    },
    /// List a request's files you may see.
    List { request: String },
    /// Show one file's metadata.
    Show { file: String },
    /// Write a file's content (checked chunk by chunk) to --out; recorded in its custody.
    Get {
        file: String,
        /// Where to write it (an existing file is not replaced; '-' for standard output).
        #[arg(long)]
        out: PathBuf,
    },
    /// A file's chain of custody.
    Custody { file: String },
    /// Place a legal hold on a request's files, or on one file (--file): held files are never
    /// deleted under retention (legal reviewers and supervisors).
    Hold {
        request: String,
        #[arg(long)]
        file: Option<String>,
        #[arg(long)]
        reason: String,
    },
    /// Lift a legal hold.
    Release {
        request: String,
        #[arg(long)]
        file: Option<String>,
    },
    /// Delete the content of files past their retention ([evidence] retention) that are not
    /// on hold (admins; `liaison serve` runs it hourly).
    Sweep,
    /// Rotate the key-encryption key: re-wrap every file's data key under a new key (admins).
    RotateKey,
    /// Write the evidence package of a request (files, manifest, history, custody, receipts
    /// and inclusion proofs, cover page, CASE document; signed): what you may read of it.
    Export {
        request: String,
        /// The package to write (a new file).
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify an evidence package offline (no data directory or node needed) against node key
    /// fingerprints obtained out of band; exit 7 naming every mismatch.
    Verify {
        package: PathBuf,
        /// A trusted key fingerprint (SHA-256 of the public key, as the letter and the cover
        /// page print it); repeat for several.
        #[arg(long, required = true)]
        trust: Vec<String>,
    },
}

fn bad(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(InputError(msg.into()))
}

/// A request named by its id or its reference (`FBI-2026-0042`).
async fn request_id(node: &liaison_service::Node, p: &liaison_service::Principal, s: &str) -> Result<RequestId> {
    Ok(node.resolve(p, s, Timestamp::now()).await?)
}

pub async fn run(ctx: &Ctx, c: EvidenceCmd) -> Result<()> {
    match &c {
        EvidenceCmd::Verify { package, trust } => return super::evidence_package::verify(ctx, package, trust),
        EvidenceCmd::Export { request, out } => return super::evidence_package::export(ctx, request, out).await,
        _ => {}
    }
    let (node, config) = ctx.node().await?;
    let p = ctx.principal(&node, &config).await?;
    let now = Timestamp::now();
    match c {
        EvidenceCmd::Add {
            request,
            file,
            kind,
            comment,
            media_type,
            name,
            marking,
        } => {
            let id = request_id(&node, &p, &request).await?;
            let kind = kind
                .map(|k| {
                    EvidenceKind::parse(&k)
                        .ok_or_else(|| bad(format!("--kind: '{k}' is not supporting, answer or comment")))
                })
                .transpose()?;
            let stdin = file.as_os_str() == "-";
            let what = if stdin {
                "standard input".to_string()
            } else {
                file.display().to_string()
            };
            let mut f: Box<dyn Read> = if stdin {
                Box::new(std::io::stdin().lock())
            } else {
                Box::new(std::fs::File::open(&file).with_context(|| format!("cannot read {what}"))?)
            };
            let file_name = name.unwrap_or_else(|| {
                file.file_name()
                    .filter(|_| !stdin)
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "standard-input".into())
            });
            let new = NewEvidence {
                kind,
                attached_to: comment,
                file_name,
                media_type,
                marking: marking.marking()?,
            };
            let u = node.evidence_upload_begin(&p, id, new, now).await?;
            let sent = async {
                let mut w = node.evidence_upload_piece(&p, &u.id, 0).await?;
                let mut hash = Sha256::new();
                let mut buf = vec![0u8; CHUNK];
                loop {
                    let n = f.read(&mut buf).with_context(|| format!("reading {what}"))?;
                    if n == 0 {
                        break;
                    }
                    hash.update(&buf[..n]);
                    w.write(&buf[..n]).await?;
                }
                w.finish().await?;
                let sha = hex::encode(hash.finalize());
                Ok::<_, anyhow::Error>(
                    node.evidence_upload_finish(&p, &u.id, Some(&sha), Timestamp::now())
                        .await?,
                )
            }
            .await;
            let stored = match sent {
                Ok(s) => s,
                Err(e) => {
                    let _ = node.evidence_upload_abort(&p, &u.id).await;
                    return Err(e);
                }
            };
            if ctx.json {
                return json(&stored);
            }
            println!(
                "{} added to request {}: {} ({} bytes, SHA-256 {}, {})",
                stored.id,
                stored.request_id,
                stored.file_name,
                stored.size,
                stored.sha256,
                stored.marking.tlp.as_str()
            );
        }
        EvidenceCmd::List { request } => {
            let files = node
                .evidence_list(&p, request_id(&node, &p, &request).await?, now)
                .await?;
            if ctx.json {
                return json(&files);
            }
            let mut t = table(&[
                "id",
                "kind",
                "name",
                "size",
                "type (sniffed)",
                "marking",
                "uploaded",
                "by",
                "state",
            ]);
            for f in &files {
                t.add_row(vec![
                    f.id.clone(),
                    f.kind.to_string(),
                    f.file_name.clone(),
                    f.size.to_string(),
                    f.media_type_sniffed.clone().unwrap_or_else(|| "-".into()),
                    f.marking.tlp.as_str().to_string(),
                    when(Some(f.uploaded_at)),
                    f.uploader.clone(),
                    match (f.deleted_at, f.legal_hold) {
                        (Some(_), _) => "deleted".into(),
                        (None, true) => "held".into(),
                        _ => "-".to_string(),
                    },
                ]);
            }
            println!("{t}");
        }
        EvidenceCmd::Show { file } => {
            let f = node.evidence_meta(&p, None, &file, now).await?;
            json(&f)?;
        }
        EvidenceCmd::Get { file, out } => {
            let mut d = node.evidence_download(&p, None, &file, now).await?;
            if out.as_os_str() == "-" {
                let mut stdout = std::io::stdout().lock();
                while let Some(c) = d.content.next_chunk().await? {
                    stdout.write_all(&c)?;
                }
                stdout.flush()?;
                return Ok(());
            }
            if out.exists() {
                return Err(bad(format!("{} exists: choose another --out", out.display())));
            }
            let tmp = out.with_extension(format!("partial-{}", std::process::id()));
            let written = async {
                let mut w = std::fs::File::create_new(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
                while let Some(c) = d.content.next_chunk().await? {
                    w.write_all(&c)?;
                }
                w.sync_all()?;
                std::fs::rename(&tmp, &out)?;
                Ok::<_, anyhow::Error>(())
            }
            .await;
            if let Err(e) = written {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            if ctx.json {
                return json(&d.file);
            }
            println!(
                "{} → {} ({} bytes, SHA-256 {})",
                d.file.file_name,
                out.display(),
                d.file.size,
                d.file.sha256
            );
        }
        EvidenceCmd::Custody { file } => {
            let entries = node.evidence_custody(&p, None, &file, now).await?;
            if ctx.json {
                return json(&entries);
            }
            let mut t = table(&["seq", "at", "by", "step", "detail"]);
            for e in &entries {
                t.add_row(vec![
                    e.seq.to_string(),
                    when(Some(e.at)),
                    e.actor.clone(),
                    e.action.clone(),
                    e.detail.clone(),
                ]);
            }
            println!("{t}");
        }
        EvidenceCmd::Hold { request, file, reason } => {
            node.evidence_hold(
                &p,
                request_id(&node, &p, &request).await?,
                file.as_deref(),
                &reason,
                now,
            )
            .await?;
            println!("legal hold placed on {}", file.as_deref().unwrap_or(&request));
        }
        EvidenceCmd::Release { request, file } => {
            node.evidence_release(&p, request_id(&node, &p, &request).await?, file.as_deref(), now)
                .await?;
            println!("legal hold lifted from {}", file.as_deref().unwrap_or(&request));
        }
        EvidenceCmd::Sweep => {
            let r = node.evidence_sweep(Some(&p), now).await?;
            if ctx.json {
                return json(&r);
            }
            println!(
                "{} files examined, {} deleted under retention, {} expired but on legal hold; {} unfinished uploads expired",
                r.examined,
                r.deleted.len(),
                r.held.len(),
                r.uploads_expired.len()
            );
        }
        EvidenceCmd::RotateKey => {
            let n = node.evidence_rotate_key(&p, now).await?;
            if ctx.json {
                return json(&serde_json::json!({ "rewrapped": n }));
            }
            println!("evidence key rotated: {n} data keys re-wrapped; the content was not rewritten");
        }
        // Handled above, before opening the node (verify needs none).
        EvidenceCmd::Export { .. } | EvidenceCmd::Verify { .. } => {}
    }
    Ok(())
}
