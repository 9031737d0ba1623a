//! The case file for prosecutors (issue #19 part 3, docs/cases.md "The case file"): one ZIP in
//! the evidence package's canonical form holding a joint case as its exporter sees it
//! (`case.json`: members, links, timeline), and, for every linked request the exporter may read
//! on this node, that request's evidence package (its history, evidence files, custody records
//! and ledger proofs) as a nested entry `packages/NNNN-REFERENCE.zip`, all listed in a manifest
//! signed by the node's key.
//!
//! [`verify_case_file`] checks it offline in one pass and bounded memory: the outer layout,
//! listing and signature as for a package, then every nested package with
//! [`super::verify_package`] as its bytes stream past, and that `case.json` lists exactly the
//! packages present, each about a request linked to the case.

use super::export::{ZipOut, file_sha256, internal, to_json};
use super::{
    KeyUse, Layout, MANIFEST, Problem, SigningKey, VerifyReport, check_listing, check_record, check_signature,
    entry_name, fingerprint, grouped, json_of, listed_entries, problem, read_layout_with, read_manifest,
    verify_package,
};
use crate::error::{Result, ServiceError};
use crate::federation::transport::Offline;
use crate::node::Node;
use jiff::Timestamp;
use liaison_core::case::ItemKind;
use liaison_core::record::Principal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The `format` of a case file's manifest and signature.
pub const CASE_FORMAT: &str = "liaison-case-file/1";
/// What a case file's manifest signature signs: this, then the manifest's bytes.
pub const CASE_CONTEXT: &[u8] = b"liaison-case-file/1 manifest\x1f";
/// The entries before the packages, in this order.
pub const CASE_HEAD: [&str; 2] = ["cover.txt", "case.json"];
/// The prefix of the nested packages.
pub const PACKAGES: &str = "packages/";
/// Most problems kept of one nested package's report (then a count of the rest).
pub const MAX_NESTED_PROBLEMS: usize = 20;
/// Most problems a case file's report lists from its packages.
pub const MAX_PROBLEMS: usize = 1000;

/// A case file's `manifest.json` (its bytes are the JCS form of this object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseManifest {
    pub format: String,
    pub node_id: String,
    pub case_id: String,
    pub exported_at: String,
    pub exported_by: String,
    pub signing_key: SigningKey,
    pub entries: Vec<super::ManifestEntry>,
}

/// A nested package as `case.json` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncludedPackage {
    pub path: String,
    pub request_id: String,
    pub reference: String,
    pub sha256: String,
    pub size: u64,
}

/// A linked item the case file does not hold, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotIncluded {
    pub kind: String,
    /// Empty for a link the exporter may not see (its kind only).
    pub id: String,
    pub reason: String,
}

/// `case.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFileDoc {
    /// The case as the exporter saw it (`Node::case`).
    pub case: serde_json::Value,
    pub packages: Vec<IncludedPackage>,
    pub not_included: Vec<NotIncluded>,
}

/// What a case export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct CaseFileExport {
    pub case_id: String,
    pub sha256: String,
    pub size: u64,
    pub packages: usize,
    pub not_included: usize,
    pub node_id: String,
    pub key_id: String,
    /// What `liaison case verify --trust` takes.
    pub fingerprint: String,
}

/// A nested package's verification.
#[derive(Debug, Clone, Serialize)]
pub struct NestedReport {
    pub path: String,
    pub report: VerifyReport,
}

/// What [`verify_case_file`] found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CaseFileReport {
    pub valid: bool,
    pub format: String,
    pub node_id: String,
    pub case_id: String,
    pub exported_at: String,
    pub exported_by: String,
    pub entries: usize,
    pub bytes: u64,
    pub signer: Option<KeyUse>,
    pub packages: Vec<NestedReport>,
    /// Everything that does not match, the nested packages' problems included (named
    /// `packages/NNNN-…: entry`); empty when the case file verifies.
    pub problems: Vec<Problem>,
}

