//! The formal request letter (`liaison request letter`, `GET /api/v1/requests/{id}/letter`).
//!
//! A central authority or court often still wants a signed request on paper, in its own
//! language, with the particulars its law requires. This use case decides what the letter
//! says: the particulars come from the rule packs (`[[request_contents]]` in
//! `rules/treaties.toml`, chosen by the channel of the request's assessment), each is mapped to
//! the request's data, and **whatever the request lacks is a missing particular** — the letter
//! is refused listing them ([`ServiceError::Incomplete`]) unless a watermarked draft is asked
//! for, and nothing is ever printed blank. The officer's free text (summary, purpose, necessity
//! of preservation) has a text per language ([`Node::set_request_text`], schema migration 14);
//! a missing translation is a missing particular too. The PDF is written by `liaison-pdf` with a
//! CJK font found at run time ([`LetterConfig`]); its SHA-256 enters the audit log
//! (`letter.produced`). docs/letter.md.

use crate::error::{Result, ServiceError};
use crate::node::{Node, require};
use jiff::Timestamp;
use liaison_core::RequestId;
use liaison_core::lifecycle::Side;
use liaison_core::record::Principal;
use liaison_core::request::{FieldError, RequestKind, Target, TargetValue};
use liaison_core::tlp::Tlp;
use liaison_law::{Lang, Particular, term};
use liaison_pdf::{Block, Document, FontSource, Rgb};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The longest free text accepted per field and language (characters).
pub const MAX_TEXT_CHARS: usize = 20_000;
/// The largest font file read (bytes): CJK collections are 10-30 MB.
pub const MAX_FONT_BYTES: u64 = 64 * 1024 * 1024;
/// The longest signer name, function or place printed (characters).
pub const MAX_SIGNER_CHARS: usize = 200;

/// Font files tried, in order, when `[letter] font` names none: (path, collection index, package).
const KNOWN_FONTS: &[(&str, u32, &str)] = &[
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0, "fonts-wqy-zenhei"),
    (
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
        2,
        "fonts-noto-cjk",
    ),
    (
        "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
        2,
        "fonts-noto-cjk",
    ),
    (
        "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
        0,
        "fonts-wqy-microhei",
    ),
];

/// `[letter]` in `liaison.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LetterConfig {
    /// A TrueType/OpenType font (or collection) with Latin and CJK glyphs. Unset: the known
    /// paths of fonts-wqy-zenhei and fonts-noto-cjk, then fontconfig (`fc-list :lang=zh`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub font: Option<PathBuf>,
    /// Which face of a collection (`.ttc`) to use with `font`.
    pub font_index: u32,
    /// The language the officers of this node write a request's summary in (the draft's
    /// `summary` counts as that language's text; other languages need a translation).
    pub source_lang: String,
}

impl Default for LetterConfig {
    fn default() -> Self {
        LetterConfig {
            font: None,
            font_index: 0,
            source_lang: "en".into(),
        }
    }
}

/// The officer's free text that a letter carries in every language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextField {
    /// The summary of the facts (the draft's `summary` in the source language).
    Summary,
    /// The purpose for which the evidence or assistance is sought.
    Purpose,
    /// Why preservation is necessary (Budapest Art 29(2)(e)).
    Necessity,
}

impl TextField {
    pub const ALL: &'static [TextField] = &[TextField::Summary, TextField::Purpose, TextField::Necessity];

    pub fn as_str(self) -> &'static str {
        match self {
            TextField::Summary => "summary",
            TextField::Purpose => "purpose",
            TextField::Necessity => "necessity",
        }
    }

    pub fn parse(s: &str) -> Option<TextField> {
        TextField::ALL.iter().copied().find(|f| f.as_str() == s.trim())
    }
}

/// Options of one letter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LetterOptions {
    /// Language tags in print order (`en`, `zh-CN`).
    pub langs: Vec<String>,
    /// Print a watermarked draft even when particulars are missing.
    pub draft: bool,
    /// Printed in the signature block when given; otherwise a line is left to write on.
    pub signer: Option<String>,
    pub function: Option<String>,
    pub place: Option<String>,
}

