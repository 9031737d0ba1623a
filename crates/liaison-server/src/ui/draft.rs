//! Writing a request: the complete draft form (new and edit), its verdict while it is being
//! written, the page that confirms sending, and four eyes (docs/ui.md "Drafting").
//!
//! The form works without JavaScript: "Check the verdict" posts it and answers with the same
//! form and the verdict the draft would get; "More target rows" adds rows. `/static/draft.js`
//! only posts the same form in the background when a field changes and swaps the verdict in.

use super::html::{Banner, Layout, Opt, filters, options, render};
use super::pages::{Assessment, agencies, agency_name, assessment_of, bad_form, form_marking, target_text};
use super::{Form, Session, Ui, redirect, service_banner};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;
use jiff::Timestamp;
use liaison_core::money::Decimal;
use liaison_core::request::{Amount, DataCategory, FieldError, Provider, RequestDraft, Target, TargetValue};
use liaison_core::{AgencyId, CountryCode, RequestId, RequestKind, State, Tlp, Urgency};
use liaison_service::ServiceError;
use liaison_service::approval::ApprovalView;

use super::i18n::Lang;

/// Blank target rows a new form offers, and how many "More target rows" adds.
const BLANK_ROWS: usize = 2;
/// Most target rows one form takes (the API takes more).
const MAX_ROWS: usize = 50;
/// Most related requests one form names.
const MAX_RELATED: usize = 50;

/// One target row as typed.
#[derive(Default, Clone)]
pub(crate) struct TargetInput {
    kind: String,
    value: String,
    /// The port (IP), service (account), currency (wallet) or institution (bank account).
    extra: String,
    /// When an IP address was seen (`2026-11-20T14:03`, in `zone`, else UTC).
    observed: String,
    zone: String,
    from: String,
    until: String,
    provider: String,
    country: String,
    eu: bool,
}

impl TargetInput {
    fn is_blank(&self) -> bool {
        [
            &self.value,
            &self.extra,
            &self.observed,
            &self.zone,
            &self.from,
            &self.until,
            &self.provider,
            &self.country,
        ]
        .iter()
        .all(|s| s.trim().is_empty())
    }

    fn of(t: &Target) -> TargetInput {
        let mut r = TargetInput {
            from: t.from.strftime("%Y-%m-%d").to_string(),
            until: t.until.strftime("%Y-%m-%d").to_string(),
            ..Default::default()
        };
        if let Some(p) = &t.provider {
            r.provider = p.name.clone();
            r.country = p.established_in.to_string();
            r.eu = p.offers_services_in_eu;
        }
        let (value, extra) = match &t.value {
            TargetValue::Ip {
                address,
                port,
                observed_at,
                zone,
            } => {
                r.observed = observed_at.strftime("%Y-%m-%dT%H:%M:%S").to_string();
                r.zone = zone.clone().unwrap_or_default();
                if let Some(z) = zone.as_deref().and_then(|z| jiff::tz::TimeZone::get(z).ok()) {
                    r.observed = observed_at.to_zoned(z).strftime("%Y-%m-%dT%H:%M:%S").to_string();
                }
                (address.to_string(), port.map(|p| p.to_string()).unwrap_or_default())
            }
            TargetValue::Domain { name } => (name.clone(), String::new()),
            TargetValue::Url { url } => (url.clone(), String::new()),
            TargetValue::Email { address } => (address.clone(), String::new()),
            TargetValue::Account { service, identifier } => (identifier.clone(), service.clone()),
            TargetValue::Phone { number } => (number.clone(), String::new()),
            TargetValue::CryptoWallet { currency, address } => (address.clone(), currency.clone()),
            TargetValue::BankAccount {
                institution,
                identifier,
            } => (identifier.clone(), institution.clone()),
        };
        r.kind = t.value.type_name().into();
        r.value = value;
        r.extra = extra;
        r
    }
}

