//! Reads a command's fields into its [`LedgerCommand`] variant with serde, and
//! words what is wrong the way the contract's answers always have.
//!
//! serde stops at the first problem it meets, in the order of the fields; the
//! contract reports a problem of shape (an unknown field, a number where a
//! string is due, a missing field) before any refused value, and refused
//! values in the order the command declares its fields, a word outside its
//! list (`board`, `side`) first. So the reader tells serde's shape errors from
//! the values' own refusals (its own error type sees which serde constructor
//! made each), and when a value is refused it sets that field aside and reads
//! again, until the shape is known to be sound.

use std::fmt;

use serde::de::value::{MapDeserializer, SeqDeserializer, StrDeserializer};
use serde::de::{self, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, Unexpected, VariantAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::LedgerCommand;

/// Reads the fields of a command of type `type_name` (its `type` and
/// `command_id` already taken out). The error is the sentence for the answer.
pub(super) fn read_command(type_name: &str, fields: &Map<String, Value>) -> Result<LedgerCommand, String> {
    let mut refused: Vec<Refusal> = Vec::new();
    let mut declared: &'static [&'static str] = &[];
    loop {
        let reader = CommandReader {
            type_name,
            fields,
            set_aside: &refused,
            declared: &mut declared,
        };
        let error = match LedgerCommand::deserialize(reader) {
            Ok(command) => return first_refusal(refused, declared).map_or(Ok(command), Err),
            Err(error) => error,
        };
        match (error.key, error.problem) {
            (Some(key), problem @ (Problem::Refused(_) | Problem::UnknownWord { .. })) => {
                refused.push(Refusal { key, problem });
            }
            (_, Problem::Missing(_)) => {
                // A field set aside looks missing to serde: only a field truly absent is reported.
                let absent = declared.iter().find(|field| !fields.contains_key(**field));
                return Err(match absent {
                    Some(field) => FieldError::new(Problem::Missing(field)).to_string(),
                    None => first_refusal(refused, declared).expect("only a field set aside was missed"),
                });
            }
            (key, problem) => return Err(FieldError { key, problem }.to_string()),
        }
    }
}

/// A field whose value was refused, set aside while the rest is read.
struct Refusal {
    key: String,
    problem: Problem,
}

/// The refusal the contract reports first: a word outside its list, then the
/// others in the order the command declares its fields.
fn first_refusal(refused: Vec<Refusal>, declared: &[&str]) -> Option<String> {
    let position = |key: &str| declared.iter().position(|field| *field == key);
    refused
        .into_iter()
        .min_by_key(|r| (!matches!(r.problem, Problem::UnknownWord { .. }), position(&r.key)))
        .map(|r| {
            FieldError {
                key: Some(r.key),
                problem: r.problem,
            }
            .to_string()
        })
}

/// A problem met while reading, with the field it is in (none for the command as a whole).
#[derive(Debug)]
struct FieldError {
    key: Option<String>,
    problem: Problem,
}

#[derive(Debug)]
enum Problem {
    /// The JSON is not shaped as the command declares, in serde's words.
    Shape(String),
    /// A field the command declares is absent.
    Missing(&'static str),
    /// A word outside its list: a command type, a board, a side.
    UnknownWord {
        word: String,
        expected: &'static [&'static str],
    },
    /// A value its newtype refused, worded to follow the field's name.
    Refused(String),
}

impl FieldError {
    fn new(problem: Problem) -> Self {
        Self { key: None, problem }
    }

    fn in_field(mut self, key: &str) -> Self {
        self.key.get_or_insert_with(|| key.to_owned());
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.key, &self.problem) {
            (None, Problem::UnknownWord { word, .. }) => write!(f, "unknown command type {word:?}"),
            (
                Some(key),
                Problem::UnknownWord {
                    word,
                    expected: [one, other],
                },
            ) => {
                write!(f, "{key}: {word:?} is neither {one} nor {other}")
            }
            (Some(key), Problem::UnknownWord { word, expected }) => {
                write!(f, "{key}: {word:?} is not one of {}", expected.join(", "))
            }
            (Some(key), Problem::Refused(tail)) => write!(f, "{key}{tail}"),
            (None, Problem::Refused(message)) => f.write_str(message),
            (Some(key), Problem::Shape(message)) => write!(f, "{key}: {message}"),
            (None, Problem::Shape(message)) => f.write_str(message),
            (_, Problem::Missing(field)) => {
                write!(f, "{}", <serde_json::Error as de::Error>::missing_field(field))
            }
        }
    }
}

impl std::error::Error for FieldError {}

