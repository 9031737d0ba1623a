#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! Evidence files (docs/evidence.md, issue #13): resumable upload, wrong hash refused, content
//! sealed on disk and checked on read, key rotation, RED files, custody, legal hold and the
//! retention sweep — on SQLite and, when it answers, PostgreSQL.

use jiff::{SignedDuration, Timestamp};
use liaison_core::lifecycle::{State, TransitionInput};
use liaison_core::record::EvidenceKind;
use liaison_core::request::RequestKind;
use liaison_core::{Marking, Role, Tlp};
use liaison_service::evidence::{CHUNK, EvidenceConfig, NewEvidence, RetentionRule};
use liaison_service::fixtures::{self, TwoAgencies};
use liaison_service::{Principal, ServiceError};
use sha2::{Digest, Sha256};
use std::path::Path;

fn content(len: usize, seed: u8) -> Vec<u8> {
    // Recognisable plaintext: a repeated phrase with a counter.
    let mut v = Vec::with_capacity(len);
    let mut i = 0u64;
    while v.len() < len {
        v.extend_from_slice(format!("EVIDENCE-PLAINTEXT-{seed}-{i:010}\n").as_bytes());
        i += 1;
    }
    v.truncate(len);
    v
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

async fn submitted(f: &TwoAgencies, now: Timestamp) -> liaison_core::RequestId {
    let officer = f.who("FBI", Role::Officer);
    let r = f
        .node
        .create_request(officer, f.draft(RequestKind::SubscriberInformation), now)
        .await
        .unwrap();
    let submit = TransitionInput {
        to: Some(State::Submitted),
        ..Default::default()
    };
    f.node
        .transition(officer, r.request.id, r.request.version, submit, now)
        .await
        .unwrap();
    r.request.id
}

async fn upload(
    f: &TwoAgencies,
    p: &Principal,
    id: liaison_core::RequestId,
    name: &str,
    marking: Option<Marking>,
    bytes: &[u8],
    now: Timestamp,
) -> liaison_core::record::EvidenceFile {
    let u = f
        .node
        .evidence_upload_begin(
            p,
            id,
            NewEvidence {
                file_name: name.into(),
                media_type: Some("application/octet-stream".into()),
                marking,
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
    let mut w = f.node.evidence_upload_piece(p, &u.id, 0).await.unwrap();
    w.write(bytes).await.unwrap();
    w.finish().await.unwrap();
    f.node
        .evidence_upload_finish(p, &u.id, Some(&sha(bytes)), now)
        .await
        .unwrap()
}

async fn download(f: &TwoAgencies, p: &Principal, file: &str, now: Timestamp) -> Result<Vec<u8>, ServiceError> {
    let mut d = f.node.evidence_download(p, None, file, now).await?;
    let mut out = Vec::new();
    while let Some(c) = d.content.next_chunk().await? {
        out.extend_from_slice(&c);
    }
    Ok(out)
}

#[tokio::test]
async fn evidence_on_every_backend() {
    for node in fixtures::nodes_on_every_backend().await.unwrap() {
        let dir = std::env::temp_dir().join(format!("liaison-evidence-test-{}", uuid::Uuid::now_v7()));
        let config = EvidenceConfig {
            retention: vec![RetentionRule {
                kind: Some(EvidenceKind::Supporting),
                tlp: None,
                days: 30,
            }],
            max_open_uploads: Some(4),
            upload_expiry_hours: Some(1),
            ..Default::default()
        }
        .resolved(&dir);
        let node = node.with_evidence(config).unwrap();
        let f = TwoAgencies::on(node).await.unwrap();
        let now = Timestamp::now();
        let id = submitted(&f, now).await;
        resumable_upload_and_download(&f, id, &dir, now).await;
        wrong_hash_is_refused(&f, id, now).await;
        altered_content_is_detected(&f, id, now).await;
        rotation_keeps_files_readable(&f, id, &dir, now).await;
        red_file_reaches_named_recipient_only(&f, id, now).await;
        hold_blocks_the_sweep(&f, now).await;
        unfinished_uploads_are_bounded(&f, id, &dir, now).await;
        let audit = f.node.verify_audit(f.who("FBI", Role::Auditor)).await.unwrap();
        assert_eq!(
            audit.first_bad, None,
            "the audit chain verifies with the custody entries"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

async fn resumable_upload_and_download(f: &TwoAgencies, id: liaison_core::RequestId, dir: &Path, now: Timestamp) {
    let officer = f.who("FBI", Role::Officer);
    let bytes = content(2 * CHUNK + 12_345, 1);
    let u = f
        .node
        .evidence_upload_begin(
            officer,
            id,
            NewEvidence {
                file_name: "../../subscriber records.csv".into(),
                media_type: Some("text/csv".into()),
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(u.kind, EvidenceKind::Supporting);
    assert_eq!(u.file_name, "subscriber records.csv");
    // The first piece breaks off after 1.5 chunks: the whole chunk stays, the rest is lost.
    {
        let mut w = f.node.evidence_upload_piece(officer, &u.id, 0).await.unwrap();
        w.write(&bytes[..CHUNK + CHUNK / 2]).await.unwrap();
        // A second piece at the same time is refused.
        assert!(matches!(
            f.node.evidence_upload_piece(officer, &u.id, 0).await,
            Err(ServiceError::Conflict(_))
        ));
        drop(w);
    }
    let st = f.node.evidence_upload_status(officer, &u.id).await.unwrap();
    assert_eq!(st.received, CHUNK as u64, "resumes after the last whole chunk");
    // Someone else's session is not found; a wrong offset is a conflict naming the right one.
    assert!(matches!(
        f.node
            .evidence_upload_status(f.who("FBI", Role::Supervisor), &u.id)
            .await,
        Err(ServiceError::NotFound(_))
    ));
    match f.node.evidence_upload_piece(officer, &u.id, 7).await {
        Err(ServiceError::Conflict(m)) => assert!(m.contains(&CHUNK.to_string()), "{m}"),
        _ => panic!("a piece at the wrong offset must be refused"),
    }
    // Resume in two more pieces, one ending mid-chunk.
    let mut w = f
        .node
        .evidence_upload_piece(officer, &u.id, CHUNK as u64)
        .await
        .unwrap();
    w.write(&bytes[CHUNK..CHUNK + 1000]).await.unwrap();
    assert_eq!(w.finish().await.unwrap(), CHUNK as u64 + 1000);
    let mut w = f
        .node
        .evidence_upload_piece(officer, &u.id, CHUNK as u64 + 1000)
        .await
        .unwrap();
    w.write(&bytes[CHUNK + 1000..]).await.unwrap();
    assert_eq!(w.finish().await.unwrap(), bytes.len() as u64);
    let file = f
        .node
        .evidence_upload_finish(officer, &u.id, Some(&sha(&bytes)), now)
        .await
        .unwrap();
    assert_eq!(file.size, bytes.len() as u64);
    assert_eq!(file.sha256, sha(&bytes));
    assert_eq!(file.media_type_claimed.as_deref(), Some("text/csv"));
    assert_eq!(file.marking.tlp, Tlp::AmberStrict, "at least the request's marking");
    // The session is gone; the content is at its address, sealed, mode 0600.
    assert!(f.node.evidence_upload_status(officer, &u.id).await.is_err());
    let path = liaison_service::evidence::content_path_for_test(&f.node, &file.sha256).unwrap();
    assert!(path.starts_with(dir));
    let on_disk = std::fs::read(&path).unwrap();
    assert!(
        !on_disk.windows(20).any(|w| w == b"EVIDENCE-PLAINTEXT-1"),
        "no plaintext on disk"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::metadata(path.parent().unwrap().parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    // The other party reads it; custody records upload then each download.
    let desk = f.who("CN-MPS", Role::Desk);
    assert_eq!(download(f, desk, &file.id, now).await.unwrap(), bytes);
    let list = f.node.evidence_list(desk, id, now).await.unwrap();
    assert!(list.iter().any(|x| x.id == file.id));
    let custody = f.node.evidence_custody(officer, None, &file.id, now).await.unwrap();
    let steps: Vec<(&str, &str)> = custody.iter().map(|e| (e.action.as_str(), e.actor.as_str())).collect();
    assert_eq!(
        steps,
        vec![("evidence.upload", "fbi.officer"), ("evidence.download", "cn-mps.desk")]
    );
    // A third agency's user finds nothing.
    let other = fixtures::agency("DE-BKA", "DE", "Europe/Berlin").unwrap();
    let bka = f.add_agency(&other, "bka.officer", Role::Officer).await.unwrap();
    assert!(matches!(
        f.node.evidence_meta(&bka, None, &file.id, now).await,
        Err(ServiceError::NotFound(_))
    ));
    assert!(matches!(
        download(f, &bka, &file.id, now).await,
        Err(ServiceError::NotFound(_))
    ));
    // Kinds follow the sides.
    let r = f
        .node
        .evidence_upload_begin(
            desk,
            id,
            NewEvidence {
                kind: Some(EvidenceKind::Supporting),
                file_name: "x".into(),
                ..Default::default()
            },
            now,
        )
        .await;
    assert!(matches!(r, Err(ServiceError::Invalid(_))));
}

async fn wrong_hash_is_refused(f: &TwoAgencies, id: liaison_core::RequestId, now: Timestamp) {
    let officer = f.who("FBI", Role::Officer);
    let u = f
        .node
        .evidence_upload_begin(
            officer,
            id,
            NewEvidence {
                file_name: "a.bin".into(),
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
    let mut w = f.node.evidence_upload_piece(officer, &u.id, 0).await.unwrap();
    w.write(b"some bytes").await.unwrap();
    w.finish().await.unwrap();
    let r = f
        .node
        .evidence_upload_finish(officer, &u.id, Some(&"0".repeat(64)), now)
        .await;
    assert!(matches!(r, Err(ServiceError::Integrity(_))), "{r:?}");
    assert!(
        f.node
            .evidence_list(officer, id, now)
            .await
            .unwrap()
            .iter()
            .all(|x| x.file_name != "a.bin")
    );
}

async fn altered_content_is_detected(f: &TwoAgencies, id: liaison_core::RequestId, now: Timestamp) {
    let officer = f.who("FBI", Role::Officer);
    let bytes = content(CHUNK + 500, 2);
    let file = upload(f, officer, id, "image.dd", None, &bytes, now).await;
    let path = liaison_service::evidence::content_path_for_test(&f.node, &file.sha256).unwrap();
    let mut raw = std::fs::read(&path).unwrap();
    let at = raw.len() - 100;
    raw[at] ^= 0x01;
    std::fs::write(&path, &raw).unwrap();
    match download(f, officer, &file.id, now).await {
        Err(ServiceError::Integrity(m)) => assert!(m.contains("chunk 1"), "{m}"),
        other => panic!("a flipped byte must be detected, got {:?}", other.map(|b| b.len())),
    }
    // Cut off the last chunk: detected as truncation.
    let cut = raw.len() - (500 + 16 + 29);
    raw[at] ^= 0x01;
    std::fs::write(&path, &raw[..cut]).unwrap();
    match download(f, officer, &file.id, now).await {
        Err(ServiceError::Integrity(m)) => assert!(m.contains("truncated"), "{m}"),
        other => panic!("a truncation must be detected, got {:?}", other.map(|b| b.len())),
    }
    std::fs::write(&path, &raw).unwrap();
    assert_eq!(download(f, officer, &file.id, now).await.unwrap(), bytes);
}

async fn rotation_keeps_files_readable(f: &TwoAgencies, id: liaison_core::RequestId, dir: &Path, now: Timestamp) {
    let officer = f.who("FBI", Role::Officer);
    let bytes = content(4000, 3);
    let file = upload(f, officer, id, "ledger.xlsx", None, &bytes, now).await;
    let key_file = dir.join("evidence.key");
    let before = std::fs::read_to_string(&key_file).unwrap();
    assert!(matches!(
        f.node.evidence_rotate_key(officer, now).await,
        Err(ServiceError::Forbidden(_))
    ));
    let n = f
        .node
        .evidence_rotate_key(f.who("FBI", Role::Admin), now)
        .await
        .unwrap();
    assert!(n >= 3, "every live file's key re-wrapped: {n}");
    let after = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(before, after);
    assert_eq!(after.lines().filter(|l| l.starts_with("kek ")).count(), 1);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(download(f, officer, &file.id, now).await.unwrap(), bytes);
}

async fn red_file_reaches_named_recipient_only(f: &TwoAgencies, id: liaison_core::RequestId, now: Timestamp) {
    let officer = f.who("FBI", Role::Officer);
    let red = Marking {
        tlp: Tlp::Red,
        recipients: vec!["cn-mps.desk".into()],
    };
    let file = upload(f, officer, id, "informant.pdf", Some(red), b"%PDF-1.7 secret", now).await;
    assert_eq!(file.media_type_sniffed.as_deref(), Some("application/pdf"));
    let desk = f.who("CN-MPS", Role::Desk);
    let other = f.who("CN-MPS", Role::Officer);
    assert_eq!(download(f, desk, &file.id, now).await.unwrap(), b"%PDF-1.7 secret");
    assert!(
        f.node
            .evidence_list(other, id, now)
            .await
            .unwrap()
            .iter()
            .all(|x| x.id != file.id)
    );
    assert!(matches!(
        f.node.evidence_meta(other, None, &file.id, now).await,
        Err(ServiceError::NotFound(_))
    ));
    assert!(matches!(
        download(f, other, &file.id, now).await,
        Err(ServiceError::NotFound(_))
    ));
    assert!(matches!(
        f.node.evidence_custody(other, None, &file.id, now).await,
        Err(ServiceError::NotFound(_))
    ));
}

async fn hold_blocks_the_sweep(f: &TwoAgencies, now: Timestamp) {
    let id = submitted(f, now).await;
    let officer = f.who("FBI", Role::Officer);
    let kept = upload(f, officer, id, "held.txt", None, b"held content", now).await;
    let gone = upload(f, officer, id, "expired.txt", None, b"expired content", now).await;
    let legal = f.who("FBI", Role::LegalReviewer);
    assert!(matches!(
        f.node
            .evidence_hold(officer, id, Some(&kept.id), "court order", now)
            .await,
        Err(ServiceError::Forbidden(_))
    ));
    f.node
        .evidence_hold(legal, id, Some(&kept.id), "court order 2026/17", now)
        .await
        .unwrap();
    let later = now + SignedDuration::from_hours(31 * 24);
    // Not yet expired: nothing happens.
    let r = f.node.evidence_sweep(None, now).await.unwrap();
    assert!(r.deleted.iter().all(|d| d != &gone.id && d != &kept.id));
    let r = f.node.evidence_sweep(None, later).await.unwrap();
    assert!(r.deleted.contains(&gone.id), "{r:?}");
    assert!(r.held.contains(&kept.id), "{r:?}");
    assert!(!r.deleted.contains(&kept.id));
    let path = liaison_service::evidence::content_path_for_test(&f.node, &gone.sha256).unwrap();
    assert!(!path.exists(), "content of a deleted file removed");
    assert!(matches!(
        download(f, officer, &gone.id, later).await,
        Err(ServiceError::NotFound(_))
    ));
    let meta = f.node.evidence_meta(officer, None, &gone.id, later).await.unwrap();
    assert!(meta.deleted_at.is_some());
    let custody = f
        .node
        .evidence_custody(officer, Some(id), &gone.id, later)
        .await
        .unwrap();
    let last = custody.last().unwrap();
    assert_eq!(last.action, "evidence.delete");
    assert!(last.detail.contains("deleted under retention"), "{}", last.detail);
    assert_eq!(download(f, officer, &kept.id, later).await.unwrap(), b"held content");
    // A hold on the whole request holds every file; lifting it lets the sweep go on.
    f.node.evidence_release(legal, id, Some(&kept.id), later).await.unwrap();
    f.node
        .evidence_hold(legal, id, None, "litigation", later)
        .await
        .unwrap();
    let r = f.node.evidence_sweep(None, later).await.unwrap();
    assert!(r.held.contains(&kept.id));
    f.node.evidence_release(legal, id, None, later).await.unwrap();
    let r = f
        .node
        .evidence_sweep(Some(f.who("FBI", Role::Admin)), later)
        .await
        .unwrap();
    assert!(r.deleted.contains(&kept.id));
    let actions: Vec<String> = f
        .node
        .evidence_custody(officer, None, &kept.id, later)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            "evidence.upload",
            "evidence.hold",
            "evidence.download",
            "evidence.release",
            "evidence.delete"
        ]
    );
}

/// A user has at most `max_open_uploads` unfinished uploads; the sweep removes the ones begun
/// more than `upload_expiry_hours` ago whose session file has not moved for as long.
async fn unfinished_uploads_are_bounded(f: &TwoAgencies, id: liaison_core::RequestId, dir: &Path, now: Timestamp) {
    let sup = f.who("FBI", Role::Supervisor);
    let begin = || async {
        f.node
            .evidence_upload_begin(
                sup,
                id,
                NewEvidence {
                    file_name: "partial.bin".into(),
                    ..Default::default()
                },
                now,
            )
            .await
    };
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(begin().await.unwrap().id);
    }
    match begin().await {
        Err(ServiceError::Conflict(m)) => assert!(m.contains("max_open_uploads"), "{m}"),
        other => panic!("a fifth open upload must be refused, got {other:?}"),
    }
    // Another user's count is their own.
    let other = f
        .node
        .evidence_upload_begin(
            f.who("FBI", Role::Officer),
            id,
            NewEvidence {
                file_name: "other.bin".into(),
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
    // Not yet expired: begun now.
    let r = f.node.evidence_sweep(None, now).await.unwrap();
    assert!(r.uploads_expired.is_empty(), "{r:?}");
    // Two hours later, two sessions have been idle for three hours, the others moved recently.
    let idle = std::time::SystemTime::now() - std::time::Duration::from_secs(3 * 3600);
    for u in &open[..2] {
        let path = dir.join("evidence").join("uploads").join(u);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(idle)
            .unwrap();
    }
    let later = now + jiff::SignedDuration::from_hours(2);
    let r = f.node.evidence_sweep(None, later).await.unwrap();
    let mut expired = r.uploads_expired.clone();
    expired.sort();
    let mut want = open[..2].to_vec();
    want.sort();
    assert_eq!(expired, want, "only the idle sessions expire");
    for u in &open[..2] {
        assert!(!dir.join("evidence").join("uploads").join(u).exists());
        assert!(matches!(
            f.node.evidence_upload_status(sup, u).await,
            Err(ServiceError::NotFound(_))
        ));
    }
    assert!(f.node.evidence_upload_status(sup, &open[2]).await.is_ok());
    // Room again for two.
    open.push(begin().await.unwrap().id);
    for u in open[2..].iter().chain(std::iter::once(&other.id)) {
        let who = if *u == other.id {
            f.who("FBI", Role::Officer)
        } else {
            sup
        };
        f.node.evidence_upload_abort(who, u).await.unwrap();
    }
}