/// The draft form's values as typed (kept when something is wrong, to show them again).
#[derive(Default)]
pub(crate) struct DraftForm {
    kind: String,
    urgency: String,
    requested: String,
    case_reference: String,
    offences: Vec<String>,
    summary: String,
    legal_basis: String,
    /// The TLP level chosen (empty: the node's default) and the named recipients typed.
    tlp: String,
    recipients: String,
    categories: Vec<String>,
    amount: String,
    currency: String,
    conduct: Vec<String>,
    /// References or ids of related requests, separated by commas or spaces.
    related: String,
    targets: Vec<TargetInput>,
    /// The version edited (0: a new draft).
    version: i64,
}

impl DraftForm {
    fn parse(form: &Form) -> DraftForm {
        let get = |k: &str| form.get(k).unwrap_or("").trim().to_string();
        let col = |k: &str| {
            form.all(k)
                .into_iter()
                .map(|s| s.trim().to_string())
                .collect::<Vec<_>>()
        };
        let cells = |k: &str| {
            form.column(k)
                .into_iter()
                .map(|s| s.trim().to_string())
                .collect::<Vec<_>>()
        };
        let (kinds, values, extras, observed, zones, froms, untils, providers, countries, eus) = (
            cells("t_type"),
            cells("t_value"),
            cells("t_extra"),
            cells("t_observed"),
            cells("t_zone"),
            cells("t_from"),
            cells("t_until"),
            cells("t_provider"),
            cells("t_country"),
            cells("t_eu"),
        );
        let at = |v: &[String], i: usize| v.get(i).cloned().unwrap_or_default();
        let rows = kinds.len().min(MAX_ROWS);
        let targets = (0..rows)
            .map(|i| TargetInput {
                kind: at(&kinds, i),
                value: at(&values, i),
                extra: at(&extras, i),
                observed: at(&observed, i),
                zone: at(&zones, i),
                from: at(&froms, i),
                until: at(&untils, i),
                provider: at(&providers, i),
                country: at(&countries, i),
                eu: at(&eus, i) == "yes",
            })
            .collect();
        DraftForm {
            kind: get("kind"),
            urgency: get("urgency"),
            requested: get("requested_agency"),
            case_reference: get("case_reference"),
            offences: col("offences"),
            summary: form.get("summary").unwrap_or("").to_string(),
            legal_basis: get("legal_basis"),
            tlp: get("tlp"),
            recipients: get("recipients"),
            categories: col("categories"),
            amount: get("amount"),
            currency: get("currency").to_uppercase(),
            conduct: col("conduct"),
            related: get("related"),
            targets,
            version: get("version").parse().unwrap_or(0),
        }
    }

    fn of(r: &liaison_service::StoredRequest, reference_of: &dyn Fn(RequestId) -> String) -> DraftForm {
        let d = &r.request.draft;
        let m = d.marking();
        DraftForm {
            kind: d.kind.as_str().into(),
            urgency: d.urgency.as_str().into(),
            requested: d.requested_agency.to_string(),
            case_reference: d.case_reference.clone(),
            offences: d.offences.clone(),
            summary: d.summary.clone(),
            legal_basis: d.legal_basis.clone(),
            tlp: m.tlp.as_str().into(),
            recipients: m.recipients.join(", "),
            categories: d.data_categories.iter().map(|c| c.as_str().to_string()).collect(),
            amount: d.amount.as_ref().map(|a| a.value.to_string()).unwrap_or_default(),
            currency: d.amount.as_ref().map(|a| a.currency.clone()).unwrap_or_default(),
            conduct: d.conduct.clone(),
            related: d
                .related
                .iter()
                .map(|id| reference_of(*id))
                .collect::<Vec<_>>()
                .join(", "),
            targets: d.targets.iter().map(TargetInput::of).collect(),
            version: r.request.version,
        }
    }
}

/// Reads an instant typed in a form: RFC 3339, or a local date and time (`2026-11-20T14:03`,
/// `2026-11-20 14:03:05`) in `zone` (UTC if none).
fn local_instant(v: &str, zone: Option<&str>) -> Option<Timestamp> {
    let v = v.trim();
    if let Ok(t) = v.parse::<Timestamp>() {
        return Some(t);
    }
    let dt: jiff::civil::DateTime = v.replace(' ', "T").parse().ok()?;
    let tz = match zone {
        Some(z) => jiff::tz::TimeZone::get(z).ok()?,
        None => jiff::tz::TimeZone::UTC,
    };
    dt.to_zoned(tz).ok().map(|z| z.timestamp())
}

