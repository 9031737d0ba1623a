//! `liaison demo`: a throwaway node with a realistic directory and two years of requests.
//!
//! The agencies are real public bodies; every phone number, e-mail address and person is
//! fictitious (555 numbers, `.invalid` domains). The requests follow each pair's typical
//! behaviour, including the pattern the project exists to fix: letters between some pairs go
//! unanswered for months (of ten requests one agency sent in a year, two were answered).

use super::{Ctx, open_node};
use crate::config::Config;
use anyhow::{Context, Result};
use clap::Args;
use jiff::{SignedDuration, Timestamp};
use liaison_core::directory::{Agency, AgencyKind, ContactPoint};
use liaison_core::lifecycle::{RefusalReason, State, TransitionInput};
use liaison_core::request::{Amount, RequestDraft, RequestKind, Target, TargetValue, Urgency};
use liaison_core::{AgencyId, ContactId, CountryCode, Role};
use liaison_server::service::{GroupBy, Node};
use liaison_store::Principal;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8640")]
    pub listen: String,
    /// Build the data, print the report and exit instead of serving.
    #[arg(long)]
    pub no_serve: bool,
    /// Random seed (the same seed gives the same cases).
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// Number of requests to generate.
    #[arg(long, default_value_t = 360)]
    pub requests: usize,
    /// Skip the second part: two federated nodes (US FBI and China's MPS) exchanging a request.
    #[arg(long)]
    pub no_federation: bool,
}

struct A {
    code: &'static str,
    en: &'static str,
    native: &'static str,
    cc: &'static str,
    kind: AgencyKind,
    tz: &'static str,
    phone: &'static str,
    langs: &'static [&'static str],
    hours: &'static str,
}

const AGENCIES: &[A] = &[
    A {
        code: "FBI",
        en: "Federal Bureau of Investigation",
        native: "Federal Bureau of Investigation",
        cc: "US",
        kind: AgencyKind::Police,
        tz: "America/New_York",
        phone: "+1 202 555 0142",
        langs: &["en"],
        hours: "Mon-Fri 08:00-18:00",
    },
    A {
        code: "US-DOJ-OIA",
        en: "U.S. Department of Justice, Office of International Affairs",
        native: "Office of International Affairs, Criminal Division",
        cc: "US",
        kind: AgencyKind::CentralAuthority,
        tz: "America/New_York",
        phone: "+1 202 555 0177",
        langs: &["en"],
        hours: "Mon-Fri 09:00-17:30",
    },
    A {
        code: "US-CCIPS",
        en: "U.S. DOJ Computer Crime and Intellectual Property Section (24/7 point of contact)",
        native: "CCIPS 24/7",
        cc: "US",
        kind: AgencyKind::PointOfContact247,
        tz: "America/New_York",
        phone: "+1 202 555 0100",
        langs: &["en"],
        hours: "24/7",
    },
    A {
        code: "CN-MPS",
        en: "Ministry of Public Security of the People's Republic of China",
        native: "中华人民共和国公安部",
        cc: "CN",
        kind: AgencyKind::Police,
        tz: "Asia/Shanghai",
        phone: "+86 10 5550 0110",
        langs: &["zh", "en"],
        hours: "Mon-Fri 08:30-17:30",
    },
    A {
        code: "CN-MOJ",
        en: "Ministry of Justice of the People's Republic of China",
        native: "中华人民共和国司法部",
        cc: "CN",
        kind: AgencyKind::CentralAuthority,
        tz: "Asia/Shanghai",
        phone: "+86 10 5550 0148",
        langs: &["zh"],
        hours: "Mon-Fri 09:00-17:00",
    },
    A {
        code: "CN-CNCERT",
        en: "National Computer Network Emergency Response Technical Team/Coordination Center of China",
        native: "国家计算机网络应急技术处理协调中心",
        cc: "CN",
        kind: AgencyKind::Cert,
        tz: "Asia/Shanghai",
        phone: "+86 10 5550 0999",
        langs: &["zh", "en"],
        hours: "24/7",
    },
    A {
        code: "UK-NCA",
        en: "National Crime Agency",
        native: "National Crime Agency",
        cc: "GB",
        kind: AgencyKind::Police,
        tz: "Europe/London",
        phone: "+44 20 7946 0321",
        langs: &["en"],
        hours: "24/7",
    },
    A {
        code: "DE-BKA",
        en: "Federal Criminal Police Office",
        native: "Bundeskriminalamt",
        cc: "DE",
        kind: AgencyKind::Police,
        tz: "Europe/Berlin",
        phone: "+49 611 5550 4545",
        langs: &["de", "en"],
        hours: "24/7",
    },
    A {
        code: "JP-NPA",
        en: "National Police Agency",
        native: "警察庁",
        cc: "JP",
        kind: AgencyKind::Police,
        tz: "Asia/Tokyo",
        phone: "+81 3 5550 0110",
        langs: &["ja", "en"],
        hours: "Mon-Fri 09:00-18:00",
    },
    A {
        code: "KR-KNPA",
        en: "Korean National Police Agency",
        native: "경찰청",
        cc: "KR",
        kind: AgencyKind::Police,
        tz: "Asia/Seoul",
        phone: "+82 2 5550 0112",
        langs: &["ko", "en"],
        hours: "Mon-Fri 09:00-18:00",
    },
];

