//! The Merkle tree of RFC 9162 §2.1: hashing, an append-only log with inclusion and
//! consistency proofs, and the verification algorithms of §2.1.3.2 and §2.1.4.2.
//!
//! Leaf hash `SHA-256(0x00 ‖ leaf)`, interior node `SHA-256(0x01 ‖ left ‖ right)`, a tree of
//! `n > 1` leaves splits at the largest power of two `k < n`, and the empty tree's root is
//! `SHA-256("")`.

use crate::types::Hash256;
use sha2::{Digest, Sha256};

/// `SHA-256(0x00 ‖ leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Hash256 {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    Hash256(h.finalize().into())
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash256, right: &Hash256) -> Hash256 {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left.0);
    h.update(right.0);
    Hash256(h.finalize().into())
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash256 {
    Hash256::digest(b"")
}

/// The largest power of two strictly less than `n` (`n >= 2`).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// A request the log cannot answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("tree size {size} is larger than the log ({len} leaves)")]
    SizeBeyondLog { size: u64, len: u64 },
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("old size {old} is larger than new size {new}")]
    OldAfterNew { old: u64, new: u64 },
}

/// An append-only Merkle log held in memory as all complete subtree hashes.
///
/// `levels[0]` are the leaf hashes; `levels[h][i]` is the hash of leaves
/// `[i·2^h, (i+1)·2^h)`, stored once that block is complete. Memory is about two hashes per
/// leaf; `append` is amortised O(1) (O(log n) at worst), `root(size)` is O(log n) for any
/// past size, and a proof costs O(log² n) hash look-ups with O(log n) hashing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerkleLog {
    levels: Vec<Vec<Hash256>>,
}

impl MerkleLog {
    /// An empty log.
    pub fn new() -> Self {
        MerkleLog::default()
    }

    /// Rebuilds a log from stored leaf hashes (in leaf index order).
    pub fn from_leaf_hashes(leaves: Vec<Hash256>) -> Self {
        let mut levels = vec![leaves];
        while let Some(below) = levels.last()
            && below.len() >= 2
        {
            let above: Vec<Hash256> = below
                .chunks_exact(2)
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
            levels.push(above);
        }
        MerkleLog { levels }
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The leaf hashes, in order (what the node persists).
    pub fn leaf_hashes(&self) -> &[Hash256] {
        self.levels.first().map_or(&[], Vec::as_slice)
    }

    /// Appends a leaf hash; returns its index.
    pub fn append_hash(&mut self, leaf: Hash256) -> u64 {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        let index = self.len();
        let mut hash = leaf;
        let mut h = 0;
        loop {
            self.levels[h].push(hash);
            let len = self.levels[h].len();
            if len % 2 == 1 {
                break;
            }
            hash = node_hash(&self.levels[h][len - 2], &self.levels[h][len - 1]);
            h += 1;
            if self.levels.len() == h {
                self.levels.push(Vec::new());
            }
        }
        index
    }

    /// Appends a leaf (hashing it with [`leaf_hash`]); returns its index.
    pub fn append(&mut self, leaf: &[u8]) -> u64 {
        self.append_hash(leaf_hash(leaf))
    }

    /// MTH of leaves `[start, end)`, `start < end`, using stored complete subtrees.
    fn mth(&self, start: u64, end: u64) -> Hash256 {
        let n = end - start;
        if n.is_power_of_two() && start.is_multiple_of(n) {
            let h = n.trailing_zeros() as usize;
            if let Some(hash) = self.levels.get(h).and_then(|l| l.get((start >> h) as usize)) {
                return *hash;
            }
        }
        if n == 1 {
            // Unreachable for in-range calls: level 0 holds every leaf.
            return empty_root();
        }
        let k = split(n);
        node_hash(&self.mth(start, start + k), &self.mth(start + k, end))
    }

    fn check_size(&self, size: u64) -> Result<(), ProofError> {
        if size > self.len() {
            return Err(ProofError::SizeBeyondLog { size, len: self.len() });
        }
        Ok(())
    }

    /// The root hash of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<Hash256, ProofError> {
        self.check_size(size)?;
        Ok(if size == 0 { empty_root() } else { self.mth(0, size) })
    }

    /// The root of the whole log.
    pub fn current_root(&self) -> Hash256 {
        self.root(self.len()).unwrap_or_else(|_| empty_root())
    }

    /// The audit path for leaf `index` in the tree of the first `size` leaves
    /// (PATH of RFC 9162 §2.1.3.1), leaf-side first.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash256>, ProofError> {
        self.check_size(size)?;
        if index >= size {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        let mut proof = Vec::new();
        self.path(index, 0, size, &mut proof);
        Ok(proof)
    }