/// A day typed as `2026-11-20` (or an RFC 3339 instant): its start, or with `end` its last
/// second, in UTC.
fn day(v: &str, end: bool) -> Option<Timestamp> {
    let v = v.trim();
    if let Ok(t) = v.parse::<Timestamp>() {
        return Some(t);
    }
    let d: jiff::civil::Date = v.parse().ok()?;
    let dt = if end { d.at(23, 59, 59, 0) } else { d.at(0, 0, 0, 0) };
    dt.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
}

/// Turns the typed targets into typed ones; every problem names its row and field.
fn targets(l: Lang, rows: &[TargetInput], errs: &mut Vec<FieldError>) -> (Vec<Target>, Vec<usize>) {
    let mut out = Vec::new();
    let mut row_of = Vec::new();
    for (i, t) in rows.iter().enumerate() {
        if t.is_blank() {
            continue;
        }
        let n = i + 1;
        let mut err = |field: &str, message: String| {
            errs.push(FieldError {
                field: format!("targets[{n}].{field}"),
                message,
            })
        };
        let value = t.value.trim().to_string();
        let extra = t.extra.trim().to_string();
        if value.is_empty() {
            err("value", l.t("draft.err_value").into());
            continue;
        }
        let need_extra = |key: &str, err: &mut dyn FnMut(&str, String)| {
            if extra.is_empty() {
                err("extra", l.t(key).into());
            }
        };
        let tv = match t.kind.as_str() {
            "ip" => {
                let Ok(address) = value.parse::<std::net::IpAddr>() else {
                    err("value", l.t1("draft.err_ip", &value));
                    continue;
                };
                let port = if extra.is_empty() {
                    None
                } else {
                    match extra.parse::<u16>() {
                        Ok(p) => Some(p),
                        Err(_) => {
                            err("extra", l.t1("draft.err_port", &extra));
                            continue;
                        }
                    }
                };
                let zone = Some(t.zone.trim()).filter(|z| !z.is_empty());
                if let Some(z) = zone
                    && jiff::tz::TimeZone::get(z).is_err()
                {
                    err("zone", l.t1("draft.err_zone", z));
                    continue;
                }
                let Some(observed_at) = local_instant(&t.observed, zone) else {
                    err(
                        "observed",
                        if t.observed.trim().is_empty() {
                            l.t("draft.err_observed_missing").into()
                        } else {
                            l.t1("draft.err_observed", t.observed.trim())
                        },
                    );
                    continue;
                };
                TargetValue::Ip {
                    address,
                    port,
                    observed_at,
                    zone: zone.map(str::to_string),
                }
            }
            "domain" => TargetValue::Domain { name: value },
            "url" => TargetValue::Url { url: value },
            "email" => TargetValue::Email { address: value },
            "phone" => TargetValue::Phone { number: value },
            "account" => {
                need_extra("draft.err_extra_service", &mut err);
                TargetValue::Account {
                    service: extra.clone(),
                    identifier: value,
                }
            }
            "crypto_wallet" => {
                need_extra("draft.err_extra_currency", &mut err);
                TargetValue::CryptoWallet {
                    currency: extra.clone(),
                    address: value,
                }
            }
            "bank_account" => {
                need_extra("draft.err_extra_bank", &mut err);
                TargetValue::BankAccount {
                    institution: extra.clone(),
                    identifier: value,
                }
            }
            "" => {
                err("type", l.t("draft.err_type_missing").into());
                continue;
            }
            other => {
                err("type", l.t1("draft.err_type", other));
                continue;
            }
        };
        let (from, until) = (day(&t.from, false), day(&t.until, true));
        let (Some(from), Some(until)) = (from, until) else {
            err("period", l.t("draft.err_period").into());
            continue;
        };
        if from > until {
            err("period", l.t("draft.err_period_order").into());
            continue;
        }
        let provider = if t.provider.trim().is_empty() {
            None
        } else {
            match t.country.trim().parse::<CountryCode>() {
                Ok(c) => Some(Provider {
                    name: t.provider.trim().to_string(),
                    established_in: c,
                    offers_services_in_eu: t.eu,
                }),
                Err(_) => {
                    err("provider", l.t1("draft.err_provider_country", t.country.trim()));
                    continue;
                }
            }
        };
        out.push(Target {
            value: tv,
            from,
            until,
            provider,
        });
        row_of.push(n);
    }
    (out, row_of)
}

