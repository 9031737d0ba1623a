#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use liaison_wire::merkle::{empty_root, leaf_hash, node_hash};
use liaison_wire::*;

fn log_of(n: u64) -> MerkleLog {
    let mut log = MerkleLog::new();
    for i in 0..n {
        log.append(format!("leaf {i}").as_bytes());
    }
    log
}

#[test]
fn empty_tree_root_is_sha256_of_nothing() {
    assert_eq!(empty_root(), Hash256::digest(b""));
    assert_eq!(MerkleLog::new().current_root(), Hash256::digest(b""));
    assert!(verify_consistency(0, 0, &empty_root(), &empty_root(), &[]).is_ok());
}

#[test]
fn small_trees_by_hand() {
    let (a, b, c) = (leaf_hash(b"a"), leaf_hash(b"b"), leaf_hash(b"c"));
    let log = MerkleLog::from_leaf_hashes(vec![a, b, c]);
    assert_eq!(log.root(2).unwrap(), node_hash(&a, &b));
    assert_eq!(log.root(3).unwrap(), node_hash(&node_hash(&a, &b), &c));
    assert_eq!(log.inclusion_proof(2, 3).unwrap(), vec![node_hash(&a, &b)]);
    assert_eq!(log.inclusion_proof(0, 3).unwrap(), vec![b, c]);
    assert_eq!(log.consistency_proof(2, 3).unwrap(), vec![c]);
    assert_eq!(log.consistency_proof(1, 3).unwrap(), vec![b, c]);
}

#[test]
fn every_inclusion_proof_up_to_64_verifies() {
    let log = log_of(64);
    for size in 1..=64u64 {
        let root = log.root(size).unwrap();
        for index in 0..size {
            let leaf = log.leaf_hashes()[index as usize];
            let proof = log.inclusion_proof(index, size).unwrap();
            verify_inclusion(&leaf, index, size, &proof, &root)
                .unwrap_or_else(|e| panic!("index {index} size {size}: {e}"));
            // Wrong index, wrong size, wrong leaf, truncated or extended proofs fail.
            if size > 1 {
                let other = (index + 1) % size;
                assert!(verify_inclusion(&leaf, other, size, &proof, &root).is_err());
                assert!(verify_inclusion(&leaf_hash(b"x"), index, size, &proof, &root).is_err());
            }
            // (The size itself is not always bound by the path: index 0 of 3 and of 4 share a
            // path. The signed tree head binds size and root together.)
            if !proof.is_empty() {
                assert!(verify_inclusion(&leaf, index, size, &proof[1..], &root).is_err());
                let mut bad = proof.clone();
                bad[0].0[0] ^= 1;
                assert!(verify_inclusion(&leaf, index, size, &bad, &root).is_err());
            }
            let mut longer = proof.clone();
            longer.push(root);
            assert!(verify_inclusion(&leaf, index, size, &longer, &root).is_err());
        }
        assert!(log.inclusion_proof(size, size).is_err());
    }
}

#[test]
fn every_consistency_proof_up_to_64_verifies() {
    let log = log_of(64);
    for new in 0..=64u64 {
        let new_root = log.root(new).unwrap();
        for old in 0..=new {
            let old_root = log.root(old).unwrap();
            let proof = log.consistency_proof(old, new).unwrap();
            verify_consistency(old, new, &old_root, &new_root, &proof)
                .unwrap_or_else(|e| panic!("{old} -> {new}: {e}"));
            if old > 0 && old < new {
                assert!(verify_consistency(old, new, &new_root, &new_root, &proof).is_err());
                assert!(verify_consistency(old, new, &old_root, &old_root, &proof).is_err());
                let mut bad = proof.clone();
                let last = bad.len() - 1;
                bad[last].0[31] ^= 1;
                assert!(verify_consistency(old, new, &old_root, &new_root, &bad).is_err());
                assert!(verify_consistency(old, new, &old_root, &new_root, &proof[..last]).is_err());
            }
        }
    }
    assert!(log.consistency_proof(5, 4).is_err());
    assert!(log.consistency_proof(1, 65).is_err());
}

#[test]
fn a_rewritten_leaf_is_caught_by_the_consistency_check() {
    let honest = log_of(40);
    let old_size = 25;
    let old_root = honest.root(old_size).unwrap();
    for changed in 0..old_size {
        let mut leaves = honest.leaf_hashes().to_vec();
        leaves[changed as usize] = leaf_hash(b"rewritten history");
        let forged = MerkleLog::from_leaf_hashes(leaves);
        for new in [old_size, 33, 40] {
            let proof = forged.consistency_proof(old_size, new).unwrap();
            assert!(
                verify_consistency(old_size, new, &old_root, &forged.root(new).unwrap(), &proof).is_err(),
                "changed {changed} new {new}"
            );
        }
    }
}

#[test]
fn append_and_rebuild_agree_on_large_log() {
    let mut log = MerkleLog::new();
    let mut hashes = Vec::new();
    for i in 0..5000u32 {
        let h = leaf_hash(&i.to_be_bytes());
        hashes.push(h);
        log.append_hash(h);
    }
    let rebuilt = MerkleLog::from_leaf_hashes(hashes);
    assert_eq!(log, rebuilt);
    for size in [1u64, 2, 3, 1000, 1023, 1024, 1025, 4999, 5000] {
        assert_eq!(log.root(size).unwrap(), rebuilt.root(size).unwrap());
        let proof = log.consistency_proof(size, 5000).unwrap();
        verify_consistency(size, 5000, &log.root(size).unwrap(), &log.current_root(), &proof).unwrap();
        let p = log.inclusion_proof(size - 1, 5000).unwrap();
        verify_inclusion(
            &log.leaf_hashes()[size as usize - 1],
            size - 1,
            5000,
            &p,
            &log.current_root(),
        )
        .unwrap();
    }
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn proofs_verify_for_random_sizes(new in 1u64..600, old_frac in 0.0f64..=1.0, idx_frac in 0.0f64..1.0) {
            let log = log_of(new);
            let old = ((new as f64) * old_frac) as u64;
            let proof = log.consistency_proof(old, new).unwrap();
            prop_assert!(verify_consistency(old, new, &log.root(old).unwrap(), &log.current_root(), &proof).is_ok());
            let index = ((new as f64) * idx_frac) as u64;
            let p = log.inclusion_proof(index, new).unwrap();
            prop_assert!(verify_inclusion(&log.leaf_hashes()[index as usize], index, new, &p, &log.current_root()).is_ok());
        }
    }
}
