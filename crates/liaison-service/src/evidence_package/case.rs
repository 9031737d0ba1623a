//! The package's CASE document (`case.jsonld`): the files' provenance and custody as JSON-LD
//! on the UCO ontology (https://caseontology.org), for forensic tools: each file an
//! `observable:File` with its file facet and SHA-256, a `case-investigation:ProvenanceRecord`
//! per file, an `case-investigation:InvestigativeAction` per custody step (and one for this
//! export, with Liaison as its instrument), all in one `case-investigation:Investigation`.

use super::{CustodyEntry, FileRecord};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The graph's own namespace (`kb:`).
const KB: &str = "https://example.invalid/liaison/kb/";

fn context() -> Value {
    json!({
        "kb": KB,
        "case-investigation": "https://ontology.caseontology.org/case/investigation/",
        "core": "https://ontology.unifiedcyberontology.org/uco/core/",
        "observable": "https://ontology.unifiedcyberontology.org/uco/observable/",
        "types": "https://ontology.unifiedcyberontology.org/uco/types/",
        "uco-action": "https://ontology.unifiedcyberontology.org/uco/action/",
        "uco-identity": "https://ontology.unifiedcyberontology.org/uco/identity/",
        "uco-tool": "https://ontology.unifiedcyberontology.org/uco/tool/",
        "xsd": "http://www.w3.org/2001/XMLSchema#"
    })
}

/// `kb:KIND-UUID`, the UUID derived from the kind and key (SHA-256, shaped as a version 5
/// UUID), so that every node of the graph has a stable IRI ending in a UUID (as CASE
/// suggests) whatever characters the key (a user name, say) holds.
fn id(kind: &str, key: &str) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update([0x1f]);
    h.update(key.as_bytes());
    let mut b: [u8; 16] = [0; 16];
    b.copy_from_slice(&h.finalize()[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    format!("kb:{kind}-{}", uuid::Uuid::from_bytes(b))
}

fn datetime(s: &str) -> Value {
    json!({"@type": "xsd:dateTime", "@value": s})
}

fn reference(i: &str) -> Value {
    json!({"@id": i})
}

/// What the CASE document describes.
pub(super) struct CaseInput<'a> {
    pub request_id: &'a str,
    pub node_id: &'a str,
    pub exported_at: &'a str,
    pub exported_by: &'a str,
    pub files: &'a [(FileRecord, Vec<CustodyEntry>)],
}

/// The JSON-LD document.
pub(super) fn document(c: &CaseInput<'_>) -> Value {
    let mut graph: Vec<Value> = Vec::new();
    let mut everything: Vec<Value> = Vec::new();
    let mut people: Vec<String> = Vec::new();
    let mut person = |name: &str, graph: &mut Vec<Value>| -> String {
        let i = id("identity", name);
        if !people.contains(&i) {
            people.push(i.clone());
            graph.push(json!({
                "@id": i,
                "@type": "uco-identity:Identity",
                "core:name": name,
            }));
        }
        i
    };
    let tool = id("tool", "liaison");
    graph.push(json!({
        "@id": tool,
        "@type": "uco-tool:Tool",
        "core:name": "Liaison",
        "uco-tool:version": env!("CARGO_PKG_VERSION"),
    }));
    let mut records = Vec::new();
    let mut file_ids = Vec::new();
    for (n, (f, custody)) in c.files.iter().enumerate() {
        let file = id("file", &f.id);
        let name = f.record.get("file_name").and_then(Value::as_str).unwrap_or(&f.path);
        let mut file_facet = json!({
            "@id": id("file-facet", &f.id),
            "@type": "observable:FileFacet",
            "observable:fileName": name,
            "observable:sizeInBytes": {"@type": "xsd:integer", "@value": f.size.to_string()},
        });
        if let Some(t) = f.record.get("media_type_sniffed").and_then(Value::as_str) {
            file_facet["observable:mimeType"] = json!(t);
        }
        graph.push(json!({
            "@id": file,
            "@type": "observable:File",
            "core:description": format!("Evidence file {} of request {}, entry {} of the package", f.id, c.request_id, f.path),
            "core:hasFacet": [
                file_facet,
                {
                    "@id": id("content-data-facet", &f.id),
                    "@type": "observable:ContentDataFacet",
                    "observable:sizeInBytes": {"@type": "xsd:integer", "@value": f.size.to_string()},
                    "observable:hash": [{
                        "@id": id("hash", &f.id),
                        "@type": "types:Hash",
                        "types:hashMethod": "SHA256",
                        "types:hashValue": {"@type": "xsd:hexBinary", "@value": f.sha256},
                    }],
                },
            ],
        }));
        let record = id("provenance-record", &f.id);
        graph.push(json!({
            "@id": record,
            "@type": "case-investigation:ProvenanceRecord",
            "case-investigation:exhibitNumber": format!("{}/{:04}", c.request_id, n + 1),
            "core:description": format!("Evidence file {} as held by node {}", f.id, c.node_id),
            "core:object": [reference(&file)],
        }));
        everything.push(reference(&file));
        everything.push(reference(&record));
        records.push(reference(&record));
        file_ids.push(reference(&file));
        for e in custody {
            let action = id("investigative-action", &format!("{}-{}", f.id, e.seq));
            let performer = person(&e.actor, &mut graph);
            let mut a = json!({
                "@id": action,
                "@type": "case-investigation:InvestigativeAction",
                "core:name": e.action,
                "core:description": format!("audit entry {} ({}): {}", e.seq, e.hash, e.detail),
                "uco-action:startTime": datetime(&e.at),
                "uco-action:endTime": datetime(&e.at),
                "uco-action:performer": reference(&performer),
                "uco-action:object": [reference(&file)],
            });
            if e.action == "evidence.upload" {
                a["uco-action:result"] = json!([reference(&record)]);
            }
            graph.push(a);
            everything.push(reference(&action));
        }
    }
    // This export, the last step of every file's custody in the package.
    let exporter = person(c.exported_by, &mut graph);
    let export = id("investigative-action", &format!("export-{}", c.request_id));
    let mut a = json!({
        "@id": export,
        "@type": "case-investigation:InvestigativeAction",
        "core:name": "evidence.export",
        "core:description": format!("Evidence package of request {} exported by node {}", c.request_id, c.node_id),
        "uco-action:startTime": datetime(c.exported_at),
        "uco-action:endTime": datetime(c.exported_at),
        "uco-action:performer": reference(&exporter),
        "uco-action:instrument": reference(&tool),
    });
    if !file_ids.is_empty() {
        a["uco-action:object"] = Value::Array(file_ids);
        a["uco-action:result"] = Value::Array(records);
    }
    graph.push(a);
    everything.push(reference(&export));
    graph.push(json!({
        "@id": id("investigation", c.request_id),
        "@type": "case-investigation:Investigation",
        "core:name": format!("Assistance request {}", c.request_id),
        "core:object": everything,
    }));
    json!({"@context": context(), "@graph": graph})
}
