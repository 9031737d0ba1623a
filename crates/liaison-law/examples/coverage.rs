//! Prints the coverage table of the shipped rule packs as Markdown (for docs/rules.md).
//!
//! `cargo run -p liaison-law --example coverage -- rules`

use liaison_law::{Confidence, RulePacks, check};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("rules"));
    let problems = check(&dir);
    for p in &problems {
        eprintln!("{p}");
    }
    if problems.iter().any(|p| p.is_error()) {
        std::process::exit(1);
    }
    let packs = match RulePacks::load(&dir) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    print!("{}", coverage_markdown(&packs));
}

fn coverage_markdown(packs: &RulePacks) -> String {
    // jurisdiction -> topic group -> (confirmed, partial, unconfirmed)
    let mut table: BTreeMap<String, BTreeMap<String, [usize; 3]>> = BTreeMap::new();
    let mut groups: Vec<String> = Vec::new();
    for row in packs.coverage() {
        let group = row.topic.split_whitespace().next().unwrap_or("other").to_string();
        if !groups.contains(&group) {
            groups.push(group.clone());
        }
        let cell = table
            .entry(row.jurisdiction.to_string())
            .or_default()
            .entry(group)
            .or_insert([0; 3]);
        let i = match row.confidence {
            Confidence::Confirmed => 0,
            Confidence::Partial => 1,
            Confidence::Unconfirmed => 2,
        };
        cell[i] += 1;
    }
    groups.sort();
    let mut out = format!("Rule-pack version (content hash): `{}`\n\n", packs.content_hash());
    out.push_str("Cells: confirmed / partial / unconfirmed rule counts.\n\n| Jurisdiction |");
    for g in &groups {
        out.push_str(&format!(" {g} |"));
    }
    out.push_str("\n|---|");
    for _ in &groups {
        out.push_str("---|");
    }
    out.push('\n');
    for (j, cells) in &table {
        out.push_str(&format!("| {j} |"));
        for g in &groups {
            match cells.get(g) {
                Some([c, p, u]) => out.push_str(&format!(" {c} / {p} / {u} |")),
                None => out.push_str(" — |"),
            }
        }
        out.push('\n');
    }
    out.push_str("\n### Detail (jurisdiction × topic × confidence)\n\n| Jurisdiction | Topic | Rule | Confidence |\n|---|---|---|---|\n");
    for row in packs.coverage() {
        out.push_str(&format!(
            "| {} | {} | `{}` | {} |\n",
            row.jurisdiction, row.topic, row.rule, row.confidence
        ));
    }
    out
}