/// The node names a target by its place among the targets given (`targets[0]`); the form by
/// its row (`targets[1]`, blank rows counted).
fn by_row(e: ServiceError, row_of: &[usize]) -> ServiceError {
    match e {
        ServiceError::Invalid(v) => ServiceError::Invalid(
            v.into_iter()
                .map(|mut fe| {
                    if let Some((i, rest)) = fe.field.strip_prefix("targets[").and_then(|r| r.split_once(']'))
                        && let Some(n) = i.parse::<usize>().ok().and_then(|i| row_of.get(i))
                    {
                        fe.field = format!("targets[{n}]{rest}");
                    }
                    fe
                })
                .collect(),
        ),
        other => other,
    }
}

/// Reads the form into a draft, or the problems with it (each naming its field); with the
/// form row of each target.
async fn to_draft(ui: &Ui, s: &Session, f: &DraftForm) -> (Result<RequestDraft, ServiceError>, Vec<usize>) {
    let l = s.ctx.lang;
    let mut errs = Vec::new();
    let mut field_err = |field: &str, message: String| {
        errs.push(FieldError {
            field: field.into(),
            message,
        })
    };
    let kind = match f.kind.parse::<RequestKind>() {
        Ok(k) => Some(k),
        Err(e) => {
            field_err(
                "kind",
                if f.kind.is_empty() {
                    l.t("draft.err_choose").into()
                } else {
                    e.to_string()
                },
            );
            None
        }
    };
    let urgency = match (if f.urgency.is_empty() { "routine" } else { &f.urgency }).parse::<Urgency>() {
        Ok(u) => Some(u),
        Err(e) => {
            field_err("urgency", e.to_string());
            None
        }
    };
    let requested = match f.requested.parse::<AgencyId>() {
        Ok(a) => Some(a),
        Err(_) => {
            field_err("requested_agency", l.t("draft.err_agency").into());
            None
        }
    };
    if f.offences.is_empty() {
        field_err("offences", l.t("draft.err_offences").into());
    }
    let mut categories = Vec::new();
    for c in &f.categories {
        match c.parse::<DataCategory>() {
            Ok(c) => categories.push(c),
            Err(e) => field_err("data_categories", e.to_string()),
        }
    }
    let amount = match (f.amount.is_empty(), f.currency.is_empty()) {
        (true, true) => None,
        (false, false) => match Decimal::parse(&f.amount.replace([',', ' '], "")) {
            Ok(value) => Some(Amount {
                value,
                currency: f.currency.clone(),
            }),
            Err(_) => {
                field_err("amount", l.t1("draft.err_amount", &f.amount));
                None
            }
        },
        (false, true) => {
            field_err("currency", l.t("draft.err_currency").into());
            None
        }
        (true, false) => {
            field_err("amount", l.t("draft.err_amount_missing").into());
            None
        }
    };
    let mut related = Vec::new();
    let refs: Vec<&str> = f
        .related
        .split([',', ' ', '\n', ';'])
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .collect();
    // Each reference is looked up: a form names a bounded number of them.
    if refs.len() > MAX_RELATED {
        errs.push(FieldError {
            field: "related".into(),
            message: l.t1("draft.err_related_many", &MAX_RELATED.to_string()),
        });
    }
    for r in refs.into_iter().take(MAX_RELATED) {
        match ui.node.resolve(&s.p, r, Timestamp::now()).await {
            Ok(id) => related.push(id),
            Err(_) => errs.push(FieldError {
                field: "related".into(),
                message: l.t1("draft.err_related", r),
            }),
        }
    }
    let marking = match form_marking(Some(&f.tlp), Some(&f.recipients)) {
        Ok(m) => m,
        Err(ServiceError::Invalid(v)) => {
            errs.extend(v);
            None
        }
        Err(e) => {
            errs.push(FieldError {
                field: "marking".into(),
                message: e.to_string(),
            });
            None
        }
    };
    if marking.is_none() && !f.recipients.is_empty() {
        errs.push(FieldError {
            field: "marking".into(),
            message: l.t("draft.err_recipients").into(),
        });
    }
    let (typed, row_of) = targets(l, &f.targets, &mut errs);
    let draft = match (kind, urgency, requested) {
        (Some(kind), Some(urgency), Some(requested)) if errs.is_empty() => Ok(RequestDraft {
            kind,
            urgency,
            requesting_agency: s.p.agency,
            requested_agency: requested,
            case_reference: f.case_reference.clone(),
            offences: f.offences.clone(),
            summary: f.summary.clone(),
            targets: typed,
            data_categories: categories,
            legal_basis: f.legal_basis.clone(),
            related,
            attachments: vec![],
            amount,
            conduct: f.conduct.clone(),
            marking_set: marking,
        }),
        _ => Err(ServiceError::Invalid(errs)),
    };
    (draft, row_of)
}

