#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use common::*;
use jiff::{SignedDuration, Timestamp};
use liaison_wire::*;
use serde_json::json;
use std::collections::HashSet;

fn verify_at(env: &Envelope, receiver: &Node, peers: &PeerSet, now: Timestamp) -> Result<Verified, Rejection> {
    let seen = HashSet::new();
    env.verify(&VerifyContext::new(&receiver.id, peers, now, &seen))
}

#[test]
fn sign_verify_round_trip_through_bytes() {
    let (de, cn) = (de(), cn());
    let env = draft(&de, &cn, 1).sign(&de.key).unwrap();
    let bytes = env.to_bytes().unwrap();
    let received = Envelope::from_slice(&bytes).unwrap();
    assert_eq!(received, env);
    let v = verify_at(&received, &cn, &peers_with(&de), ts(NOW)).unwrap();
    assert_eq!(v.sender, de.id);
    assert_eq!(v.link_seq, 1);
    assert_eq!(v.envelope_hash, env.hash().unwrap());
    assert_eq!(v.skew_ms, 0);
}

#[test]
fn tampered_payload_is_rejected() {
    let (de, cn) = (de(), cn());
    let mut env = draft(&de, &cn, 1).sign(&de.key).unwrap();
    env.payload["summary"] = json!("Preserve everything");
    assert_eq!(
        verify_at(&env, &cn, &peers_with(&de), ts(NOW)),
        Err(Rejection::PayloadHashMismatch)
    );
}

type Tamper = Box<dyn Fn(&mut Envelope)>;

#[test]
fn tampered_header_fields_break_the_signature() {
    let (de, cn) = (de(), cn());
    let peers = peers_with(&de);
    let env = draft(&de, &cn, 1).sign(&de.key).unwrap();
    let tamperings: Vec<Tamper> = vec![
        Box::new(|e| e.header.link_seq = 2),
        Box::new(|e| e.header.payload_type = PayloadType::Comment),
        Box::new(|e| e.header.created_at = ts("2026-11-22T10:00:01Z")),
        Box::new(|e| e.header.message_id = message_id(99)),
        Box::new(|e| e.header.payload_hash = Hash256::digest(b"other")),
        Box::new(|e| e.header.signature.0[0] ^= 1),
    ];
    for t in tamperings {
        let mut e = env.clone();
        t(&mut e);
        let r = verify_at(&e, &cn, &peers, ts(NOW)).unwrap_err();
        assert_eq!(r.code(), "bad_signature", "{r}");
    }
}

#[test]
fn signature_by_another_key_is_rejected() {
    let (de, cn) = (de(), cn());
    let mut env = draft(&de, &cn, 1).sign(&de.key).unwrap();
    let forged = draft(&de, &cn, 1).sign(&NodeKey::from_seed([9; 32])).unwrap();
    env.header.signature = forged.header.signature;
    assert!(matches!(
        verify_at(&env, &cn, &peers_with(&de), ts(NOW)),
        Err(Rejection::BadSignature { .. })
    ));
}

#[test]
fn wrong_recipient_unknown_sender_and_unknown_key() {
    let (de, cn) = (de(), cn());
    let other = node("fr-ocl", 3, "FR");
    let env = draft(&de, &cn, 1).sign(&de.key).unwrap();
    assert!(matches!(
        verify_at(&env, &other, &peers_with(&de), ts(NOW)),
        Err(Rejection::WrongRecipient { .. })
    ));
    assert_eq!(
        verify_at(&env, &cn, &peers_with(&other), ts(NOW)),
        Err(Rejection::UnknownSender(de.id.clone()))
    );
    let by_unknown = draft(&de, &cn, 1).sign(&NodeKey::from_seed([9; 32])).unwrap();
    assert!(matches!(
        verify_at(&by_unknown, &cn, &peers_with(&de), ts(NOW)),
        Err(Rejection::UnknownKey { .. })
    ));
}

#[test]
fn replay_is_rejected() {
    let (de, cn) = (de(), cn());
    let peers = peers_with(&de);
    let env = draft(&de, &cn, 1).sign(&de.key).unwrap();
    let mut seen = HashSet::new();
    let ctx = VerifyContext::new(&cn.id, &peers, ts(NOW), &seen);
    let v = env.verify(&ctx).unwrap();
    seen.insert(v.message_id);
    let ctx = VerifyContext::new(&cn.id, &peers, ts(NOW), &seen);
    assert_eq!(env.verify(&ctx), Err(Rejection::Replay(env.header.message_id)));
}