/// Verifies a case file read from `r` against the trusted key fingerprints `trust`. Offline.
pub fn verify_case_file<R: Read>(r: R, trust: &[String]) -> CaseFileReport {
    let mut report = CaseFileReport {
        format: CASE_FORMAT.to_string(),
        ..Default::default()
    };
    let mut nested: Vec<NestedReport> = Vec::new();
    let mut inspect = |name: &str, body: &mut dyn Read| {
        let mut report = verify_package(body, trust);
        // A report stays small whatever a package holds: the first problems, then how many more.
        let more = report.problems.len().saturating_sub(MAX_NESTED_PROBLEMS);
        if more > 0 {
            report.problems.truncate(MAX_NESTED_PROBLEMS);
            report
                .problems
                .push(problem("package", "problems", "none", format!("{more} more")));
        }
        nested.push(NestedReport {
            path: name.to_string(),
            report,
        });
    };
    let mut layout = Layout {
        head: &CASE_HEAD,
        numbered: PACKAGES,
        inspect: Some(&mut inspect),
    };
    let read = read_layout_with(r, &mut layout);
    report.packages = nested;
    let (entries, bytes) = match read {
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

    let Some((manifest, manifest_bytes)) = read_manifest::<CaseManifest>(&entries, "a case file manifest", problems)
    else {
        return report;
    };
    if manifest.format != CASE_FORMAT {
        problems.push(problem(MANIFEST, "format", CASE_FORMAT, &manifest.format));
    }
    report.node_id = manifest.node_id.clone();
    report.case_id = manifest.case_id.clone();
    report.exported_at = manifest.exported_at.clone();
    report.exported_by = manifest.exported_by.clone();
    let actual = listed_entries(&entries);
    check_listing(&manifest.entries, &actual, problems);
    report.signer = check_signature(
        &entries,
        &manifest_bytes,
        &manifest.signing_key,
        &manifest.node_id,
        (CASE_FORMAT, CASE_CONTEXT),
        &trusted,
        problems,
    );

    // --- case.json: the manifest's case; exactly the packages present, each of a linked
    // request, each verifying, exported by the same node. ---
    let doc: Option<CaseFileDoc> = json_of(&entries, "case.json", problems);
    let package_entries: Vec<_> = actual.iter().filter(|e| e.name.starts_with(PACKAGES)).collect();
    if let Some(doc) = &doc {
        let id = doc.case.get("id").and_then(|v| v.as_str()).unwrap_or("");
        if id != manifest.case_id {
            problems.push(problem("case.json", "case.id", &manifest.case_id, id));
        }
        let linked: BTreeSet<&str> = doc
            .case
            .get("links")
            .and_then(|l| l.as_array())
            .map(|ls| {
                ls.iter()
                    .filter_map(|l| l.get("item"))
                    .filter(|i| i.get("kind").and_then(|k| k.as_str()) == Some(ItemKind::Request.as_str()))
                    .filter_map(|i| i.get("id").and_then(|v| v.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        for i in 0..doc.packages.len().max(package_entries.len()) {
            let field = format!("packages[{i}]");
            match (doc.packages.get(i), package_entries.get(i)) {
                (Some(p), Some(e)) => {
                    check_record(("case.json", &field), (&p.path, &p.sha256, p.size), e, problems);
                    if !linked.contains(p.request_id.as_str()) {
                        problems.push(problem(
                            "case.json",
                            &format!("{field}.request_id"),
                            "a request linked to the case",
                            &p.request_id,
                        ));
                    }
                    if let Some(n) = report.packages.iter().find(|n| n.path == e.name) {
                        if n.report.request_id != p.request_id {
                            problems.push(problem(
                                &e.name,
                                "request_id",
                                format!("{} (case.json)", p.request_id),
                                &n.report.request_id,
                            ));
                        }
                        if n.report.node_id != manifest.node_id {
                            problems.push(problem(&e.name, "node_id", &manifest.node_id, &n.report.node_id));
                        }
                    }
                }
                (Some(p), None) => problems.push(problem("case.json", &field, "no record (no such entry)", &p.path)),
                (None, Some(e)) => {
                    problems.push(problem("case.json", &field, format!("a record of {}", e.name), "none"))
                }
                (None, None) => {}
            }
        }
    }
    for n in &report.packages {
        for p in &n.report.problems {
            if problems.len() >= MAX_PROBLEMS {
                break;
            }
            problems.push(Problem {
                entry: format!("{}: {}", n.path, p.entry),
                ..p.clone()
            });
        }
    }
    report.valid = report.problems.is_empty();
    report
}

/// The human-readable cover page of a case file.
fn cover_page(doc: &CaseFileDoc, node_id: &str, exported_at: &str, exporter: &str, key_id: &str, fp: &str) -> String {
    let mut s = String::new();
    let mut line = |l: String| {
        s.push_str(&l);
        s.push('\n');
    };
    let c = &doc.case;
    let word = |k: &str| c.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    line(format!("LIAISON CASE FILE ({CASE_FORMAT})"));
    line(String::new());
    line(format!("Case:           {} {}", word("reference"), word("name")));
    line(format!("Case id:        {}", word("id")));
    line(format!("Lead agency:    {}", word("lead")));
    line(format!(
        "Marking:        {}",
        c.pointer("/marking/tlp").and_then(|v| v.as_str()).unwrap_or("")
    ));
    line(format!("State:          {}", word("state")));
    if let Some(ms) = c.get("members").and_then(|m| m.as_array()) {
        let list: Vec<String> = ms
            .iter()
            .map(|m| {
                format!(
                    "{} ({})",
                    m.get("agency").and_then(|v| v.as_str()).unwrap_or(""),
                    m.get("status").and_then(|v| v.as_str()).unwrap_or("")
                )
            })
            .collect();
        line(format!("Members:        {}", list.join(", ")));
    }
    line(format!("Exported by:    {exporter} at node {node_id}"));
    line(format!("Exported at:    {exported_at}"));
    line(String::new());
    line(format!(
        "Evidence packages: {} (one per linked request the exporter may read on this node)",
        doc.packages.len()
    ));
    for p in &doc.packages {
        line(format!("  {}  {}  ({} bytes)", p.path, p.reference, p.size));
        line(format!("      SHA-256 {}", p.sha256));
    }
    if !doc.not_included.is_empty() {
        line(format!("Linked items not included: {}", doc.not_included.len()));
        for n in &doc.not_included {
            let id = if n.id.is_empty() { "-" } else { &n.id };
            line(format!("  {} {id}: {}", n.kind, n.reason));
        }
    }
    line(String::new());
    line("The case's members, links and timeline as the exporter saw them are in case.json; each".into());
    line("package holds its request's history, evidence files, custody records and ledger proofs.".into());
    line(String::new());
    line("CHECK OUT OF BAND: the manifest (manifest.json, covering every other entry) and every".into());
    line("package's manifest are signed by".into());
    line(format!("  node {node_id}  key {key_id}"));
    line(format!("  SHA-256 {}", grouped(fp)));
    line("Compare this fingerprint with one obtained from the node's operators by another channel.".into());
    line(String::new());
    line("Verify offline, on any machine:".into());
    line(format!("  liaison case verify CASE-FILE.zip --trust {fp}"));
    line("The format is documented in docs/cases.md (The case file).".into());
    s
}

/// Removes the temporary packages when dropped.
struct TempFiles(Vec<PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Node {
    /// Writes the case file of case `id` as `p` may read it to `out` (created new, mode 0600):
    /// the case, and the evidence package of every linked request `p` may read here (each
    /// package's export recorded as it always is: custody and audit). The case file itself is
    /// an audit entry `case.export` with its SHA-256.
    pub async fn case_export(&self, p: &Principal, id: &str, out: &Path, now: Timestamp) -> Result<CaseFileExport> {
        let now = Timestamp::from_millisecond(now.as_millisecond()).map_err(internal)?;
        let view = self.case(p, id, now).await?;
        let fed = self.federation_with(Arc::new(Offline)).await.map_err(|e| match e {
            ServiceError::NotFound(_) => ServiceError::Unprocessable(
                "this node has no federation signing key (liaison init creates one): a case file cannot be signed"
                    .into(),
            ),
            e => e,
        })?;
        let node_id = fed.node_id().to_string();
        let key = fed.signing_key();
        let pk = key.public_key();
        let fp = fingerprint(&pk);
        let exported_at = now.to_string();

        // The packages, each written to a temporary file beside `out` first.
        let dir = out
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut temps = TempFiles(Vec::new());
        let mut included = Vec::new();
        let mut not_included = Vec::new();
        for l in &view.links {
            let Some(item) = &l.link.item else {
                not_included.push(NotIncluded {
                    kind: l.link.item_kind.as_str().into(),
                    id: String::new(),
                    reason: "not shared with the exporter's agency".into(),
                });
                continue;
            };
            if item.kind != ItemKind::Request {
                not_included.push(NotIncluded {
                    kind: item.kind.as_str().into(),
                    id: item.id.clone(),
                    reason:
                        "only requests are exported as evidence packages; an evidence file is in its request's package"
                            .into(),
                });
                continue;
            }
            let Some(live) = &l.live else {
                not_included.push(NotIncluded {
                    kind: item.kind.as_str().into(),
                    id: item.id.clone(),
                    reason: "the exporter cannot read this request on this node (it was shared with the case; its package is its parties' to export)".into(),
                });
                continue;
            };
            let rid = item
                .id
                .parse()
                .map_err(|_| internal(format!("linked request id {}", item.id)))?;
            let tmp = dir.join(format!(".case-package-{}.zip", uuid::Uuid::now_v7()));
            temps.0.push(tmp.clone());
            let export = self.evidence_export(p, rid, &tmp, now).await?;
            included.push((
                IncludedPackage {
                    path: entry_name(PACKAGES, included.len() + 1, &live.reference),
                    request_id: item.id.clone(),
                    reference: live.reference.clone(),
                    sha256: export.sha256,
                    size: export.size,
                },
                tmp,
            ));
        }
        if included.len() > super::MAX_FILES {
            return Err(ServiceError::Unprocessable(format!(
                "the case links {} requests; a case file holds at most {}",
                included.len(),
                super::MAX_FILES
            )));
        }
        let doc = CaseFileDoc {
            case: serde_json::to_value(&view).map_err(internal)?,
            packages: included.iter().map(|(p, _)| p.clone()).collect(),
            not_included,
        };
        let cover = cover_page(&doc, &node_id, &exported_at, &p.username, key.key_id().as_str(), &fp);
        let mut zip = ZipOut::create(out)?;
        let written = async {
            zip.put(CASE_HEAD[0], cover.as_bytes(), true).await?;
            zip.put(CASE_HEAD[1], &to_json(&doc)?, true).await?;
            for (pkg, tmp) in &included {
                let sha = zip.put_file(&pkg.path, tmp).await?;
                if sha != pkg.sha256 {
                    return Err(ServiceError::Integrity(format!(
                        "the package of request {} changed while it was copied",
                        pkg.request_id
                    )));
                }
            }
            let manifest = CaseManifest {
                format: CASE_FORMAT.into(),
                node_id: node_id.clone(),
                case_id: view.id.clone(),
                exported_at: exported_at.clone(),
                exported_by: p.username.clone(),
                signing_key: SigningKey {
                    key_id: key.key_id().to_string(),
                    public_key: pk.to_hex(),
                    fingerprint: fp.clone(),
                },
                entries: zip.listed.clone(),
            };
            zip.seal(&manifest, key, (CASE_FORMAT, CASE_CONTEXT)).await?;
            zip.finish().await
        }
        .await;
        let size = match written {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_file(out);
                return Err(e);
            }
        };
        drop(temps);
        let sha256 = file_sha256(out).await?;
        self.store
            .audit(
                now,
                &p.username,
                "case.export",
                &view.id,
                &serde_json::json!({
                    "sha256": sha256, "size": size, "packages": doc.packages.len(),
                    "not_included": doc.not_included.len(), "key_id": key.key_id().to_string(),
                }),
            )
            .await?;
        Ok(CaseFileExport {
            case_id: view.id,
            sha256,
            size,
            packages: doc.packages.len(),
            not_included: doc.not_included.len(),
            node_id,
            key_id: key.key_id().to_string(),
            fingerprint: fp,
        })
    }

    /// [`Node::case_export`] into a new file in a temporary directory (for the API, which
    /// streams it and removes it).
    pub async fn case_export_temp(&self, p: &Principal, id: &str, now: Timestamp) -> Result<(CaseFileExport, PathBuf)> {
        let path = self.export_temp_path("case-file")?;
        match self.case_export(p, id, &path, now).await {
            Ok(e) => Ok((e, path)),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
        }
    }
}
