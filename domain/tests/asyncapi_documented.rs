//! docs/asyncapi.yaml and the code in step:
//!
//! - every event variant of the three enums (strum's `VariantNames`) has exactly one
//!   message, on the SSE channel and on the NATS channel, whose envelope names its
//!   aggregate type and its CloudEvents `type` at the version the code writes; every older
//!   version a log may still hold (1 to the current one) has one more, `<Event>V<n>`;
//!   no message names an event the code lacks (the only other messages are the SSE
//!   stream's `checkpoint` and `end` frames);
//! - an older version's message has examples, each `data` listing exactly the fields of
//!   its schema, and read by the store's upcasters (ledger-eventstore's versions.rs) it
//!   is an event of the current version;
//! - each message's `data` schema lists exactly the fields of the serialized sample of
//!   its variant (tests/common/samples.rs), all of them required, with the JSON type of
//!   the sample's value, its enum holding the value, dates as `format: date`, and every
//!   amount and price (the event's `MoneyFields`) as the shared decimal-string schema;
//! - the envelope schema lists exactly the fields of `CloudEvent` in
//!   app/src/stream/envelope.rs, required unless skipped when absent, with their JSON types;
//! - the `checkpoint` and `end` frames list the fields server/src/stream.rs writes, and
//!   `end` the reasons it ends a stream with.
//!
//! The app and the server are read as text: this crate does not depend on them.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use cqrs_es::{Aggregate, DomainEvent};
use ledger_domain::account::AccountEvent;
use ledger_domain::money::MoneyFields;
use ledger_domain::{Account, ClearingDay, ClearingDayEvent, Instrument, InstrumentEvent};
use ledger_eventstore::versions::upcast;
use serde_json::{json, Value};
use strum::VariantNames;

mod common;
use common::samples::{account_samples, clearing_day_samples, instrument_samples};

/// The envelope's fields, in the order printed (docs/events.md, "The envelope").
const ENVELOPE_FIELDS: [&str; 18] = [
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "data",
    "position",
    "sequence",
    "aggregatetype",
    "hash",
    "prevhash",
    "commandid",
    "correlationid",
    "causationid",
    "actor",
    "businessdate",
];
/// The schema every event message's payload is built on.
const ENVELOPE_SCHEMA: &str = "#/components/schemas/CloudEvent";
/// The one schema of amounts and prices: a string with a pattern.
const DECIMAL_SCHEMA: &str = "#/components/schemas/Decimal";
/// The frames of the SSE stream that are not events.
const SSE_FRAMES: [&str; 2] = ["checkpoint", "end"];
const SSE_ADDRESS: &str = "/v1/events/stream";
const NATS_ADDRESS: &str = "{prefix}.{aggregateType}.{aggregateId}.{eventType}";

fn repo_file(path: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn asyncapi() -> Value {
    serde_yaml_ng::from_str(&repo_file("docs/asyncapi.yaml"))
        .unwrap_or_else(|e| panic!("docs/asyncapi.yaml is not YAML: {e}"))
}

/// The schema `schema` names, following local `$ref`s (`#/components/…`).
fn resolve<'a>(doc: &'a Value, mut schema: &'a Value) -> &'a Value {
    while let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{reference}: only local references are used"));
        schema = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{reference} names nothing in docs/asyncapi.yaml"));
    }
    schema
}

/// The component `reference` (`#/components/schemas/…`) names.
fn component<'a>(doc: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference.strip_prefix('#').expect("a local reference");
    resolve(
        doc,
        doc.pointer(pointer)
            .unwrap_or_else(|| panic!("docs/asyncapi.yaml has no {reference}")),
    )
}

fn names_of(map: &Value) -> BTreeSet<String> {
    map.as_object()
        .map(|map| map.keys().cloned().collect())
        .unwrap_or_default()
}