/// A produced letter.
#[derive(Debug, Clone)]
pub struct Letter {
    /// The letter reference (`AGENCY/YEAR/SEQ`), stable per request.
    pub reference: String,
    pub pdf: Vec<u8>,
    /// Lower-case hex SHA-256 of `pdf` (as in the audit entry).
    pub sha256: String,
    pub languages: Vec<String>,
    pub draft: bool,
    /// Particulars the request lacks (empty unless `draft`).
    pub missing: Vec<FieldError>,
    /// A file name for the download.
    pub file_name: String,
}

/// The font found for letters, read once per process.
#[derive(Default)]
pub(crate) struct FontCache(Mutex<Option<LoadedFont>>);

/// A font file's path, the face index in it, and its bytes.
type LoadedFont = (PathBuf, u32, Arc<Vec<u8>>);

fn parse_langs(tags: &[String]) -> Result<Vec<Lang>> {
    let mut out = Vec::new();
    for t in tags
        .iter()
        .flat_map(|t| t.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let l = Lang::parse(t).ok_or_else(|| {
            ServiceError::invalid(
                "lang",
                format!("'{t}' is not a language letters are written in: use en, zh-CN"),
            )
        })?;
        if !out.contains(&l) {
            out.push(l);
        }
    }
    if out.is_empty() {
        return Err(ServiceError::invalid("lang", "name at least one language (en, zh-CN)"));
    }
    Ok(out)
}

fn bounded(field: &str, v: &Option<String>) -> Result<Option<String>> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) if s.chars().count() > MAX_SIGNER_CHARS => Err(ServiceError::invalid(
            field,
            format!("at most {MAX_SIGNER_CHARS} characters"),
        )),
        Some(s) if s.chars().any(char::is_control) => {
            Err(ServiceError::invalid(field, "control characters are not allowed"))
        }
        other => Ok(other.map(str::to_string)),
    }
}

/// One line of the letter: a particular (or a fixed field) with its value in each language.
struct Line {
    particular: Option<Particular>,
    label_key: String,
    values: Vec<String>,
}

impl Node {
    /// Sets the letter settings (`[letter]`).
    pub fn with_letter_config(mut self, config: LetterConfig) -> Result<Self> {
        if Lang::parse(&config.source_lang).is_none() {
            return Err(ServiceError::invalid(
                "letter.source_lang",
                format!(
                    "'{}' is not a language letters are written in: use en or zh-CN",
                    config.source_lang
                ),
            ));
        }
        self.letter = Arc::new(config);
        Ok(self)
    }