/// serde's own errors keep serde_json's wording; `custom` is what a newtype's
/// `TryFrom` refusal arrives as.
impl de::Error for FieldError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Self::new(Problem::Refused(message.to_string()))
    }

    fn invalid_type(unexpected: Unexpected, expected: &dyn de::Expected) -> Self {
        Self::new(Problem::Shape(
            <serde_json::Error as de::Error>::invalid_type(unexpected, expected).to_string(),
        ))
    }

    fn invalid_value(unexpected: Unexpected, expected: &dyn de::Expected) -> Self {
        Self::new(Problem::Shape(
            <serde_json::Error as de::Error>::invalid_value(unexpected, expected).to_string(),
        ))
    }

    fn invalid_length(len: usize, expected: &dyn de::Expected) -> Self {
        Self::new(Problem::Shape(
            <serde_json::Error as de::Error>::invalid_length(len, expected).to_string(),
        ))
    }

    fn unknown_variant(word: &str, expected: &'static [&'static str]) -> Self {
        Self::new(Problem::UnknownWord {
            word: word.to_owned(),
            expected,
        })
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Self::new(Problem::Shape(
            <serde_json::Error as de::Error>::unknown_field(field, expected).to_string(),
        ))
    }

    fn missing_field(field: &'static str) -> Self {
        Self::new(Problem::Missing(field))
    }

    fn duplicate_field(field: &'static str) -> Self {
        Self::new(Problem::Shape(
            <serde_json::Error as de::Error>::duplicate_field(field).to_string(),
        ))
    }
}

/// The command as an enum whose variant is named by `type` and whose fields are the rest.
struct CommandReader<'a> {
    type_name: &'a str,
    fields: &'a Map<String, Value>,
    set_aside: &'a [Refusal],
    /// The fields the chosen variant declares, in order (filled in by serde).
    declared: &'a mut &'static [&'static str],
}

impl<'de> Deserializer<'de> for CommandReader<'_> {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de, 'a> EnumAccess<'de> for CommandReader<'a> {
    type Error = FieldError;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), FieldError> {
        let variant = seed.deserialize(StrDeserializer::<FieldError>::new(self.type_name))?;
        Ok((variant, self))
    }
}

impl<'de> VariantAccess<'de> for CommandReader<'_> {
    type Error = FieldError;

    fn unit_variant(self) -> Result<(), FieldError> {
        Err(de::Error::invalid_type(
            Unexpected::UnitVariant,
            &"a command with fields",
        ))
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, _seed: S) -> Result<S::Value, FieldError> {
        Err(de::Error::invalid_type(
            Unexpected::NewtypeVariant,
            &"a command with fields",
        ))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, FieldError> {
        Err(de::Error::invalid_type(
            Unexpected::TupleVariant,
            &"a command with fields",
        ))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        declared: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        *self.declared = declared;
        let set_aside = self.set_aside;
        let entries = self
            .fields
            .iter()
            .filter(move |(key, _)| !set_aside.iter().any(|r| r.key == **key));
        visitor.visit_map(FieldsAccess { entries, value: None })
    }
}

/// The fields in the order serde_json keeps them, each error marked with its field.
struct FieldsAccess<'a, I> {
    entries: I,
    value: Option<(&'a str, &'a Value)>,
}

impl<'de, 'a, I: Iterator<Item = (&'a String, &'a Value)>> MapAccess<'de> for FieldsAccess<'a, I> {
    type Error = FieldError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, FieldError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some((key, value));
        seed.deserialize(StrDeserializer::<FieldError>::new(key))
            .map(Some)
            .map_err(|e| e.in_field(key))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, FieldError> {
        let (key, value) = self.value.take().expect("serde reads a value only after its key");
        seed.deserialize(FieldValue(value)).map_err(|e| e.in_field(key))
    }
}

/// One JSON value, handed to serde as serde_json would, with the reader's error type.
#[derive(Clone, Copy)]
struct FieldValue<'a>(&'a Value);

impl<'de> IntoDeserializer<'de, FieldError> for FieldValue<'_> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> Deserializer<'de> for FieldValue<'_> {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => visitor.visit_u64(u),
                (None, Some(i), _) => visitor.visit_i64(i),
                (None, None, f) => visitor.visit_f64(f.unwrap_or(f64::NAN)),
            },
            Value::String(s) => visitor.visit_str(s),
            Value::Array(items) => visitor.visit_seq(SeqDeserializer::new(items.iter().map(FieldValue))),
            Value::Object(map) => visitor.visit_map(MapDeserializer::new(
                map.iter().map(|(key, value)| (key.as_str(), FieldValue(value))),
            )),
        }
    }

    /// A word of a closed list (a board, a side) is a JSON string and nothing else.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        match self.0 {
            Value::String(word) => visitor.visit_enum(StrDeserializer::<FieldError>::new(word)),
            other => Err(de::Error::invalid_type(unexpected(other), &"a string")),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Unexpected::Unsigned(u),
            (None, Some(i), _) => Unexpected::Signed(i),
            (None, None, f) => Unexpected::Float(f.unwrap_or(f64::NAN)),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}