/// How a requested agency tends to treat requests from a requesting one.
struct Profile {
    /// Probability the request is ever acknowledged.
    ack: f64,
    /// Median days to acknowledge.
    ack_days: f64,
    /// Probability an acknowledged request is answered (else refused / stalled).
    answer: f64,
    /// Median days to answer.
    answer_days: f64,
    refuse: f64,
}

fn profile(from_cc: &str, to_cc: &str) -> Profile {
    match (from_cc, to_cc) {
        // The seed pattern: letters to the US from China mostly go unanswered…
        ("CN", "US") => Profile {
            ack: 0.35,
            ack_days: 40.0,
            answer: 0.15,
            answer_days: 300.0,
            refuse: 0.25,
        },
        // …and of ten FBI letters a year to China, two are answered.
        ("US", "CN") => Profile {
            ack: 0.45,
            ack_days: 30.0,
            answer: 0.35,
            answer_days: 240.0,
            refuse: 0.2,
        },
        (_, "CN") | ("CN", _) => Profile {
            ack: 0.6,
            ack_days: 14.0,
            answer: 0.5,
            answer_days: 150.0,
            refuse: 0.15,
        },
        ("GB", "DE") | ("DE", "GB") | ("US", "GB") | ("GB", "US") | ("US", "DE") | ("DE", "US") => Profile {
            ack: 0.98,
            ack_days: 0.5,
            answer: 0.9,
            answer_days: 25.0,
            refuse: 0.04,
        },
        _ => Profile {
            ack: 0.9,
            ack_days: 2.0,
            answer: 0.8,
            answer_days: 60.0,
            refuse: 0.08,
        },
    }
}

fn lognormal(rng: &mut StdRng, median_days: f64) -> SignedDuration {
    // Box-Muller normal, sigma 0.8: right-skewed delays like real MLA answer times.
    let u1: f64 = rng.random_range(1e-9..1.0);
    let u2: f64 = rng.random_range(0.0..1.0);
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    let days = median_days * (0.8 * z).exp();
    SignedDuration::from_secs((days * 86_400.0).max(600.0) as i64)
}

struct Cast {
    agencies: HashMap<&'static str, Agency>,
    users: HashMap<(String, Role), Principal>,
}

impl Cast {
    fn who(&self, code: &str, role: Role) -> Result<&Principal> {
        self.users
            .get(&(code.to_string(), role))
            .with_context(|| format!("demo user {code}/{role} missing"))
    }
}