/// The draft form, with the values entered so far and (after a check) the verdict.
#[derive(Template)]
#[template(path = "new.html")]
struct DraftPage<'a> {
    layout: Layout<'a>,
    /// Where the form posts: `/requests/new` or `/requests/{id}/edit`.
    action: String,
    /// The request edited (`None`: a new draft).
    editing: Option<String>,
    version: i64,
    kinds: Vec<Opt>,
    urgencies: Vec<Opt>,
    agencies: Vec<Opt>,
    case_reference: &'a str,
    offences: Vec<Opt>,
    summary: &'a str,
    legal_basis: &'a str,
    levels: Vec<Opt>,
    recipients: &'a str,
    categories: Vec<Opt>,
    amount: &'a str,
    currency: &'a str,
    conduct: Vec<Opt>,
    related: &'a str,
    rows: Vec<TargetRowView>,
    /// The verdict of the draft as typed, once checked.
    assessment: Option<Assessment>,
    /// Four eyes applies to some kinds: named under the kind.
    approval_kinds: Option<String>,
}

/// One target row of the form.
struct TargetRowView {
    n: usize,
    types: Vec<Opt>,
    t: TargetInput,
}

async fn draft_page(
    ui: &Ui,
    s: &Session,
    f: &DraftForm,
    editing: Option<RequestId>,
    extra_rows: usize,
    assessment: Option<Assessment>,
    (status, banners): (StatusCode, Vec<Banner>),
) -> Response {
    let l = s.ctx.lang;
    let map = match agencies(ui, &s.p).await {
        Ok(m) => m,
        Err(e) => return s.error(&e),
    };
    let mut others: Vec<&liaison_core::directory::Agency> =
        map.values().map(|(a, _)| a).filter(|a| a.id != s.p.agency).collect();
    others.sort_by(|a, b| a.code.cmp(&b.code));
    let choose = l.t("form.choose").to_string();
    let kinds = std::iter::once(("", choose.clone())).chain(
        RequestKind::ALL
            .iter()
            .map(|k| (k.as_str(), l.word("kind", k.as_str()))),
    );
    let urgencies = Urgency::ALL.iter().map(|u| (u.as_str(), l.word("urgency", u.as_str())));
    let agency_ids: Vec<String> = others.iter().map(|a| a.id.to_string()).collect();
    let agency_opts = std::iter::once(("", choose.clone())).chain(
        others
            .iter()
            .zip(&agency_ids)
            .map(|(a, id)| (id.as_str(), format!("{} ({})", agency_name(a, l), a.jurisdiction))),
    );
    let taxonomy = ui.node.legal.packs().taxonomy();
    let offence_opts = taxonomy.iter().map(|o| {
        let name = match l {
            Lang::Zh => format!("{} — {}", o.name_zh, o.name_en),
            Lang::En => format!("{} — {}", o.name_en, o.name_zh),
        };
        (o.code.as_ref(), name)
    });
    let selected: Vec<&str> = f.offences.iter().map(String::as_str).collect();
    let mut conduct_codes: Vec<&str> = taxonomy
        .iter()
        .flat_map(|o| o.conduct.iter().map(String::as_str))
        .collect();
    conduct_codes.sort_unstable();
    conduct_codes.dedup();
    let chosen_conduct: Vec<&str> = f.conduct.iter().map(String::as_str).collect();
    let chosen_cats: Vec<&str> = f.categories.iter().map(String::as_str).collect();
    let urgency = if f.urgency.is_empty() { "routine" } else { &f.urgency };
    let mut inputs = f.targets.clone();
    // Blank rows to fill: two on a new form, more on asking.
    let blanks = inputs.iter().rev().take_while(|t| t.is_blank()).count();
    let want = BLANK_ROWS.max(extra_rows + blanks);
    inputs.extend((blanks..want).map(|_| TargetInput::default()));
    inputs.truncate(MAX_ROWS.max(f.targets.len()));
    let rows = inputs
        .into_iter()
        .enumerate()
        .map(|(i, t)| TargetRowView {
            n: i + 1,
            types: options(
                std::iter::once(("", choose.clone()))
                    .chain(TargetValue::TYPES.iter().map(|k| (*k, l.word("target", k)))),
                &[t.kind.as_str()],
            ),
            t,
        })
        .collect();
    let policy = ui.node.approval_policy();
    let approval_kinds = (!policy.kinds.is_empty()).then(|| {
        let names: Vec<String> = policy.kinds.iter().map(|k| l.word("kind", k.as_str())).collect();
        l.t1("approval.kinds_note", &names.join(l.t("list.sep")))
    });
    let title = match editing {
        Some(_) => l.t("draft.edit_title"),
        None => l.t("new.title"),
    };
    let page = DraftPage {
        layout: s.layout(title, banners),
        action: match editing {
            Some(id) => format!("/requests/{id}/edit"),
            None => "/requests/new".into(),
        },
        editing: editing.map(|id| id.to_string()),
        version: f.version,
        kinds: options(kinds, &[f.kind.as_str()]),
        urgencies: options(urgencies, &[urgency]),
        agencies: options(agency_opts, &[f.requested.as_str()]),
        case_reference: &f.case_reference,
        offences: options(offence_opts, &selected),
        summary: &f.summary,
        legal_basis: &f.legal_basis,
        levels: options(
            std::iter::once(("", l.t1("new.marking_default", ui.node.markings().request.as_str())))
                .chain(Tlp::ALL.iter().map(|t| (t.as_str(), t.to_string()))),
            &[f.tlp.as_str()],
        ),
        recipients: &f.recipients,
        categories: options(
            DataCategory::ALL
                .iter()
                .map(|c| (c.as_str(), l.word("category", c.as_str()))),
            &chosen_cats,
        ),
        amount: &f.amount,
        currency: &f.currency,
        conduct: options(
            conduct_codes.iter().map(|c| (*c, l.word("conduct", c))),
            &chosen_conduct,
        ),
        related: &f.related,
        rows,
        assessment,
        approval_kinds,
    };
    render(status, &page)
}

