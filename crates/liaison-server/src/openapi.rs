//! The OpenAPI 3.1 description of /api/v1, written out by hand so that it says exactly what
//! the handlers do (and is checked against them by the API tests).

use serde_json::{Value, json};

fn op(tag: &str, summary: &str, params: Value, body: Option<&str>, ok: (&str, &str)) -> Value {
    let mut o = json!({
        "tags": [tag],
        "summary": summary,
        "parameters": params,
        "responses": {
            ok.0: {"description": "Success", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{}", ok.1)}}}},
            "400": {"$ref": "#/components/responses/Problem"},
            "401": {"$ref": "#/components/responses/Problem"},
            "403": {"$ref": "#/components/responses/Problem"},
            "404": {"$ref": "#/components/responses/Problem"},
            "409": {"$ref": "#/components/responses/Problem"},
            "413": {"$ref": "#/components/responses/Problem"}
        }
    });
    if let Some(schema) = body {
        o["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
    }
    o
}

fn id_param() -> Value {
    json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}})
}

fn q(name: &str, desc: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": desc, "schema": schema})
}

fn enum_of(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}

/// The OpenAPI document served at /api/v1/openapi.json.
pub fn document() -> Value {
    use liaison_core::lifecycle::{RefusalReason, Role, State};
    use liaison_core::request::{DataCategory, RequestKind, Urgency};
    let names = |v: Vec<&'static str>| enum_of(&v);
    let states = names(State::ALL.iter().map(|s| s.as_str()).collect());
    let kinds = names(RequestKind::ALL.iter().map(|s| s.as_str()).collect());
    let urgencies = names(Urgency::ALL.iter().map(|s| s.as_str()).collect());
    let categories = names(DataCategory::ALL.iter().map(|s| s.as_str()).collect());
    let roles = names(Role::ALL.iter().map(|s| s.as_str()).collect());
    let refusals = names(RefusalReason::ALL.iter().map(|s| s.as_str()).collect());
    let list_params = json!([
        q("state", "Comma-separated states", json!({"type": "string"})),
        q("kind", "Request kind", kinds.clone()),
        q(
            "requesting",
            "Requesting agency id",
            json!({"type": "string", "format": "uuid"})
        ),
        q(
            "requested",
            "Requested agency id",
            json!({"type": "string", "format": "uuid"})
        ),
        q(
            "overdue",
            "Only requests whose running deadline has passed",
            json!({"type": "boolean"})
        ),
        q(
            "updated_since",
            "RFC 3339 instant",
            json!({"type": "string", "format": "date-time"})
        ),
        q(
            "cursor",
            "The `next` value of the previous page",
            json!({"type": "string"})
        ),
        q(
            "limit",
            "Page size, 1-500 (default 50)",
            json!({"type": "integer", "minimum": 1, "maximum": 500})
        ),
        q(
            "view",
            "summary (default: the listed fields, no body or assessment) or full (each request as GET /requests/{id} returns it)",
            enum_of(&["summary", "full"])
        )
    ]);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Liaison node API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Cross-border assistance requests between law-enforcement agencies. All routes except /health need 'Authorization: Bearer <token>'. Errors are RFC 9457 problem+json.",
            "license": {"name": "MIT", "identifier": "MIT"}
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/health": {"get": {"tags": ["node"], "summary": "Liveness and database check (no token needed)", "security": [], "responses": {"200": {"description": "Healthy"}, "503": {"description": "Database unreachable"}}}},
            "/api/v1/me": {"get": op("node", "The caller's identity, agency and role", json!([]), None, ("200", "Principal"))},
            "/api/v1/directory": {"get": op("directory", "Agencies with contact points, each with local time now and office status", json!([]), None, ("200", "Directory"))},
            "/api/v1/jurisdictions": {"post": op("directory", "Add or rename a jurisdiction (admin)", json!([]), Some("Jurisdiction"), ("201", "Jurisdiction"))},
            "/api/v1/agencies": {"post": op("directory", "Add an agency served by this node (admin)", json!([]), Some("NewAgency"), ("201", "Agency"))},
            "/api/v1/contacts": {"post": op("directory", "Add a contact point (admin)", json!([]), Some("NewContact"), ("201", "Contact"))},
            "/api/v1/requests": {
                "get": op("requests", "List requests sent or received by the caller's agency, newest first", list_params.clone(), None, ("200", "RequestPage")),
                "post": op("requests", "Create a draft request", json!([]), Some("RequestDraft"), ("201", "Request"))
            },
            "/api/v1/requests/overdue": {"get": op("requests", "Requests whose running deadline has passed", list_params, None, ("200", "RequestPage"))},
            "/api/v1/requests/{id}": {
                "get": op("requests", "One request (ETag = version)", json!([id_param()]), None, ("200", "Request")),
                "put": op("requests", "Replace a draft's content (optimistic version)", json!([id_param()]), Some("DraftUpdate"), ("200", "Request"))
            },
            "/api/v1/requests/{id}/events": {"get": op("requests", "The request's history", json!([id_param()]), None, ("200", "Events"))},
            "/api/v1/requests/{id}/transitions": {
                "get": op("requests", "States the caller may move the request to now", json!([id_param()]), None, ("200", "Allowed")),
                "post": op("requests", "Move the request to another state; 409 lists the allowed states", json!([id_param()]), Some("Transition"), ("200", "Request"))
            },
            "/api/v1/requests/{id}/comments": {"post": op("requests", "Add a comment", json!([id_param()]), Some("Comment"), ("201", "Event"))},
            "/api/v1/assessments": {"post": op("law", "Assess a draft, a stored request or an explicit input against both states' law", json!([]), Some("AssessmentRequest"), ("200", "Assessment"))},
            "/api/v1/reports/cooperation": {"get": op("reports", "Cooperation statistics per ordered pair", json!([
                q("from", "Start (RFC 3339); default two years ago", json!({"type": "string", "format": "date-time"})),
                q("to", "End (RFC 3339); default now", json!({"type": "string", "format": "date-time"})),
                q("by", "Group by agency or jurisdiction", enum_of(&["agency", "jurisdiction"])),
                q("format", "json (default) or csv", enum_of(&["json", "csv"]))
            ]), None, ("200", "CooperationReport"))},
            "/api/v1/intel/ingest": {"post": {
                "tags": ["intel"], "summary": "Ingest a threat feed (body = the file); bad rows are quarantined with line and reason, the batch goes on",
                "parameters": [q("format", "feodo, urlhaus, threatfox-csv, threatfox-json, shadowserver, liaison, list, or a source configured in [intel.sources]", json!({"type": "string"})), q("feed", "Feed name recorded on each indicator", json!({"type": "string"})), q("name", "File name used in quarantine messages", json!({"type": "string"}))],
                "requestBody": {"required": true, "content": {"text/csv": {"schema": {"type": "string"}}, "application/json": {"schema": {}}, "text/plain": {"schema": {"type": "string"}}}},
                "responses": {"200": {"description": "Run summary with counts and quarantined rows"}, "400": {"$ref": "#/components/responses/Problem"}, "401": {"$ref": "#/components/responses/Problem"}, "403": {"$ref": "#/components/responses/Problem"}, "413": {"$ref": "#/components/responses/Problem"}}
            }},
            "/api/v1/intel/notices": {"get": op("intel", "Clean-up notices (a partner's users see their own)", json!([q("partner", "Partner agency code", json!({"type": "string"})), q("format", "json (default) or csv", enum_of(&["json", "csv"]))]), None, ("200", "Notices"))},
            "/api/v1/intel/notices/issue": {"post": op("intel", "Issue the notices for an interval (default: today)", json!([q("since", "RFC 3339", json!({"type": "string", "format": "date-time"})), q("until", "RFC 3339", json!({"type": "string", "format": "date-time"}))]), None, ("201", "Notices"))},
            "/api/v1/intel/feedback": {"post": op("intel", "A partner's answer for one notice item: remediated, not_found, disputed or false_positive", json!([]), Some("Feedback"), ("201", "Feedback"))},
            "/api/v1/intel/stats": {"get": op("intel", "Statistics by country, classification, ASN or day (e.g. C2 servers controlling hosts in CN by country of the C2)", json!([
                q("by", "country, victim_country, classification, asn or day", json!({"type": "string"})),
                q("class", "Classification, e.g. botnet-c2", json!({"type": "string"})),
                q("victim_country", "ISO code of the victims' country", json!({"type": "string"})),
                q("country", "ISO code of the malicious host's country", json!({"type": "string"})),
                q("asn", "AS number", json!({"type": "integer"})),
                q("since", "RFC 3339", json!({"type": "string", "format": "date-time"})),
                q("until", "RFC 3339", json!({"type": "string", "format": "date-time"}))
            ]), None, ("200", "IntelStats"))},
            "/api/v1/audit/verify": {"get": op("audit", "Recompute the hash-chained audit log", json!([]), None, ("200", "AuditReport"))},
            "/api/v1/users": {
                "get": op("admin", "List users (admin)", json!([]), None, ("200", "Users")),
                "post": op("admin", "Create a user (admin)", json!([]), Some("NewUser"), ("201", "User"))
            },
            "/api/v1/tokens": {"post": op("admin", "Issue an API token (admin, or for oneself)", json!([]), Some("NewToken"), ("201", "IssuedToken"))}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"Problem": {"description": "Error", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}},
            "schemas": {
                "Problem": {"type": "object", "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"},
                    "errors": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}},
                    "allowed": {"type": "array", "items": states.clone()}
                }},
                "Principal": {"type": "object", "properties": {"user": {"type": "string"}, "username": {"type": "string"}, "agency": {"type": "string"}, "role": roles.clone()}},
                "Target": {"type": "object", "required": ["value", "from", "until"], "additionalProperties": false, "properties": {
                    "value": {"oneOf": [
                        {"type": "object", "required": ["type", "address", "observed_at"], "properties": {"type": {"const": "ip"}, "address": {"type": "string"}, "port": {"type": "integer"}, "observed_at": {"type": "string", "format": "date-time"}, "zone": {"type": "string"}}},
                        {"type": "object", "required": ["type", "name"], "properties": {"type": {"const": "domain"}, "name": {"type": "string"}}},
                        {"type": "object", "required": ["type", "url"], "properties": {"type": {"const": "url"}, "url": {"type": "string"}}},
                        {"type": "object", "required": ["type", "address"], "properties": {"type": {"const": "email"}, "address": {"type": "string"}}},
                        {"type": "object", "required": ["type", "service", "identifier"], "properties": {"type": {"const": "account"}, "service": {"type": "string"}, "identifier": {"type": "string"}}},
                        {"type": "object", "required": ["type", "number"], "properties": {"type": {"const": "phone"}, "number": {"type": "string"}}},
                        {"type": "object", "required": ["type", "currency", "address"], "properties": {"type": {"const": "crypto_wallet"}, "currency": {"type": "string"}, "address": {"type": "string"}}},
                        {"type": "object", "required": ["type", "institution", "identifier"], "properties": {"type": {"const": "bank_account"}, "institution": {"type": "string"}, "identifier": {"type": "string"}}}
                    ]},
                    "from": {"type": "string", "format": "date-time"}, "until": {"type": "string", "format": "date-time"}
                }},
                "RequestDraft": {"type": "object", "additionalProperties": false, "required": ["kind", "urgency", "requesting_agency", "requested_agency", "case_reference", "offences", "summary"], "properties": {
                    "kind": kinds.clone(), "urgency": urgencies.clone(), "requesting_agency": {"type": "string", "format": "uuid"}, "requested_agency": {"type": "string", "format": "uuid"},
                    "case_reference": {"type": "string"}, "offences": {"type": "array", "items": {"type": "string"}}, "summary": {"type": "string"},
                    "targets": {"type": "array", "items": {"$ref": "#/components/schemas/Target"}},
                    "data_categories": {"type": "array", "items": categories}, "legal_basis": {"type": "string"},
                    "related": {"type": "array", "items": {"type": "string", "format": "uuid"}},
                    "attachments": {"type": "array", "items": {"type": "object", "required": ["file_name", "sha256", "size", "media_type"], "properties": {"file_name": {"type": "string"}, "sha256": {"type": "string"}, "size": {"type": "integer"}, "media_type": {"type": "string"}}}},
                    "amount": {"type": "object", "properties": {"value": {"type": "number"}, "currency": {"type": "string"}}},
                    "conduct": {"type": "array", "items": {"type": "string"}}
                }},
                "Request": {"allOf": [{"$ref": "#/components/schemas/RequestDraft"}, {"type": "object", "properties": {
                    "id": {"type": "string", "format": "uuid"}, "state": states.clone(), "version": {"type": "integer"},
                    "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"},
                    "submitted_at": {"type": "string", "format": "date-time"}, "acknowledged_at": {"type": "string", "format": "date-time"}, "answered_at": {"type": "string", "format": "date-time"},
                    "ack_due": {"type": "string", "format": "date-time"}, "answer_due": {"type": "string", "format": "date-time"}, "preserved_until": {"type": "string", "format": "date-time"},
                    "assessment": {"$ref": "#/components/schemas/Assessment"}, "rule_pack_version": {"type": "string"},
                    "overdue": enum_of(&["acknowledge", "answer", "preservation_expiry"])
                }}]},
                "RequestSummary": {"type": "object", "properties": {
                    "id": {"type": "string", "format": "uuid"}, "kind": kinds.clone(), "urgency": urgencies.clone(), "state": states.clone(), "version": {"type": "integer"},
                    "requesting_agency": {"type": "string", "format": "uuid"}, "requested_agency": {"type": "string", "format": "uuid"}, "case_reference": {"type": "string"},
                    "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"},
                    "submitted_at": {"type": "string", "format": "date-time"}, "acknowledged_at": {"type": "string", "format": "date-time"}, "answered_at": {"type": "string", "format": "date-time"},
                    "ack_due": {"type": "string", "format": "date-time"}, "answer_due": {"type": "string", "format": "date-time"}, "preserved_until": {"type": "string", "format": "date-time"},
                    "overdue": enum_of(&["acknowledge", "answer", "preservation_expiry"])
                }},
                "RequestPage": {"type": "object", "description": "items are RequestSummary objects, or Request objects with view=full", "properties": {"items": {"type": "array", "items": {"oneOf": [{"$ref": "#/components/schemas/RequestSummary"}, {"$ref": "#/components/schemas/Request"}]}}, "next": {"type": ["string", "null"]}}},
                "DraftUpdate": {"type": "object", "required": ["version", "draft"], "properties": {"version": {"type": "integer"}, "draft": {"$ref": "#/components/schemas/RequestDraft"}}},
                "Transition": {"type": "object", "required": ["version", "to"], "additionalProperties": false, "properties": {
                    "version": {"type": "integer"}, "to": states, "reason": {"type": "string"}, "refusal_reason": refusals,
                    "preserved_until": {"type": "string", "format": "date-time"}, "follow_up": {"type": "string", "format": "uuid"}
                }},
                "Allowed": {"type": "object", "properties": {"allowed": {"type": "array", "items": {"type": "string"}}}},
                "Comment": {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}},
                "Event": {"type": "object", "properties": {"id": {"type": "string"}, "request": {"type": "string"}, "at": {"type": "string", "format": "date-time"}, "actor": {"type": "string"}, "event": {"type": "string"}, "from_state": {"type": "string"}, "to_state": {"type": "string"}, "reason": {"type": "string"}, "data": {}}},
                "Events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
                "Directory": {"type": "array", "items": {"type": "object"}},
                "Jurisdiction": {"type": "object", "required": ["code", "name_en", "name_zh"], "additionalProperties": false, "properties": {"code": {"type": "string", "pattern": "^[A-Z]{2}$"}, "name_en": {"type": "string"}, "name_zh": {"type": "string"}}},
                "NewAgency": {"type": "object", "required": ["code", "name_en", "jurisdiction", "kind", "time_zone"], "additionalProperties": false, "properties": {"code": {"type": "string"}, "name_en": {"type": "string"}, "name_native": {"type": "string"}, "jurisdiction": {"type": "string", "description": "ISO 3166-1 alpha-2"}, "kind": enum_of(&["police", "prosecutor", "central_authority", "cert", "point_of_contact_24_7"]), "time_zone": {"type": "string", "description": "IANA time zone"}}},
                "Agency": {"type": "object"},
                "NewContact": {"type": "object", "required": ["agency", "name", "phone", "email", "time_zone", "office_hours"], "additionalProperties": false, "properties": {"agency": {"type": "string", "format": "uuid"}, "name": {"type": "string"}, "phone": {"type": "string"}, "email": {"type": "string"}, "languages": {"type": "array", "items": {"type": "string"}}, "time_zone": {"type": "string"}, "office_hours": {"type": "string", "description": "24/7 or e.g. Mon-Fri 09:00-17:30"}}},
                "Contact": {"type": "object"},
                "AssessmentRequest": {"type": "object", "description": "Exactly one of draft, request (id) or input (explicit jurisdictions)", "properties": {"draft": {"$ref": "#/components/schemas/RequestDraft"}, "request": {"type": "string", "format": "uuid"}, "input": {"type": "object"}}},
                "Assessment": {"type": "object", "description": "Dual criminality, channels, data-category requirements, retention risk, refusal risks and a plan, each with citations."},
                "CooperationReport": {"type": "object", "properties": {"from": {"type": "string"}, "to": {"type": "string"}, "by": {"type": "string"}, "pairs": {"type": "array", "items": {"type": "object"}}}},
                "AuditReport": {"type": "object", "properties": {"entries": {"type": "integer"}, "head_hash": {"type": "string"}, "first_bad": {}}},
                "User": {"type": "object", "properties": {"id": {"type": "string"}, "username": {"type": "string"}, "display_name": {"type": "string"}, "agency": {"type": "string"}, "role": roles.clone(), "disabled": {"type": "boolean"}}},
                "Users": {"type": "array", "items": {"$ref": "#/components/schemas/User"}},
                "NewUser": {"type": "object", "required": ["username", "display_name", "agency", "role"], "properties": {"username": {"type": "string"}, "display_name": {"type": "string"}, "agency": {"type": "string", "description": "Agency code or id"}, "role": roles}},
                "NewToken": {"type": "object", "required": ["username"], "properties": {"username": {"type": "string"}, "label": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 366}}},
                "Notices": {"type": "array", "items": {"type": "object"}},
                "Feedback": {"type": "object", "required": ["item", "status"], "properties": {"partner": {"type": "string"}, "item": {"type": "string"}, "status": enum_of(&["remediated", "not_found", "disputed", "false_positive"]), "note": {"type": "string"}}},
                "IntelStats": {"type": "object"},
                "IssuedToken": {"type": "object", "properties": {"token": {"type": "string"}, "info": {"type": "object"}}}
            }
        }
    })
}