    /// Sets the requesting officer's text `field` (summary, purpose, necessity) of a request in
    /// `lang`, for its formal letter. Only the requesting agency writes it; the text is bounded
    /// and its digest is in the audit entry (`request.text`).
    pub async fn set_request_text(
        &self,
        p: &Principal,
        id: RequestId,
        field: &str,
        lang: &str,
        text: &str,
        now: Timestamp,
    ) -> Result<()> {
        require(p.role.may_draft(), "writing the texts of request letters", p)?;
        let (r, side) = self.visible(p, id, now).await?;
        if side != Side::Requesting {
            return Err(ServiceError::Forbidden(format!(
                "only the requesting agency writes the texts of request {}",
                r.request.id
            )));
        }
        let Some(f) = TextField::parse(field) else {
            return Err(ServiceError::invalid(
                "field",
                format!("'{field}' is not a text of a letter: use summary, purpose or necessity"),
            ));
        };
        let Some(l) = Lang::parse(lang) else {
            return Err(ServiceError::invalid(
                "lang",
                format!("'{lang}' is not a language letters are written in: use en or zh-CN"),
            ));
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(ServiceError::invalid("text", "empty: write the text"));
        }
        let n = text.chars().count();
        if n > MAX_TEXT_CHARS {
            return Err(ServiceError::invalid(
                "text",
                format!("{n} characters: at most {MAX_TEXT_CHARS}"),
            ));
        }
        if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            return Err(ServiceError::invalid(
                "text",
                "control characters other than line breaks are not allowed",
            ));
        }
        self.store
            .set_request_text(&id.to_string(), f.as_str(), l.tag(), text, &p.username, now)
            .await?;
        Ok(())
    }

    /// The stored texts of a request: (field, language, text).
    pub async fn request_texts(
        &self,
        p: &Principal,
        id: RequestId,
        now: Timestamp,
    ) -> Result<Vec<(String, String, String)>> {
        self.visible(p, id, now).await?;
        Ok(self
            .store
            .request_texts(&id.to_string())
            .await?
            .into_iter()
            .map(|t| (t.field, t.lang, t.text))
            .collect())
    }

    /// Produces the formal letter of a request as a PDF in `opts.langs`. Only the requesting
    /// agency's officers and supervisors produce it. Missing particulars refuse it
    /// ([`ServiceError::Incomplete`], listing every one) unless `opts.draft`, which prints a
    /// watermarked draft listing them. The letter's SHA-256 is recorded in the audit log.
    pub async fn request_letter(
        &self,
        p: &Principal,
        id: RequestId,
        opts: &LetterOptions,
        now: Timestamp,
    ) -> Result<Letter> {
        require(p.role.may_draft(), "producing request letters", p)?;
        let (r, side) = self.visible(p, id, now).await?;
        if side != Side::Requesting {
            return Err(ServiceError::Forbidden(format!(
                "only the requesting agency produces the letter of request {}",
                r.request.id
            )));
        }
        let langs = parse_langs(&opts.langs)?;
        let signer = bounded("signer", &opts.signer)?;
        let function = bounded("function", &opts.function)?;
        let place = bounded("place", &opts.place)?;
        let d = &r.request.draft;
        let a = self.store.agency(d.requesting_agency).await?;
        let b = self.store.agency(d.requested_agency).await?;
        let packs = self.legal.packs();

        // The assessment: the stored one (made on submission), else one made now (a draft).
        let assessment: serde_json::Value = match &r.assessment {
            Some(raw) => raw
                .value::<serde_json::Value>()
                .map_err(|e| ServiceError::Internal(format!("stored assessment of {id}: {e}")))?,
            None => {
                let input = liaison_law::AssessmentInput::from_draft(d, a.jurisdiction, b.jurisdiction, now);
                let fresh = self.legal.assess_input(&input)?;
                serde_json::to_value(&fresh).map_err(|e| ServiceError::Internal(e.to_string()))?
            }
        };
        let as_of: Timestamp = assessment
            .get("as_of")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse().ok())
            .unwrap_or(now);
        let channel = assessment
            .get("channels")
            .and_then(|c| c.as_array())
            .and_then(|c| c.first())
            .cloned();
        let channel_id = channel.as_ref().and_then(|c| c.get("id")).and_then(|v| v.as_str());
        let str_of = |v: Option<&serde_json::Value>, k: &str| -> String {
            v.and_then(|c| c.get(k))
                .and_then(|s| s.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let channel_name = (str_of(channel.as_ref(), "name"), str_of(channel.as_ref(), "name_zh"));
        let instrument = channel
            .as_ref()
            .and_then(|c| c.get("citations"))
            .and_then(|c| c.as_array())
            .and_then(|c| c.first())
            .map(|c| format!("{}, {}", str_of(Some(c), "instrument"), str_of(Some(c), "article")));
        let rules = packs.request_contents(channel_id, d.kind, b.jurisdiction, as_of);
        let mut particulars: Vec<Particular> = Vec::new();
        for rule in &rules {
            for p in &rule.particulars {
                if !particulars.contains(p) {
                    particulars.push(*p);
                }
            }
        }

        // Free texts per language.
        let stored = self.store.request_texts(&id.to_string()).await?;
        let source = Lang::parse(&self.letter.source_lang).unwrap_or(Lang::En);
        let text_of = |f: TextField, l: Lang| -> Option<String> {
            stored
                .iter()
                .find(|t| t.field == f.as_str() && Lang::parse(&t.lang) == Some(l))
                .map(|t| t.text.clone())
                .or_else(|| {
                    (f == TextField::Summary && l == source && !d.summary.trim().is_empty())
                        .then(|| d.summary.trim().to_string())
                })
        };

        let mut missing: Vec<FieldError> = Vec::new();
        let mut miss = |p: Particular, lang: Option<Lang>, message: String| {
            missing.push(FieldError {
                field: match lang {
                    Some(l) => format!("particulars.{}[{}]", p.as_str(), l.tag()),
                    None => format!("particulars.{}", p.as_str()),
                },
                message,
            });
        };
        fn each(langs: &[Lang], f: impl Fn(Lang) -> String) -> Vec<String> {
            langs.iter().map(|l| f(*l)).collect()
        }
        let per_lang = |f: &dyn Fn(Lang) -> String| -> Vec<String> { each(&langs, f) };
        let agency_line = |ag: &liaison_core::directory::Agency, l: Lang| -> String {
            let (jen, jzh) = packs.jurisdiction_name(ag.jurisdiction).unwrap_or(("", ""));
            match l {
                Lang::En => format!(
                    "{} ({}), {}",
                    ag.name_en,
                    ag.code,
                    if jen.is_empty() { ag.jurisdiction.as_str() } else { jen }
                ),
                Lang::Zh => format!(
                    "{}（{}），{}",
                    ag.name_native,
                    ag.code,
                    if jzh.is_empty() { ag.jurisdiction.as_str() } else { jzh }
                ),
            }
        };
        let targets_text: Vec<String> = d.targets.iter().map(describe_target).collect();
        let categories: Vec<&str> = if d.data_categories.is_empty() {
            d.kind.default_categories().iter().map(|c| c.as_str()).collect()
        } else {
            d.data_categories.iter().map(|c| c.as_str()).collect()
        };
        let marking = d.marking();
        let mut lines: Vec<Line> = Vec::new();
        let mut push = |p: Particular, values: Vec<String>| {
            lines.push(Line {
                particular: Some(p),
                label_key: format!("particular.{}", p.as_str()),
                values,
            })
        };
        for &part in &particulars {
            match part {
                Particular::RequestingAuthority => push(part, per_lang(&|l| agency_line(&a, l))),
                Particular::RequestedAuthority => push(part, per_lang(&|l| agency_line(&b, l))),
                Particular::CaseReference => {
                    if d.case_reference.trim().is_empty() {
                        miss(part, None, "the request has no case reference (case_reference)".into());
                    } else {
                        push(part, vec![d.case_reference.trim().to_string()]);
                    }
                }
                Particular::Offences => {
                    if d.offences.is_empty() {
                        miss(part, None, "the request names no offence (offences)".into());
                    } else {
                        push(
                            part,
                            per_lang(&|l| {
                                d.offences
                                    .iter()
                                    .map(|c| match packs.taxonomy().get(c) {
                                        Some(o) if l == Lang::Zh => o.name_zh.to_string(),
                                        Some(o) => o.name_en.to_string(),
                                        None => c.clone(),
                                    })
                                    .collect::<Vec<_>>()
                                    .join(if l == Lang::Zh { "；" } else { "; " })
                            }),
                        );
                    }
                }
                Particular::SummaryOfFacts | Particular::Purpose | Particular::Necessity => {
                    let f = match part {
                        Particular::SummaryOfFacts => TextField::Summary,
                        Particular::Purpose => TextField::Purpose,
                        _ => TextField::Necessity,
                    };
                    let mut values = Vec::new();
                    for &l in &langs {
                        match text_of(f, l) {
                            Some(t) => values.push(t),
                            None => {
                                miss(
                                    part,
                                    Some(l),
                                    format!(
                                        "no {} text of the {}: liaison request translate {id} --lang {} --field {} --text '…'",
                                        l.tag(),
                                        f.as_str(),
                                        l.tag(),
                                        f.as_str()
                                    ),
                                );
                                values.push(format!("[{}]", term("letter.missing", l)));
                            }
                        }
                    }
                    push(part, values);
                }
                Particular::AssistanceSought => push(
                    part,
                    per_lang(&|l| {
                        let kind = term(&format!("kind.{}", d.kind.as_str()), l).to_string();
                        let cats: Vec<String> = categories
                            .iter()
                            .map(|c| term(&format!("category.{c}"), l).to_string())
                            .collect();
                        if cats.is_empty() || cats == [kind.clone()] {
                            kind
                        } else if l == Lang::Zh {
                            format!("{kind}：{}", cats.join("、"))
                        } else {
                            format!("{kind}: {}", cats.join(", "))
                        }
                    }),
                ),
                Particular::Targets | Particular::DataToPreserve => {
                    if d.targets.is_empty() {
                        miss(part, None, "the request names no target (targets)".into());
                    } else if part == Particular::DataToPreserve {
                        push(
                            part,
                            per_lang(&|l| {
                                let cats: Vec<String> = categories
                                    .iter()
                                    .map(|c| term(&format!("category.{c}"), l).to_string())
                                    .collect();
                                let offences = d.offences.join(", ");
                                format!(
                                    "{} — {}\n{}",
                                    cats.join(if l == Lang::Zh { "、" } else { ", " }),
                                    offences,
                                    targets_text.join("\n")
                                )
                            }),
                        );
                    } else {
                        push(part, vec![targets_text.join("\n")]);
                    }
                }
                Particular::Period => match period(&d.targets) {
                    Some((from, until)) => push(
                        part,
                        per_lang(&|l| {
                            term("letter.period", l)
                                .replace("{from}", &from.to_string())
                                .replace("{until}", &until.to_string())
                        }),
                    ),
                    None => miss(
                        part,
                        None,
                        "the request names no target with a period (targets[].from/until)".into(),
                    ),
                },
                Particular::Custodian => {
                    let held: Vec<&liaison_core::request::Provider> =
                        d.targets.iter().filter_map(|t| t.provider.as_ref()).collect();
                    if held.is_empty() {
                        miss(
                            part,
                            None,
                            "no target names the provider holding the data (targets[].provider)".into(),
                        );
                    } else {
                        push(
                            part,
                            per_lang(&|l| {
                                held.iter()
                                    .map(|pr| {
                                        term("letter.held_by", l)
                                            .replace("{provider}", &pr.name)
                                            .replace("{country}", pr.established_in.as_str())
                                    })
                                    .collect::<Vec<_>>()
                                    .join("\n")
                            }),
                        );
                    }
                }
                Particular::IntentToFollowUp => push(part, per_lang(&|l| term("letter.intent", l).to_string())),
                Particular::LegalBasis => {
                    let domestic = d.legal_basis.trim();
                    if channel_id.is_none() {
                        miss(
                            part,
                            None,
                            "the legal assessment found no open channel, so no instrument to invoke".into(),
                        );
                    } else if domestic.is_empty() {
                        miss(part, None, "the request names no legal basis (legal_basis)".into());
                    } else {
                        // The instrument once (a citation reads the same in both), then the
                        // requesting side's basis with its label in each language.
                        let mut values: Vec<String> = instrument.iter().cloned().collect();
                        values.extend(per_lang(&|l| {
                            format!("{}: {domestic}", term("letter.domestic_basis", l))
                        }));
                        push(part, values);
                    }
                }
                Particular::Urgency => push(
                    part,
                    per_lang(&|l| {
                        let u = term(&format!("urgency.{}", d.urgency.as_str()), l).to_string();
                        match r.request.answer_due {
                            Some(due) => format!(
                                "{u}; {}",
                                term("letter.urgency_due", l)
                                    .replace("{date}", &due.strftime("%Y-%m-%d %H:%M UTC").to_string())
                            ),
                            None => u,
                        }
                    }),
                ),
                Particular::Confidentiality => push(
                    part,
                    per_lang(&|l| term("letter.confidential", l).replace("{tlp}", marking.tlp.as_str())),
                ),
            }
        }
        if rules.is_empty() {
            missing.push(FieldError {
                field: "particulars".into(),
                message: format!(
                    "the rule packs list no contents of a request for channel {} and no generic list: update the node's rule packs (rules/treaties.toml, [[request_contents]])",
                    channel_id.unwrap_or("(none)")
                ),
            });
        }
        if channel_id.is_none() && !missing.iter().any(|m| m.field == "particulars.legal_basis") {
            missing.push(FieldError {
                field: "particulars.legal_basis".into(),
                message: "the legal assessment found no open channel for this request".into(),
            });
        }
        if !missing.is_empty() && !opts.draft {
            return Err(ServiceError::Incomplete(missing));
        }

        // The reference: assigned on the first letter, stable after.
        let year = i64::from(now.to_zoned(jiff::tz::TimeZone::UTC).year());
        let lr = self.store.letter_reference(&id.to_string(), &a.code, year, now).await?;
        let reference = format!("{}/{}/{:04}", lr.agency_code, lr.year, lr.seq);
        let keys = self.store.fed_own_keys().await?;
        let date = now.to_zoned(jiff::tz::TimeZone::UTC).date().to_string();
        let both = |key: &str| -> String { langs.iter().map(|l| term(key, *l)).collect::<Vec<_>>().join(" / ") };

        let mut blocks = Vec::new();
        let title_key = if d.kind == RequestKind::ExpeditedPreservation {
            "letter.title_preservation"
        } else {
            "letter.title"
        };
        for l in &langs {
            blocks.push(Block::Title(term(title_key, *l).to_string()));
        }
        blocks.push(Block::Gap(4.0));
        let (fg, bg) = tlp_colours(marking.tlp);
        blocks.push(Block::Badge {
            text: marking.tlp.as_str().to_string(),
            fg,
            bg,
        });
        blocks.push(Block::Field {
            label: both("letter.reference"),
            value: reference.clone(),
        });
        blocks.push(Block::Field {
            label: both("letter.date"),
            value: date.clone(),
        });
        blocks.push(Block::Field {
            label: both("particular.requesting_authority"),
            value: per_lang(&|l| agency_line(&a, l)).join("\n"),
        });
        blocks.push(Block::Field {
            label: both("particular.requested_authority"),
            value: per_lang(&|l| agency_line(&b, l)).join("\n"),
        });
        let channel_value = match channel_id {
            Some(_) => per_lang(&|l| match l {
                Lang::Zh if !channel_name.1.is_empty() => channel_name.1.clone(),
                _ => channel_name.0.clone(),
            })
            .join("\n"),
            None => format!("[{}]", both("letter.missing")),
        };
        blocks.push(Block::Field {
            label: both("letter.channel"),
            value: channel_value,
        });
        if let Some(i) = &instrument {
            blocks.push(Block::Field {
                label: both("letter.instrument"),
                value: i.clone(),
            });
        }
        let version: String = assessment
            .get("rule_pack_version")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .chars()
            .take(12)
            .collect();
        for l in &langs {
            blocks.push(Block::Small(
                term("letter.assessed", *l)
                    .replace("{date}", &as_of.strftime("%Y-%m-%d %H:%M UTC").to_string())
                    .replace("{version}", &version),
            ));
        }
        blocks.push(Block::Gap(6.0));
        for l in &langs {
            let (from, to) = match l {
                Lang::Zh => (a.name_native.clone(), b.name_native.clone()),
                Lang::En => (a.name_en.clone(), b.name_en.clone()),
            };
            blocks.push(Block::Paragraph(
                term("letter.intro", *l).replace("{from}", &from).replace("{to}", &to),
            ));
        }
        blocks.push(Block::Heading(both("letter.particulars")));
        for line in &lines {
            if matches!(
                line.particular,
                Some(Particular::RequestingAuthority | Particular::RequestedAuthority)
            ) {
                continue;
            }
            blocks.push(Block::Field {
                label: both(&line.label_key),
                value: line.values.join("\n"),
            });
        }
        if !missing.is_empty() {
            blocks.push(Block::Heading(both("letter.missing")));
            for m in &missing {
                blocks.push(Block::Small(format!("{}: {}", m.field, m.message)));
            }
        }
        blocks.push(Block::Heading(both("letter.sources")));
        for rule in &rules {
            let c = &rule.citation;
            blocks.push(Block::Small(format!(
                "{}, {} [{}; {}] {}",
                c.instrument, c.article, rule.id, c.confidence, c.url
            )));
        }
        blocks.push(Block::Heading(both("letter.signature")));
        blocks.push(Block::SignatureLine {
            caption: both("letter.signature"),
        });
        let mut sig = |key: &str, v: Option<String>| match v {
            Some(v) => blocks.push(Block::Field {
                label: both(key),
                value: v,
            }),
            None => blocks.push(Block::SignatureLine { caption: both(key) }),
        };
        sig("letter.name", signer);
        sig("letter.function", function);
        sig("letter.date", Some(date.clone()));
        sig("letter.place", place);
        blocks.push(Block::Heading(both("letter.keys")));
        if keys.is_empty() {
            blocks.push(Block::Small(
                "This node has no federation key (liaison federation init): no fingerprint to print.".into(),
            ));
        }
        for k in &keys {
            let fp = hex::decode(&k.public_key)
                .map(|pk| hex::encode(Sha256::digest(pk)))
                .unwrap_or_default();
            let grouped: Vec<String> = fp
                .as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).to_string())
                .collect();
            let until = k.valid_until.map(|u| u.to_string()).unwrap_or_else(|| "-".into());
            blocks.push(Block::Small(format!(
                "{}  SHA-256 {}  ({} .. {until})",
                k.key_id,
                grouped.join(" "),
                k.valid_from
            )));
        }
        let produced = langs
            .iter()
            .map(|l| term("letter.produced", *l).replace("{id}", &id.to_string()))
            .collect::<Vec<_>>()
            .join(" / ");
        let doc = Document {
            title: format!("{reference} {}", term(title_key, Lang::En)),
            footer: format!(
                "{}{reference}  {}  {produced}",
                if opts.draft {
                    format!("{}  ", both("letter.draft"))
                } else {
                    String::new()
                },
                marking.tlp.as_str()
            ),
            watermark: opts.draft.then(|| both("letter.draft")),
            blocks,
        };

        let (path, index, font) = self.letter_font()?;
        let pdf = tokio::task::spawn_blocking(move || liaison_pdf::render(&doc, FontSource { data: &font, index }))
            .await
            .map_err(|e| ServiceError::Internal(format!("letter rendering: {e}")))?
            .map_err(|e| {
                ServiceError::Unprocessable(format!("the letter could not be written with {}: {e}", path.display()))
            })?;
        let sha256 = hex::encode(Sha256::digest(&pdf));
        let languages: Vec<String> = langs.iter().map(|l| l.tag().to_string()).collect();
        self.store
            .audit(
                now,
                &p.username,
                "letter.produced",
                &id.to_string(),
                &serde_json::json!({
                    "reference": reference,
                    "sha256": sha256,
                    "bytes": pdf.len(),
                    "languages": languages,
                    "draft": opts.draft,
                    "missing": missing.len(),
                }),
            )
            .await?;
        let file_name = format!(
            "letter-{}{}.pdf",
            reference.replace('/', "-"),
            if opts.draft { "-draft" } else { "" }
        );
        Ok(Letter {
            reference,
            pdf,
            sha256,
            languages,
            draft: opts.draft,
            missing,
            file_name,
        })
    }

    /// The letter font: `[letter] font`, else the first known system font, else fontconfig.
    fn letter_font(&self) -> Result<LoadedFont> {
        let mut cache = self
            .letter_font
            .0
            .lock()
            .map_err(|_| ServiceError::Internal("letter font cache poisoned".into()))?;
        if let Some(f) = cache.as_ref() {
            return Ok(f.clone());
        }
        let (path, index) = match &self.letter.font {
            Some(p) => (p.clone(), self.letter.font_index),
            None => find_cjk_font().ok_or_else(|| {
                ServiceError::Unprocessable(
                    "no font with Chinese glyphs was found for the letter: install one (apt-get install fonts-wqy-zenhei, or fonts-noto-cjk) or name a font file in liaison.toml ([letter] font = \"/path/to/font.ttc\")".into(),
                )
            })?,
        };
        let data = read_font(&path)?;
        let found = (path, index, Arc::new(data));
        *cache = Some(found.clone());
        Ok(found)
    }
}