#[test]
fn clock_outside_window_is_rejected() {
    let (de, cn) = (de(), cn());
    let peers = peers_with(&de);
    let env = draft(&de, &cn, 1).sign(&de.key).unwrap();
    assert!(verify_at(&env, &cn, &peers, ts("2026-11-22T10:05:00Z")).is_ok());
    assert_eq!(
        verify_at(&env, &cn, &peers, ts("2026-11-22T10:05:00.001Z")),
        Err(Rejection::StaleOrFuture {
            skew_ms: 300_001,
            max_ms: 300_000
        })
    );
    assert_eq!(
        verify_at(&env, &cn, &peers, ts("2026-11-22T09:54:00Z")),
        Err(Rejection::StaleOrFuture {
            skew_ms: -360_000,
            max_ms: 300_000
        })
    );
    let seen = HashSet::new();
    let wide = VerifyContext::new(&cn.id, &peers, ts("2026-11-22T10:30:00Z"), &seen)
        .with_max_skew(SignedDuration::from_mins(60));
    assert!(env.verify(&wide).is_ok());
}

#[test]
fn expired_key_is_rejected() {
    let (de, cn) = (de(), cn());
    let mut peers = peers_with(&de);
    peers.get_mut(&de.id).unwrap().keys[0].valid_until = Some(ts("2026-06-01T00:00:00Z"));
    let env = draft(&de, &cn, 1).sign(&de.key).unwrap();
    assert!(matches!(
        verify_at(&env, &cn, &peers, ts(NOW)),
        Err(Rejection::KeyNotValidAt { .. })
    ));
}

#[test]
fn strict_parsing_refuses_other_spellings() {
    let (de, cn) = (de(), cn());
    let env = draft(&de, &cn, 1).sign(&de.key).unwrap();
    let mut v = serde_json::to_value(&env).unwrap();
    v["extra"] = json!(1);
    assert_eq!(Envelope::from_value(v).unwrap_err().code(), "malformed");
    let mut v = serde_json::to_value(&env).unwrap();
    v["created_at"] = json!("2026-11-22T10:00:00Z");
    assert_eq!(Envelope::from_value(v).unwrap_err().code(), "malformed");
    let mut v = serde_json::to_value(&env).unwrap();
    v["payload_hash"] = json!(env.header.payload_hash.to_hex().to_uppercase());
    assert_eq!(Envelope::from_value(v).unwrap_err().code(), "malformed");
    let mut v = serde_json::to_value(&env).unwrap();
    v.as_object_mut().unwrap().remove("payload");
    assert_eq!(Envelope::from_value(v).unwrap_err().code(), "malformed");
    assert_eq!(Envelope::from_slice(b"[1]").unwrap_err().code(), "malformed");
}

#[test]
fn floats_are_not_allowed_in_payloads() {
    let (de, cn) = (de(), cn());
    let mut d = draft(&de, &cn, 1);
    d.payload = json!({"amount": 1.5});
    assert!(matches!(d.sign(&de.key), Err(SignError::PayloadNumbers(_))));
    // A received envelope with a float (hash computed by a careless sender) is malformed.
    let mut env = draft(&de, &cn, 1).sign(&de.key).unwrap();
    env.payload = json!({"amount": 1.5});
    assert_eq!(
        verify_at(&env, &cn, &peers_with(&de), ts(NOW)).unwrap_err().code(),
        "malformed"
    );
}

