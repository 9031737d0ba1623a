#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use common::*;
use liaison_wire::*;
use std::collections::HashSet;

#[test]
fn descriptor_is_self_signed_and_round_trips() {
    let de = de();
    de.descriptor.verify_self_signed().unwrap();
    let bytes = serde_json::to_vec(&de.descriptor).unwrap();
    let parsed = NodeDescriptor::from_slice(&bytes).unwrap();
    assert_eq!(parsed, de.descriptor);
    assert_eq!(parsed.fingerprint().unwrap(), de.descriptor.fingerprint().unwrap());
    let mut tampered = parsed.clone();
    tampered.base_url = "https://evil.example.invalid".to_string();
    assert!(matches!(
        tampered.verify_self_signed(),
        Err(DescriptorError::BadSignature(_))
    ));
    assert!(PinnedPeer::pin(&tampered).is_err());
}

/// Found by the descriptor fuzzer (2026-12-05): a serial beyond 2^53 - 1 parsed, but the
/// descriptor had no canonical form, so it could be neither checked nor fingerprinted. It is
/// refused when read.
#[test]
fn a_descriptor_without_a_canonical_form_is_refused_when_read() {
    let de = de();
    let mut v = serde_json::to_value(&de.descriptor).unwrap();
    v["serial"] = serde_json::json!(6_641_524_044_444_444_441u64);
    let err = NodeDescriptor::from_slice(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert!(matches!(err, DescriptorError::Canon(_)), "{err}");
    v["serial"] = serde_json::json!(9_007_199_254_740_991u64);
    assert!(NodeDescriptor::from_slice(&serde_json::to_vec(&v).unwrap()).is_ok());
}

#[test]
fn descriptor_must_be_signed_by_a_listed_key() {
    let de = de();
    let stranger = NodeKey::from_seed([42; 32]);
    let d = DescriptorDraft {
        node_id: de.id.clone(),
        agency_id: de.descriptor.agency_id,
        agency_name: "x".into(),
        jurisdiction: de.descriptor.jurisdiction,
        base_url: "https://x.invalid".into(),
        tls_cert_sha256: Hash256::digest(b"x"),
        keys: vec![de.key.published(ts("2026-01-01T00:00:00Z"), None)],
        serial: 1,
        issued_at: ts(NOW),
    };
    assert!(matches!(d.sign(&stranger), Err(DescriptorError::SignerNotListed(_))));
}

#[test]
fn descriptor_update_needs_current_key_and_higher_serial() {
    let de = de();
    let mut pinned = PinnedPeer::pin(&de.descriptor).unwrap();
    let update = |serial: u64, key: &NodeKey| {
        DescriptorDraft {
            node_id: de.id.clone(),
            agency_id: de.descriptor.agency_id,
            agency_name: "Bundeskriminalamt".into(),
            jurisdiction: de.descriptor.jurisdiction,
            base_url: "https://liaison.bka.example.invalid".into(),
            tls_cert_sha256: Hash256::digest(b"new cert"),
            keys: vec![
                de.key.published(ts("2026-01-01T00:00:00Z"), None),
                NodeKey::from_seed([43; 32]).published(ts("2026-01-01T00:00:00Z"), None),
            ],
            serial,
            issued_at: ts(NOW),
        }
        .sign(key)
    };
    // Signed by a key the peer never pinned (it lists it, but that proves nothing).
    let k43 = NodeKey::from_seed([43; 32]);
    assert!(matches!(
        pinned.apply_descriptor(&update(2, &k43).unwrap(), ts(NOW)),
        Err(DescriptorError::UnknownKey(_))
    ));
    assert!(matches!(
        pinned.apply_descriptor(&update(1, &de.key).unwrap(), ts(NOW)),
        Err(DescriptorError::StaleSerial { .. })
    ));
    pinned.apply_descriptor(&update(2, &de.key).unwrap(), ts(NOW)).unwrap();
    assert_eq!(pinned.base_url, "https://liaison.bka.example.invalid");
    assert_eq!(pinned.tls_cert_sha256, Hash256::digest(b"new cert"));
    assert_eq!(pinned.keys.len(), 2);
    assert_eq!(pinned.descriptor_serial, 2);
}

#[test]
fn rotation_is_accepted_and_old_key_ends() {
    let (de, cn) = (de(), cn());
    let mut peers = peers_with(&de);
    let new_key = NodeKey::from_seed([11; 32]);
    let rotation = KeyRotation::sign(
        de.id.clone(),
        &de.key,
        &new_key,
        ts("2026-11-22T09:00:00Z"),
        None,
        ts("2026-11-23T00:00:00Z"),
        ts("2026-11-22T09:00:00Z"),
    )
    .unwrap();
    let bytes = serde_json::to_vec(&rotation).unwrap();
    let rotation = KeyRotation::from_slice(&bytes).unwrap();

    // Before the rotation, the new key is unknown.
    let by_new = draft(&de, &cn, 1).sign(&new_key).unwrap();
    let seen = HashSet::new();
    assert!(matches!(
        by_new.verify(&VerifyContext::new(&cn.id, &peers, ts(NOW), &seen)),
        Err(Rejection::UnknownKey { .. })
    ));

    let pinned = peers.get_mut(&de.id).unwrap();
    pinned.apply_rotation(&rotation).unwrap();
    let once = pinned.clone();
    pinned.apply_rotation(&rotation).unwrap();
    assert_eq!(*pinned, once, "applying twice changes nothing");

    // New key accepted; old key still accepted until its window ends.
    assert!(
        by_new
            .verify(&VerifyContext::new(&cn.id, &peers, ts(NOW), &seen))
            .is_ok()
    );
    let by_old = draft(&de, &cn, 2).sign(&de.key).unwrap();
    assert!(
        by_old
            .verify(&VerifyContext::new(&cn.id, &peers, ts(NOW), &seen))
            .is_ok()
    );

    // After the old key's end, a message signed with it is refused.
    let mut late = draft(&de, &cn, 3);
    late.created_at = ts("2026-11-23T00:00:01Z");
    let late_old = late.clone().sign(&de.key).unwrap();
    let later = ts("2026-11-23T00:00:02Z");
    assert!(matches!(
        late_old.verify(&VerifyContext::new(&cn.id, &peers, later, &seen)),
        Err(Rejection::KeyNotValidAt { .. })
    ));
    let late_new = late.sign(&new_key).unwrap();
    assert!(
        late_new
            .verify(&VerifyContext::new(&cn.id, &peers, later, &seen))
            .is_ok()
    );
}

#[test]
fn rotation_needs_both_signatures_and_a_pinned_old_key() {
    let de = de();
    let new_key = NodeKey::from_seed([11; 32]);
    let good = KeyRotation::sign(
        de.id.clone(),
        &de.key,
        &new_key,
        ts(NOW),
        None,
        ts("2026-12-01T00:00:00Z"),
        ts(NOW),
    )
    .unwrap();
    let mut pinned = PinnedPeer::pin(&de.descriptor).unwrap();

    let mut no_old = good.clone();
    no_old.old_signature = no_old.new_signature;
    assert!(matches!(
        pinned.apply_rotation(&no_old),
        Err(DescriptorError::BadSignature(_))
    ));

    let mut no_new = good.clone();
    no_new.new_signature = no_new.old_signature;
    assert!(matches!(
        pinned.apply_rotation(&no_new),
        Err(DescriptorError::BadSignature(_))
    ));

    // An attacker's key cannot rotate in its own key.
    let attacker = NodeKey::from_seed([66; 32]);
    let hostile = KeyRotation::sign(
        de.id.clone(),
        &attacker,
        &new_key,
        ts(NOW),
        None,
        ts("2026-12-01T00:00:00Z"),
        ts(NOW),
    )
    .unwrap();
    assert!(matches!(
        pinned.apply_rotation(&hostile),
        Err(DescriptorError::UnknownKey(_))
    ));

    // A rotation cannot extend the old key: a second statement with a later end keeps the earlier.
    pinned.apply_rotation(&good).unwrap();
    let extend = KeyRotation::sign(
        de.id.clone(),
        &de.key,
        &new_key,
        ts(NOW),
        None,
        ts("2027-12-01T00:00:00Z"),
        ts(NOW),
    )
    .unwrap();
    pinned.apply_rotation(&extend).unwrap();
    assert_eq!(
        pinned.key(de.key.key_id()).unwrap().valid_until,
        Some(ts("2026-12-01T00:00:00Z"))
    );

    let wrong_node = KeyRotation::sign(
        NodeId::parse("fr-ocl").unwrap(),
        &de.key,
        &new_key,
        ts(NOW),
        None,
        ts("2026-12-01T00:00:00Z"),
        ts(NOW),
    )
    .unwrap();
    assert!(matches!(
        pinned.apply_rotation(&wrong_node),
        Err(DescriptorError::WrongNode { .. })
    ));
}

#[cfg(unix)]
#[test]
fn key_file_round_trip_and_permission_check() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.key");
    let key = NodeKey::generate().unwrap();
    key.save(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let loaded = NodeKey::load(&path).unwrap();
    assert_eq!(loaded.key_id(), key.key_id());
    assert_eq!(loaded.public_key(), key.public_key());

    assert!(matches!(key.save(&path), Err(KeyFileError::Exists { .. })));

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = NodeKey::load(&path).unwrap_err();
    assert!(matches!(err, KeyFileError::TooOpen { mode: 0o640, .. }), "{err}");
    assert!(err.to_string().contains("chmod 600"), "{err}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o604)).unwrap();
    assert!(matches!(NodeKey::load(&path), Err(KeyFileError::TooOpen { .. })));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    assert!(NodeKey::load(&path).is_ok());

    // A file whose public key does not match its secret is refused.
    let bad = dir.path().join("bad.key");
    let text = std::fs::read_to_string(&path).unwrap();
    let other = NodeKey::from_seed([5; 32]).public_key().to_hex();
    let text = text.replace(&key.public_key().to_hex(), &other);
    std::fs::write(&bad, text).unwrap();
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(NodeKey::load(&bad), Err(KeyFileError::Invalid { .. })));
}

#[test]
fn generated_keys_differ() {
    let a = NodeKey::generate().unwrap();
    let b = NodeKey::generate().unwrap();
    assert_ne!(a.key_id(), b.key_id());
}

#[test]
fn received_objects_must_use_the_one_spelling() {
    let de = de();
    let mut v = serde_json::to_value(&de.descriptor).unwrap();
    v["jurisdiction"] = serde_json::json!("de");
    let err = NodeDescriptor::from_slice(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert!(err.to_string().contains("canonical"), "{err}");
    let mut v = serde_json::to_value(&de.descriptor).unwrap();
    v["agency_id"] = serde_json::json!(de.descriptor.agency_id.to_string().to_uppercase());
    assert!(NodeDescriptor::from_slice(&serde_json::to_vec(&v).unwrap()).is_err());
    let mut v = serde_json::to_value(&de.descriptor).unwrap();
    v["keys"][0]["valid_until"] = serde_json::json!("2027-01-01T00:00:00Z");
    assert!(NodeDescriptor::from_slice(&serde_json::to_vec(&v).unwrap()).is_err());
    let mut v = serde_json::to_value(&de.descriptor).unwrap();
    v["keys"][0].as_object_mut().unwrap().remove("valid_until");
    assert!(NodeDescriptor::from_slice(&serde_json::to_vec(&v).unwrap()).is_err());
}

#[test]
fn descriptor_with_mismatched_key_id_is_refused() {
    let de = de();
    let mut d = de.descriptor.clone();
    d.keys.push(PublishedKey {
        key_id: NodeKey::from_seed([8; 32]).key_id().clone(),
        public_key: NodeKey::from_seed([9; 32]).public_key(),
        valid_from: ts(NOW),
        valid_until: None,
    });
    assert!(matches!(d.verify_self_signed(), Err(DescriptorError::KeyIdMismatch(_))));
}

/// Emergency revocation (#12, docs/federation.md §2.4): a statement signed by the compromised
/// key closes its window at the compromise for good; envelopes it signs later are refused; a
/// forged statement is refused; the operator re-pins the new descriptor and the revoked key
/// can never come back.
#[test]
fn a_revoked_key_is_refused_from_its_compromise_on_and_never_returns() {
    let (de, cn) = (de(), cn());
    let mut view = PinnedPeer::pin(&de.descriptor).unwrap();
    let since = ts("2026-11-22T09:00:00Z");
    let rev = KeyRevocation::sign(de.id.clone(), &de.key, since, ts(NOW), "laptop stolen").unwrap();
    let bytes = serde_json::to_vec(&rev).unwrap();
    let parsed = KeyRevocation::from_slice(&bytes).unwrap();
    // A statement signed by another key is refused, and changes nothing.
    let stranger = NodeKey::from_seed([42; 32]);
    let mut forged = KeyRevocation::sign(de.id.clone(), &stranger, since, ts(NOW), "x").unwrap();
    forged.key_id = de.key.key_id().clone();
    assert!(matches!(
        view.apply_revocation(&forged),
        Err(DescriptorError::BadSignature(_))
    ));
    assert!(view.revoked_keys.is_empty());
    // Applied once; again changes nothing.
    assert!(view.apply_revocation(&parsed).unwrap());
    assert!(!view.apply_revocation(&parsed).unwrap());
    assert_eq!(view.revoked_keys, vec![de.key.key_id().clone()]);
    // An envelope signed before the compromise still verifies; one signed after is refused.
    let mut peers = PeerSet::default();
    peers.insert(view.clone());
    let seen = HashSet::new();
    let mut before = draft(&de, &cn, 1);
    before.created_at = ts("2026-11-22T08:59:00Z");
    let before = before.sign(&de.key).unwrap();
    assert!(
        before
            .verify(&VerifyContext::new(&cn.id, &peers, ts("2026-11-22T09:01:00Z"), &seen))
            .is_ok()
    );
    let after = draft(&de, &cn, 2).sign(&de.key).unwrap();
    let e = after
        .verify(&VerifyContext::new(&cn.id, &peers, ts(NOW), &seen))
        .unwrap_err();
    assert_eq!(e.code(), "key_not_valid_at", "{e}");
    // Too long a reason, or a compromise after the statement, is refused.
    assert!(KeyRevocation::sign(de.id.clone(), &de.key, since, ts(NOW), &"x".repeat(501)).is_err());
    let late = KeyRevocation::sign(de.id.clone(), &de.key, ts("2026-12-01T00:00:00Z"), ts(NOW), "x").unwrap();
    assert!(matches!(
        view.apply_revocation(&late),
        Err(DescriptorError::Revocation(_))
    ));

    // The operator re-pins the node's new descriptor (new key, higher serial) after checking
    // its fingerprint by phone: the old key stays pinned (closed) for old messages, and stays
    // revoked.
    let new_key = NodeKey::from_seed([7; 32]);
    let new_desc = DescriptorDraft {
        node_id: de.id.clone(),
        agency_id: de.descriptor.agency_id,
        agency_name: de.descriptor.agency_name.clone(),
        jurisdiction: de.descriptor.jurisdiction,
        base_url: de.descriptor.base_url.clone(),
        tls_cert_sha256: de.descriptor.tls_cert_sha256,
        keys: vec![new_key.published(ts(NOW), None)],
        serial: 2,
        issued_at: ts(NOW),
    }
    .sign(&new_key)
    .unwrap();
    let repinned = view.repin(&new_desc).unwrap();
    assert_eq!(repinned.keys.len(), 2);
    assert_eq!(repinned.revoked_keys, vec![de.key.key_id().clone()]);
    assert_eq!(repinned.key(de.key.key_id()).unwrap().valid_until, Some(since));
    assert!(matches!(
        view.repin(&de.descriptor),
        Err(DescriptorError::StaleSerial { .. })
    ));
    // A later descriptor that lists the revoked key again (with an open window) is refused,
    // by re-pinning and by a descriptor update alike.
    let sneaky = DescriptorDraft {
        node_id: de.id.clone(),
        agency_id: de.descriptor.agency_id,
        agency_name: de.descriptor.agency_name.clone(),
        jurisdiction: de.descriptor.jurisdiction,
        base_url: de.descriptor.base_url.clone(),
        tls_cert_sha256: de.descriptor.tls_cert_sha256,
        keys: vec![
            new_key.published(ts(NOW), None),
            de.key.published(ts("2026-01-01T00:00:00Z"), None),
        ],
        serial: 3,
        issued_at: ts(NOW),
    }
    .sign(&new_key)
    .unwrap();
    assert!(matches!(repinned.repin(&sneaky), Err(DescriptorError::RevokedKey(_))));
    let mut updated = repinned.clone();
    assert!(matches!(
        updated.apply_descriptor(&sneaky, ts(NOW)),
        Err(DescriptorError::RevokedKey(_))
    ));
}
