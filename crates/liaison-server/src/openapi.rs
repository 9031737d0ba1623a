//! The OpenAPI 3.1 description of /api/v1, written out by hand so that it says exactly what
//! the handlers do: every constraint they enforce, every status code and content type they
//! answer with. It is checked against a running node by `tests/contract/run.sh`
//! (schemathesis) and by the API tests.
//!
//! Enumerations come from the code (states, kinds, roles, ...) and from the node itself where
//! the node decides (the offence codes of its rule packs, the time zones of its time-zone
//! database), so the document is exact for the node that serves it.

use liaison_service::Node;
use serde_json::{Map, Value, json};

/// Content type of every error answer (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn response_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/responses/{name}")})
}

fn json_content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

/// The shared error answers, by status code.
fn error_response(code: u16) -> Value {
    let name = match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        413 => "PayloadTooLarge",
        415 => "UnsupportedMediaType",
        422 => "IntegrityFailed",
        _ => "InternalError",
    };
    response_ref(name)
}

/// One operation, built up step by step. Every operation needs a token (401) and can fail
/// inside the node (500); an operation with a JSON body can also answer 400, 413 and 415.
struct Op(Value);

impl Op {
    fn new(id: &str, tag: &str, summary: &str) -> Op {
        Op(json!({
            "operationId": id,
            "tags": [tag],
            "summary": summary,
            "parameters": [],
            "responses": {"401": error_response(401), "500": error_response(500)}
        }))
    }

    fn describe(mut self, text: &str) -> Op {
        self.0["description"] = json!(text);
        self
    }

    fn params(mut self, params: Vec<Value>) -> Op {
        self.0["parameters"] = Value::Array(params);
        self
    }

    /// A required JSON body; a body that is missing or not `application/json` is a 415, one
    /// over the size limit a 413, one that does not parse or validate a 400.
    fn json_body(mut self, schema: Value) -> Op {
        self.0["requestBody"] = json!({"required": true, "content": json_content(schema)});
        self.errors(&[400, 413, 415])
    }

    fn ok(mut self, code: u16, description: &str, content: Value) -> Op {
        self.0["responses"][code.to_string()] = json!({"description": description, "content": content});
        self
    }

    fn ok_header(mut self, code: u16, header: &str, description: &str) -> Op {
        self.0["responses"][code.to_string()]["headers"][header] =
            json!({"description": description, "schema": {"type": "string"}});
        self
    }

    fn links(mut self, code: u16, links: Value) -> Op {
        self.0["responses"][code.to_string()]["links"] = links;
        self
    }

    /// A 422 for a request that lacks what the output must contain (the letter's particulars).
    fn incomplete(mut self) -> Op {
        self.0["responses"]["422"] = response_ref("MissingParticulars");
        self
    }

    /// A success without a body.
    fn ok_empty(mut self, code: u16, description: &str) -> Op {
        self.0["responses"][code.to_string()] = json!({"description": description});
        self
    }

    fn errors(mut self, codes: &[u16]) -> Op {
        for &c in codes {
            self.0["responses"][c.to_string()] = error_response(c);
        }
        self
    }

    fn build(self) -> Value {
        self.0
    }
}

/// A request's id or its reference (`FBI-2026-0042`), as every path with `{id}` accepts.
const REQUEST_ID_PATTERN: &str = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[A-Za-z0-9_-]{1,40}-[0-9]{4}-[0-9]{1,9})$";

fn id_param() -> Value {
    json!({"name": "id", "in": "path", "required": true, "description": "Request id (UUID) or reference (FBI-2026-0042); a malformed one is a 400, one the caller may not see a 404", "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN}})
}

fn q(name: &str, desc: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": desc, "schema": schema})
}

fn enum_of<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> Value {
    let v: Vec<Value> = values.into_iter().map(|s| json!(s.as_ref())).collect();
    json!({"type": "string", "enum": v})
}

/// The JSON names of serializable enum values (what serde writes for them).
fn serde_names<T: serde::Serialize>(values: &[T]) -> Vec<String> {
    values
        .iter()
        .filter_map(|v| serde_json::to_value(v).ok())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn string() -> Value {
    json!({"type": "string"})
}

/// An input string: anything but U+0000, which the node refuses everywhere (400).
fn text() -> Value {
    json!({"type": "string", "pattern": "^[^\\x00]*$"})
}

/// A string with at least one character that is not white space (the node trims).
fn non_blank(max_len: Option<u64>, description: &str) -> Value {
    let mut s = json!({"type": "string", "pattern": "^[^\\x00]*[^\\s\\x00][^\\x00]*$", "description": description});
    if let Some(m) = max_len {
        s["maxLength"] = json!(m);
    }
    s
}

fn uuid() -> Value {
    json!({"type": "string", "format": "uuid"})
}

fn instant() -> Value {
    json!({"type": "string", "format": "date-time", "description": "RFC 3339 instant, at most 9999-12-30T22:00:00Z"})
}

fn nullable(schema: Value) -> Value {
    json!({"oneOf": [{"type": "null"}, schema]})
}

fn count() -> Value {
    json!({"type": "integer", "minimum": 0})
}

fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

/// An object with exactly these properties (`required` must be present, the others may be).
fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "additionalProperties": false, "properties": properties})
}

/// Merges the properties of `extra` into `base` (both `object(...)` schemas).
fn extend(mut base: Value, required: &[&str], extra: Value) -> Value {
    if let (Some(p), Some(e)) = (base["properties"].as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            p.insert(k.clone(), v.clone());
        }
    }
    if let Some(r) = base["required"].as_array_mut() {
        r.extend(required.iter().map(|s| json!(s)));
    }
    base
}

const WEEKDAY: &str = "(Mon|Tue|Wed|Thu|Fri|Sat|Sun)";
const CLOCK: &str = "([01][0-9]|2[0-3]):[0-5][0-9]";

/// Labels of letters, digits, '-' and non-ASCII characters, not starting or ending with '-'.
fn domain_pattern() -> String {
    let edge = r"[^\x00-\x2F\x3A-\x40\x5B-\x60\x7B-\x7F]";
    let inner = r"[^\x00-\x2C\x2E\x2F\x3A-\x40\x5B-\x60\x7B-\x7F]";
    let label = format!("{edge}({inner}*{edge})?");
    format!(r"^{label}(\.{label})+\.*$")
}

fn office_hours_pattern() -> String {
    let days = format!("{WEEKDAY}(-{WEEKDAY})?");
    format!("^(24/7|{days}(,{days})* {CLOCK}-{CLOCK})$")
}

/// The OpenAPI document served at /api/v1/openapi.json, for this node.
pub fn document(node: &Node) -> Value {
    let packs = node.legal.packs();
    let offences: Vec<String> = packs.taxonomy().iter().map(|o| o.code.to_string()).collect();
    let assessed: Vec<String> = packs.jurisdictions().map(|c| c.to_string()).collect();
    let time_zones: Vec<String> = {
        let mut z: Vec<String> = jiff::tz::db().available().map(|n| n.to_string()).collect();
        z.sort();
        z.dedup();
        z
    };
    document_with(&offences, &assessed, &time_zones)
}