fn strings_of(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .map(|list| list.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

// ---------------------------------------------------------------------------
// The code's side: the events, as stored
// ---------------------------------------------------------------------------

/// One event as the store keeps it: its type and version, the variant's fields as the
/// payload, and the names of its amounts and prices (`fees.stamp_duty_cny` when nested).
struct Sample {
    event_type: String,
    version: String,
    payload: Value,
    money: BTreeSet<String>,
}

/// One aggregate: its type as stored, its variants, a sample of each.
struct Aggregated {
    aggregate_type: &'static str,
    variants: &'static [&'static str],
    samples: Vec<Sample>,
}

fn sample<E: DomainEvent + MoneyFields>(event: E) -> Sample {
    let event_type = event.event_type();
    // Externally tagged: {"FillBooked": {…}}; the store keeps the inner object.
    let payload = match serde_json::to_value(&event) {
        Ok(Value::Object(mut tagged)) => tagged.remove(&event_type),
        _ => None,
    }
    .unwrap_or_else(|| panic!("{event_type} does not serialize as {{\"{event_type}\": payload}}"));
    let mut copy = event.clone();
    let money = copy
        .money_fields_mut()
        .into_iter()
        .map(|(name, _)| name.to_owned())
        .collect();
    Sample {
        event_type,
        version: event.event_version(),
        payload,
        money,
    }
}

fn aggregates() -> Vec<Aggregated> {
    vec![
        Aggregated {
            aggregate_type: Account::TYPE,
            variants: AccountEvent::VARIANTS,
            samples: account_samples().into_iter().map(sample).collect(),
        },
        Aggregated {
            aggregate_type: Instrument::TYPE,
            variants: InstrumentEvent::VARIANTS,
            samples: instrument_samples().into_iter().map(sample).collect(),
        },
        Aggregated {
            aggregate_type: ClearingDay::TYPE,
            variants: ClearingDayEvent::VARIANTS,
            samples: clearing_day_samples().into_iter().map(sample).collect(),
        },
    ]
}

fn all_variants() -> BTreeSet<String> {
    aggregates()
        .iter()
        .flat_map(|a| a.variants.iter().map(|v| (*v).to_owned()))
        .collect()
}

/// A version of an event older than the one the code writes, which a log may still hold.
struct Older {
    aggregate_type: &'static str,
    event_type: String,
    version: u32,
}

impl Older {
    /// Its message: `OrderPlacedV1`.
    fn message(&self) -> String {
        format!("{}V{}", self.event_type, self.version)
    }
}

/// Every older version of every event: 1 up to the version its sample is written at.
fn older_versions() -> Vec<Older> {
    let mut older = Vec::new();
    for aggregate in aggregates() {
        for sample in aggregate.samples {
            let current: u32 = sample.version.parse().expect("event versions are numbers");
            older.extend((1..current).map(|version| Older {
                aggregate_type: aggregate.aggregate_type,
                event_type: sample.event_type.clone(),
                version,
            }));
        }
    }
    older
}

fn all_messages_of_events() -> BTreeSet<String> {
    let mut names = all_variants();
    names.extend(older_versions().iter().map(Older::message));
    names
}

/// `data` of an older version as the ledger reads it: upcast by the store, then the
/// current version's variant of its aggregate's enum.
fn read_as_current(older: &Older, data: &Value) -> Result<(), String> {
    let current = upcast(&older.event_type, older.version, data.clone()).map_err(|e| e.to_string())?;
    let mut tagged = serde_json::Map::new();
    tagged.insert(older.event_type.clone(), current);
    let tagged = Value::Object(tagged);
    let read = match older.aggregate_type {
        Account::TYPE => serde_json::from_value::<AccountEvent>(tagged).map(drop),
        Instrument::TYPE => serde_json::from_value::<InstrumentEvent>(tagged).map(drop),
        _ => serde_json::from_value::<ClearingDayEvent>(tagged).map(drop),
    };
    read.map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------
// Checking a value against a schema of the document
// ---------------------------------------------------------------------------

/// What the walk of one payload found wrong, and where its decimal-string fields are.
/// The walk of an example (`example`) asks less than that of an event the code writes:
/// its fields among the schema's, the required ones present.
#[derive(Default)]
struct Findings {
    example: bool,
    problems: Vec<String>,
    decimals: BTreeSet<String>,
}

fn type_fits(json_type: &str, value: &Value) -> bool {
    match json_type {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        _ => false,
    }
}

fn is_date(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|text| text.len() == 10 && NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok())
}

/// `value` (at `path` of the payload) against `schema`: its type, its enum, dates, and
/// the fields of an object.
fn check_value(doc: &Value, schema: &Value, value: &Value, path: &str, found: &mut Findings) {
    if schema.get("$ref").and_then(Value::as_str) == Some(DECIMAL_SCHEMA) {
        found.decimals.insert(path.to_owned());
    }
    let schema = resolve(doc, schema);
    let Some(json_type) = schema.get("type").and_then(Value::as_str) else {
        found.problems.push(format!("{path}: the schema has no type"));
        return;
    };
    if !type_fits(json_type, value) {
        found
            .problems
            .push(format!("{path}: the schema says {json_type}, the code writes {value}"));
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            found
                .problems
                .push(format!("{path}: {value} is not in the schema's enum"));
        }
    }
    let format_date = schema.get("format").and_then(Value::as_str) == Some("date");
    if is_date(value) != format_date {
        found.problems.push(format!(
            "{path}: the code writes {value}, the schema has format {:?} (a date is `format: date`)",
            schema.get("format")
        ));
    }
    let open = found.example && schema.get("properties").is_none();
    if json_type == "object" && value.is_object() && !open {
        check_fields(doc, schema, value, path, found);
    }
}