fn read_font(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| {
        ServiceError::Unprocessable(format!(
            "[letter] font {}: {e} (install fonts-wqy-zenhei, or name another font file)",
            path.display()
        ))
    })?;
    let mut data = Vec::new();
    file.take(MAX_FONT_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|e| ServiceError::Unprocessable(format!("[letter] font {}: {e}", path.display())))?;
    if data.len() as u64 > MAX_FONT_BYTES {
        return Err(ServiceError::Unprocessable(format!(
            "[letter] font {} is larger than {} MiB",
            path.display(),
            MAX_FONT_BYTES / (1024 * 1024)
        )));
    }
    Ok(data)
}

/// The known font files, then `fc-list :lang=zh` (fontconfig), first match.
fn find_cjk_font() -> Option<(PathBuf, u32)> {
    for (path, index, _) in KNOWN_FONTS {
        if Path::new(path).is_file() {
            return Some((PathBuf::from(path), *index));
        }
    }
    let out = std::process::Command::new("fc-list")
        .args([":lang=zh-cn", "-f", "%{file}|%{index}\n"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut found: Vec<(PathBuf, u32)> = text
        .lines()
        .filter_map(|l| {
            let (file, index) = l.rsplit_once('|')?;
            let index = index.split(',').next()?.trim().parse().ok()?;
            let lower = file.to_ascii_lowercase();
            (lower.ends_with(".ttf") || lower.ends_with(".ttc") || lower.ends_with(".otf") || lower.ends_with(".otc"))
                .then(|| (PathBuf::from(file), index))
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// A target as one line, language-neutral (values, instants in UTC, provider).
fn describe_target(t: &Target) -> String {
    let what = match &t.value {
        TargetValue::Ip {
            address,
            port,
            observed_at,
            zone,
        } => {
            let port = port.map(|p| format!(" port {p}")).unwrap_or_default();
            let zone = zone.as_deref().map(|z| format!(" (log zone {z})")).unwrap_or_default();
            format!("IP {address}{port} @ {observed_at}{zone}")
        }
        TargetValue::Domain { name } => format!("domain {name}"),
        TargetValue::Url { url } => format!("URL {url}"),
        TargetValue::Email { address } => format!("e-mail {address}"),
        TargetValue::Account { service, identifier } => format!("account {identifier} @ {service}"),
        TargetValue::Phone { number } => format!("phone {number}"),
        TargetValue::CryptoWallet { currency, address } => format!("wallet {currency} {address}"),
        TargetValue::BankAccount {
            institution,
            identifier,
        } => format!("bank account {identifier} @ {institution}"),
    };
    let provider = t
        .provider
        .as_ref()
        .map(|p| format!(" — {} ({})", p.name, p.established_in.as_str()))
        .unwrap_or_default();
    format!("{what}; {} .. {}{provider}", t.from, t.until)
}

/// The span of the targets' periods.
fn period(targets: &[Target]) -> Option<(Timestamp, Timestamp)> {
    let from = targets.iter().map(|t| t.from).min()?;
    let until = targets.iter().map(|t| t.until).max()?;
    Some((from, until))
}

/// TLP 2.0 colours (FIRST TLP 2.0 standard: text colours on a black background).
fn tlp_colours(t: Tlp) -> (Rgb, Rgb) {
    let black = Rgb(0, 0, 0);
    match t {
        Tlp::Clear => (Rgb(0xff, 0xff, 0xff), black),
        Tlp::Green => (Rgb(0x33, 0xff, 0x00), black),
        Tlp::Amber | Tlp::AmberStrict => (Rgb(0xff, 0xc0, 0x00), black),
        Tlp::Red => (Rgb(0xff, 0x2b, 0x2b), black),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_parse_in_order_without_repeats() {
        let l = parse_langs(&["zh-CN,en".into(), "zh".into()]).unwrap();
        assert_eq!(l, vec![Lang::Zh, Lang::En]);
        assert!(parse_langs(&["fr".into()]).is_err());
        assert!(parse_langs(&[]).is_err());
    }

    #[test]
    fn text_fields_parse() {
        assert_eq!(TextField::parse("purpose"), Some(TextField::Purpose));
        assert_eq!(TextField::parse("facts"), None);
    }
}