async fn build_directory(node: &Node, now: Timestamp) -> Result<Cast> {
    super::init::seed_jurisdictions(node).await?;
    let mut agencies = HashMap::new();
    let mut users = HashMap::new();
    for (i, a) in AGENCIES.iter().enumerate() {
        let agency = Agency {
            id: AgencyId::new(),
            code: a.code.into(),
            name_en: a.en.into(),
            name_native: a.native.into(),
            jurisdiction: CountryCode::parse(a.cc)?,
            kind: a.kind,
            time_zone: a.tz.into(),
        };
        node.store.insert_agency(&agency, None, "demo", now).await?;
        let slug = a.code.to_ascii_lowercase();
        for (name, hours) in [
            ("Duty desk (fictitious)", a.hours),
            ("International liaison officer (fictitious)", "Mon-Fri 09:00-17:00"),
        ] {
            node.store
                .insert_contact(
                    &ContactPoint {
                        id: ContactId::new(),
                        agency: agency.id,
                        name: name.into(),
                        phone: a.phone.into(),
                        email: format!(
                            "{}.{}@example.invalid",
                            if hours == "24/7" { "desk" } else { "liaison" },
                            slug
                        ),
                        languages: a.langs.iter().map(|s| s.to_string()).collect(),
                        time_zone: a.tz.into(),
                        office_hours: hours.parse()?,
                    },
                    "demo",
                    now,
                )
                .await?;
        }
        let roles: &[Role] = if i == 0 {
            Role::ALL
        } else {
            &[
                Role::Officer,
                Role::Desk,
                Role::LegalReviewer,
                Role::Supervisor,
                Role::Analyst,
            ]
        };
        for &role in roles {
            let username = format!("{slug}.{role}");
            let u = node
                .store
                .create_user(
                    &username,
                    &format!("{} {} (demo)", a.code, role),
                    agency.id,
                    role,
                    "demo",
                    now,
                )
                .await?;
            users.insert(
                (a.code.to_string(), role),
                Principal {
                    user: u.id,
                    username: u.username,
                    agency: agency.id,
                    role,
                },
            );
        }
        agencies.insert(a.code, agency);
    }
    Ok(Cast { agencies, users })
}

/// Pairs with weights: who sends how much to whom.
const PAIRS: &[(&str, &str, u32)] = &[
    ("CN-MPS", "FBI", 12),
    ("CN-MOJ", "US-DOJ-OIA", 6),
    ("FBI", "CN-MPS", 10),
    ("US-DOJ-OIA", "CN-MOJ", 5),
    ("FBI", "UK-NCA", 14),
    ("UK-NCA", "FBI", 12),
    ("DE-BKA", "UK-NCA", 9),
    ("UK-NCA", "DE-BKA", 8),
    ("FBI", "DE-BKA", 8),
    ("DE-BKA", "FBI", 7),
    ("JP-NPA", "KR-KNPA", 6),
    ("KR-KNPA", "JP-NPA", 6),
    ("KR-KNPA", "CN-MPS", 6),
    ("CN-MPS", "KR-KNPA", 5),
    ("JP-NPA", "FBI", 5),
    ("FBI", "JP-NPA", 5),
    ("US-CCIPS", "CN-CNCERT", 3),
    ("DE-BKA", "CN-MPS", 3),
];

fn pick<'a, T>(rng: &mut StdRng, items: &'a [(T, u32)]) -> &'a T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.random_range(0..total.max(1));
    for (item, w) in items {
        if x < *w {
            return item;
        }
        x -= w;
    }
    &items[0].0
}