/// The object schema lists exactly the fields of `value`, requires the ones present
/// (not null), and each field's schema fits its value (for an example: its fields are
/// among the schema's and the required ones are there).
fn check_fields(doc: &Value, schema: &Value, value: &Value, path: &str, found: &mut Findings) {
    let at = |name: &str| {
        if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    let written: BTreeSet<String> = names_of(value);
    let properties = schema.get("properties").cloned().unwrap_or(Value::Null);
    let documented = names_of(&properties);
    for missing in written.difference(&documented) {
        found
            .problems
            .push(format!("{}: written by the code, not in the schema", at(missing)));
    }
    for extra in documented.difference(&written).filter(|_| !found.example) {
        found
            .problems
            .push(format!("{}: in the schema, not written by the code", at(extra)));
    }
    let present: BTreeSet<String> = value
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, _)| k.clone())
        .collect();
    let required = strings_of(schema.get("required").unwrap_or(&Value::Null));
    if found.example {
        if !required.is_subset(&present) {
            found
                .problems
                .push(format!("{path}: lacks some of the required {required:?}"));
        }
    } else if required != present {
        found.problems.push(format!(
            "{}: required lists {required:?}, the code always writes {present:?}",
            if path.is_empty() { "(payload)" } else { path }
        ));
    }
    for (name, field) in value.as_object().into_iter().flatten() {
        if let Some(field_schema) = properties.get(name) {
            check_value(doc, field_schema, field, &at(name), found);
        }
    }
}