pub async fn new_form(AxState(ui): AxState<Ui>, s: Session) -> Response {
    draft_page(&ui, &s, &DraftForm::default(), None, 0, None, (StatusCode::OK, vec![])).await
}

pub async fn edit_form(AxState(ui): AxState<Ui>, s: Session, Path(id): Path<String>) -> Response {
    let now = Timestamp::now();
    let rid = match ui.node.resolve(&s.p, &id, now).await {
        Ok(r) => r,
        Err(_) => return s.error(&ServiceError::NotFound(format!("request {id}"))),
    };
    let r = match ui.node.request(&s.p, rid, now).await {
        Ok(r) => r,
        Err(e) => return s.error(&e),
    };
    if r.request.state != State::Draft {
        return s.error(&ServiceError::Conflict(format!(
            "{} is {} and can no longer be edited",
            r.reference,
            s.ctx.lang.word("state", r.request.state.as_str())
        )));
    }
    let mut refs = std::collections::HashMap::new();
    for rel in &r.request.draft.related {
        if let Ok(x) = ui.node.request(&s.p, *rel, now).await {
            refs.insert(*rel, x.reference);
        }
    }
    let f = DraftForm::of(&r, &|id| refs.get(&id).cloned().unwrap_or_else(|| id.to_string()));
    draft_page(&ui, &s, &f, Some(rid), 0, None, (StatusCode::OK, vec![])).await
}