fn case_facts(
    rng: &mut StdRng,
    from_cc: &str,
    to_cc: &str,
) -> (
    RequestKind,
    Vec<&'static str>,
    Vec<&'static str>,
    &'static str,
    Option<Amount>,
) {
    use RequestKind::*;
    let scenarios: Vec<(Scenario, u32)> = match (from_cc, to_cc) {
        ("CN", "US") => vec![
            (
                (
                    SubscriberInformation,
                    vec!["OBSCENE-DISSEMINATION"],
                    vec!["for_profit"],
                    "A website hosted in the United States distributes pornographic videos to users in China for profit.",
                ),
                4,
            ),
            (
                (
                    StoredContent,
                    vec!["FRAUD-TELECOM"],
                    vec![],
                    "Telecom fraud ring used US-hosted VoIP accounts to defraud residents of Zhejiang.",
                ),
                4,
            ),
            (
                (
                    ExpeditedPreservation,
                    vec!["BC-02", "BC-05"],
                    vec![],
                    "Botnet controllers on US servers attacked a provincial government network.",
                ),
                3,
            ),
            (
                (
                    TrafficData,
                    vec!["DEFAMATION"],
                    vec![],
                    "Accounts on a US platform spread fabricated allegations about a company.",
                ),
                2,
            ),
            (
                (
                    SubscriberInformation,
                    vec!["GAMBLING-ONLINE"],
                    vec![],
                    "Online casino operated from US servers takes bets from Chinese residents.",
                ),
                2,
            ),
        ],
        ("US", "CN") => vec![
            (
                (
                    SubscriberInformation,
                    vec!["BC-02"],
                    vec![],
                    "Intrusion into a US defence contractor from IP addresses allocated to Chinese providers.",
                ),
                4,
            ),
            (
                (
                    ExpeditedPreservation,
                    vec!["BC-05", "BC-04"],
                    vec![],
                    "Ransomware affiliate infrastructure on servers in China; ransom notes demand Bitcoin.",
                ),
                3,
            ),
            (
                (
                    StoredContent,
                    vec!["BC-09"],
                    vec!["possession_only"],
                    "A suspect's cloud account hosted in China holds child sexual abuse material.",
                ),
                2,
            ),
            (
                (
                    SubscriberInformation,
                    vec!["BC-09"],
                    vec!["distribution"],
                    "A forum hosted in China distributes child sexual abuse material.",
                ),
                2,
            ),
            (
                (
                    FinancialRecords,
                    vec!["MONEY-LAUNDERING", "BC-08"],
                    vec![],
                    "Proceeds of business e-mail compromise laundered through accounts in Shenzhen.",
                ),
                3,
            ),
        ],
        _ => vec![
            (
                (
                    SubscriberInformation,
                    vec!["BC-08"],
                    vec![],
                    "Phishing kit operator rents servers; victims lost savings through fake bank pages.",
                ),
                5,
            ),
            (
                (
                    ExpeditedPreservation,
                    vec!["BC-02"],
                    vec![],
                    "Compromise of a hospital network; logs on a provider in the requested state.",
                ),
                4,
            ),
            (
                (
                    TrafficData,
                    vec!["BC-05"],
                    vec![],
                    "DDoS-for-hire service attacked an election commission website.",
                ),
                3,
            ),
            (
                (
                    StoredContent,
                    vec!["DARKNET-TRAFFICKING"],
                    vec![],
                    "Darknet vendor selling fentanyl analogues; seized server images requested.",
                ),
                2,
            ),
            (
                (
                    DomainRegistrationData,
                    vec!["BC-08", "BC-07"],
                    vec![],
                    "Look-alike domains used for invoice fraud.",
                ),
                2,
            ),
            (
                (Takedown, vec!["BC-06"], vec![], "Malware loader distribution site."),
                1,
            ),
        ],
    };
    let (kind, offences, conduct, summary) = pick(rng, &scenarios).clone();
    let amount = offences
        .iter()
        .any(|o| o.starts_with("FRAUD") || *o == "BC-08")
        .then(|| Amount {
            value: f64::from(rng.random_range(1..400) * 500),
            currency: "CNY".into(),
        });
    (kind, offences, conduct, summary, amount)
}