    fn path(&self, m: u64, start: u64, end: u64, out: &mut Vec<Hash256>) {
        let n = end - start;
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            self.path(m, start, start + k, out);
            out.push(self.mth(start + k, end));
        } else {
            self.path(m - k, start + k, end, out);
            out.push(self.mth(start, start + k));
        }
    }

    /// The consistency proof between the first `old_size` and first `new_size` leaves
    /// (PROOF of RFC 9162 §2.1.4.1). Empty when `old_size` is 0 or equals `new_size`.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash256>, ProofError> {
        self.check_size(new_size)?;
        if old_size > new_size {
            return Err(ProofError::OldAfterNew {
                old: old_size,
                new: new_size,
            });
        }
        let mut proof = Vec::new();
        if old_size > 0 && old_size < new_size {
            self.subproof(old_size, 0, new_size, true, &mut proof);
        }
        Ok(proof)
    }

    fn subproof(&self, m: u64, start: u64, end: u64, complete: bool, out: &mut Vec<Hash256>) {
        let n = end - start;
        if m == n {
            if !complete {
                out.push(self.mth(start, end));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, start, start + k, complete, out);
            out.push(self.mth(start + k, end));
        } else {
            self.subproof(m - k, start + k, end, false, out);
            out.push(self.mth(start, start + k));
        }
    }
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyProofError {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("old size {old} is larger than new size {new}")]
    OldAfterNew { old: u64, new: u64 },
    #[error("proof has the wrong number of hashes")]
    WrongLength,
    #[error("computed root does not match the expected root")]
    RootMismatch,
    #[error("computed old root does not match the old root")]
    OldRootMismatch,
    #[error("computed new root does not match the new root")]
    NewRootMismatch,
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf_hash: &Hash256,
    index: u64,
    size: u64,
    proof: &[Hash256],
    root: &Hash256,
) -> Result<(), VerifyProofError> {
    if index >= size {
        return Err(VerifyProofError::IndexOutOfRange { index, size });
    }
    let mut fnode = index;
    let mut snode = size - 1;
    let mut r = *leaf_hash;
    for p in proof {
        if snode == 0 {
            return Err(VerifyProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(VerifyProofError::WrongLength);
    }
    if &r != root {
        return Err(VerifyProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies a consistency proof (RFC 9162 §2.1.4.2). `old_size == new_size` needs an empty
/// proof and equal roots; `old_size == 0` needs an empty proof and the empty-tree root.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash256,
    new_root: &Hash256,
    proof: &[Hash256],
) -> Result<(), VerifyProofError> {
    if old_size > new_size {
        return Err(VerifyProofError::OldAfterNew {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(VerifyProofError::WrongLength);
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(VerifyProofError::RootMismatch)
        };
    }
    if old_size == 0 {
        if !proof.is_empty() {
            return Err(VerifyProofError::WrongLength);
        }
        return if *old_root == empty_root() {
            Ok(())
        } else {
            Err(VerifyProofError::OldRootMismatch)
        };
    }
    // Step 1: if old_size is a power of two, the old root itself starts the path.
    let mut path: Vec<Hash256> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return Err(VerifyProofError::WrongLength);
    };
    let mut fnode = old_size - 1;
    let mut snode = new_size - 1;
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let mut fr = *first;
    let mut sr = *first;
    for c in rest {
        if snode == 0 {
            return Err(VerifyProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(VerifyProofError::WrongLength);
    }
    if &fr != old_root {
        return Err(VerifyProofError::OldRootMismatch);
    }
    if &sr != new_root {
        return Err(VerifyProofError::NewRootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC 9162 definition, recursively over a slice: the reference for the tests.
    fn reference_mth(leaves: &[Hash256]) -> Hash256 {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&reference_mth(&leaves[..k]), &reference_mth(&leaves[k..]))
            }
        }
    }

    fn leaves(n: u64) -> Vec<Hash256> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn split_is_largest_power_below() {
        assert_eq!(split(2), 1);
        assert_eq!(split(3), 2);
        assert_eq!(split(4), 2);
        assert_eq!(split(5), 4);
        assert_eq!(split(8), 4);
        assert_eq!(split(9), 8);
    }

    #[test]
    fn empty_tree_root() {
        let log = MerkleLog::new();
        assert_eq!(
            log.root(0).unwrap().to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(log.root(1).is_err());
    }

    #[test]
    fn roots_match_reference_for_every_prefix() {
        let all = leaves(70);
        let mut log = MerkleLog::new();
        for (i, l) in all.iter().enumerate() {
            assert_eq!(log.append_hash(*l), i as u64);
        }
        let rebuilt = MerkleLog::from_leaf_hashes(all.clone());
        for size in 0..=70u64 {
            let want = reference_mth(&all[..size as usize]);
            assert_eq!(log.root(size).unwrap(), want, "size {size}");
            assert_eq!(rebuilt.root(size).unwrap(), want, "rebuilt size {size}");
        }
    }

    #[test]
    fn single_leaf_root_is_its_hash() {
        let mut log = MerkleLog::new();
        log.append(b"only");
        assert_eq!(log.current_root(), leaf_hash(b"only"));
        assert!(log.inclusion_proof(0, 1).unwrap().is_empty());
    }
}