pub async fn create(AxState(ui): AxState<Ui>, s: Session, body: Bytes) -> Response {
    save(ui, s, None, body).await
}

pub async fn edit(AxState(ui): AxState<Ui>, s: Session, Path(id): Path<String>, body: Bytes) -> Response {
    match id.parse::<RequestId>() {
        Ok(rid) => save(ui, s, Some(rid), body).await,
        Err(_) => s.error(&ServiceError::NotFound(format!("request {id}"))),
    }
}

/// Saves the form (a new draft, or the edited one), or, for "Check the verdict" and "More
/// target rows", shows it again as it is.
async fn save(ui: Ui, mut s: Session, editing: Option<RequestId>, body: Bytes) -> Response {
    s.ctx.here = match editing {
        Some(id) => format!("/requests/{id}/edit"),
        None => "/requests/new".into(),
    };
    let form = Form::parse(&body);
    if !s.csrf_ok(&ui, &form) {
        return bad_form(&s);
    }
    let f = DraftForm::parse(&form);
    let now = Timestamp::now();
    let l = s.ctx.lang;
    if form.get("more_rows").is_some() {
        return draft_page(&ui, &s, &f, editing, BLANK_ROWS + 1, None, (StatusCode::OK, vec![])).await;
    }
    let (draft, row_of) = to_draft(&ui, &s, &f).await;
    if form.get("check").is_some() {
        // The verdict the draft would get if it were sent now; nothing is stored.
        return match draft {
            Ok(d) => {
                let targets = d.targets.clone();
                match ui.node.assess(&s.p, Some(d), None, None, now).await {
                    Ok(a) => {
                        let shown = assessment_of(&a, &targets, l, true);
                        draft_page(&ui, &s, &f, editing, 0, Some(shown), (StatusCode::OK, vec![])).await
                    }
                    Err(e) => {
                        let (status, banner) = service_banner(l, &by_row(e, &row_of));
                        draft_page(&ui, &s, &f, editing, 0, None, (status, vec![banner])).await
                    }
                }
            }
            Err(e) => {
                let (status, banner) = service_banner(l, &e);
                draft_page(&ui, &s, &f, editing, 0, None, (status, vec![banner])).await
            }
        };
    }
    let result = match (draft, editing) {
        (Ok(d), None) => ui.node.create_request(&s.p, d, now).await,
        (Ok(d), Some(id)) => ui.node.update_draft(&s.p, id, f.version, d, now).await,
        (Err(e), _) => Err(e),
    };
    match result {
        Ok(r) => redirect(&format!("/requests/{}?saved=1", r.request.id)),
        Err(e) => {
            let (status, banner) = service_banner(l, &by_row(e, &row_of));
            draft_page(&ui, &s, &f, editing, 0, None, (status, vec![banner])).await
        }
    }
}

// ----- sending -------------------------------------------------------------------------------

/// The page that shows what is about to be sent, with its verdict, and asks to confirm.
#[derive(Template)]
#[template(path = "send.html")]
struct SendPage<'a> {
    layout: Layout<'a>,
    id: String,
    reference: String,
    version: i64,
    requested: String,
    kind: String,
    urgency: String,
    targets: Vec<(String, String)>,
    categories: String,
    assessment: Assessment,
    /// What deserves a second look before sending (no targets, a likely refusal, …).
    warnings: Vec<String>,
    /// The button's words: send, or approve and send.
    confirm: String,
}