/// A kind of case: request kind, offence codes, conduct qualifiers, summary of facts.
type Scenario = (RequestKind, Vec<&'static str>, Vec<&'static str>, &'static str);

struct Step {
    at: Timestamp,
    who: (String, Role),
    input: TransitionInput,
}

fn t(to: State) -> TransitionInput {
    TransitionInput {
        to: Some(to),
        ..Default::default()
    }
}

fn with_reason(to: State, reason: &str) -> TransitionInput {
    TransitionInput {
        to: Some(to),
        reason: Some(reason.into()),
        ..Default::default()
    }
}

/// Plans a request's life according to the pair's profile.
fn plan(rng: &mut StdRng, kind: RequestKind, from: &str, to: &str, p: &Profile, start: Timestamp) -> Vec<Step> {
    let (f, r) = (from.to_string(), to.to_string());
    let mut steps = vec![Step {
        at: start,
        who: (f.clone(), Role::Officer),
        input: t(State::Submitted),
    }];
    if rng.random_bool(0.03) {
        steps.push(Step {
            at: start + lognormal(rng, 5.0),
            who: (f.clone(), Role::Officer),
            input: with_reason(State::Withdrawn, "Suspect identified through other means"),
        });
        return steps;
    }
    if !rng.random_bool(p.ack) {
        return steps; // the unanswered letter
    }
    let mut at = start + lognormal(rng, p.ack_days);
    steps.push(Step {
        at,
        who: (r.clone(), Role::Desk),
        input: t(State::Acknowledged),
    });
    if kind.is_preservation() {
        at += lognormal(rng, 0.5);
        steps.push(Step {
            at,
            who: (r.clone(), Role::Desk),
            input: t(State::Accepted),
        });
        at += lognormal(rng, 1.0);
        steps.push(Step {
            at,
            who: (r.clone(), Role::Desk),
            input: t(State::Preserved),
        });
        let roll: f64 = rng.random_range(0.0..1.0);
        if roll < 0.3 {
            at += SignedDuration::from_hours(24 * 80);
            steps.push(Step {
                at,
                who: (r.clone(), Role::Desk),
                input: t(State::Extended),
            });
        } else if roll < 0.55 {
            at += SignedDuration::from_hours(24 * 95);
            steps.push(Step {
                at,
                who: (r.clone(), Role::Desk),
                input: with_reason(State::Released, "No follow-up request received"),
            });
        }
        return steps;
    }
    at += lognormal(rng, 3.0);
    steps.push(Step {
        at,
        who: (r.clone(), Role::LegalReviewer),
        input: t(State::InReview),
    });
    if rng.random_bool(0.15) {
        at += lognormal(rng, 5.0);
        steps.push(Step {
            at,
            who: (r.clone(), Role::LegalReviewer),
            input: with_reason(
                State::NeedsInformation,
                "Please state the connection between the account and the offence",
            ),
        });
        if rng.random_bool(0.3) {
            return steps;
        }
        at += lognormal(rng, 10.0);
        steps.push(Step {
            at,
            who: (f.clone(), Role::Officer),
            input: with_reason(State::InReview, "Supplementary facts attached"),
        });
    }
    if rng.random_bool(p.refuse) {
        at += lognormal(rng, 10.0);
        let code = if rng.random_bool(0.6) {
            RefusalReason::DualCriminality
        } else {
            RefusalReason::InsufficientInformation
        };
        steps.push(Step {
            at,
            who: (r.clone(), Role::LegalReviewer),
            input: TransitionInput { to: Some(State::Refused), refusal_reason: Some(code), reason: Some("The conduct described is not an offence under our law, or the request lacks the facts our law requires.".into()), ..Default::default() },
        });
        return steps;
    }
    if !rng.random_bool(p.answer) {
        return steps; // stalled in review
    }
    at += lognormal(rng, 4.0);
    steps.push(Step {
        at,
        who: (r.clone(), Role::LegalReviewer),
        input: t(State::Accepted),
    });
    at += lognormal(rng, 2.0);
    steps.push(Step {
        at,
        who: (r.clone(), Role::Officer),
        input: t(State::Executing),
    });
    let answered_at = start + lognormal(rng, p.answer_days);
    at = at.max(answered_at);
    let final_state = if rng.random_bool(0.2) {
        State::AnsweredPartial
    } else {
        State::Answered
    };
    steps.push(Step {
        at,
        who: (r.clone(), Role::Officer),
        input: t(final_state),
    });
    if rng.random_bool(0.7) {
        at += lognormal(rng, 7.0);
        steps.push(Step {
            at,
            who: (f, Role::Officer),
            input: t(State::Closed),
        });
    }
    steps
}

async fn populate(node: &Node, seed: u64, count: usize, now: Timestamp) -> Result<(Cast, usize)> {
    let cast = build_directory(node, now - SignedDuration::from_hours(24 * 800)).await?;
    let mut rng = StdRng::seed_from_u64(seed);
    let pairs: Vec<((&str, &str), u32)> = PAIRS.iter().map(|(a, b, w)| ((*a, *b), *w)).collect();
    let mut transitions = 0;
    for i in 0..count {
        let (from, to) = *pick(&mut rng, &pairs);
        let fa = &cast.agencies[from];
        let ta = &cast.agencies[to];
        let (fcc, tcc) = (fa.jurisdiction.to_string(), ta.jurisdiction.to_string());
        let (kind, offences, conduct, summary, amount) = case_facts(&mut rng, &fcc, &tcc);
        let start = now - SignedDuration::from_secs(rng.random_range(3 * 86_400..730 * 86_400));
        let urgency = match rng.random_range(0..20) {
            0 => Urgency::Emergency,
            1..=5 => Urgency::Urgent,
            _ => Urgency::Routine,
        };
        let event_at = start - SignedDuration::from_hours(rng.random_range(24..24 * 200));
        let draft = RequestDraft {
            kind,
            urgency,
            requesting_agency: fa.id,
            requested_agency: ta.id,
            case_reference: format!("{}-{}-{:04}", from, start.strftime("%Y"), i + 1),
            offences: offences.iter().map(|s| s.to_string()).collect(),
            summary: summary.into(),
            targets: vec![Target {
                value: TargetValue::Ip {
                    address: format!("203.0.113.{}", rng.random_range(1..255)).parse()?,
                    port: Some(rng.random_range(1024..65535)),
                    observed_at: event_at,
                    zone: Some("UTC".into()),
                },
                from: event_at - SignedDuration::from_hours(1),
                until: event_at + SignedDuration::from_hours(1),
            }],
            data_categories: vec![],
            legal_basis: if fcc == "US" {
                "18 U.S.C. 1030; 18 U.S.C. 3512".into()
            } else if fcc == "CN" {
                "Criminal Procedure Law of the PRC; International Criminal Judicial Assistance Law".into()
            } else {
                "Budapest Convention Arts 29-31".into()
            },
            related: vec![],
            attachments: vec![],
            amount,
            conduct: conduct.iter().map(|s| s.to_string()).collect(),
        };
        let officer = cast.who(from, Role::Officer)?;
        let created = node
            .create_request(officer, draft, start - SignedDuration::from_hours(2))
            .await?;
        if rng.random_bool(0.04) {
            continue; // still a draft
        }
        let mut version = created.request.version;
        let id = created.request.id;
        for step in plan(&mut rng, kind, from, to, &profile(&fcc, &tcc), start) {
            if step.at >= now {
                break;
            }
            let who = cast.who(&step.who.0, step.who.1)?;
            let r = node
                .transition(who, id, version, step.input, step.at)
                .await
                .with_context(|| format!("demo request {id} ({from} → {to})"))?;
            version = r.request.version;
            transitions += 1;
            if i % 7 == 0 && r.request.state == State::InReview {
                node.comment(
                    who,
                    id,
                    "Reviewed against our legal requirements; see the assessment.",
                    step.at,
                )
                .await?;
            }
        }
    }
    // Deadlines that passed while the history unfolded are escalated now, as the watcher would have.
    node.tick(now).await?;
    Ok((cast, transitions))
}

pub async fn demo(ctx: &Ctx, a: DemoArgs) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("liaison-demo-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut config = Config::defaults(&dir);
    config.node.listen = a.listen.clone();
    crate::rules::install(&config.node.rules_dir)?;
    std::fs::write(dir.join(crate::config::FILE), config.commented()?)?;
    let node = open_node(&config).await?;
    let now = Timestamp::now();
    eprintln!("Building a demonstration node in {} …", dir.display());
    let started = std::time::Instant::now();
    let (cast, transitions) = populate(&node, a.seed, a.requests, now).await?;
    let admin = cast.who("FBI", Role::Admin)?;
    let (token, _) = node.create_token(admin, &admin.username, "demo", 7, now).await?;
    let analyst = cast.who("FBI", Role::Analyst)?;
    let (analyst_token, _) = node.create_token(admin, &analyst.username, "demo", 7, now).await?;
    let total = node.store.count_requests().await?;
    eprintln!(
        "{total} requests and {transitions} transitions over two years in {:.1} s.",
        started.elapsed().as_secs_f64()
    );
    let from = now - SignedDuration::from_hours(24 * 730);
    let report = node.cooperation(admin, from, now, GroupBy::Jurisdiction, now).await?;
    if ctx.json && a.no_serve {
        return crate::output::json(
            &serde_json::json!({"data_dir": dir, "requests": total, "transitions": transitions, "report": report, "admin_token": token}),
        );
    }
    super::admin::print_cooperation(&report, "table")?;
    let by_agency = node.cooperation(admin, from, now, GroupBy::Agency, now).await?;
    super::admin::print_cooperation(&by_agency, "table")?;
    println!("Look at CN → US and US → CN: most letters are never acknowledged, and answers take months.");
    let intel_summary = super::intel::populate_intel_demo(&node, &dir.join("intel"), now)
        .await
        .context("intel demo")?;
    if !ctx.json {
        println!("\n== Network clean-up: a generated threat feed, enriched, routed and turned into notices ==");
        println!("{intel_summary}");
    }
    let audit = node.store.verify_audit().await?;
    println!("Audit log: {} entries, intact: {}", audit.entries, audit.is_intact());
    if !a.no_federation && !ctx.json {
        println!("\n== Federation: two nodes, cop to cop, with signed receipts and ledgers ==");
        super::federation::federated_demo(&dir.join("federation"))
            .await
            .context("federated demo")?;
    }
    if a.no_serve {
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind(&a.listen)
        .await
        .with_context(|| format!("cannot listen on {} (choose another with --listen)", a.listen))?;
    let addr = listener.local_addr()?;
    println!();
    println!("Demo node: http://{addr}/  (web UI in English and Chinese; sign in with a token below)");
    println!("API:       http://{addr}/api/v1   (docs: http://{addr}/api/v1/docs/)");
    println!("Admin token (FBI, fbi.admin):     {token}");
    println!("Analyst token (FBI, fbi.analyst): {analyst_token}");
    println!(
        "Try: curl -H 'Authorization: Bearer {analyst_token}' 'http://{addr}/api/v1/reports/cooperation?by=jurisdiction&format=csv'"
    );
    println!(
        "CLI: liaison --data-dir {} --as fbi.officer request list",
        dir.display()
    );
    println!("Ctrl-C to stop.");
    liaison_server::serve(node, listener, Duration::from_secs(30), super::init::shutdown_signal()).await?;
    Ok(())
}