#[test]
fn receipts_verify_and_bind_the_envelope() {
    let (de, cn) = (de(), cn());
    let env = draft(&de, &cn, 1).sign(&de.key).unwrap();
    let v = verify_at(&env, &cn, &peers_with(&de), ts(NOW)).unwrap();
    let receipt = Receipt::issue(&v, ts("2026-11-22T10:00:00.250Z"), &cn.key).unwrap();
    // The sender parses and checks it against its pinned view of the receiver.
    let bytes = serde_json::to_vec(&receipt).unwrap();
    let parsed = Receipt::from_slice(&bytes).unwrap();
    let sender_peers = peers_with(&cn);
    parsed.verify(&env.header, &sender_peers).unwrap();

    let other = draft(&de, &cn, 2).sign(&de.key).unwrap();
    assert_eq!(
        parsed.verify(&other.header, &sender_peers),
        Err(Rejection::ReceiptMismatch { field: "message_id" })
    );
    let mut forged = parsed.clone();
    forged.received_at = ts("2026-11-22T10:00:01Z");
    assert!(matches!(
        forged.verify(&env.header, &sender_peers),
        Err(Rejection::BadSignature { .. })
    ));
    // A receipt signed by someone else (here the sender itself) is refused.
    let self_signed = Receipt::issue(&v, ts(NOW), &de.key).unwrap();
    assert!(matches!(
        self_signed.verify(&env.header, &sender_peers),
        Err(Rejection::UnknownKey { .. })
    ));
}

#[test]
fn link_order_classifies_sequence_numbers() {
    assert_eq!(link_order(0, 1), LinkOrder::Next);
    assert_eq!(link_order(5, 6), LinkOrder::Next);
    assert_eq!(link_order(5, 5), LinkOrder::AlreadyApplied);
    assert_eq!(link_order(5, 9), LinkOrder::Gap { expected: 6 });
    let (de, cn) = (de(), cn());
    let mut d = draft(&de, &cn, 1);
    d.link_seq = 0;
    assert_eq!(d.sign(&de.key).unwrap_err(), SignError::ZeroLinkSeq);
}

#[test]
fn rejection_codes_are_distinct() {
    let codes = [
        Rejection::PayloadHashMismatch.code(),
        Rejection::Replay(message_id(1)).code(),
        Rejection::UnknownSender(NodeId::parse("x").unwrap()).code(),
        Rejection::StaleOrFuture { skew_ms: 0, max_ms: 0 }.code(),
    ];
    let unique: HashSet<_> = codes.iter().collect();
    assert_eq!(unique.len(), codes.len());
}

