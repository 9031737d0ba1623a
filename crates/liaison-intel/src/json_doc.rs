//! Streaming readers of the JSON documents other tools exchange: STIX 2.1 bundles and TAXII
//! envelopes ([`crate::stix_in`]), MISP events and restSearch answers ([`crate::misp`]).
//! Objects and attributes are deserialized one at a time (serde's visitor API); the document
//! is capped ([`crate::source::Limits::max_document_bytes`]) and serde_json's nesting limit
//! (128) refuses deeply nested input with a clear error.

use crate::misp::MispEvent;
use crate::model::Event;
use crate::source::{Convert, CountingReader, ImportConfig, ParseContext, SourceConfig, SourceError, SourceReport};
use crate::stix_in::StixDoc;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::fmt;
use std::io::{BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A reader that fails once more than `left` bytes were read, and says so in `over`.
struct CapReader<R> {
    inner: R,
    left: u64,
    over: Arc<AtomicBool>,
}

impl<R: Read> Read for CapReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            self.over.store(true, Ordering::Relaxed);
            return Err(std::io::Error::other("document over the size limit"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// What every reader shares: where entries go and how they are counted.
struct Sink<'a, 'b> {
    config: &'a SourceConfig,
    ctx: &'a ParseContext<'b>,
    report: &'a mut SourceReport,
    entry: u64,
}

impl Sink<'_, '_> {
    fn bad(&mut self, reason: crate::source::QuarantineReason, v: &Value) {
        self.report.rows += 1;
        let raw = v.to_string();
        let limits = self.config.limits;
        self.report
            .quarantine(&limits, &self.ctx.file, self.entry, reason, raw.as_bytes());
    }
}

type Json<R> = serde_json::Deserializer<serde_json::de::IoRead<BufReader<CapReader<CountingReader<R>>>>>;

/// Runs `body` over the capped document; the error to report, if any.
fn run<R: Read>(
    reader: CountingReader<R>,
    config: &SourceConfig,
    ctx: &ParseContext<'_>,
    body: impl FnOnce(&mut Json<R>) -> Result<(), serde_json::Error>,
) -> Option<SourceError> {
    let over = Arc::new(AtomicBool::new(false));
    let capped = CapReader {
        inner: reader,
        left: config.limits.max_document_bytes,
        over: over.clone(),
    };
    let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(128 * 1024, capped));
    let e = body(&mut de).and_then(|()| de.end()).err()?;
    Some(if over.load(Ordering::Relaxed) {
        SourceError::TooLarge {
            file: ctx.file.to_string(),
            limit: config.limits.max_document_bytes,
        }
    } else {
        SourceError::Json {
            file: ctx.file.to_string(),
            line: e.line() as u64,
            column: e.column() as u64,
            message: e.to_string(),
        }
    })
}

/// A seed that hands itself, as the visitor, to the deserializer's `$method`.
macro_rules! seed {
    ($ty:ident, $method:ident) => {
        impl<'de> DeserializeSeed<'de> for $ty<'_, '_, '_> {
            type Value = ();
            fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
                d.$method(self)
            }
        }
    };
}

// ----- STIX ------------------------------------------------------------------------------------

struct StixTop<'s, 'a, 'b> {
    sink: &'s mut Sink<'a, 'b>,
    doc: &'s mut StixDoc,
}

impl StixTop<'_, '_, '_> {
    fn object(&mut self, v: &Value) {
        self.sink.entry += 1;
        let max_field = self.sink.config.limits.max_field_bytes;
        match self.doc.object(self.sink.entry, v, max_field) {
            Ok(true) => self.sink.report.rows += 1,
            Ok(false) => {}
            Err(reason) => self.sink.bad(reason, v),
        }
    }
}

struct StixObjects<'s, 'a, 'b>(StixTop<'s, 'a, 'b>);

seed!(StixObjects, deserialize_seq);

impl<'de> Visitor<'de> for StixObjects<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of STIX objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while let Some(v) = seq.next_element::<Value>()? {
            self.0.object(&v);
        }
        Ok(())
    }
}

seed!(StixTop, deserialize_any);

