//! Replays every committed fuzz corpus file (`fuzz/corpus/<target>/*`) through its target, on
//! stable, as part of `cargo test --workspace`. A corpus holds the seeds, the inputs libFuzzer
//! kept for coverage (minimised with `cargo fuzz cmin`) and every input that once crashed, so a
//! fixed finding stays fixed.

use std::path::{Path, PathBuf};

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

#[test]
fn every_corpus_file_passes_its_target() {
    let root = corpus_root();
    let mut total = 0;
    for (name, target) in liaison_fuzz::TARGETS {
        let dir = root.join(name);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "corpus {} is empty", dir.display());
        for f in &files {
            // A file may vanish while a local fuzzer rewrites the corpus; CI has none running.
            let Ok(data) = std::fs::read(f) else { continue };
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name}: {} fails its invariants", f.display());
        }
        total += files.len();
    }
    assert!(total > 0);
}

#[test]
fn every_corpus_directory_has_a_target() {
    let known: Vec<&str> = liaison_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
    for e in std::fs::read_dir(corpus_root()).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        // `peer_file`, `evidence_package` and `taxii_query` are compiled only with the
        // (default) `service` feature.
        assert!(
            known.contains(&name.as_str()) || ["peer_file", "evidence_package", "taxii_query"].contains(&name.as_str()),
            "corpus '{name}' has no target"
        );
    }
}