/// Protocol versions (docs/federation.md §3.4): envelopes are signed in the negotiated
/// version, every supported version is accepted, a payload needing a newer version is refused
/// on both sides, and a receipt answers in the envelope's version.
#[test]
fn protocol_versions_are_negotiated_and_checked() {
    let (de, cn) = (de(), cn());
    let peers = peers_with(&de);
    assert_eq!(negotiate(1), Some(1));
    assert_eq!(negotiate(PROTOCOL_VERSION), Some(PROTOCOL_VERSION));
    assert_eq!(negotiate(PROTOCOL_VERSION + 5), Some(PROTOCOL_VERSION));
    assert_eq!(negotiate(0), None);
    // A peer pinned before versions were negotiated (its stored record has no version) speaks 1.
    let mut stored = serde_json::to_value(PinnedPeer::pin(&de.descriptor).unwrap()).unwrap();
    assert_eq!(stored["protocol_version"], PROTOCOL_VERSION);
    stored.as_object_mut().unwrap().remove("protocol_version");
    let old: PinnedPeer = serde_json::from_value(stored).unwrap();
    assert_eq!(old.negotiated_version().unwrap(), 1);

    // Every supported version verifies, and its receipt is in the same version.
    for v in MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION {
        let env = draft(&de, &cn, 1).sign_version(&de.key, v).unwrap();
        assert_eq!(env.header.version, v);
        let ok = verify_at(&env, &cn, &peers, ts(NOW)).unwrap();
        let receipt = Receipt::issue(&ok, ts(NOW), &cn.key).unwrap();
        assert_eq!(receipt.version, v);
    }
    // A version the receiver does not speak is refused, naming the range it speaks.
    assert!(matches!(
        draft(&de, &cn, 1).sign_version(&de.key, PROTOCOL_VERSION + 1),
        Err(SignError::Version(_))
    ));
    let mut newer = draft(&de, &cn, 1).sign(&de.key).unwrap();
    newer.header.version = PROTOCOL_VERSION + 1;
    let e = verify_at(&newer, &cn, &peers, ts(NOW)).unwrap_err();
    assert_eq!(e.code(), "unsupported_version");
    assert!(
        e.to_string()
            .contains(&format!("versions {MIN_PROTOCOL_VERSION} to {PROTOCOL_VERSION}")),
        "{e}"
    );

    // An amount needs version 2: not signed for a version-1 peer, and refused in a version-1
    // envelope (a forged or broken sender).
    let mut with_amount = draft(&de, &cn, 1);
    with_amount.payload = json!({"request": {"amount": {"value": "2500.5", "currency": "USD"}}, "actor": "x"});
    assert_eq!(
        payload_min_version(PayloadType::RequestSubmitted, &with_amount.payload),
        2
    );
    match with_amount.clone().sign_version(&de.key, 1) {
        Err(SignError::PeerTooOld { needs: 2, peer: 1 }) => {}
        other => panic!("expected PeerTooOld, got {other:?}"),
    }
    let env = with_amount.clone().sign_version(&de.key, 2).unwrap();
    assert!(verify_at(&env, &cn, &peers, ts(NOW)).is_ok());
    // Re-sign the same content claiming version 1: the signature is good, the version is not.
    let mut v1 = with_amount.clone().sign_version(&de.key, 2).unwrap();
    v1.header.version = 1;
    v1.header.signature = de.key.sign_bytes(&v1.header.signing_input().unwrap());
    let e = verify_at(&v1, &cn, &peers, ts(NOW)).unwrap_err();
    assert_eq!(e.code(), "malformed");
    assert!(e.to_string().contains("needs protocol version 2"), "{e}");

    // A target naming its provider needs version 3 (older nodes refuse unknown target fields).
    let mut with_provider = draft(&de, &cn, 1);
    with_provider.payload = json!({"request": {"targets": [
        {"value": {"type": "domain", "name": "example.org"}},
        {"value": {"type": "domain", "name": "example.net"}, "provider": {"name": "ExampleMail", "established_in": "US"}}
    ]}, "actor": "x"});
    assert_eq!(
        payload_min_version(PayloadType::RequestSubmitted, &with_provider.payload),
        3
    );
    match with_provider.clone().sign_version(&de.key, 2) {
        Err(SignError::PeerTooOld { needs: 3, peer: 2 }) => {}
        other => panic!("expected PeerTooOld, got {other:?}"),
    }
    let env = with_provider.sign_version(&de.key, 3).unwrap();
    assert!(verify_at(&env, &cn, &peers, ts(NOW)).is_ok());

    // Clean-up notices and answers need version 4: never signed for an older peer, and a v4
    // payload in a v3 envelope is refused by the receiver.
    for t in [PayloadType::CleanupNotice, PayloadType::CleanupStatus] {
        let mut d = draft(&de, &cn, 1);
        d.payload_type = t;
        d.payload = json!({"notice_id": "x"});
        assert_eq!(payload_min_version(t, &d.payload), 4);
        match d.clone().sign_version(&de.key, 3) {
            Err(SignError::PeerTooOld { needs: 4, peer: 3 }) => {}
            other => panic!("expected PeerTooOld, got {other:?}"),
        }
        let mut old = d.clone().sign_version(&de.key, 4).unwrap();
        assert!(verify_at(&old, &cn, &peers, ts(NOW)).is_ok());
        old.header.version = 3;
        old.header.signature = de.key.sign_bytes(&old.header.signing_input().unwrap());
        let e = verify_at(&old, &cn, &peers, ts(NOW)).unwrap_err();
        assert!(e.to_string().contains("needs protocol version 4"), "{e}");
    }

    // A notice that states a PAP needs version 5; without one, 4 still carries it.
    let mut d = draft(&de, &cn, 1);
    d.payload_type = PayloadType::CleanupNotice;
    d.payload = json!({"notice_id": "x", "pap": "PAP:AMBER"});
    assert_eq!(payload_min_version(PayloadType::CleanupNotice, &d.payload), 5);
    match d.clone().sign_version(&de.key, 4) {
        Err(SignError::PeerTooOld { needs: 5, peer: 4 }) => {}
        other => panic!("expected PeerTooOld, got {other:?}"),
    }
    assert!(verify_at(&d.sign_version(&de.key, 5).unwrap(), &cn, &peers, ts(NOW)).is_ok());
}