/// The document for the given offence codes, jurisdictions with a rule pack and time-zone names.
pub fn document_with(offences: &[String], assessed: &[String], time_zones: &[String]) -> Value {
    use liaison_core::lifecycle::{RefusalReason, Role, State};
    use liaison_core::request::{DataCategory, RequestKind, Urgency};
    let states = enum_of(State::ALL.iter().map(|s| s.as_str()));
    let kinds = enum_of(RequestKind::ALL.iter().map(|s| s.as_str()));
    let urgencies = enum_of(Urgency::ALL.iter().map(|s| s.as_str()));
    let categories = enum_of(DataCategory::ALL.iter().map(|s| s.as_str()));
    let roles = enum_of(Role::ALL.iter().map(|s| s.as_str()));
    let refusals = enum_of(RefusalReason::ALL.iter().map(|s| s.as_str()));
    let agency_kinds = enum_of(liaison_core::directory::AgencyKind::ALL.iter().map(|s| s.as_str()));
    let deadlines = enum_of(liaison_core::sla::DeadlineKind::ALL.iter().map(|k| k.as_str()));
    let tlps = enum_of(serde_names(&liaison_core::Tlp::ALL));
    let indicator_kinds = enum_of(serde_names(&liaison_intel::IndicatorKind::ALL));
    let classifications = enum_of(serde_names(&liaison_intel::Classification::ALL));
    let mut offence_code = enum_of(offences);
    offence_code["description"] = json!("An offence code of the node's rule packs (rules/offences.toml)");
    let mut country = enum_of(
        liaison_core::CountryCode::all()
            .map(|c| c.to_string())
            .chain(["EU".to_string()]),
    );
    country["description"] = json!("ISO 3166-1 alpha-2 code (lower case is accepted and upper-cased), or EU");
    let mut assessed_country = enum_of(assessed);
    assessed_country["description"] = json!("A jurisdiction with a rule pack on this node");
    let mut time_zone = enum_of(time_zones);
    time_zone["description"] = json!("IANA time-zone name known to the node's time-zone database");
    let agency_id = json!({"type": "string", "format": "uuid", "description": "Agency id"});

    // ----- requests ------------------------------------------------------------------------
    let ident_kind = enum_of(liaison_intel::ident::IdentKind::ALL.iter().map(|k| k.as_str()));
    let list_params = vec![
        json!({"name": "state", "in": "query", "required": false, "style": "form", "explode": false,
               "description": "Only requests in one of these states (comma-separated)", "schema": array(schema_ref("State"))}),
        q("kind", "Only requests of this kind", schema_ref("RequestKind")),
        q("requesting", "Only requests sent by this agency", agency_id.clone()),
        q("requested", "Only requests sent to this agency", agency_id.clone()),
        q(
            "overdue",
            "Only requests whose running deadline has passed",
            json!({"type": "boolean"}),
        ),
        q(
            "updated_since",
            "Only requests changed at or after this instant (RFC 3339)",
            instant(),
        ),
        q(
            "cursor",
            "The `next` value of the previous page (with sort=due: d<ms>.<id>)",
            json!({"type": "string", "pattern": "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|d-?[0-9]{1,19}\\.[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"}),
        ),
        q(
            "limit",
            "Page size (default 50)",
            json!({"type": "integer", "minimum": 1, "maximum": 500}),
        ),
        q(
            "view",
            "summary (default: the listed fields, no body or assessment) or full (each request as GET /requests/{id} returns it)",
            enum_of(["summary", "full"]),
        ),
        q(
            "queue",
            "One of the caller's queues (docs/queues.md); default all",
            enum_of(liaison_service::work::Queue::ALL.iter().map(|q| q.as_str())),
        ),
        q(
            "sort",
            "newest (default), oldest, or due (the running deadline, soonest first; none last)",
            enum_of(["newest", "oldest", "due"]),
        ),
        q(
            "counterpart",
            "The other agency, whichever way the request goes: its id or code (unknown: 400)",
            text(),
        ),
        q(
            "owner",
            "Owned by this user of the caller's agency (unknown: 400)",
            text(),
        ),
        q("created_from", "Created at or after this instant", instant()),
        q("created_to", "Created before this instant", instant()),
        q(
            "due_before",
            "The running deadline falls before this instant (passed ones included)",
            instant(),
        ),
        q(
            "format",
            "json (default) or csv (summaries; the next cursor in X-Next-Cursor)",
            enum_of(["json", "csv"]),
        ),
        q(
            "q",
            "Only requests whose reference, case reference, summary, comments or evidence file names hold these words, as the caller may read them (docs/search.md: words, \"phrases\", -excluded, Chinese by characters; invalid: 400)",
            text(),
        ),
        q(
            "case_reference",
            "Only requests with exactly this case reference",
            text(),
        ),
        q(
            "target",
            "Only requests with this target identifier, normalized (IP address or network, domain, URL, e-mail, phone in E.164, account, wallet, bank account; invalid: 400)",
            text(),
        ),
        q(
            "target_kind",
            "How to read target when its form does not tell",
            ident_kind.clone(),
        ),
    ];
    let search_params = vec![
        q(
            "q",
            "The words (required): plain words match by prefix, \"quoted phrases\" exactly, -word excludes; Chinese, Japanese and Korean text is matched by characters (docs/search.md)",
            text(),
        ),
        q(
            "case_reference",
            "Only texts of requests with exactly this case reference",
            text(),
        ),
        q(
            "target",
            "Only texts of requests with this target identifier (normalized)",
            text(),
        ),
        q(
            "target_kind",
            "How to read target when its form does not tell",
            ident_kind.clone(),
        ),
        q("counterpart", "The other agency (id or code; unknown: 400)", text()),
        q("kind", "Only requests of this kind", schema_ref("RequestKind")),
        json!({"name": "state", "in": "query", "required": false, "style": "form", "explode": false,
               "description": "Only requests in one of these states (comma-separated)", "schema": array(schema_ref("State"))}),
        q(
            "owner",
            "Only requests owned by this user of the caller's agency, or me",
            text(),
        ),
        q("from", "Only texts written at or after this day or instant", text()),
        q("to", "Only texts written before this day or instant", text()),
        json!({"name": "in", "in": "query", "required": false, "style": "form", "explode": false,
               "description": "Only texts of these kinds: request (reference, case reference, summary), comment, file (evidence file names)", "schema": array(enum_of(["request", "comment", "file"]))}),
        q("sort", "newest (default) or oldest", enum_of(["newest", "oldest"])),
        q(
            "cursor",
            "The next value of the previous page",
            json!({"type": "string", "pattern": "^[0-9]{1,19}$"}),
        ),
        q(
            "limit",
            "Page size (default 20)",
            json!({"type": "integer", "minimum": 1, "maximum": 200}),
        ),
        q(
            "format",
            "json (default) or csv (the next cursor in X-Next-Cursor)",
            enum_of(["json", "csv"]),
        ),
    ];
    let ip_target = object(
        &["type", "address", "observed_at"],
        json!({
            "type": {"const": "ip"},
            "address": {"anyOf": [{"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"}]},
            "port": {"type": "integer", "minimum": 0, "maximum": 65535},
            "observed_at": instant(),
            "zone": schema_ref("TimeZone")
        }),
    );
    let target_value = json!({"oneOf": [
        ip_target,
        object(&["type", "name"], json!({"type": {"const": "domain"}, "name": {"type": "string", "pattern": domain_pattern(), "description": "A domain name with at least two labels, each of letters, digits, '-' or non-ASCII characters, not starting or ending with '-' (at most 63 bytes a label and 253 in all, trailing dots aside)"}})),
        object(&["type", "url"], json!({"type": {"const": "url"}, "url": {"type": "string", "pattern": "^https?://[^\\x00]*$"}})),
        object(&["type", "address"], json!({"type": {"const": "email"}, "address": {"type": "string", "pattern": "^[^\\x00]*@[^\\x00]*$"}})),
        object(&["type", "service", "identifier"], json!({"type": {"const": "account"}, "service": text(), "identifier": text()})),
        object(&["type", "number"], json!({"type": {"const": "phone"}, "number": text()})),
        object(&["type", "currency", "address"], json!({"type": {"const": "crypto_wallet"}, "currency": text(), "address": text()})),
        object(&["type", "institution", "identifier"], json!({"type": {"const": "bank_account"}, "institution": text(), "identifier": text()}))
    ]});
    let target = {
        let mut t = object(
            &["value", "from", "until"],
            json!({"value": target_value, "from": instant(), "until": instant(), "provider": object(
                &["name", "established_in"],
                json!({
                    "name": non_blank(Some(200), "The provider holding the data, as the requester knows it: 1 to 200 characters; control characters are refused (400)"),
                    "established_in": schema_ref("CountryCode"),
                    "offers_services_in_eu": {"type": "boolean", "description": "Offers services in the EU (then e-Evidence orders reach it); default false"}
                }),
            )}),
        );
        t["description"] = json!("A target and the period for which data is sought; until must not be before from");
        t
    };
    let attachment = object(
        &["file_name", "sha256", "size", "media_type"],
        json!({
            "file_name": text(),
            "sha256": {"type": "string", "pattern": "^[0-9A-Fa-f]{64}$"},
            "size": {"type": "integer", "minimum": 0, "maximum": u64::MAX},
            "media_type": text()
        }),
    );
    let amount = object(
        &["value", "currency"],
        json!({
            "value": {
                "description": "Exact decimal, at most 15 digits before and 8 after the point. Answers write it as a string (\"2500.5\"); a JSON number is also read",
                "oneOf": [
                    {"type": "string", "pattern": "^[0-9]{1,15}(\\.[0-9]{1,8})?$"},
                    {"type": "number", "minimum": 0}
                ]
            },
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code"}
        }),
    );
    let draft_props = json!({
        "kind": schema_ref("RequestKind"),
        "urgency": schema_ref("Urgency"),
        "requesting_agency": {"type": "string", "format": "uuid", "description": "The caller's own agency (another agency is a 403); it must exist"},
        "requested_agency": {"type": "string", "format": "uuid", "description": "An agency in the directory, not the requesting one"},
        "case_reference": non_blank(Some(200), "The requesting side's case number (at most 200 bytes)"),
        "offences": {"type": "array", "items": schema_ref("OffenceCode"), "description": "At least one, except for spontaneous_information"},
        "summary": non_blank(Some(20_000), "Summary of the facts (at most 20000 bytes)"),
        "targets": array(schema_ref("Target")),
        "data_categories": {"type": "array", "items": schema_ref("DataCategory"), "description": "Empty: what the kind implies"},
        "legal_basis": text(),
        "related": array(uuid()),
        "attachments": array(attachment),
        "amount": schema_ref("Amount"),
        "conduct": array(text()),
        "marking": schema_ref("Marking")
    });
    let marking = {
        let mut m = object(
            &["tlp"],
            json!({
                "tlp": tlps.clone(),
                "recipients": {"type": "array", "maxItems": liaison_core::marking::MAX_RECIPIENTS, "uniqueItems": true,
                    "items": {"type": "string", "pattern": "^[A-Za-z0-9._@-]{1,64}$"},
                    "description": "TLP:RED only: users of the receiving agency who may read it; none = the whole agency"}
            }),
        );
        m["description"] = json!("A TLP 2.0 marking (docs/markings.md). Named recipients only with TLP:RED (else 422)");
        m["if"] = json!({"properties": {"tlp": {"not": {"const": "TLP:RED"}}}});
        m["then"] = json!({"properties": {"recipients": {"maxItems": 0}}});
        m
    };
    let draft_required = [
        "kind",
        "urgency",
        "requesting_agency",
        "requested_agency",
        "case_reference",
        "offences",
        "summary",
    ];
    let mut request_draft = object(&draft_required, draft_props.clone());
    // Only spontaneous information may name no offence.
    request_draft["if"] = json!({"properties": {"kind": {"not": {"const": "spontaneous_information"}}}});
    request_draft["then"] = json!({"properties": {"offences": {"minItems": 1}}});
    let stored_fields = json!({
        "id": uuid(),
        "state": schema_ref("State"),
        "version": {"type": "integer", "minimum": 1},
        "created_at": instant(),
        "updated_at": instant(),
        "submitted_at": instant(),
        "acknowledged_at": instant(),
        "answered_at": instant(),
        "ack_due": instant(),
        "answer_due": instant(),
        "preserved_until": instant(),
        "information_due": {"allOf": [instant()], "description": "While information is asked for: when the requesting side must supply it"},
        "reference": {"type": "string", "description": "The node's reference (FBI-2026-0042), accepted wherever an id is"},
        "overdue": {"allOf": [schema_ref("Deadline")], "description": "The running deadline, present when it has passed"}
    });
    // A stored request as answered: the draft's fields with defaults filled in, plus the state.
    let request = {
        let all_required: Vec<&str> = draft_required
            .iter()
            .copied()
            .chain([
                "targets",
                "data_categories",
                "legal_basis",
                "related",
                "attachments",
                "conduct",
                "marking",
            ])
            .chain(["id", "reference", "state", "version", "created_at", "updated_at"])
            .collect();
        let mut props = draft_props.clone();
        // Stored values are answered as stored, even if the node's rule packs changed since.
        props["offences"] = array(string());
        props["case_reference"] = string();
        props["summary"] = string();
        let r = extend(object(&all_required, props), &[], stored_fields.clone());
        extend(
            r,
            &[],
            json!({"assessment": schema_ref("Assessment"), "rule_pack_version": string()}),
        )
    };
    let request_summary = {
        let mut props = stored_fields.clone();
        for (k, v) in [
            ("kind", schema_ref("RequestKind")),
            ("urgency", schema_ref("Urgency")),
            ("requesting_agency", uuid()),
            ("requested_agency", uuid()),
            ("case_reference", string()),
            ("marking", schema_ref("Marking")),
        ] {
            props[k] = v;
        }
        object(
            &[
                "id",
                "reference",
                "kind",
                "urgency",
                "state",
                "version",
                "requesting_agency",
                "requested_agency",
                "case_reference",
                "created_at",
                "updated_at",
                "marking",
            ],
            props,
        )
    };

    // ----- assessments ---------------------------------------------------------------------
    let assessment_input = {
        let mut i = object(
            &["requesting", "requested", "kind", "urgency", "offences", "as_of"],
            json!({
                "requesting": schema_ref("AssessedJurisdiction"),
                "requested": schema_ref("AssessedJurisdiction"),
                "kind": schema_ref("RequestKind"),
                "urgency": schema_ref("Urgency"),
                "offences": array(schema_ref("OffenceCode")),
                "conduct": array(text()),
                "amount": schema_ref("Amount"),
                "categories": array(schema_ref("DataCategory")),
                "targets": array(schema_ref("Target")),
                "as_of": instant(),
                "observed_durations": {"type": "object", "description": "Observed median days to answer by channel id; empty: the node's own statistics",
                    "additionalProperties": {"type": "object", "required": ["median_days", "samples"], "properties": {
                        "median_days": {"type": "number"}, "samples": {"type": "integer", "minimum": 0, "maximum": u32::MAX}}}}
            }),
        );
        i["description"] = json!("Explicit jurisdictions; both need a rule pack on this node and must differ");
        i
    };
    let assessment_request = json!({
        "description": "Exactly one of draft (agencies resolve to jurisdictions; the draft is not stored), request (a stored request the caller may read) or input",
        "oneOf": [
            object(&["draft"], json!({"draft": schema_ref("RequestDraft")})),
            object(&["request"], json!({"request": uuid()})),
            object(&["input"], json!({"input": schema_ref("AssessmentInput")}))
        ]
    });
    let assessment = {
        let mut a = object(
            &[
                "rule_pack_version",
                "requesting",
                "requested",
                "format",
                "kind",
                "urgency",
                "as_of",
                "dual_criminality",
                "channels",
                "unavailable",
                "categories",
                "retention",
                "refusal_risks",
                "plan",
                "notes",
            ],
            json!({
                "rule_pack_version": string(),
                "requesting": string(),
                "requested": string(),
                "format": {"type": "integer", "description": "Shape of the assessment (2 since codes and parameters replaced English sentences)"},
                "kind": schema_ref("RequestKind"),
                "urgency": schema_ref("Urgency"),
                "as_of": instant(),
                "dual_criminality": array(json!({"type": "object"})),
                "channels": array(json!({"type": "object"})),
                "unavailable": {"type": "array", "items": {"type": "object"}, "description": "Channels not open yet on as_of (treaties not in force, instruments applying later)"},
                "rendered": {"type": "array", "items": string(), "description": "With ?lang=: the assessment in words"},
                "categories": array(json!({"type": "object"})),
                "retention": array(json!({"type": "object"})),
                "refusal_risks": array(json!({"type": "object"})),
                "plan": array(json!({"type": "object"})),
                "notes": array(object(&["code", "params"], json!({"code": string(), "params": {"type": "object", "additionalProperties": string()}})))
            }),
        );
        a["description"] = json!(
            "Dual criminality, channels, data-category requirements, retention risk, refusal risks and a plan, each with citations"
        );
        a
    };

    // ----- directory -----------------------------------------------------------------------
    let agency_fields = json!({
        "id": uuid(),
        "code": string(),
        "name_en": string(),
        "name_native": string(),
        "name_zh": {"type": "string", "description": "The name Chinese pages show, set on this node (absent: none set)"},
        "jurisdiction": string(),
        "kind": schema_ref("AgencyKind"),
        "time_zone": string()
    });
    let agency_required = [
        "id",
        "code",
        "name_en",
        "name_native",
        "jurisdiction",
        "kind",
        "time_zone",
    ];
    let contact_fields = json!({
        "id": uuid(),
        "agency": uuid(),
        "name": string(),
        "phone": string(),
        "email": string(),
        "languages": array(string()),
        "time_zone": string(),
        "office_hours": string()
    });
    let contact_required = [
        "id",
        "agency",
        "name",
        "phone",
        "email",
        "languages",
        "time_zone",
        "office_hours",
    ];
    let contact_view = extend(
        object(&contact_required, contact_fields.clone()),
        &["local_time", "open"],
        json!({"local_time": {"type": "string", "description": "e.g. 2026-11-22 18:31 CST"}, "open": {"type": "boolean"}}),
    );
    let agency_view = extend(
        object(&agency_required, agency_fields.clone()),
        &["node_id", "contacts"],
        json!({"node_id": nullable(string()), "contacts": array(contact_view)}),
    );

    // ----- intel ---------------------------------------------------------------------------
    let interval = object(
        &["start", "end"],
        json!({"start": {"type": "integer"}, "end": {"type": "integer"}}),
    );
    let notice_item = object(
        &[
            "item_id",
            "kind",
            "value",
            "status",
            "classification",
            "malware",
            "first_seen",
            "last_seen",
            "sightings",
            "port",
            "source_country",
            "source_asn",
            "as_org",
            "victim_count",
            "tlp",
        ],
        json!({
            "item_id": uuid(),
            "kind": indicator_kinds,
            "value": string(),
            "status": enum_of(["new", "still-active", "reappeared"]),
            "classification": classifications.clone(),
            "malware": nullable(string()),
            "first_seen": {"type": "integer", "description": "Unix seconds"},
            "last_seen": {"type": "integer", "description": "Unix seconds"},
            "sightings": count(),
            "port": nullable(json!({"type": "integer", "minimum": 0, "maximum": 65535})),
            "source_country": nullable(string()),
            "source_asn": nullable(count()),
            "as_org": nullable(string()),
            "victim_count": nullable(count()),
            "tlp": tlps.clone()
        }),
    );
    let paps = enum_of(["PAP:CLEAR", "PAP:GREEN", "PAP:AMBER", "PAP:RED"]);
    let notice = object(
        &["id", "partner", "interval", "tlp", "pap", "items", "issued_at"],
        json!({"id": uuid(), "partner": string(), "interval": schema_ref("Interval"), "tlp": tlps.clone(),
               "pap": paps.clone(),
               "items": array(notice_item), "issued_at": {"type": "integer", "description": "Unix seconds"},
               "issuer": {"type": "string", "description": "The issuing agency's code (absent: issued by trusted tooling)"}}),
    );
    let answers = enum_of(["remediated", "not-found", "disputed", "false-positive"]);
    let incoming_item = object(
        &[
            "item_id",
            "kind",
            "value",
            "status",
            "classification",
            "tlp",
            "detail",
            "answer",
            "note",
            "answered_at",
            "answered_by",
        ],
        json!({
            "item_id": uuid(), "kind": string(), "value": string(),
            "status": enum_of(["new", "still-active", "reappeared"]),
            "classification": string(), "tlp": tlps.clone(),
            "detail": {"type": "object", "description": "The other fields as received: first_seen, last_seen, sightings, port, source_country, source_asn, as_org, victim_count, malware; for a reappearance previous_item and remediated_at"},
            "answer": nullable(answers.clone()), "note": nullable(string()),
            "answered_at": nullable(json!({"type": "integer", "description": "Unix seconds"})), "answered_by": nullable(string())
        }),
    );
    let incoming_notice = object(
        &[
            "sender",
            "id",
            "issuer",
            "partner",
            "interval",
            "issued_at",
            "tlp",
            "pap",
            "parts",
            "received_at",
            "items",
        ],
        json!({
            "sender": string(), "id": uuid(), "issuer": string(), "partner": string(),
            "interval": schema_ref("Interval"), "issued_at": {"type": "integer", "description": "Unix seconds"},
            "tlp": tlps.clone(), "parts": count(), "received_at": {"type": "integer", "description": "Unix seconds"},
            "pap": {"oneOf": [{"type": "null", "description": "not stated: the sending node speaks a protocol older than 5"}, paps.clone()]},
            "items": array(incoming_item)
        }),
    );
    let remediation_row = object(
        &[
            "partner",
            "classification",
            "notified",
            "remediated",
            "reappeared",
            "not_found",
            "disputed",
            "false_positive",
            "median_ttr_secs",
            "mean_ttr_secs",
            "max_ttr_secs",
        ],
        json!({
            "partner": string(), "classification": string(), "notified": count(), "remediated": count(),
            "reappeared": count(), "not_found": count(), "disputed": count(), "false_positive": count(),
            "median_ttr_secs": nullable(json!({"type": "integer"})), "mean_ttr_secs": nullable(json!({"type": "number"})),
            "max_ttr_secs": nullable(json!({"type": "integer"}))
        }),
    );
    let notice_summary = object(
        &[
            "id",
            "partner",
            "interval",
            "tlp",
            "pap",
            "items",
            "new",
            "still_active",
            "reappeared",
        ],
        json!({"id": uuid(), "partner": string(), "interval": schema_ref("Interval"), "tlp": tlps, "pap": paps,
               "items": count(), "new": count(), "still_active": count(), "reappeared": count()}),
    );
    let source_report = json!({"type": "object", "required": ["file", "rows", "accepted", "quarantined", "quarantine", "bytes", "error"], "properties": {
        "file": string(), "rows": count(), "accepted": count(), "quarantined": count(),
        "quarantine": array(json!({"type": "object", "required": ["file", "line", "reason", "excerpt"], "properties": {
            "file": string(), "line": count(), "reason": string(), "excerpt": string()}})),
        "bytes": count(), "error": {"oneOf": [{"type": "null"}, {"type": "object"}]}
    }});
    let run_counts = [
        "rows",
        "accepted",
        "quarantined",
        "deduplicated",
        "new_indicators",
        "resightings",
        "reappeared",
        "enriched",
        "routed",
        "unroutable",
        "bytes",
        "persisted",
        "indicators_total",
        "chunks",
    ];
    let ingest_report = {
        let mut props = Map::new();
        props.insert("sources".into(), array(source_report));
        for c in run_counts {
            props.insert(c.into(), count());
        }
        for f in ["elapsed_secs", "events_per_sec", "persist_secs", "longest_write_ms"] {
            props.insert(f.into(), json!({"type": "number", "minimum": 0}));
        }
        let required: Vec<&str> = props.keys().map(String::as_str).collect();
        object(&required, Value::Object(props.clone()))
    };
    let stats_by = enum_of([
        "country",
        "victim_country",
        "classification",
        "asn",
        "day",
        "partner",
        "malware",
    ]);
    let intel_stats = object(
        &["query", "rows"],
        json!({
            "query": object(&["by", "class", "victim_country", "country", "asn", "since", "until"], json!({
                "by": enum_of(["country", "victim-country", "classification", "asn", "day", "partner", "malware"]),
                "class": nullable(classifications.clone()), "victim_country": nullable(string()), "country": nullable(string()),
                "asn": nullable(count()), "since": nullable(json!({"type": "integer"})), "until": nullable(json!({"type": "integer"}))
            })),
            "rows": array(object(&["key", "indicators", "sightings", "victims"], json!({"key": string(), "indicators": count(), "sightings": count(), "victims": count()})))
        }),
    );
    let intel_instant = json!({"description": "A date (2026-10-01), an RFC 3339 instant or Unix seconds, up to 9999-12-30T22:00:00Z",
        "anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}, {"type": "integer", "minimum": 0, "maximum": jiff::Timestamp::MAX.as_second()}]});
    let csv = json!({"text/csv": {"schema": {"type": "string"}}});

    // ----- operations ----------------------------------------------------------------------
    let request_links = |id_from: &str| {
        let p = json!({"id": id_from});
        json!({
            "GetRequest": {"operationId": "getRequest", "parameters": p},
            "UpdateDraft": {"operationId": "updateDraft", "parameters": p},
            "ListEvents": {"operationId": "listEvents", "parameters": p},
            "AllowedTransitions": {"operationId": "allowedTransitions", "parameters": p},
            "Transition": {"operationId": "transition", "parameters": p},
            "Comment": {"operationId": "addComment", "parameters": p}
        })
    };
    let ingest_job = {
        let counters = [
            "bytes_received",
            "bytes_read",
            "rows",
            "accepted",
            "quarantined",
            "to_persist",
            "persisted",
        ];
        let mut props = Map::new();
        props.insert("id".into(), uuid());
        props.insert("agency".into(), uuid());
        props.insert("state".into(), enum_of(["running", "succeeded", "failed"]));
        props.insert(
            "phase".into(),
            enum_of(["receiving", "loading", "parsing", "persisting", "done"]),
        );
        for f in ["format", "feed", "name"] {
            props.insert(f.into(), string());
        }
        props.insert("started_at".into(), json!({"type": "string", "format": "date-time"}));
        props.insert(
            "finished_at".into(),
            nullable(json!({"type": "string", "format": "date-time"})),
        );
        for c in counters {
            props.insert(c.into(), count());
        }
        props.insert("report".into(), nullable(schema_ref("IngestReport")));
        props.insert(
            "error".into(),
            nullable(object(
                &["status", "detail"],
                json!({"status": {"type": "integer", "minimum": 400, "maximum": 599}, "detail": string()}),
            )),
        );
        let required: Vec<&str> = props.keys().map(String::as_str).collect();
        object(&required, Value::Object(props.clone()))
    };
    let sha256 =
        json!({"type": "string", "pattern": "^[0-9a-fA-F]{64}$", "description": "SHA-256, 64 hexadecimal digits"});
    let upload_param = json!({"name": "upload", "in": "path", "required": true, "description": "Upload session id", "schema": {"type": "string", "pattern": "^[^\\x00]*$"}});
    let file_param = json!({"name": "file", "in": "path", "required": true, "description": "Evidence file id", "schema": {"type": "string", "pattern": "^[^\\x00]*$"}});
    let evidence_kinds = enum_of(["supporting", "answer", "comment"]);
    let binary_body = json!({"required": false, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}, "*/*": {"schema": {}}}});
    let evidence_upload = {
        let mut o = Op::new("uploadEvidence", "evidence", "Upload a whole file in one streamed body")
            .describe("The body is the file, streamed to sealed chunks on disk (never held in memory), at most [evidence] max_file_bytes (else 413). Parties to the request who may comment; a supporting file comes from the requesting agency, an answer from the requested agency. With sha256, content with another digest is refused (422, nothing kept). Large files: use the resumable uploads")
            .params(vec![
                id_param(),
                json!({"name": "file_name", "in": "query", "required": true, "description": "The original file name (kept sanitised)", "schema": text()}),
                q("media_type", "The media type claimed (default: the Content-Type, unless application/octet-stream)", text()),
                q("kind", "supporting (requesting agency, default there), answer (requested agency, default there) or comment", evidence_kinds.clone()),
                q("attached_to", "comment files: the comment's event id", text()),
                q("tlp", "The file's TLP level (default and minimum: the request's)", text()),
                q("recipients", "With tlp=TLP:RED: named users, comma-separated", text()),
                q("sha256", "The content's SHA-256, checked", sha256.clone()),
            ])
            .errors(&[400, 403, 404, 409, 413, 422])
            .ok(201, "The stored file", json_content(schema_ref("EvidenceFile")))
            .build();
        o["requestBody"] = binary_body.clone();
        o
    };
    let evidence_piece = {
        let mut o = Op::new("putEvidencePiece", "evidence", "Send the next piece of an upload")
            .describe("The piece must start at the session's received offset (else 409, naming it). What arrives before a connection breaks stays: ask the session where to resume. Over [evidence] max_file_bytes: 413")
            .params(vec![
                id_param(),
                upload_param.clone(),
                json!({"name": "offset", "in": "query", "required": true, "description": "Where this piece starts", "schema": {"type": "integer", "minimum": 0}}),
            ])
            .errors(&[400, 404, 409, 413, 422])
            .ok(200, "The session after the piece", json_content(schema_ref("EvidenceUpload")))
            .build();
        o["requestBody"] = binary_body;
        o
    };
    let ingest = {
        let mut o = Op::new(
            "intelIngest",
            "intel",
            "Ingest a threat feed (body = the file); bad rows are quarantined with line and reason, the batch goes on",
        )
        .describe("Any content type, streamed to disk; at most [intel] max_upload_bytes (default 4 GiB, else 413). Answers 202 with the job at once (follow it at Location), or with wait=true 200 with the report when done. One ingest at a time: 409 with Retry-After. A feed whose columns do not match its format, or of which no row is accepted, fails (422 with wait=true; else in the job) and stores nothing")
        .params(vec![
            json!({"name": "format", "in": "query", "required": true, "description": format!("Feed format ({}; feodotracker, threatfox, generic-csv, demo, plain and txt are accepted aliases) or the name of a configured source ([intel.sources.NAME])", liaison_intel::FeedFormat::NAMES.join(", ")), "schema": text()}),
            q("feed", "Feed name recorded on each indicator (default: the file name)", text()),
            q("name", "File name used in quarantine messages (default: upload)", text()),
            q("wait", "true: answer when the ingest is done, with its report", enum_of(["true", "false"])),
        ])
        .errors(&[400, 403, 413, 422])
        .ok(200, "With wait=true: the run summary with counts and quarantined rows", json_content(schema_ref("IngestReport")))
        .ok(202, "The ingest job, running (GET its Location for progress and the report)", json_content(schema_ref("IngestJob")))
        .ok_header(202, "Location", "The job: /api/v1/intel/ingest/{id}")
        .build();
        o["responses"]["409"] = response_ref("Busy");
        // An empty body is an empty feed (nothing accepted: the run fails).
        o["requestBody"] = json!({"required": false, "content": {
            "text/csv": {"schema": {"type": "string"}},
            "text/plain": {"schema": {"type": "string"}},
            "application/json": {"schema": {}}
        }});
        o
    };
    // The rotation's body is optional (an empty body takes the default overlap).
    let mut rotate_key = Op::new("rotateKey", "federation", "Replace the node's signing key; the old one stays valid for the overlap and every peer is told in the same transaction (admin)")
        .describe("The running node signs with the new key after a restart. 404 when the node has no federation identity")
        .errors(&[400, 403, 404, 413, 415])
        .ok(201, "What the rotation did", json_content(schema_ref("RotationReport")))
        .build();
    rotate_key["requestBody"] = json!({"required": false, "content": json_content(schema_ref("KeyRotation"))});
    let paths = json!({
        "/api/v1/health": {"get": {
            "operationId": "health", "tags": ["node"], "summary": "Liveness and database check (no token needed)", "security": [],
            "responses": {
                "200": {"description": "Healthy", "content": json_content(schema_ref("Health"))},
                "503": {"description": "Unhealthy: the database does not answer, is damaged, or its disk is nearly full; `problems` says what and what to do", "content": json_content(schema_ref("Health"))}
            }
        }},
        "/api/v1/me": {"get": Op::new("me", "node", "The caller's identity, agency and role")
            .ok(200, "The caller", json_content(schema_ref("Principal"))).build()},
        "/api/v1/directory": {"get": Op::new("directory", "directory", "Agencies with contact points, each with local time now and office status")
            .ok(200, "Every agency", json_content(array(schema_ref("AgencyView")))).build()},
        "/api/v1/jurisdictions": {"post": Op::new("addJurisdiction", "directory", "Add or rename a jurisdiction (admin)")
            .json_body(schema_ref("Jurisdiction")).errors(&[403])
            .ok(201, "Stored (code upper-cased)", json_content(schema_ref("Jurisdiction"))).build()},
        "/api/v1/agencies": {"post": Op::new("addAgency", "directory", "Add an agency served by this node (admin)")
            .describe("409 when the code is taken; 400 when the jurisdiction is not in the directory")
            .json_body(schema_ref("NewAgency")).errors(&[403, 409])
            .ok(201, "Stored", json_content(schema_ref("Agency"))).build()},
        "/api/v1/agencies/{code}": {"patch": Op::new("renameAgency", "directory", "Rename an agency in this node's directory (admin)")
            .describe("Names only (English, native, and the name Chinese pages show); the code, jurisdiction, kind and time zone do not change. Agencies of peer nodes may be renamed: the names are this node's readers'. 404 for an unknown code")
            .params(vec![json!({"name": "code", "in": "path", "required": true, "description": "Agency code", "schema": {"type": "string", "pattern": "^[^\\x00]*$"}})])
            .json_body(schema_ref("AgencyNames")).errors(&[403, 404])
            .ok(200, "Renamed", json_content(schema_ref("Agency"))).build()},
        "/api/v1/contacts": {"post": Op::new("addContact", "directory", "Add a contact point (admin)")
            .describe("400 when the agency does not exist")
            .json_body(schema_ref("NewContact")).errors(&[403])
            .ok(201, "Stored", json_content(schema_ref("Contact"))).build()},
        "/api/v1/requests": {
            "get": Op::new("listRequests", "requests", "List requests sent or received by the caller's agency, newest first")
                .describe("With `queue`, one of the caller's queues; with `format=csv`, the page as CSV (summaries)")
                .params(list_params.clone()).errors(&[400, 403])
                .ok(200, "One page", json!({"application/json": {"schema": schema_ref("RequestPage")}, "text/csv": {"schema": string()}})).build(),
            "post": Op::new("createRequest", "requests", "Create a draft request")
                .describe("403 for a role that may not draft or for another agency's draft; 400 names every invalid field")
                .json_body(schema_ref("RequestDraft")).errors(&[403])
                .ok(201, "The draft", json_content(schema_ref("Request")))
                .ok_header(201, "Location", "/api/v1/requests/{id}")
                .links(201, request_links("$response.body#/id")).build()
        },
        "/api/v1/requests/overdue": {"get": Op::new("listOverdue", "requests", "Requests whose running deadline has passed (as GET /requests with overdue=true)")
            .params(list_params.iter().filter(|p| p["name"] != "overdue").cloned().collect()).errors(&[400, 403])
            .ok(200, "One page", json!({"application/json": {"schema": schema_ref("RequestPage")}, "text/csv": {"schema": string()}})).build()},
        "/api/v1/search": {"get": Op::new("searchTexts", "search", "Search requests' references, case references, summaries, comments and evidence file names, in English and Chinese")
            .describe("Only texts the caller may read: requests of its agency (the other side's drafts never), under their markings and each comment's and file's own; hidden texts count nowhere. Newest first; count stops at 1000 (count_capped)")
            .params(search_params).errors(&[400, 403])
            .ok(200, "One page of hits", json!({"application/json": {"schema": schema_ref("SearchPage")}, "text/csv": {"schema": string()}})).build()},
        "/api/v1/lookup": {"get": Op::new("lookupIdentifier", "search", "Look up a target identifier: the requests that have it among their targets, and the clean-up indicators and notices under it")
            .describe("The identifier is normalized (IDNA, IPv6 forms, phone numbers in E.164 — a national number is read in the caller's agency's country); a network finds the addresses in it. Indicators: for the roles that work clean-up, those the caller's agency ingested")
            .params(vec![
                json!({"name": "target", "in": "query", "required": true, "description": "The identifier", "schema": text()}),
                q("kind", "How to read it when its form does not tell (account: service:name, wallet: currency:address, bank: institution:account)", ident_kind.clone()),
            ]).errors(&[400, 403])
            .ok(200, "What was found", json_content(schema_ref("TargetLookup"))).build()},
        "/api/v1/searches": {
            "get": Op::new("listSavedSearches", "search", "The caller's saved searches, by name")
                .errors(&[403])
                .ok(200, "Saved searches", json_content(array(schema_ref("SavedSearch")))).build(),
            "post": Op::new("saveSearch", "search", "Save a search under a name (the same name replaces it; at most 100)")
                .json_body(object(&["name", "query"], json!({"name": non_blank(Some(320), "1 to 80 characters"), "query": {"type": "string", "maxLength": 4096, "description": "The search's query string, as /api/v1/search takes it (q=…&state=…)"}})))
                .errors(&[403])
                .ok(201, "The saved search", json_content(schema_ref("SavedSearch"))).build()
        },
        "/api/v1/searches/{name}": {"delete": Op::new("deleteSavedSearch", "search", "Delete one of the caller's saved searches (by name or id)")
            .params(vec![json!({"name": "name", "in": "path", "required": true, "description": "Its name or id", "schema": text()})])
            .errors(&[403, 404])
            .ok_empty(204, "Deleted").build()},
        "/api/v1/requests/{id}": {
            "get": Op::new("getRequest", "requests", "One request (ETag = version)")
                .params(vec![id_param()]).errors(&[400, 403, 404])
                .ok(200, "The request", json_content(schema_ref("Request")))
                .ok_header(200, "ETag", "The version, quoted").build(),
            "put": Op::new("updateDraft", "requests", "Replace a draft's content (optimistic version)")
                .describe("409 when the version is stale or the request is no longer a draft")
                .params(vec![id_param()]).json_body(schema_ref("DraftUpdate")).errors(&[403, 404, 409])
                .ok(200, "The updated draft", json_content(schema_ref("Request"))).build()
        },
        "/api/v1/requests/{id}/events": {"get": Op::new("listEvents", "requests", "The request's history")
            .params(vec![id_param()]).errors(&[400, 403, 404])
            .ok(200, "Events, oldest first", json_content(array(schema_ref("Event")))).build()},
        "/api/v1/requests/{id}/transitions": {
            "get": Op::new("allowedTransitions", "requests", "States the caller may move the request to now")
                .params(vec![id_param()]).errors(&[400, 403, 404])
                .ok(200, "Allowed states", json_content(schema_ref("Allowed"))).build(),
            "post": Op::new("transition", "requests", "Move the request to another state")
                .describe("409 for a stale version, or an illegal move (the problem lists the allowed states); 403 when the move is for another role or side")
                .params(vec![id_param()]).json_body(schema_ref("Transition")).errors(&[403, 404, 409])
                .ok(200, "The request after the move", json_content(schema_ref("Request"))).build()
        },
        "/api/v1/requests/{id}/reassess": {"post": Op::new("reassess", "law", "Re-assess a submitted request under the current rule packs")
            .describe("Applies the law in force on the submission date with the node's current rule packs and stores the new assessment (an `assessment` event and an audit entry). 400: a draft (assessed when submitted)")
            .params(vec![id_param()]).errors(&[400, 403, 404])
            .ok(200, "The request with its new assessment", json_content(schema_ref("Request"))).build()},
        "/api/v1/requests/{id}/marking": {"post": Op::new("setMarking", "requests", "Change a request's TLP marking")
            .describe("Only users of the requesting agency (the originator) who may draft: others get 403. The change is recorded and mirrored to the peer node (docs/markings.md)")
            .params(vec![id_param()]).json_body(schema_ref("MarkingChange")).errors(&[403, 404])
            .ok(200, "The request with its new marking", json_content(schema_ref("Request"))).build()},
        "/api/v1/requests/{id}/consents": {
            "get": Op::new("permittedUses", "requests", "The cases the answer may be used in (speciality)")
                .describe("The request's own case and those the requested agency consented to (docs/markings.md)")
                .params(vec![id_param()]).errors(&[400, 403, 404])
                .ok(200, "The cases", json_content(object(&["cases"], json!({"cases": array(string())})))).build(),
            "post": Op::new("consentToUse", "requests", "Consent to another use of the answer (speciality)")
                .describe("The requested agency's legal reviewers and supervisors only; recorded as a comment with data.consent and mirrored to the peer")
                .params(vec![id_param()]).json_body(schema_ref("Consent")).errors(&[403, 404])
                .ok(201, "The consent event", json_content(schema_ref("Event"))).build()},
        "/api/v1/requests/{id}/letter": {"get": Op::new("requestLetter", "requests", "The formal request letter as a bilingual PDF (docs/letter.md)")
            .describe("The requesting agency's officers and supervisors only (403 otherwise). The particulars the requested side's law asks for (rule packs, by the channel of the request's assessment) are mapped to the request's data; while any is missing (a translation too) the answer is 422 with `errors` naming each, unless draft=true, which returns a watermarked draft listing them. Always an attachment (Content-Disposition), never cached; the PDF's SHA-256 is in the audit log (`letter.produced`) and in X-Liaison-Letter-Sha256")
            .params(vec![
                id_param(),
                q("lang", "Languages in print order, comma-separated (en, zh-CN); default en,zh-CN", text()),
                q("draft", "true: a watermarked draft even with missing particulars", enum_of(["true", "false"])),
                q("signer", "The signer's name for the signature block (else a line to write on)", text()),
                q("function", "The signer's rank or function", text()),
                q("place", "The place of signature", text()),
            ])
            .errors(&[400, 403, 404])
            .ok(200, "The letter (application/pdf, attachment)", json!({"application/pdf": {"schema": {"type": "string", "format": "binary"}}}))
            .ok_header(200, "Content-Disposition", "attachment; filename=\"letter-AGENCY-YEAR-SEQ.pdf\"")
            .ok_header(200, "X-Liaison-Letter-Reference", "The letter reference (AGENCY/YEAR/SEQ), stable per request")
            .ok_header(200, "X-Liaison-Letter-Sha256", "SHA-256 of the PDF, as recorded in the audit log")
            .incomplete()
            .build()},
        "/api/v1/requests/{id}/texts/{field}/{lang}": {"put": Op::new("setRequestText", "requests", "Set a letter's free text (summary, purpose, necessity) in one language")
            .describe("The requesting agency's officers and supervisors only. At most 20000 characters; the text's SHA-256 is in the audit entry (`request.text`)")
            .params(vec![
                id_param(),
                json!({"name": "field", "in": "path", "required": true, "description": "Which text", "schema": enum_of(["summary", "purpose", "necessity"])}),
                json!({"name": "lang", "in": "path", "required": true, "description": "Its language", "schema": enum_of(["en", "zh-CN", "zh"])}),
            ])
            .json_body(object(&["text"], json!({"text": non_blank(Some(20000), "The text")}))).errors(&[403, 404])
            .ok_empty(204, "Stored").build()},
        "/api/v1/requests/{id}/approval": {
            "get": Op::new("getApproval", "requests", "A draft's four-eyes approval: whether the node requires it, the open call, and what the caller may do")
                .describe("docs/lifecycle.md \"Four eyes\". A request that is no longer a draft has no open call")
                .params(vec![id_param()]).errors(&[400, 403, 404])
                .ok(200, "The approval", json_content(schema_ref("Approval"))).build(),
            "post": Op::new("approvalStep", "requests", "Ask a second person to approve a draft, or end the call without sending")
                .describe("`ask` (the requesting agency's officers and supervisors; `version` is the draft's version asked about: editing the draft voids the call), or `return`: an approver sends the draft back (a reason is required) or the person who asked takes the call back. Approving is sending: `POST .../transitions` to `submitted` by an approver who did not ask. 409: not a draft, a stale version, a call already open or none open; 403: not an approver")
                .params(vec![id_param()]).json_body(schema_ref("ApprovalStep")).errors(&[400, 403, 404, 409])
                .ok(200, "The approval after the step", json_content(schema_ref("Approval"))).build()
        },
        "/api/v1/requests/{id}/comments": {"post": Op::new("addComment", "requests", "Add a comment")
            .params(vec![id_param()]).json_body(schema_ref("Comment")).errors(&[403, 404])
            .ok(201, "The comment event", json_content(schema_ref("Event"))).build()},
        "/api/v1/requests/{id}/evidence": {
            "get": Op::new("listEvidence", "evidence", "The request's evidence files the caller may see")
                .describe("Parties to the request only; a file's marking (never below the request's) decides the rest, as for comments (docs/markings.md)")
                .params(vec![id_param()]).errors(&[400, 403, 404])
                .ok(200, "Files, oldest first (metadata only)", json_content(array(schema_ref("EvidenceFile")))).build(),
            "post": evidence_upload
        },
        "/api/v1/requests/{id}/evidence/uploads": {"post": Op::new("beginEvidenceUpload", "evidence", "Open a resumable upload")
            .describe("Send the content with PATCH …/uploads/{upload}?offset=N in pieces of any size, ask GET …/uploads/{upload} where to resume, then POST …/finish with the SHA-256. 409 when the caller already has [evidence] max_open_uploads unfinished uploads (default 16; an upload idle for upload_expiry_hours is removed)")
            .params(vec![id_param()]).json_body(schema_ref("NewEvidence")).errors(&[403, 404, 409])
            .ok(201, "The upload session", json_content(schema_ref("EvidenceUpload")))
            .ok_header(201, "Location", "The session").build()},
        "/api/v1/requests/{id}/evidence/uploads/{upload}": {
            "get": Op::new("evidenceUploadStatus", "evidence", "An upload session: `received` is the offset the next piece starts at")
                .params(vec![id_param(), upload_param.clone()]).errors(&[400, 404])
                .ok(200, "The session", json_content(schema_ref("EvidenceUpload"))).build(),
            "patch": evidence_piece,
            "delete": Op::new("abortEvidenceUpload", "evidence", "Abandon an upload (its partial content is removed)")
                .params(vec![id_param(), upload_param.clone()]).errors(&[400, 404])
                .ok(204, "Abandoned", json!({})).build()
        },
        "/api/v1/requests/{id}/evidence/uploads/{upload}/finish": {"post": Op::new("finishEvidenceUpload", "evidence", "Finish an upload: the content's SHA-256 must match")
            .describe("422 when the content's SHA-256 is not the one sent (the upload is discarded); 409 while a piece is arriving")
            .params(vec![id_param(), upload_param]).json_body(object(&["sha256"], json!({"sha256": sha256.clone()}))).errors(&[404, 409, 422])
            .ok(201, "The stored file", json_content(schema_ref("EvidenceFile"))).build()},
        "/api/v1/requests/{id}/evidence/{file}": {"get": Op::new("getEvidence", "evidence", "One evidence file's metadata")
            .params(vec![id_param(), file_param.clone()]).errors(&[400, 403, 404])
            .ok(200, "The file", json_content(schema_ref("EvidenceFile"))).build()},
        "/api/v1/requests/{id}/evidence/{file}/content": {"get": Op::new("downloadEvidence", "evidence", "Download a file (never inline)")
            .describe("application/octet-stream with Content-Disposition: attachment, X-Content-Type-Options: nosniff, Content-Security-Policy: sandbox, Cache-Control: no-store. The content is checked chunk by chunk while it is sent: content altered on disk breaks the answer off before its Content-Length. Recorded in the file's custody (evidence.download). 404 also when the content was deleted under retention")
            .params(vec![id_param(), file_param.clone()]).errors(&[400, 403, 404, 422])
            .ok(200, "The content", json!({"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}))
            .ok_header(200, "Content-Disposition", "attachment; filename=…").build()},
        "/api/v1/requests/{id}/evidence-package": {"get": Op::new("exportEvidencePackage", "evidence", "The request's evidence package: one signed ZIP to verify offline (docs/evidence.md)")
            .describe("What the caller may read of the request: its history, its files (decrypted), their custody, signed receipts and Merkle inclusion proofs of its ledger leaves, a cover page and a CASE/UCO document, listed with their SHA-256 in a manifest signed by the node's key. Verify it with `liaison evidence verify PACKAGE --trust FINGERPRINT`. Parties to the request only (404 otherwise); 422 when the node has no federation signing key or the request has more than 9999 files or 10,000 messages; 409 while a node restored from a backup has not yet told its peers (no tree head is signed until then). Always an attachment, never cached; each exported file's custody records evidence.export with the package's SHA-256 (also in X-Liaison-Package-Sha256)")
            .params(vec![id_param()]).errors(&[400, 403, 404, 409, 422])
            .ok(200, "The package (application/zip, attachment)", json!({"application/zip": {"schema": {"type": "string", "format": "binary"}}}))
            .ok_header(200, "Content-Disposition", "attachment; filename=\"evidence-package-ID.zip\"")
            .ok_header(200, "X-Liaison-Package-Sha256", "SHA-256 of the package, as recorded in the files' custody")
            .ok_header(200, "X-Liaison-Key-Fingerprint", "Fingerprint of the key that signed the manifest: compare it out of band").build()},
        "/api/v1/requests/{id}/evidence/{file}/custody": {"get": Op::new("evidenceCustody", "evidence", "A file's chain of custody: its audit entries, oldest first")
            .params(vec![id_param(), file_param]).errors(&[400, 403, 404])
            .ok(200, "Entries", json_content(array(schema_ref("CustodyEntry")))).build()},
        "/api/v1/assessments": {"post": Op::new("assess", "law", "Assess a draft, a stored request or an explicit input against both states' law")
            .describe("Nothing is stored. 404/403: the request named is not visible to, or not readable by, the caller. A stored request is assessed under the law in force on its submission date. With `lang`, the answer adds `rendered`: the assessment in words, in that language")
            .params(vec![q("lang", "Add the assessment rendered in this language (en or zh-CN)", enum_of(["en", "zh-CN", "zh"]))])
            .json_body(schema_ref("AssessmentRequest")).errors(&[403, 404])
            .ok(200, "The assessment", json_content(schema_ref("Assessment"))).build()},
        "/api/v1/reports/cooperation": {"get": Op::new("cooperationReport", "reports", "Cooperation statistics per ordered pair")
            .params(vec![
                q("from", "Start (RFC 3339); default two years ago", instant()),
                q("to", "End (RFC 3339), after from; default now", instant()),
                q("by", "Group by agency (default) or jurisdiction", enum_of(["agency", "jurisdiction"])),
                q("format", "json (default) or csv", enum_of(["json", "csv"]))
            ]).errors(&[400, 403])
            .ok(200, "The report (format=csv: RFC 4180 CSV with a header line)", {
                let mut c = json_content(schema_ref("CooperationReport"));
                c["text/csv"] = csv["text/csv"].clone();
                c
            }).build()},
        "/api/v1/intel/ingest": {"post": ingest},
        "/api/v1/intel/ingest/{id}": {"get": Op::new("intelIngestJob", "intel", "One ingest job of this node process: state, phase, counters, and the report or error when done")
            .params(vec![json!({"name": "id", "in": "path", "required": true, "description": "Job id (a malformed id is a 400)", "schema": {"type": "string", "format": "uuid"}})])
            .errors(&[400, 403, 404])
            .ok(200, "The job", json_content(schema_ref("IngestJob"))).build()},
        "/api/v1/intel/ingests": {"get": Op::new("intelIngestJobs", "intel", "The recent ingest jobs of this node process, newest first")
            .errors(&[403])
            .ok(200, "The jobs", json_content(array(schema_ref("IngestJob")))).build()},
        "/api/v1/intel/notices": {"get": Op::new("intelNotices", "intel", "Issued clean-up notices (a partner's users see their own only)")
            .params(vec![
                q("partner", "Partner agency code (others than one's own: operators and statistics readers only)", text()),
                q("format", "json (default) or csv (one line per item)", enum_of(["json", "csv"]))
            ]).errors(&[400, 403])
            .ok(200, "Notices", {
                let mut c = json_content(array(schema_ref("Notice")));
                c["text/csv"] = csv["text/csv"].clone();
                c
            }).build()},
        "/api/v1/intel/notices/issue": {"post": Op::new("intelIssue", "intel", "Issue the notices for an interval (default: since the last run, until the end of today, UTC)")
            .params(vec![
                q("since", "Start of the interval", intel_instant.clone()),
                q("until", "End of the interval, after since", intel_instant.clone()),
                q("pap", "What the partners may do about the items (Permissible Actions Protocol); default [markings] notice_pap, PAP:GREEN", enum_of(["PAP:CLEAR", "PAP:GREEN", "PAP:AMBER", "PAP:RED"]))
            ]).errors(&[400, 403])
            .ok(201, "What was issued", json_content(schema_ref("IssueReport"))).build()},
        "/api/v1/intel/feedback": {"post": Op::new("intelFeedback", "intel", "A partner's answer for one of its notice items")
            .describe("403 when the item was sent to another partner, or for auditors; 404 for an unknown item")
            .json_body(schema_ref("Feedback")).errors(&[403, 404])
            .ok(201, "The recorded answer", json_content(schema_ref("FeedbackRecord"))).build()},
        "/api/v1/intel/inbox": {"get": Op::new("intelInbox", "intel", "Clean-up notices other nodes issued for the caller's agency (any role that reads requests; other agencies' notices are never listed)")
            .errors(&[403])
            .ok(200, "Incoming notices, newest first", json_content(array(schema_ref("IncomingNotice")))).build()},
        "/api/v1/intel/inbox/answer": {"post": Op::new("intelInboxAnswer", "intel", "Answer one item of an incoming notice; the answer travels back to the issuing node")
            .describe("403 for auditors and admins; 404 for an item not addressed to the caller's agency")
            .json_body(schema_ref("InboxAnswer")).errors(&[400, 403, 404, 409])
            .ok(201, "What was answered and where it goes", json_content(schema_ref("AnswerReport"))).build()},
        "/api/v1/intel/export": {"get": Op::new("intelExport", "intel", "Export the caller's agency's indicators as a STIX 2.1 bundle (with its notices as reports) or as MISP events (docs/intel-formats.md)")
            .describe("Analysts, supervisors and admins of an agency this node serves: the indicators their agency ingested (suppressed ones never), each with its own TLP marking; a STIX bundle also holds the marking-definition objects it references, the malware families, sightings and the agency's issued notices as reports. tlp_max leaves out what is marked stricter (counted in X-Liaison-Left-Out-By-Marking). Always an attachment, never cached")
            .params(vec![
                q("format", "stix (a STIX 2.1 bundle) or misp (MISP events, as restSearch answers them)", enum_of(["stix", "misp"])),
                q("tlp_max", "Leave out what is marked stricter than this level", enum_of(["TLP:CLEAR", "TLP:GREEN", "TLP:AMBER", "TLP:AMBER+STRICT", "TLP:RED"])),
                q("since", "Only indicators seen at or after this instant", intel_instant.clone()),
                q("feed", "Only indicators of this feed", text()),
                q("active", "Only indicators still active", enum_of(["true", "false"]))
            ]).errors(&[400, 403])
            .ok(200, "The export (attachment)", json!({
                "application/stix+json;version=2.1": {"schema": {"type": "object"}},
                "application/json": {"schema": {"type": "object"}}
            }))
            .ok_header(200, "Content-Disposition", "attachment; filename=…")
            .ok_header(200, "X-Liaison-Indicators", "Indicators in the export")
            .ok_header(200, "X-Liaison-Left-Out-By-Marking", "Indicators and notices left out by tlp_max").build()},
        "/api/v1/intel/misp-feed/manifest.json": {"get": Op::new("intelMispManifest", "intel", "The manifest of the caller's agency's MISP feed: event uuid to event header (a MISP instance subscribes to /api/v1/intel/misp-feed with an Authorization header)")
            .describe("Who may read it and what it holds: as /api/v1/intel/export. One event per feed and TLP level; an event's timestamp is its newest sighting")
            .errors(&[403])
            .ok(200, "The manifest", json_content(json!({"type": "object", "additionalProperties": {"type": "object"}}))).build()},
        "/api/v1/intel/misp-feed/{event}": {"get": Op::new("intelMispEvent", "intel", "One event of the caller's agency's MISP feed")
            .params(vec![json!({"name": "event", "in": "path", "required": true, "description": "The event's file name, <uuid>.json, as the manifest lists it (anything else is a 400)", "schema": {"type": "string"}})])
            .errors(&[400, 403, 404])
            .ok(200, "The event ({\"Event\": {…}})", json_content(json!({"type": "object", "required": ["Event"]}))).build()},
        "/api/v1/intel/remediation": {"get": Op::new("intelRemediation", "intel", "Time-to-remediation per partner and classification, for the partners in the caller's scope (its agency's notices as issuer or as partner)")
            .errors(&[403])
            .ok(200, "Rows", json_content(schema_ref("Remediation"))).build()},
        "/api/v1/intel/stats": {"get": Op::new("intelStats", "intel", "Statistics by country, classification, ASN, day, partner or malware (e.g. C2 servers controlling hosts in CN by country of the C2), over the indicators that concern the caller's agency: those it ingested on this node and those put on a notice to it")
            .params(vec![
                q("by", "Grouping (default country; victim-country, class, cc, ... are accepted aliases)", stats_by),
                q("class", "Classification (aliases such as botnet-c2 are accepted)", classifications),
                q("victim_country", "Only indicators with victims in this country", schema_ref("CountryCode")),
                q("country", "Only indicators whose host is in this country", schema_ref("CountryCode")),
                q("asn", "AS number (AS prefix accepted)", json!({"type": "integer", "minimum": 1, "maximum": u32::MAX})),
                q("since", "Only what was last seen at or after", intel_instant.clone()),
                q("until", "Only what was last seen before", intel_instant)
            ]).errors(&[400, 403])
            .ok(200, "Rows", json_content(schema_ref("IntelStats"))).build()},
        "/api/v1/audit/verify": {"get": Op::new("auditVerify", "audit", "Recompute the hash-chained audit log (auditors, admins)")
            .errors(&[403])
            .ok(200, "The chain's state", json_content(schema_ref("AuditReport"))).build()},
        "/api/v1/home": {"get": Op::new("home", "work", "The caller's home page: queue counts and the lists the role starts with")
            .describe("Desk: unassigned incoming and what falls due before shift_end (default: in 12 hours); officer: own requests by due date, drafts, waiting on the partner; legal reviewer: the review queue; supervisor: overdue, unassigned, waiting on us and on the partner (docs/queues.md)")
            .params(vec![q("shift_end", "End of the shift (RFC 3339); default: 12 hours from now", instant())]).errors(&[400, 403])
            .ok(200, "The home page", json_content(schema_ref("Home"))).build()},
        "/api/v1/queues": {"get": Op::new("queueCounts", "work", "How many requests each of the caller's queues holds (each stops at 1000)")
            .errors(&[403])
            .ok(200, "The counts", json_content(schema_ref("QueueCounts"))).build()},
        "/api/v1/requests/{id}/work": {"get": Op::new("workState", "work", "Who works the request for the caller's agency, whose move it waits for and its running deadline")
            .params(vec![id_param()]).errors(&[400, 403, 404])
            .ok(200, "The work state", json_content(schema_ref("WorkState"))).build()},
        "/api/v1/requests/{id}/assignment": {"post": Op::new("assign", "work", "Assign the request for the caller's agency: an owner and a unit")
            .describe("Supervisors assign anything; the desk assigns incoming requests; officers and legal reviewers take a request nobody owns or hand over one they own (403 otherwise). The owner must be an active user of the caller's agency who works requests (400). Local: never sent to a peer")
            .params(vec![id_param()]).json_body(schema_ref("AssignmentChange")).errors(&[403, 404])
            .ok(200, "The work state after the change", json_content(schema_ref("WorkState"))).build()},
        "/api/v1/requests/{id}/watchers/me": {
            "put": Op::new("watch", "work", "Watch the request: be told of every change")
                .params(vec![id_param()]).errors(&[400, 403, 404])
                .ok(200, "The work state", json_content(schema_ref("WorkState"))).build(),
            "delete": Op::new("unwatch", "work", "Stop watching the request")
                .params(vec![id_param()]).errors(&[400, 403, 404])
                .ok(200, "The work state", json_content(schema_ref("WorkState"))).build()
        },
        "/api/v1/requests/{id}/conversion": {"post": Op::new("convertPreservation", "work", "Convert a preservation: create the follow-up draft and mark the preservation converted")
            .describe("The requesting agency's officers and supervisors, for a preserved or extended preservation (409 otherwise). The draft copies the agencies, urgency, case, offences, targets and marking and lists the preservation among its related requests; complete it and send it")
            .params(vec![id_param()]).json_body(object(&["kind"], json!({"kind": schema_ref("RequestKind")}))).errors(&[403, 404, 409])
            .ok(201, "The follow-up draft and the converted preservation", json_content(object(&["follow_up", "preservation"], json!({"follow_up": schema_ref("Request"), "preservation": schema_ref("Request")})))).build()},
        "/api/v1/units": {
            "get": Op::new("listUnits", "work", "The units of the caller's agency with their members")
                .ok(200, "Units by code", json_content(array(schema_ref("Unit")))).build(),
            "post": Op::new("createUnit", "work", "Create a unit in the caller's agency (supervisors, administrators)")
                .describe("409 when the code is taken in the agency")
                .json_body(object(&["code", "name"], json!({"code": {"type": "string", "pattern": "^[a-z0-9_-]{1,32}$"}, "name": non_blank(Some(200), "The unit's name")})))
                .errors(&[403, 409])
                .ok(201, "The unit", json_content(schema_ref("Unit"))).build()
        },
        "/api/v1/units/{code}/members/{username}": {
            "put": Op::new("addUnitMember", "work", "Add a user of the caller's agency to a unit (supervisors, administrators)")
                .params(vec![
                    json!({"name": "code", "in": "path", "required": true, "description": "Unit code (unknown: 400)", "schema": text()}),
                    json!({"name": "username", "in": "path", "required": true, "description": "User name (unknown: 400)", "schema": text()}),
                ]).errors(&[400, 403])
                .ok(200, "The unit", json_content(schema_ref("Unit"))).build(),
            "delete": Op::new("removeUnitMember", "work", "Remove a user from a unit (supervisors, administrators)")
                .params(vec![
                    json!({"name": "code", "in": "path", "required": true, "description": "Unit code (unknown: 400)", "schema": text()}),
                    json!({"name": "username", "in": "path", "required": true, "description": "User name (unknown: 400)", "schema": text()}),
                ]).errors(&[400, 403])
                .ok(200, "The unit", json_content(schema_ref("Unit"))).build()
        },
        "/api/v1/preferences": {
            "get": Op::new("getPreferences", "work", "The caller's preferences (language, time zone, e-mail, delegate)")
                .ok(200, "The preferences", json_content(schema_ref("UserPrefs"))).build(),
            "put": Op::new("setPreferences", "work", "Replace the caller's preferences")
                .describe("400 names each invalid value (language, time zone, e-mail, kinds, delegate)")
                .json_body(schema_ref("UserPrefs"))
                .ok(200, "The stored preferences", json_content(schema_ref("UserPrefs"))).build()
        },
        "/api/v1/notifications": {"get": Op::new("listNotifications", "work", "The caller's inbox, newest first")
            .describe("A line about a request the caller may no longer see is left out")
            .params(vec![
                q("unread", "Only unread ones", json!({"type": "boolean"})),
                q("cursor", "The `next` value of the previous page", uuid()),
                q("limit", "Page size (default 50)", json!({"type": "integer", "minimum": 1, "maximum": 200})),
            ]).errors(&[400])
            .ok(200, "One page", json_content(object(&["items", "next"], json!({"items": array(schema_ref("Notification")), "next": nullable(string())})))).build()},
        "/api/v1/notifications/read": {"post": Op::new("markNotificationsRead", "work", "Mark one notification read, or all of them")
            .json_body(object(&[], json!({"id": uuid()})))
            .ok(200, "How many were marked", json_content(object(&["marked"], json!({"marked": count()})))).build()},
        "/api/v1/users": {
            "get": Op::new("listUsers", "admin", "List users (admin)").errors(&[403])
                .ok(200, "Every user", json_content(array(schema_ref("User")))).build(),
            "post": Op::new("createUser", "admin", "Create a user (admin)")
                .describe("409 when the username is taken; 400 when the agency is unknown")
                .json_body(schema_ref("NewUser")).errors(&[403, 409])
                .ok(201, "The user", json_content(schema_ref("User"))).build()
        },
        "/api/v1/tokens": {
            "get": Op::new("listTokens", "admin", "List tokens (admins: every token; others: their own), never their secrets")
                .ok(200, "Tokens", json_content(array(schema_ref("TokenInfo"))))
                .links(200, json!({"RevokeToken": {"operationId": "revokeToken", "parameters": {"token_id": "$response.body#/0/id"}}}))
                .build(),
            "post": Op::new("createToken", "admin", "Issue an API token (admin, or for oneself)")
                .describe("400 when the user is unknown")
                .json_body(schema_ref("NewToken")).errors(&[403])
                .ok(201, "The token (shown once) and its metadata", json_content(schema_ref("IssuedToken"))).build()
        },
        "/api/v1/tokens/{token_id}": {"delete": Op::new("revokeToken", "admin", "Revoke a token (admins any, others their own)")
            .describe("404 for an unknown or already revoked token, and for another user's token unless the caller is an admin (token ids do not leak)")
            .params(vec![json!({"name": "token_id", "in": "path", "required": true, "description": "Token id", "schema": {"type": "string", "pattern": "^[^\\x00]*$"}})])
            .errors(&[404])
            .ok(204, "Revoked; the token is refused from now on", json!({})).build()},
        "/api/v1/users/{username}": {"patch": Op::new("updateUser", "admin", "Disable or enable a user, or change their role (admin)")
            .describe("A disabled user's tokens are refused at once on this node; a new role applies at once to the user's tokens and sessions. 404 for an unknown user; 400 for an admin disabling their own account or changing their own role, or for a body with neither field")
            .params(vec![json!({"name": "username", "in": "path", "required": true, "description": "User name", "schema": {"type": "string", "pattern": "^[^\\x00]*$"}})])
            .json_body(schema_ref("UserChange")).errors(&[403, 404])
            .ok(204, "Changed", json!({})).build()},
        "/api/v1/users/{username}/password": {"post": Op::new("resetPassword", "admin", "Give a user a temporary password for the web pages (admin)")
            .describe("The password is returned once and must be changed at the user's next sign-in; the reset unlocks the account and ends the user's web sessions (API tokens stay). With reset_second_factor, the user's second factor and recovery codes are removed too. 404 for an unknown user")
            .params(vec![json!({"name": "username", "in": "path", "required": true, "description": "User name", "schema": {"type": "string", "pattern": "^[^\\x00]*$"}})])
            .json_body(object(&[], json!({"reset_second_factor": {"type": "boolean"}}))).errors(&[403, 404])
            .ok(200, "The temporary password, shown once", json_content(object(&["username", "temporary_password", "second_factor_removed"], json!({"username": string(), "temporary_password": string(), "second_factor_removed": {"type": "boolean"}})))).build()},
        "/api/v1/federation/status": {"get": Op::new("federationStatus", "federation", "Identity, peers, outbox and ledger at a glance (auditors, admins)")
            .errors(&[403])
            .ok(200, "Status", json_content(schema_ref("FederationStatus"))).build()},
        "/api/v1/federation/descriptor": {"get": Op::new("federationDescriptor", "federation", "This node's peer file (signed descriptor and agency entry) and its fingerprint, to send to a partner's operator")
            .describe("404 when the node has no federation identity")
            .errors(&[404])
            .ok(200, "The peer file and the fingerprint to read out", json_content(schema_ref("OwnPeerFile"))).build()},
        "/api/v1/federation/peers": {
            "get": Op::new("listPeers", "federation", "Pinned peers (auditors, admins)").errors(&[403])
                .ok(200, "Peers", json_content(array(schema_ref("Peer")))).build(),
            "post": Op::new("pinPeer", "federation", "Pin a peer from its peer file, after comparing its fingerprint out of band (admin)")
                .describe("422 when the fingerprint is not the descriptor's or the agency entry does not match the signed descriptor; 400 when the peer file does not parse or names this node itself; 409 when the peer's agency code is taken")
                .json_body(schema_ref("PeerPin")).errors(&[403, 409, 422])
                .ok(201, "The pinned peer", json_content(schema_ref("Peer"))).build()
        },
        "/api/v1/federation/peers/{node_id}": {"delete": Op::new("unpinPeer", "federation", "Unpin a peer: its messages are refused from now on; history and ledger stay (admin)")
            .params(vec![json!({"name": "node_id", "in": "path", "required": true, "description": "Peer node id", "schema": {"type": "string", "pattern": "^[^\\x00]*$"}})])
            .errors(&[403, 404])
            .ok(204, "Unpinned", json!({})).build()},
        "/api/v1/federation/ledger/verify": {"get": Op::new("verifyLedger", "federation", "Recompute the ledger from its leaves and check every tree head this node signed (auditors, admins)")
            .describe("404 when the node has no federation identity")
            .errors(&[403, 404])
            .ok(200, "The ledger's state; `problems` lists what does not match", json_content(schema_ref("LedgerReport"))).build()},
        "/api/v1/federation/ledger/proofs/{message_id}": {"get": Op::new("proveMessage", "federation", "A proof bundle that a message was exchanged and logged, verifiable offline with `liaison ledger verify-proof` (auditors, admins)")
            .describe("404 for a message not in this node's ledger, or without a federation identity; 422 when the ledger itself does not verify")
            .params(vec![json!({"name": "message_id", "in": "path", "required": true, "description": "Message id", "schema": {"type": "string", "pattern": "^[^\\x00]*$"}}), q("disclose_payload", "Include the payload (otherwise only its hash)", json!({"type": "boolean"}))])
            .errors(&[400, 403, 404, 422])
            .ok(200, "The proof bundle", json_content(json!({"type": "object", "description": "A proof bundle (docs/federation.md): ledger entry, inclusion proof, signed tree head, keys, receipt"}))).build()},
        "/api/v1/federation/key-rotations": {"post": rotate_key}
    });
    let mut paths = paths;
    if let (Some(all), Value::Object(more)) = (paths.as_object_mut(), case_paths()) {
        all.extend(more);
    }

    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Liaison node API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Cross-border assistance requests between law-enforcement agencies. All routes except /health need 'Authorization: Bearer <token>'. Errors are RFC 9457 problem+json documents (application/problem+json); a 400 names each field at fault in `errors`. JSON bodies must be sent as Content-Type: application/json (else 415) and are at most 1 MiB (else 413); unknown fields and unknown query parameters are refused (400), and so is the character U+0000 in any string or parameter.",
            "license": {"name": "MIT", "identifier": "MIT"}
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "tags": [
            {"name": "node"}, {"name": "directory"}, {"name": "requests"}, {"name": "law"}, {"name": "reports"},
            {"name": "intel"}, {"name": "cases"}, {"name": "audit"}, {"name": "admin"}, {"name": "federation"}
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {
                "BadRequest": problem_response("Invalid input: `errors` names each field (JSON path or parameter) and what is wrong with its value", false),
                "Unauthorized": problem_response("No token, or one that is unknown, expired or revoked", true),
                "Forbidden": problem_response("The caller's role or agency may not do this", false),
                "NotFound": problem_response("No such resource, or one the caller's agency may not see", false),
                "Conflict": problem_response("Stale version, duplicate, or illegal transition (then `allowed` lists the states allowed from here)", false),
                "PayloadTooLarge": problem_response("The body is over the size limit", false),
                "Busy": busy_response(),
                "UnsupportedMediaType": problem_response("The body is missing or not sent as Content-Type: application/json", false),
                "MissingParticulars": problem_response("Missing particulars (docs/letter.md): `errors` names each (`particulars.<code>[<lang>]`) and how to supply it; or the node has no font with Chinese glyphs (the detail names the package to install)", false),
                "IntegrityFailed": problem_response("What must match does not (a descriptor fingerprint, a signature): nothing was changed", false),
                "InternalError": problem_response("The node could not complete the request; the details are in its log", false)
            },
            "schemas": {
                "Problem": object(&["type", "title", "status", "detail"], json!({
                    "type": {"type": "string", "format": "uri"}, "title": string(), "status": {"type": "integer", "minimum": 400, "maximum": 599}, "detail": string(),
                    "errors": array(object(&["field", "message"], json!({"field": string(), "message": string()}))),
                    "allowed": array(schema_ref("State"))
                })),
                "State": states,
                "RequestKind": kinds,
                "Urgency": urgencies,
                "DataCategory": categories,
                "Role": roles,
                "RefusalReason": refusals,
                "AgencyKind": agency_kinds,
                "Deadline": deadlines,
                "OffenceCode": offence_code,
                "CountryCode": country,
                "AssessedJurisdiction": assessed_country,
                "TimeZone": time_zone,
                "Principal": object(&["user", "username", "agency", "role"], json!({"user": uuid(), "username": string(), "agency": uuid(), "role": schema_ref("Role")})),
                "Target": target,
                "Amount": amount,
                "Health": object(
                    &["status", "database", "integrity", "disk_free_bytes", "problems", "rule_pack_version"],
                    json!({
                        "status": {"enum": ["ok", "unavailable"]},
                        "database": {"enum": ["ok", "unreachable", "corrupt", "disk_full"], "description": "The first problem found, or ok"},
                        "integrity": {
                            "type": "object",
                            "required": ["state"],
                            "description": "The last integrity check (SQLite quick_check, in the background at most every 6 hours): pending, ok, corrupt (with detail) or not_applicable (PostgreSQL checks itself)",
                            "properties": {
                                "state": {"enum": ["pending", "ok", "corrupt", "not_applicable"]},
                                "checked_at": string(),
                                "detail": string()
                            }
                        },
                        "disk_free_bytes": nullable(count()),
                        "problems": {"type": "array", "items": string(), "description": "Each problem in words, with what to do"},
                        "rule_pack_version": string()
                    })
                ),
                "RequestDraft": request_draft,
                "Request": request,
                "RequestSummary": request_summary,
                "Assignment": object(&["agency", "watchers"], json!({
                    "agency": nullable(uuid()), "owner": string(), "unit": string(), "watchers": array(string())
                })),
                "AssignmentChange": object(&[], json!({
                    "owner": nullable(text()), "unit": nullable(text()), "note": nullable(text())
                })),
                "WorkState": object(&["assignment"], json!({
                    "assignment": schema_ref("Assignment"),
                    "awaiting": enum_of(["us", "partner"]),
                    "deadline": schema_ref("Deadline"),
                    "due_at": instant(),
                    "due_in_ms": {"type": "integer", "description": "Milliseconds until the deadline; negative: late by that much"}
                })),
                "QueueCounts": object(&["cap", "mine", "my_units", "waiting_on_us", "waiting_on_partner", "overdue", "unassigned_incoming", "unread_notifications"], json!({
                    "cap": {"type": "integer", "minimum": 1, "description": "Where every count stops: a count equal to cap means at least that many (1000)"},
                    "mine": count(), "my_units": count(), "waiting_on_us": count(), "waiting_on_partner": count(),
                    "overdue": count(), "unassigned_incoming": count(), "unread_notifications": count()
                })),
                "Home": object(&["role", "counts", "sections"], json!({
                    "role": schema_ref("Role"),
                    "counts": schema_ref("QueueCounts"),
                    "sections": array(object(&["name", "queue", "items"], json!({
                        "name": string(),
                        "queue": enum_of(liaison_service::work::Queue::ALL.iter().map(|q| q.as_str())),
                        "items": array(schema_ref("RequestSummary"))
                    })))
                })),
                "Unit": object(&["id", "agency", "code", "name", "members"], json!({
                    "id": uuid(), "agency": uuid(), "code": string(), "name": string(), "members": array(string())
                })),
                "UserPrefs": object(&[], json!({
                    "language": enum_of(["en", "zh-CN"]),
                    "time_zone": schema_ref("TimeZone"),
                    "email": {"type": "string", "pattern": "^[^\\s<>,;@]+@[^\\s<>,;@]+\\.[^\\s<>,;@]+$", "maxLength": 254},
                    "email_kinds": array(enum_of(liaison_service::work::NOTIFICATION_KINDS.iter().copied())),
                    "digest": {"type": "boolean"},
                    "delegate": text(),
                    "away_until": instant()
                })),
                "Notification": object(&["id", "at", "kind", "data"], json!({
                    "id": uuid(), "at": instant(),
                    "kind": enum_of(liaison_service::work::NOTIFICATION_KINDS.iter().copied()),
                    "request": uuid(),
                    "data": {"type": "object"},
                    "read_at": instant()
                })),
                "Snippet": object(&["text", "marks"], json!({
                    "text": string(),
                    "marks": {"type": "array", "description": "Byte ranges [start, end) of the text where the words match", "items": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "integer", "minimum": 0}}}
                })),
                "SearchHit": object(&["source", "item_id", "at", "request", "field", "snippet"], json!({
                    "source": enum_of(["request", "comment", "file"]),
                    "item_id": string(),
                    "at": instant(),
                    "request": schema_ref("RequestSummary"),
                    "field": enum_of(["summary", "case_reference", "reference", "comment", "file_name"]),
                    "snippet": schema_ref("Snippet")
                })),
                "SearchPage": object(&["items", "count", "count_capped"], json!({
                    "items": array(schema_ref("SearchHit")),
                    "next": {"type": "string", "description": "Cursor of the next page; absent on the last"},
                    "count": count(),
                    "count_capped": {"type": "boolean", "description": "The count stopped at 1000: at least that many"}
                })),
                "SavedSearch": object(&["id", "name", "query", "created_at"], json!({
                    "id": string(), "name": string(), "query": string(), "created_at": instant()
                })),
                "TargetLookup": object(&["kind", "identifier", "request_count", "request_count_capped", "requests", "indicators", "notice_count", "incoming"], json!({
                    "kind": string(),
                    "identifier": string(),
                    "request_count": count(),
                    "request_count_capped": {"type": "boolean"},
                    "requests": array(schema_ref("RequestSummary")),
                    "indicators": array(object(&["kind", "value", "classification", "status", "last_seen", "tlp", "notices"], json!({
                        "kind": string(), "value": string(), "classification": string(), "status": string(),
                        "partner": string(), "last_seen": instant(), "tlp": string(), "notices": array(string())
                    }))),
                    "notice_count": count(),
                    "incoming": array(object(&["sender", "notice", "kind", "value", "status", "tlp"], json!({
                        "sender": string(), "notice": string(), "kind": string(), "value": string(), "status": string(), "tlp": string()
                    })))
                })),
                "RequestPage": object(&["items", "next"], json!({
                    "items": {"type": "array", "description": "RequestSummary objects, or Request objects with view=full", "items": {"oneOf": [schema_ref("RequestSummary"), schema_ref("Request")]}},
                    "next": {"oneOf": [{"type": "null"}, {"type": "string"}], "description": "Cursor of the next page, null on the last"}
                })),
                "DraftUpdate": object(&["version", "draft"], json!({"version": {"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX, "description": "The version you last read (stale: 409)"}, "draft": schema_ref("RequestDraft")})),
                "Transition": object(&["version", "to"], json!({
                    "version": {"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX, "description": "The version you last read (stale: 409)"},
                    "to": schema_ref("State"),
                    "reason": {"type": "string", "pattern": "^[^\\x00]*$", "description": "Required (not blank) for refusals and withdrawals"},
                    "refusal_reason": schema_ref("RefusalReason"),
                    "preserved_until": {"type": "string", "format": "date-time", "description": "Preservations: the end of the period (at least the minimum days from now)"},
                    "follow_up": {"type": "string", "format": "uuid", "description": "Conversions: the follow-up request, between the same agencies, that lists this one as related"}
                })),
                "Allowed": object(&["allowed"], json!({"allowed": array(schema_ref("State"))})),
                "Comment": object(&["text"], json!({"text": non_blank(Some(20_000), "At most 20000 bytes once trimmed"),
                    "marking": {"allOf": [schema_ref("Marking")], "description": "Default: the node's [markings] comment level; never below the request's"}})),
                "Marking": marking,
                "MarkingChange": object(&["marking"], json!({"marking": schema_ref("Marking")})),
                "ApprovalStep": {"oneOf": [
                    object(&["action", "version"], json!({"action": enum_of(["ask"]), "version": {"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX, "description": "The draft's version you ask about (stale: 409)"}})),
                    object(&["action"], json!({"action": enum_of(["return"]), "reason": nullable(text())}))
                ]},
                "Approval": object(&["required", "asked", "moves"], json!({
                    "required": {"type": "boolean", "description": "The node requires approval for this kind ([approval] kinds)"},
                    "asked": nullable(object(&["by", "at", "version"], json!({"by": string(), "at": instant(), "version": {"type": "integer"}}))),
                    "moves": object(&["ask", "approve", "send_back", "send"], json!({
                        "ask": {"type": "boolean"}, "approve": {"type": "boolean"}, "send_back": {"type": "boolean"}, "send": {"type": "boolean"}
                    }))
                })),
                "NewEvidence": object(&["file_name"], json!({
                    "file_name": non_blank(Some(10_000), "The original file name (kept sanitised, at most 200 bytes)"),
                    "media_type": nullable(text()),
                    "kind": nullable(evidence_kinds.clone()),
                    "attached_to": nullable(text()),
                    "marking": {"oneOf": [{"type": "null"}, schema_ref("Marking")], "description": "Default and minimum: the request's"}
                })),
                "EvidenceFile": object(&["id", "request_id", "kind", "sha256", "size", "media_type_sniffed", "media_type_claimed", "file_name", "uploader", "uploader_agency", "side", "uploaded_at", "marking", "legal_hold"], json!({
                    "id": uuid(), "request_id": uuid(), "kind": evidence_kinds.clone(), "attached_to": string(),
                    "sha256": sha256.clone(), "size": count(),
                    "media_type_sniffed": nullable(string()), "media_type_claimed": nullable(string()),
                    "file_name": string(), "uploader": string(), "uploader_agency": uuid(),
                    "side": enum_of(["requesting", "requested"]), "uploaded_at": string(),
                    "marking": schema_ref("Marking"), "legal_hold": {"type": "boolean"},
                    "deleted_at": {"type": "string", "description": "When the content was deleted under retention"}
                })),
                "EvidenceUpload": object(&["id", "request_id", "kind", "file_name", "media_type_claimed", "uploader", "uploader_agency", "side", "marking", "created_at", "received", "receiving"], json!({
                    "receiving": {"type": "boolean", "description": "A piece is arriving now: wait for it to end before resuming"},
                    "id": uuid(), "request_id": uuid(), "kind": evidence_kinds.clone(), "attached_to": string(),
                    "file_name": string(), "media_type_claimed": nullable(string()), "uploader": string(),
                    "uploader_agency": uuid(), "side": enum_of(["requesting", "requested"]), "marking": schema_ref("Marking"),
                    "created_at": string(), "received": {"type": "integer", "minimum": 0, "description": "The offset the next piece starts at"}
                })),
                "CustodyEntry": object(&["seq", "at", "actor", "action", "subject", "detail", "prev_hash", "hash"], json!({
                    "seq": {"type": "integer", "minimum": 1}, "at": string(), "actor": string(),
                    "action": {"type": "string", "description": "evidence.upload, evidence.download, evidence.hold, evidence.release, evidence.delete"},
                    "subject": string(), "detail": {"type": "string", "description": "JSON"}, "prev_hash": string(), "hash": string()
                })),
                "Consent": object(&["for_case"], json!({"for_case": non_blank(Some(200), "The requesting agency's other case reference (not the request's own)"),
                    "note": {"type": "string", "maxLength": 20000, "pattern": "^[^\\x00]*$", "description": "Conditions or reasons"}})),
                "Event": object(&["id", "request", "at", "actor", "event"], json!({
                    "id": uuid(), "request": uuid(), "at": instant(), "actor": string(),
                    "event": {"type": "string", "description": "created, transition, comment, escalation, assessment, ..."},
                    "from_state": schema_ref("State"), "to_state": schema_ref("State"), "reason": string(), "data": {}
                })),
                "AgencyView": agency_view,
                "Jurisdiction": object(&["code", "name_en", "name_zh"], json!({"code": schema_ref("CountryCode"), "name_en": non_blank(None, "English name"), "name_zh": non_blank(None, "Chinese name")})),
                "NewAgency": object(&["code", "name_en", "jurisdiction", "kind", "time_zone"], json!({
                    "code": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,32}$", "description": "Unique (409 when taken)"},
                    "name_en": non_blank(None, "English name"),
                    "name_native": {"type": "string", "pattern": "^[^\\x00]*$", "description": "Name in the agency's language (default: name_en)"},
                    "name_zh": {"type": "string", "pattern": "^[^\\x00]*$", "description": "The name Chinese pages show (this node's; never sent to peers)"},
                    "jurisdiction": {"allOf": [schema_ref("CountryCode")], "description": "A jurisdiction in the directory (else 400)"},
                    "kind": schema_ref("AgencyKind"),
                    "time_zone": schema_ref("TimeZone")
                })),
                "Agency": object(&agency_required, agency_fields),
                "AgencyNames": object(&["name_en"], json!({
                    "name_en": non_blank(None, "English name (at most 200 characters)"),
                    "name_native": {"type": "string", "pattern": "^[^\\x00]*$", "description": "Name in the agency's language (empty: name_en)"},
                    "name_zh": {"type": "string", "pattern": "^[^\\x00]*$", "description": "The name Chinese pages show (empty: the native name when it is Chinese, else name_en)"}
                })),
                "NewContact": object(&["agency", "name", "phone", "email", "time_zone", "office_hours"], json!({
                    "agency": {"type": "string", "format": "uuid", "description": "An agency in the directory (else 400)"},
                    "name": non_blank(None, "Name of the person or desk"),
                    "phone": text(),
                    "email": {"type": "string", "pattern": "^[^\\x00]*@[^\\x00]*$"},
                    "languages": array(json!({"type": "string", "pattern": "^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$", "description": "BCP 47 language tag"})),
                    "time_zone": schema_ref("TimeZone"),
                    "office_hours": {"type": "string", "pattern": office_hours_pattern(), "description": "24/7, or days and hours like Mon-Fri 09:00-17:30 (closing after opening)"}
                })),
                "Contact": object(&contact_required, contact_fields),
                "AssessmentInput": assessment_input,
                "AssessmentRequest": assessment_request,
                "Assessment": assessment,
                "CooperationReport": object(&["from", "to", "by", "pairs"], json!({
                    "from": instant(), "to": instant(), "by": enum_of(["agency", "jurisdiction"]),
                    "pairs": array(object(&["requesting", "requested", "sent", "acknowledged", "answered", "refused", "withdrawn", "pending", "overdue", "answer_rate", "median_hours_to_acknowledge", "p90_hours_to_acknowledge", "median_days_to_answer", "p90_days_to_answer"], json!({
                        "requesting": string(), "requested": string(),
                        "sent": count(), "acknowledged": count(), "answered": count(), "refused": count(), "withdrawn": count(), "pending": count(), "overdue": count(),
                        "answer_rate": nullable(json!({"type": "number"})),
                        "median_hours_to_acknowledge": nullable(json!({"type": "number"})), "p90_hours_to_acknowledge": nullable(json!({"type": "number"})),
                        "median_days_to_answer": nullable(json!({"type": "number"})), "p90_days_to_answer": nullable(json!({"type": "number"}))
                    })))
                })),
                "AuditReport": object(&["entries", "head_hash", "first_bad", "problems", "anchors_checked", "last_anchored_seq", "requests_checked", "comments_checked", "evidence_checked", "unchecked_legacy"], json!({
                    "entries": count(), "head_hash": string(),
                    "first_bad": {"description": "The first problem (audit entry sequence, reason): an altered, missing or reordered entry, a truncated log, a log rewritten before an anchor in the ledger, or a request or comment changed outside the node; null when intact",
                        "oneOf": [{"type": "null"}, {"type": "array", "items": {"type": ["integer", "string"]}, "minItems": 2, "maxItems": 2}]},
                    "problems": count(),
                    "anchors_checked": count(),
                    "last_anchored_seq": nullable(count()),
                    "requests_checked": count(),
                    "comments_checked": count(),
                    "evidence_checked": count(),
                    "unchecked_legacy": count()
                })),
                "User": object(&["id", "username", "display_name", "agency", "role", "created_at", "disabled"], json!({
                    "id": uuid(), "username": string(), "display_name": string(), "agency": uuid(), "role": schema_ref("Role"), "created_at": instant(), "disabled": {"type": "boolean"}
                })),
                "NewUser": object(&["username", "display_name", "agency", "role"], json!({
                    "username": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$", "description": "Unique (409 when taken)"},
                    "display_name": text(),
                    "agency": {"type": "string", "pattern": "^[^\\x00]*$", "description": "Agency code or id, of an agency in the directory (else 400)"},
                    "role": schema_ref("Role")
                })),
                "NewToken": object(&["username"], json!({
                    "username": {"type": "string", "pattern": "^[^\\x00]*$", "description": "An existing user (else 400); others than oneself: admins only"},
                    "label": {"type": "string", "pattern": "^[^\\x00]*$", "description": "Default: api"},
                    "days": {"type": "integer", "minimum": 1, "maximum": 366, "description": "Validity (default 90)"}
                })),
                "TokenInfo": object(&["id", "user", "label", "created_at", "expires_at", "revoked_at"], json!({
                    "id": string(), "user": uuid(), "label": string(), "created_at": instant(), "expires_at": instant(), "revoked_at": nullable(instant())
                })),
                "IssuedToken": object(&["token", "info"], json!({
                    "token": string(),
                    "info": schema_ref("TokenInfo")
                })),
                "UserChange": object(&[], json!({
                    "disabled": {"type": "boolean", "description": "true disables the user (its tokens are refused), false enables it"},
                    "role": schema_ref("Role")
                })),
                "FederationStatus": object(&["node_id", "base_url", "peers", "outbox_pending", "outbox_delivered", "inbox", "inbox_not_applied", "ledger_leaves", "ledger_audit_anchors"], json!({
                    "node_id": nullable(string()), "base_url": nullable(string()), "peers": array(string()),
                    "outbox_pending": count(), "outbox_delivered": count(), "inbox": count(), "inbox_not_applied": count(), "ledger_leaves": count(), "ledger_audit_anchors": count()
                })),
                "OwnPeerFile": object(&["peer_file", "fingerprint"], json!({
                    "peer_file": {"type": "object", "description": "format, signed descriptor and agency entry (liaison-peer/1)"},
                    "fingerprint": {"type": "string", "pattern": "^[0-9a-f]{64}$"}
                })),
                "PeerPin": object(&["peer_file", "fingerprint"], json!({
                    "peer_file": {"type": "object", "description": "The peer file (or bare signed descriptor) the peer's operator sent"},
                    "fingerprint": {"type": "string", "pattern": "^[^\\x00]*$", "description": "The descriptor fingerprint the peer's operator read out (hex, colons allowed)"},
                    "agency_code": {"type": "string", "pattern": "^[^\\x00]*$", "description": "Directory code for the peer's agency (default: from the peer file)"},
                    "time_zone": {"type": "string", "pattern": "^[^\\x00]*$", "description": "IANA time zone of the peer's agency (default: from the peer file)"}
                })),
                "Peer": {"type": "object", "required": ["node_id", "base_url", "tls_cert_sha256", "serial"], "properties": {
                    "node_id": string(), "agency_id": string(), "agency": string(), "base_url": string(),
                    "tls_cert_sha256": string(), "serial": count(), "added_at": instant()
                }},
                "LedgerReport": object(&["node_id", "leaves", "root", "tree_heads_checked", "problems", "intact"], json!({
                    "node_id": string(), "leaves": count(), "root": string(), "tree_heads_checked": count(),
                    "problems": array(string()), "intact": {"type": "boolean"}
                })),
                "KeyRotation": object(&[], json!({
                    "overlap_hours": {"type": "integer", "minimum": 0, "maximum": 720, "description": "How long the old key stays valid (default 24)"}
                })),
                "RotationReport": object(&["new_key_id", "old_key_id", "old_valid_until", "descriptor_serial", "peers_told"], json!({
                    "new_key_id": string(), "old_key_id": string(), "old_valid_until": instant(),
                    "descriptor_serial": count(), "peers_told": count()
                })),
                "Interval": interval,
                "IngestReport": ingest_report,
                "IngestJob": ingest_job,
                "Notice": notice,
                "IssueReport": object(&["interval", "notices", "items"], json!({"interval": schema_ref("Interval"), "notices": array(notice_summary), "items": count()})),
                "Feedback": object(&["item", "status"], json!({
                    "partner": {"type": "string", "pattern": "^[^\\x00]*$", "description": "The caller's agency code (optional; another one is a 403)"},
                    "item": {"type": "string", "format": "uuid", "description": "A notice item sent to the caller's agency"},
                    "status": {"type": "string", "enum": ["remediated", "not_found", "disputed", "false_positive"], "description": "Aliases such as not-found, fixed or fp are accepted"},
                    "note": text()
                })),
                "FeedbackRecord": object(&["item_id", "indicator", "partner", "status", "at", "note"], json!({
                    "item_id": uuid(), "indicator": count(), "partner": string(),
                    "status": enum_of(["remediated", "not-found", "disputed", "false-positive"]),
                    "at": {"type": "integer", "description": "Unix seconds"}, "note": nullable(string())
                })),
                "IntelStats": intel_stats,
                "IncomingNotice": incoming_notice,
                "InboxAnswer": object(&["item", "status"], json!({
                    "item": {"type": "string", "format": "uuid", "description": "An item of a notice addressed to the caller's agency"},
                    "status": {"type": "string", "enum": ["remediated", "not-found", "disputed", "false-positive"], "description": "Aliases such as not_found, fixed or fp are accepted"},
                    "note": {"type": "string", "maxLength": 2000}
                })),
                "AnswerReport": object(&["item_id", "notice_id", "status", "issuer", "sent_to"], json!({
                    "item_id": uuid(), "notice_id": uuid(), "status": answers, "issuer": string(), "sent_to": string()
                })),
                "Remediation": object(&["partners", "rows"], json!({"partners": array(string()), "rows": array(remediation_row)}))
            }
        }
    });
    if let (Some(all), Value::Object(more)) = (doc["components"]["schemas"].as_object_mut(), case_schemas()) {
        all.extend(more);
    }
    doc
}

/// 409 of an ingest while another runs, with `Retry-After`.
fn busy_response() -> Value {
    let mut r = problem_response(
        "Another ingest is running on this node (or on another instance sharing its database): try again after Retry-After seconds",
        false,
    );
    r["headers"] = json!({"Retry-After": {"description": "Seconds to wait before trying again", "schema": {"type": "integer", "minimum": 0}}});
    r
}

fn problem_response(description: &str, authenticate: bool) -> Value {
    let mut content = Map::new();
    content.insert(PROBLEM_JSON.into(), json!({"schema": schema_ref("Problem")}));
    let mut r = json!({"description": description, "content": content});
    if authenticate {
        r["headers"] =
            json!({"WWW-Authenticate": {"description": "Bearer realm=\"liaison\"", "schema": {"type": "string"}}});
    }
    r
}

/// A case id in a path.
fn case_param() -> Value {
    json!({"name": "case", "in": "path", "required": true, "description": "Case id (UUID); one the caller's agency was never invited to is a 404", "schema": uuid()})
}

/// The /api/v1/cases operations (docs/cases.md).
fn case_paths() -> Value {
    let changed = |op: Op| {
        op.params(vec![case_param()])
            .errors(&[403, 404, 409])
            .ok(
                200,
                "Decided here: the case as it is now",
                json_content(schema_ref("Case")),
            )
            .ok(
                202,
                "Sent to the node that keeps the case: the case with the action waiting in `actions`",
                json_content(schema_ref("Case")),
            )
            .build()
    };
    let item = |required: &[&str], share: bool| {
        let mut props = json!({
            "kind": enum_of(["request", "notice", "evidence"]),
            "id": non_blank(Some(128), "The item's id (a request's reference works too)")
        });
        if share {
            props["share"] = json!({"type": "boolean", "description": "The caller's agency is the item's originator and shares it with every member now (default false)"});
        }
        object(required, props)
    };
    json!({
        "/api/v1/cases": {
            "get": Op::new("listCases", "cases", "The joint cases the caller's agency was invited to, newest change first")
                .errors(&[403])
                .ok(200, "Cases", json_content(array(schema_ref("CaseSummary")))).build(),
            "post": Op::new("createCase", "cases", "Open a joint case led by the caller's agency (officers, supervisors)")
                .describe("Invited agencies of pinned peers' nodes are sent the invitation over federation. 409 when the agency already has a case with this reference")
                .json_body(object(&["name", "reference"], json!({
                    "name": non_blank(Some(200), "1 to 200 characters"),
                    "reference": {"type": "string", "pattern": "^[A-Za-z0-9._/:-]{1,64}$", "description": "The case reference, unique for the lead agency (letters, digits and - _ . / :)"},
                    "marking": {"allOf": [schema_ref("Marking")], "description": "Default: the node's [markings] request level; never TLP:CLEAR"},
                    "invite": {"type": "array", "maxItems": 63, "items": {"type": "string", "pattern": "^[^\\x00]{1,64}$"}, "description": "Agency codes to invite"}
                })))
                .errors(&[403, 409])
                .ok(201, "The case", json_content(schema_ref("Case"))).build()
        },
        "/api/v1/cases/{case}": {"get": Op::new("getCase", "cases", "A case as the caller may see it: members, links (an item the caller may not see shows only its kind), timeline")
            .params(vec![case_param()]).errors(&[403, 404])
            .ok(200, "The case", json_content(schema_ref("Case"))).build()},
        "/api/v1/cases/{case}/stats": {"get": Op::new("caseStats", "cases", "Requests by state, time to answer and open deadlines over the links the caller may see")
            .params(vec![case_param()]).errors(&[403, 404])
            .ok(200, "Statistics", json_content(schema_ref("CaseStats"))).build()},
        "/api/v1/cases/{case}/members": {"post": changed(Op::new("inviteToCase", "cases", "The lead invites an agency of this node or of a pinned peer's node")
            .json_body(object(&["agency"], json!({"agency": non_blank(Some(64), "Agency code")}))))},
        "/api/v1/cases/{case}/answer": {"post": changed(Op::new("answerCaseInvitation", "cases", "The caller's agency accepts or declines its invitation")
            .json_body(object(&["accept"], json!({"accept": {"type": "boolean"}, "note": {"type": "string", "maxLength": 4000}}))))},
        "/api/v1/cases/{case}/leave": {"post": changed(Op::new("leaveCase", "cases", "The caller's agency leaves the case; nothing more is shared with it")
            .json_body(object(&[], json!({"note": {"type": "string", "maxLength": 4000}}))))},
        "/api/v1/cases/{case}/links": {"post": changed(Op::new("linkToCase", "cases", "Link an item the caller may see and its agency is a party to (never TLP:RED)")
            .json_body(item(&["kind", "id"], true)))},
        "/api/v1/cases/{case}/shares": {"post": changed(Op::new("shareWithCase", "cases", "The item's originator shares a linked item with every member (its consent under the rule of speciality, recorded)")
            .json_body(item(&["kind", "id"], false)))},
        "/api/v1/cases/{case}/notes": {"post": changed(Op::new("addCaseNote", "cases", "A note to the members, under its own marking (default: the case's level)")
            .json_body(object(&["text"], json!({"text": non_blank(Some(4000), "1 to 4000 characters"), "marking": schema_ref("Marking")}))))},
        "/api/v1/cases/{case}/state": {"post": changed(Op::new("setCaseState", "cases", "The lead closes or reopens the case")
            .json_body(object(&["state"], json!({"state": enum_of(["open", "closed"]), "note": {"type": "string", "maxLength": 4000}}))))},
        "/api/v1/cases/{case}/marking": {"post": changed(Op::new("setCaseMarking", "cases", "The lead changes the case's marking (never TLP:CLEAR)")
            .json_body(object(&["marking"], json!({"marking": schema_ref("Marking")}))))},
        "/api/v1/cases/{case}/export": {"get": Op::new("exportCaseFile", "cases", "The case file for prosecutors: one signed ZIP to verify offline (docs/cases.md)")
            .describe("The case as the caller sees it (case.json) and the evidence package of every linked request the caller may read on this node (packages/NNNN-REF.zip: history, files, custody, ledger proofs), listed with their SHA-256 in a manifest signed by the node's key. Verify it with `liaison case verify FILE --trust FINGERPRINT`. 404 for a case the caller may not see; 422 when the node has no federation signing key; 409 while a node restored from a backup has not yet told its peers. Recorded in the audit log (case.export) and in each exported file's custody")
            .params(vec![case_param()]).errors(&[403, 404, 409, 422])
            .ok(200, "The case file (application/zip, attachment)", json!({"application/zip": {"schema": {"type": "string", "format": "binary"}}}))
            .ok_header(200, "Content-Disposition", "attachment; filename=\"case-file-ID.zip\"")
            .ok_header(200, "X-Liaison-Package-Sha256", "SHA-256 of the case file, as recorded in the audit log")
            .ok_header(200, "X-Liaison-Key-Fingerprint", "Fingerprint of the key that signed the manifest: compare it out of band").build()}
    })
}

/// The schemas of joint cases.
fn case_schemas() -> Value {
    let statuses = enum_of(liaison_core::case::MemberStatus::ALL.iter().map(|s| s.as_str()));
    let kinds = enum_of(liaison_core::case::ItemKind::ALL.iter().map(|s| s.as_str()));
    let note = json!({"type": "string"});
    let change = |kind: &str, required: &[&str], props: Value| {
        let mut p = props;
        p["kind"] = json!({"const": kind});
        let mut req = vec!["kind"];
        req.extend_from_slice(required);
        object(&req, p)
    };
    json!({
        "CaseSummary": object(&["id", "reference", "name", "lead", "state", "tlp", "status", "updated_at"], json!({
            "id": uuid(), "reference": string(), "name": string(), "lead": string(),
            "state": enum_of(["open", "closed"]), "tlp": string(), "status": statuses.clone(),
            "home": {"type": ["string", "null"], "description": "The node that keeps the case (null: this one)"},
            "updated_at": instant()
        })),
        "CaseItem": object(&["kind", "id", "originator", "parties", "tlp", "title", "at"], json!({
            "kind": kinds.clone(), "id": string(), "originator": string(), "parties": array(string()),
            "tlp": string(), "title": string(), "reference": string(), "subtype": string(), "state": string(), "at": instant()
        })),
        "CaseChange": {"oneOf": [
            change("created", &["name", "reference", "lead", "marking"], json!({"name": string(), "reference": string(), "lead": string(), "marking": schema_ref("Marking")})),
            change("invited", &["agency"], json!({"agency": string()})),
            change("joined", &["agency"], json!({"agency": string()})),
            change("declined", &["agency"], json!({"agency": string(), "note": note.clone()})),
            change("left", &["agency"], json!({"agency": string(), "note": note.clone()})),
            change("linked", &["item", "shared"], json!({"item": schema_ref("CaseItem"), "shared": {"type": "boolean"}})),
            change("shared", &["item"], json!({"item": schema_ref("CaseItem")})),
            change("withheld", &["item_kind"], json!({"item_kind": kinds.clone()})),
            change("note", &["text", "marking"], json!({"text": string(), "marking": schema_ref("Marking")})),
            change("marking", &["marking"], json!({"marking": schema_ref("Marking")})),
            change("closed", &[], json!({"note": note.clone()})),
            change("reopened", &[], json!({}))
        ]},
        "CaseEvent": object(&["seq", "at", "actor", "agency", "change"], json!({
            "seq": count(), "at": instant(), "actor": string(), "agency": string(),
            "change": schema_ref("CaseChange"), "action": string()
        })),
        "Case": object(&["id", "reference", "name", "lead", "marking", "state", "created_at", "created_by", "status", "members", "links", "timeline", "actions"], json!({
            "id": uuid(), "reference": string(), "name": string(), "lead": string(),
            "marking": schema_ref("Marking"), "state": enum_of(["open", "closed"]),
            "created_at": instant(), "created_by": string(),
            "home": {"type": ["string", "null"]},
            "status": statuses.clone(),
            "members": array(object(&["agency", "status", "since_seq", "since"], json!({
                "agency": string(), "status": statuses, "since_seq": count(), "since": instant()
            }))),
            "links": array(object(&["item_kind", "linked_by", "linked_seq", "linked_at", "label"], json!({
                "item": {"oneOf": [{"type": "null"}, schema_ref("CaseItem")], "description": "null: an item the caller may not see (its kind only)"},
                "item_kind": kinds, "linked_by": string(), "linked_seq": count(), "linked_at": instant(),
                "shared_seq": {"type": ["integer", "null"], "minimum": 0},
                "label": string(),
                "live": object(&["state", "reference", "usable_in_case"], json!({
                    "state": string(), "reference": string(),
                    "submitted_at": {"oneOf": [{"type": "null"}, instant()]}, "answered_at": {"oneOf": [{"type": "null"}, instant()]},
                    "deadline": {"type": ["string", "null"]}, "due": {"oneOf": [{"type": "null"}, instant()]},
                    "usable_in_case": {"type": "boolean"}
                }))
            }))),
            "timeline": array(schema_ref("CaseEvent")),
            "actions": array(object(&["id", "agency", "actor", "kind", "at", "outcome"], json!({
                "id": string(), "agency": string(), "actor": string(), "kind": string(), "at": instant(), "outcome": string()
            })))
        })),
        "CaseStats": object(&["members", "requests", "leads", "notices", "evidence", "withheld", "requests_by_state", "answered", "open_deadlines"], json!({
            "members": count(), "requests": count(), "leads": count(), "notices": count(), "evidence": count(), "withheld": count(),
            "requests_by_state": {"type": "object", "additionalProperties": count()},
            "answered": count(),
            "median_answer_secs": {"type": ["integer", "null"]}, "max_answer_secs": {"type": ["integer", "null"]},
            "open_deadlines": array(object(&["request", "reference", "deadline", "due", "overdue"], json!({
                "request": string(), "reference": string(), "deadline": string(), "due": instant(), "overdue": {"type": "boolean"}
            })))
        }))
    })
}
