#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Shared fixtures: a node with two agencies (FBI, MPS), a user per role in each, and tokens.
#![allow(dead_code)]

use jiff::{SignedDuration, Timestamp};
use liaison_core::directory::{Agency, AgencyKind};
use liaison_core::jurisdiction::Jurisdiction;
use liaison_core::request::{RequestDraft, RequestKind, Urgency};
use liaison_core::{AgencyId, CountryCode, Role};
use liaison_server::legal::Legal;
use liaison_server::service::Node;
use liaison_store::{Principal, Store};
use std::collections::HashMap;
use std::path::Path;

pub struct Fixture {
    pub node: Node,
    pub fbi: Agency,
    pub mps: Agency,
    pub users: HashMap<(String, Role), Principal>,
    pub tokens: HashMap<(String, Role), String>,
}

impl Fixture {
    pub fn who(&self, agency: &str, role: Role) -> &Principal {
        &self.users[&(agency.to_string(), role)]
    }
    pub fn token(&self, agency: &str, role: Role) -> &str {
        &self.tokens[&(agency.to_string(), role)]
    }
    pub fn draft(&self, kind: RequestKind) -> RequestDraft {
        RequestDraft {
            kind,
            urgency: Urgency::Routine,
            requesting_agency: self.fbi.id,
            requested_agency: self.mps.id,
            case_reference: "FBI-2026-0001".into(),
            offences: vec!["BC-02".into()],
            summary: "Intrusion into a hospital network from servers in the requested state".into(),
            targets: vec![],
            data_categories: vec![],
            legal_basis: "18 USC 1030".into(),
            related: vec![],
            attachments: vec![],
            amount: None,
            conduct: vec![],
        }
    }
}

pub fn legal() -> Legal {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
    match Legal::load(&dir) {
        Ok(l) => l,
        Err(e) => panic!("shipped rule packs do not load: {e}"),
    }
}

fn agency(code: &str, cc: &str, tz: &str) -> Agency {
    Agency {
        id: AgencyId::new(),
        code: code.into(),
        name_en: code.into(),
        name_native: code.into(),
        jurisdiction: CountryCode::parse(cc).unwrap(),
        kind: AgencyKind::Police,
        time_zone: tz.into(),
    }
}

pub async fn fixture(store: Store) -> Fixture {
    let node = Node::new(store, Default::default(), legal());
    let now = Timestamp::now();
    for (c, en, zh) in [("US", "United States", "美国"), ("CN", "China", "中国")] {
        node.store
            .upsert_jurisdiction(&Jurisdiction {
                code: CountryCode::parse(c).unwrap(),
                name_en: en.into(),
                name_zh: zh.into(),
            })
            .await
            .unwrap();
    }
    let fbi = agency("FBI", "US", "America/New_York");
    let mps = agency("CN-MPS", "CN", "Asia/Shanghai");
    node.store.insert_agency(&fbi, None, "test", now).await.unwrap();
    node.store.insert_agency(&mps, None, "test", now).await.unwrap();
    let mut users = HashMap::new();
    let mut tokens = HashMap::new();
    for a in [&fbi, &mps] {
        for &role in Role::ALL {
            let name = format!("{}.{}", a.code.to_lowercase(), role);
            let u = node
                .store
                .create_user(&name, &name, a.id, role, "test", now)
                .await
                .unwrap();
            let (secret, _) = node
                .store
                .create_token(u.id, "test", now + SignedDuration::from_hours(24), "test", now)
                .await
                .unwrap();
            users.insert(
                (a.code.clone(), role),
                Principal {
                    user: u.id,
                    username: name,
                    agency: a.id,
                    role,
                },
            );
            tokens.insert((a.code.clone(), role), secret);
        }
    }
    Fixture {
        node,
        fbi,
        mps,
        users,
        tokens,
    }
}

/// Serves the node on an ephemeral 127.0.0.1 port in the background; returns the base URL.
pub async fn serve(node: &Node) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let node = node.clone();
    tokio::spawn(async move {
        let _ = liaison_server::serve(
            node,
            listener,
            std::time::Duration::from_secs(3600),
            std::future::pending(),
        )
        .await;
    });
    format!("http://{addr}")
}
