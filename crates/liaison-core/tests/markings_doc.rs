#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
//! docs/markings.md's table of marking level × relation is the rule: each of its cells must
//! agree with `liaison_core::marking::admits`, and it must cover every level and relation.

use liaison_core::Tlp;
use liaison_core::marking::{Relation, admits};

fn table() -> Vec<Vec<String>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/markings.md");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let start = text.find("<!-- markings-table: begin -->").expect("table begin marker");
    let end = text.find("<!-- markings-table: end -->").expect("table end marker");
    text[start..end]
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---"))
        .map(|l| l.trim_matches('|').split('|').map(|c| c.trim().to_string()).collect())
        .collect()
}

#[test]
fn the_documented_table_is_the_rule() {
    let rows = table();
    let header = &rows[0];
    let names: Vec<&str> = Relation::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        header[1..].iter().map(String::as_str).collect::<Vec<_>>(),
        names,
        "columns"
    );
    assert_eq!(rows.len() - 1, Tlp::ALL.len(), "one row per level");
    let mut checked = 0;
    for row in &rows[1..] {
        let tlp: Tlp = row[0].parse().unwrap_or_else(|e| panic!("row {row:?}: {e}"));
        for (cell, rel) in row[1..].iter().zip(Relation::ALL) {
            let documented = match cell.as_str() {
                "yes" => true,
                "no" => false,
                other => panic!("{tlp} × {}: cell '{other}' is neither yes nor no", rel.as_str()),
            };
            assert_eq!(
                admits(tlp, rel),
                documented,
                "{tlp} × {}: docs/markings.md says {cell}",
                rel.as_str()
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 30);
}