/// An event message's payload: `allOf` of the envelope and a part that fixes its
/// `type`, `aggregatetype` and `data`. Returns that part's properties.
fn event_part<'a>(doc: &'a Value, message: &'a Value, name: &str) -> &'a Value {
    let parts = resolve(doc, &message["payload"])["allOf"]
        .as_array()
        .unwrap_or_else(|| panic!("message {name}: the payload is not an allOf of the envelope and the event"));
    assert!(
        parts
            .iter()
            .any(|p| p.get("$ref").and_then(Value::as_str) == Some(ENVELOPE_SCHEMA)),
        "message {name}: the payload is not built on {ENVELOPE_SCHEMA}"
    );
    parts
        .iter()
        .filter(|part| part.get("$ref").and_then(Value::as_str) != Some(ENVELOPE_SCHEMA))
        .map(|part| &resolve(doc, part)["properties"])
        .find(|properties| properties.get("data").is_some())
        .unwrap_or_else(|| panic!("message {name}: no part of the payload names its data"))
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

#[test]
fn every_event_has_exactly_one_message_and_no_message_names_another() {
    let doc = asyncapi();
    let messages = doc["components"]["messages"].as_object().expect("components/messages");
    let mut names: Vec<String> = messages
        .iter()
        .map(|(key, message)| {
            let name = message["name"].as_str().unwrap_or_default();
            assert_eq!(name, key, "message {key}: its name is {name:?}");
            name.to_owned()
        })
        .collect();
    names.sort();
    let unique: BTreeSet<String> = names.iter().cloned().collect();
    assert_eq!(unique.len(), names.len(), "two messages share a name: {names:?}");
    let mut expected = all_messages_of_events();
    expected.extend(set(&SSE_FRAMES));
    let missing: Vec<&String> = expected.difference(&unique).collect();
    let stale: Vec<&String> = unique.difference(&expected).collect();
    assert!(missing.is_empty(), "docs/asyncapi.yaml has no message for {missing:?}");
    assert!(
        stale.is_empty(),
        "docs/asyncapi.yaml has messages the code lacks: {stale:?}"
    );
    for aggregate in aggregates() {
        let sampled: BTreeSet<String> = aggregate.samples.iter().map(|s| s.event_type.clone()).collect();
        assert_eq!(sampled, set(aggregate.variants), "every event variant needs one sample");
        for sample in &aggregate.samples {
            let part = event_part(&doc, &messages[&sample.event_type], &sample.event_type);
            let cloud_type = format!(
                "ledger.{}.{}.v{}",
                aggregate.aggregate_type.to_ascii_lowercase(),
                sample.event_type,
                sample.version
            );
            assert_eq!(
                part["type"]["const"],
                json!(cloud_type),
                "message {}",
                sample.event_type
            );
            assert_eq!(
                part["aggregatetype"]["const"],
                json!(aggregate.aggregate_type),
                "message {}",
                sample.event_type
            );
        }
    }
    for older in older_versions() {
        let name = older.message();
        let part = event_part(&doc, &messages[&name], &name);
        let cloud_type = format!(
            "ledger.{}.{}.v{}",
            older.aggregate_type.to_ascii_lowercase(),
            older.event_type,
            older.version
        );
        assert_eq!(part["type"]["const"], json!(cloud_type), "message {name}");
        assert_eq!(
            part["aggregatetype"]["const"],
            json!(older.aggregate_type),
            "message {name}"
        );
    }
}

/// An older version's schema cannot be drawn from the code, which writes the current one
/// only: its examples are, exactly, payloads of that schema, and each reads as an event
/// of the current version through the store's upcasters, as the ledger reads them.
#[test]
fn each_older_version_has_examples_of_its_schema_that_read_as_the_current_one() {
    let doc = asyncapi();
    let mut problems = Vec::new();
    for older in older_versions() {
        let name = older.message();
        let message = &doc["components"]["messages"][&name];
        let part = event_part(&doc, message, &name);
        let examples = message["examples"].as_array().cloned().unwrap_or_default();
        if examples.is_empty() {
            problems.push(format!("{name}: no example"));
        }
        for example in &examples {
            let data = &example["payload"]["data"];
            let mut found = Findings::default();
            check_value(&doc, &part["data"], data, "", &mut found);
            problems.extend(found.problems.into_iter().map(|p| format!("{name} example: {p}")));
            if let Err(reason) = read_as_current(&older, data) {
                problems.push(format!("{name} example does not read as the current version: {reason}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn each_payload_schema_lists_the_fields_of_its_event() {
    let doc = asyncapi();
    let decimal = component(&doc, DECIMAL_SCHEMA);
    assert_eq!(decimal["type"], "string", "decimals are strings");
    assert!(decimal["pattern"].is_string(), "decimals have a pattern");
    let mut problems = Vec::new();
    for sample in aggregates().into_iter().flat_map(|a| a.samples) {
        let name = &sample.event_type;
        let part = event_part(&doc, &doc["components"]["messages"][name], name);
        let mut found = Findings::default();
        check_value(&doc, &part["data"], &sample.payload, "", &mut found);
        if found.decimals != sample.money {
            found.problems.push(format!(
                "the amounts and prices are {:?}, the schema's decimals {:?}",
                sample.money, found.decimals
            ));
        }
        problems.extend(found.problems.into_iter().map(|p| format!("{name}: {p}")));
    }
    assert!(
        problems.is_empty(),
        "docs/asyncapi.yaml and the events differ:\n{}",
        problems.join("\n")
    );
}

/// A field of `CloudEvent` as serde writes it: its name, whether it is always there,
/// its JSON type.
#[derive(Debug, PartialEq)]
struct EnvelopeField {
    name: String,
    required: bool,
    json_type: &'static str,
}

fn json_type_of(rust_type: &str) -> &'static str {
    match rust_type {
        "u64" => "integer",
        "&'a str" | "&'static str" | "String" | "Option<NaiveDate>" => "string",
        "Cow<'a, serde_json::Value>" => "object",
        other => panic!("envelope.rs has a field of type {other}: say here which JSON type it is"),
    }
}

/// The fields of `pub struct CloudEvent` in app/src/stream/envelope.rs, read as text:
/// `pub name: Type,` lines, renamed by `#[serde(rename = "…")]`, optional when
/// `skip_serializing_if`.
fn envelope_fields(source: &str) -> Vec<EnvelopeField> {
    let body = source
        .split_once("pub struct CloudEvent<'a> {")
        .and_then(|(_, rest)| rest.split_once("\n}"))
        .map(|(body, _)| body)
        .expect("envelope.rs defines pub struct CloudEvent<'a>");
    let (mut rename, mut skipped) = (None, false);
    let mut fields = Vec::new();
    for line in body.lines().map(str::trim) {
        if let Some(attribute) = line.strip_prefix("#[serde(") {
            if let Some(name) = attribute.strip_prefix("rename = \"") {
                rename = name.split_once('"').map(|(name, _)| name.to_owned());
            }
            skipped |= attribute.contains("skip_serializing_if");
        } else if let Some((name, rust_type)) = line.strip_prefix("pub ").and_then(|f| f.split_once(':')) {
            let rust_type = rust_type.trim().trim_end_matches(',');
            assert!(
                skipped || !rust_type.starts_with("Option<"),
                "envelope.rs: {name} would be written as null"
            );
            fields.push(EnvelopeField {
                name: rename.take().unwrap_or_else(|| name.to_owned()),
                required: !skipped,
                json_type: json_type_of(rust_type),
            });
            skipped = false;
        }
    }
    fields
}

#[test]
fn the_envelope_schema_lists_the_fields_of_the_envelope() {
    let fields = envelope_fields(&repo_file("app/src/stream/envelope.rs"));
    let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names, ENVELOPE_FIELDS,
        "the envelope's fields changed: docs/events.md too"
    );
    let doc = asyncapi();
    let schema = component(&doc, ENVELOPE_SCHEMA);
    assert_eq!(
        names_of(&schema["properties"]),
        set(&ENVELOPE_FIELDS),
        "{ENVELOPE_SCHEMA} properties"
    );
    let required: BTreeSet<String> = fields.iter().filter(|f| f.required).map(|f| f.name.clone()).collect();
    assert_eq!(strings_of(&schema["required"]), required, "{ENVELOPE_SCHEMA} required");
    for field in &fields {
        let documented = resolve(&doc, &schema["properties"][&field.name]);
        assert_eq!(documented["type"], field.json_type, "{ENVELOPE_SCHEMA} {}", field.name);
    }
}

fn channel<'a>(doc: &'a Value, address: &str) -> (&'a String, &'a Value) {
    doc["channels"]
        .as_object()
        .into_iter()
        .flatten()
        .find(|(_, channel)| channel["address"] == address)
        .unwrap_or_else(|| panic!("docs/asyncapi.yaml has no channel at {address}"))
}

/// The names of the messages a channel carries.
fn carried(doc: &Value, channel: &Value) -> BTreeSet<String> {
    let messages = channel["messages"].as_object().expect("a channel lists its messages");
    messages
        .values()
        .map(|m| resolve(doc, m)["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn both_channels_carry_every_event_and_are_received() {
    let doc = asyncapi();
    let variants = all_variants();
    let (sse_key, sse) = channel(&doc, SSE_ADDRESS);
    let mut sse_messages = all_messages_of_events();
    sse_messages.extend(set(&SSE_FRAMES));
    assert_eq!(carried(&doc, sse), sse_messages, "the SSE channel's messages");
    let (nats_key, nats) = channel(&doc, NATS_ADDRESS);
    assert_eq!(
        carried(&doc, nats),
        all_messages_of_events(),
        "the NATS channel's messages"
    );
    assert_eq!(
        strings_of(&nats["parameters"]["eventType"]["enum"]),
        variants,
        "{{eventType}}"
    );
    let lower: BTreeSet<String> = aggregates()
        .iter()
        .map(|a| a.aggregate_type.to_ascii_lowercase())
        .collect();
    assert_eq!(
        strings_of(&nats["parameters"]["aggregateType"]["enum"]),
        lower,
        "{{aggregateType}}"
    );
    for key in [sse_key, nats_key] {
        let target = json!(format!("#/channels/{key}"));
        let receives = doc["operations"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, op)| op["action"] == "receive" && op["channel"]["$ref"] == target)
            .count();
        assert_eq!(receives, 1, "one receive operation on channel {key}");
    }
    let query = doc["operations"]
        .as_object()
        .into_iter()
        .flatten()
        .find(|(_, op)| op["channel"]["$ref"] == json!(format!("#/channels/{sse_key}")))
        .map(|(_, op)| &op["bindings"]["http"]["query"])
        .expect("the SSE operation has an http binding");
    assert_eq!(
        strings_of(&query["properties"]["type"]["items"]["enum"]),
        variants,
        "?type="
    );
}

/// The body of `fn name(` in `source`, up to the closing brace at the start of a line.
fn function_body<'a>(source: &'a str, name: &str) -> &'a str {
    source
        .split_once(&format!("fn {name}("))
        .and_then(|(_, rest)| rest.split_once("\n}"))
        .map(|(body, _)| body)
        .unwrap_or_else(|| panic!("no fn {name}"))
}

/// The keys of the `json!({ … })` object in `body`: every `"key":`.
fn json_keys(body: &str) -> BTreeSet<String> {
    let object = body
        .split_once("json!({")
        .and_then(|(_, rest)| rest.split_once("})"))
        .map(|(object, _)| object)
        .expect("a json!({ … }) object");
    object
        .split(',')
        .filter_map(|entry| {
            entry
                .trim()
                .strip_prefix('"')?
                .split_once("\":")
                .map(|(k, _)| k.to_owned())
        })
        .collect()
}

fn snake_case(name: &str) -> String {
    let mut snake = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    snake
}

#[test]
fn the_checkpoint_and_end_frames_are_the_servers() {
    let source = repo_file("server/src/stream.rs");
    let doc = asyncapi();
    let messages = &doc["components"]["messages"];
    for (frame, function) in [("checkpoint", "checkpoint_frame"), ("end", "end_frame")] {
        let payload = resolve(&doc, &messages[frame]["payload"]);
        let written = json_keys(function_body(&source, function));
        assert_eq!(names_of(&payload["properties"]), written, "the {frame} frame's fields");
        assert_eq!(
            strings_of(&payload["required"]),
            written,
            "the {frame} frame's required"
        );
    }
    let reasons: BTreeSet<String> = source
        .split_once("#[serde(rename_all = \"snake_case\")]\nenum EndReason {")
        .and_then(|(_, rest)| rest.split_once('}'))
        .map(|(body, _)| body)
        .expect("stream.rs: enum EndReason, in snake_case")
        .lines()
        .map(|line| line.trim().trim_end_matches(','))
        .filter(|line| !line.is_empty() && !line.starts_with("//"))
        .map(snake_case)
        .collect();
    let end = resolve(&doc, &messages["end"]["payload"]);
    assert_eq!(strings_of(&end["properties"]["reason"]["enum"]), reasons, "end reasons");
}

#[test]
fn the_examples_fit_their_messages() {
    let doc = asyncapi();
    let mut problems = Vec::new();
    for (name, message) in doc["components"]["messages"].as_object().expect("messages") {
        for example in message["examples"].as_array().into_iter().flatten() {
            let mut found = Findings {
                example: true,
                ..Findings::default()
            };
            if SSE_FRAMES.contains(&name.as_str()) {
                check_value(&doc, &message["payload"], &example["payload"], "", &mut found);
            } else {
                let envelope = component(&doc, ENVELOPE_SCHEMA);
                check_value(&doc, envelope, &example["payload"], "", &mut found);
                let part = event_part(&doc, message, name);
                check_value(&doc, &part["data"], &example["payload"]["data"], "data", &mut found);
                if example["payload"]["type"] != part["type"]["const"] {
                    found.problems.push("type: not the message's".to_owned());
                }
            }
            problems.extend(found.problems.into_iter().map(|p| format!("{name} example: {p}")));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checker_sees_a_missing_field_a_wrong_type_and_an_unrequired_one() {
    let doc = json!({ "components": { "schemas": { "Decimal": { "type": "string", "pattern": "x" } } } });
    let schema = json!({
        "type": "object",
        "required": ["price"],
        "properties": {
            "price": { "$ref": DECIMAL_SCHEMA },
            "quantity": { "type": "string" },
            "gone": { "type": "string" },
        }
    });
    let value = json!({ "price": "1.00", "quantity": 100, "trade_date": "2024-03-04" });
    let mut found = Findings::default();
    check_value(&doc, &schema, &value, "", &mut found);
    let problems = found.problems.join("\n");
    assert!(
        problems.contains("trade_date: written by the code, not in the schema"),
        "{problems}"
    );
    assert!(
        problems.contains("gone: in the schema, not written by the code"),
        "{problems}"
    );
    assert!(
        problems.contains("quantity: the schema says string, the code writes 100"),
        "{problems}"
    );
    assert!(problems.contains("required lists"), "{problems}");
    assert_eq!(found.decimals, set(&["price"]));
}

#[test]
fn the_envelope_reader_finds_names_renames_and_optional_fields() {
    let source = "pub struct CloudEvent<'a> {\n    /// doc\n    pub id: String,\n    #[serde(rename = \"type\")]\n    \
                  pub event_type: String,\n    pub position: u64,\n    #[serde(skip_serializing_if = \"Option::is_none\")]\n    \
                  pub businessdate: Option<NaiveDate>,\n}\n";
    let fields = envelope_fields(source);
    let field = |name: &str, required, json_type| EnvelopeField {
        name: name.to_owned(),
        required,
        json_type,
    };
    assert_eq!(
        fields,
        [
            field("id", true, "string"),
            field("type", true, "string"),
            field("position", true, "integer"),
            field("businessdate", false, "string"),
        ]
    );
}