/// `GET /requests/{id}/send`, where "Send" on a draft leads: nothing is sent until the
/// officer confirms.
pub async fn confirm_send(AxState(ui): AxState<Ui>, s: Session, Path(id): Path<String>) -> Response {
    let l = s.ctx.lang;
    let now = Timestamp::now();
    let id = match ui.node.resolve(&s.p, &id, now).await {
        Ok(r) => r,
        Err(_) => return s.error(&ServiceError::NotFound(format!("request {id}"))),
    };
    let ui = &ui;
    let s = &s;
    let (r, map, approval) = match (
        ui.node.request(&s.p, id, now).await,
        agencies(ui, &s.p).await,
        ui.node.approval(&s.p, id, now).await,
    ) {
        (Ok(r), Ok(m), Ok(a)) => (r, m, a),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return s.error(&e),
    };
    if r.request.state != State::Draft {
        return redirect(&format!("/requests/{id}"));
    }
    let d = &r.request.draft;
    let a = match ui.node.assess(&s.p, None, Some(id), None, now).await {
        Ok(a) => a,
        Err(e) => return s.error(&e),
    };
    let mut warnings = Vec::new();
    if d.targets.is_empty() {
        warnings.push(l.t("send.no_targets").to_string());
    }
    let outlook = a.headline(l.law()).outlook;
    if outlook.code() == "likely_refused" {
        warnings.push(l.t("send.likely_refused").to_string());
    }
    if d.targets.iter().any(|t| t.provider.is_none()) && !d.targets.is_empty() {
        warnings.push(l.t("send.no_provider").to_string());
    }
    let cats = if d.data_categories.is_empty() {
        d.kind.default_categories().to_vec()
    } else {
        d.data_categories.clone()
    };
    let page = SendPage {
        layout: s.layout(&l.t1("send.title", &r.reference), vec![]),
        id: id.to_string(),
        reference: r.reference.clone(),
        version: r.request.version,
        requested: map
            .get(&d.requested_agency)
            .map(|(a, _)| agency_name(a, l))
            .unwrap_or_else(|| d.requested_agency.to_string()),
        kind: l.word("kind", d.kind.as_str()),
        urgency: l.word("urgency", d.urgency.as_str()),
        targets: d
            .targets
            .iter()
            .map(|t| {
                let (k, v) = target_text(&t.value);
                (l.word("target", k), v)
            })
            .collect(),
        categories: cats
            .iter()
            .map(|c| l.word("category", c.as_str()))
            .collect::<Vec<_>>()
            .join(l.t("list.sep")),
        assessment: assessment_of(&a, &d.targets, l, true),
        warnings,
        confirm: l
            .t(if approval.moves.approve {
                "send.approve_confirm"
            } else {
                "send.confirm"
            })
            .to_string(),
    };
    render(StatusCode::OK, &page)
}

// ----- four eyes -----------------------------------------------------------------------------

/// A draft's approval on its page.
pub(crate) struct ApprovalPanel {
    /// Where the approval stands, in a sentence.
    pub state: String,
    pub required: bool,
    pub ask: bool,
    pub approve: bool,
    pub send_back: bool,
    /// The viewer asked (so "take back", no reason needed).
    pub own: bool,
}

pub(crate) fn approval_panel(l: Lang, me: &str, zone: &jiff::tz::TimeZone, v: &ApprovalView) -> ApprovalPanel {
    let state = match (&v.asked, v.required) {
        (Some(a), _) => {
            l.t("approval.asked")
                .replacen("{}", &a.by, 1)
                .replacen("{}", &super::pages::local(a.at, zone), 1)
        }
        (None, true) => l.t("approval.required").to_string(),
        (None, false) => l.t("approval.optional").to_string(),
    };
    ApprovalPanel {
        state,
        required: v.required,
        ask: v.moves.ask,
        approve: v.moves.approve,
        send_back: v.moves.send_back,
        own: v.asked.as_ref().is_some_and(|a| a.by == me),
    }
}

/// `POST /requests/{id}/approval`: ask (`action=ask`, `version`), or send back / take back
/// (`action=return`, `reason`).
pub async fn approval(AxState(ui): AxState<Ui>, mut s: Session, Path(id): Path<String>, body: Bytes) -> Response {
    let (rid, form) = match super::pages::request_form(&ui, &mut s, &id, &body) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let now = Timestamp::now();
    let result = match form.get("action") {
        Some("ask") => match form.get("version").and_then(|v| v.trim().parse::<i64>().ok()) {
            Some(v) => ui.node.ask_approval(&s.p, rid, v, now).await,
            None => Err(ServiceError::invalid(
                "version",
                "reload the page: the form lacks the request's version",
            )),
        },
        Some("return") => ui.node.end_approval(&s.p, rid, form.get("reason"), now).await,
        _ => Err(ServiceError::invalid("action", "ask or return")),
    };
    super::pages::request_form_done(&ui, &s, &id, result, &format!("/requests/{rid}?approval=1")).await
}