impl<'de> Visitor<'de> for StixTop<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a STIX 2.1 bundle, a TAXII envelope or a list of STIX objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while let Some(v) = seq.next_element::<Value>()? {
            self.object(&v);
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        // A bundle or envelope streams its `objects`; any other object is one STIX object.
        let mut rest = serde_json::Map::new();
        let mut listed = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "objects" {
                listed = true;
                map.next_value_seed(StixObjects(StixTop {
                    sink: &mut *self.sink,
                    doc: &mut *self.doc,
                }))?;
            } else if rest.len() < 256 {
                rest.insert(key, map.next_value::<Value>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        let ty = rest.get("type").and_then(Value::as_str);
        if !listed && ty.is_some_and(|t| t != "bundle") {
            self.object(&Value::Object(rest));
        } else if !listed && ty.is_none() && !rest.contains_key("more") {
            return Err(de::Error::custom(
                "not a STIX document: no 'objects' list and no 'type' (expected a bundle, a TAXII envelope or a STIX object)",
            ));
        }
        Ok(())
    }
}

/// Reads a STIX 2.1 document (see [`crate::stix_in`]). Nothing is emitted when the
/// document is cut short (too large, malformed): its references could not be resolved.
pub(crate) fn parse_stix<R: Read>(
    reader: CountingReader<R>,
    import: &ImportConfig,
    config: &SourceConfig,
    ctx: &ParseContext<'_>,
    report: &mut SourceReport,
    emit: &mut dyn FnMut(Event),
) {
    let mut doc = StixDoc::default();
    let mut sink = Sink {
        config,
        ctx,
        report,
        entry: 0,
    };
    let error = run(reader, config, ctx, |de| {
        StixTop {
            sink: &mut sink,
            doc: &mut doc,
        }
        .deserialize(de)
    });
    report.skipped += doc.ignored;
    if let Some(e) = error {
        report.error = Some(e);
        return;
    }
    let to = Convert {
        import,
        feed: Arc::from(config.feed.as_str()),
        source: ctx.source,
        observed_at: ctx.observed_at,
    };
    report.accepted += doc.finish(&to, emit);
}

// ----- MISP ------------------------------------------------------------------------------------

struct MispState<'a, 'b> {
    sink: Sink<'a, 'b>,
    to: Convert<'a>,
    emit: &'a mut dyn FnMut(Event),
}

/// A JSON object of a MISP document: a wrapper (`{"Event": …}`, `{"response": […]}`) or an
/// event itself; an event is converted when its object ends.
struct MispMap<'s, 'a, 'b>(&'s mut MispState<'a, 'b>);

/// A list of wrappers or events.
struct MispList<'s, 'a, 'b>(&'s mut MispState<'a, 'b>);

/// An event's `Attribute` list, or an `Object`'s.
struct MispAttrs<'s, 'a, 'b>(&'s mut MispState<'a, 'b>, &'s mut MispEvent);

/// An event's `Object` list.
struct MispObjects<'s, 'a, 'b>(&'s mut MispState<'a, 'b>, &'s mut MispEvent);

/// One MISP object (its `Attribute` list is read into the event).
struct MispObject<'s, 'a, 'b>(&'s mut MispState<'a, 'b>, &'s mut MispEvent);

seed!(MispMap, deserialize_any);

impl<'de> Visitor<'de> for MispMap<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a MISP event, {\"Event\": …}, {\"response\": […]} or a list of events")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        MispList(self.0).visit_seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let st = self.0;
        let mut ev = MispEvent::default();
        let mut is_event = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "Event" => map.next_value_seed(MispMap(&mut *st))?,
                "response" => map.next_value_seed(MispList(&mut *st))?,
                "Attribute" => {
                    is_event = true;
                    map.next_value_seed(MispAttrs(&mut *st, &mut ev))?;
                }
                "Object" => {
                    is_event = true;
                    map.next_value_seed(MispObjects(&mut *st, &mut ev))?;
                }
                "Tag" | "distribution" | "timestamp" => {
                    let v = map.next_value::<Value>()?;
                    if let Err(reason) = ev.header(&key, &v) {
                        st.sink.entry += 1;
                        st.sink.bad(reason, &v);
                    }
                }
                "uuid" | "info" => {
                    is_event = true;
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if is_event {
            st.sink.report.skipped += ev.skipped;
            st.sink.report.accepted += ev.finish(&st.to, &mut *st.emit);
        }
        Ok(())
    }
}

seed!(MispList, deserialize_seq);

impl<'de> Visitor<'de> for MispList<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of MISP events")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(MispMap(&mut *self.0))?.is_some() {}
        Ok(())
    }
}

seed!(MispAttrs, deserialize_seq);

impl<'de> Visitor<'de> for MispAttrs<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of MISP attributes")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (st, ev) = (self.0, self.1);
        while let Some(v) = seq.next_element::<Value>()? {
            st.sink.entry += 1;
            match ev.attribute(st.sink.entry, &v, st.sink.config.limits.max_field_bytes) {
                Ok(true) => st.sink.report.rows += 1,
                Ok(false) => {}
                Err(reason) => st.sink.bad(reason, &v),
            }
        }
        Ok(())
    }
}

seed!(MispObjects, deserialize_seq);

impl<'de> Visitor<'de> for MispObjects<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of MISP objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(MispObject(&mut *self.0, &mut *self.1))?.is_some() {}
        Ok(())
    }
}

seed!(MispObject, deserialize_map);

impl<'de> Visitor<'de> for MispObject<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a MISP object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "Attribute" {
                map.next_value_seed(MispAttrs(&mut *self.0, &mut *self.1))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// Reads MISP events (see [`crate::misp`]): each event is converted when it ends, so a
/// document cut short keeps the events read before.
pub(crate) fn parse_misp<R: Read>(
    reader: CountingReader<R>,
    import: &ImportConfig,
    config: &SourceConfig,
    ctx: &ParseContext<'_>,
    report: &mut SourceReport,
    emit: &mut dyn FnMut(Event),
) {
    let mut st = MispState {
        sink: Sink {
            config,
            ctx,
            report,
            entry: 0,
        },
        to: Convert {
            import,
            feed: Arc::from(config.feed.as_str()),
            source: ctx.source,
            observed_at: ctx.observed_at,
        },
        emit,
    };
    let error = run(reader, config, ctx, |de| MispMap(&mut st).deserialize(de));
    if error.is_some() {
        st.sink.report.error = error;
    }
}
