//! A domain event read straight from its type name and its payload, without building
//! the `{"<event_type>": <payload>}` object serde's externally tagged enums expect.
//!
//! Reading an event used to parse its bytes into a `serde_json::Value`, copy the value
//! under its type name and then read the enum from the copy: three trees of
//! allocations an event, the largest cost of a replay. The adapter below hands the
//! enum's visitor the type name as its variant and the payload's own deserializer (the
//! stored bytes, or a borrowed `Value`) as its fields, so the event is read in one pass.

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, VariantAccess, Visitor};
use serde::Deserialize;

/// Reads `E` as the variant `variant` with the fields `payload` holds: what serde would
/// read from `{variant: payload}`.
pub(crate) fn from_variant_and_payload<'de, E, D>(variant: &str, payload: D) -> Result<E, D::Error>
where
    E: Deserialize<'de>,
    D: Deserializer<'de>,
{
    E::deserialize(Tagged { variant, payload })
}

/// The enum as a whole: its only answer is to an enum request (or any), with itself as
/// the enum's access.
struct Tagged<'v, D> {
    variant: &'v str,
    payload: D,
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Tagged<'_, D> {
    type Error = D::Error;

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_enum(self)
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

impl<'de, D: Deserializer<'de>> EnumAccess<'de> for Tagged<'_, D> {
    type Error = D::Error;
    type Variant = Fields<D>;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Fields<D>), D::Error> {
        let name: de::value::StrDeserializer<'_, D::Error> = self.variant.into_deserializer();
        let variant = seed.deserialize(name)?;
        Ok((variant, Fields(self.payload)))
    }
}

/// The variant's fields: the payload, read as serde_json reads a variant's value.
struct Fields<D>(D);

impl<'de, D: Deserializer<'de>> VariantAccess<'de> for Fields<D> {
    type Error = D::Error;

    fn unit_variant(self) -> Result<(), D::Error> {
        <()>::deserialize(self.0)
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, D::Error> {
        seed.deserialize(self.0)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_struct("", fields, visitor)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use serde_json::{json, Value};

    use super::from_variant_and_payload;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Sample {
        Moved { amount: String, count: u32 },
        Wrapped(u64),
        Pair(u8, u8),
        Nothing,
    }

    fn read_both(variant: &str, payload: &Value) -> (Result<Sample, String>, Result<Sample, String>) {
        let tagged: Result<Sample, _> = serde_json::from_value(json!({ variant: payload.clone() }));
        let direct: Result<Sample, _> = from_variant_and_payload(variant, payload);
        (tagged.map_err(|e| e.to_string()), direct.map_err(|e| e.to_string()))
    }

    #[test]
    fn every_kind_of_variant_reads_as_serde_reads_the_tagged_object() {
        for (variant, payload) in [
            ("Moved", json!({"amount": "1.50", "count": 3})),
            ("Wrapped", json!(7)),
            ("Pair", json!([1, 2])),
            ("Nothing", Value::Null),
        ] {
            let (tagged, direct) = read_both(variant, &payload);
            assert!(tagged.is_ok(), "{variant}: {tagged:?}");
            assert_eq!(direct, tagged, "{variant}");
        }
    }

    #[test]
    fn what_serde_refuses_is_refused() {
        for (variant, payload) in [
            ("Moved", json!({"amount": "1.50"})),
            ("Moved", json!({"amount": 1, "count": 3})),
            ("Unknown", json!({})),
            ("Wrapped", json!("seven")),
            ("Nothing", json!({"x": 1})),
        ] {
            let (tagged, direct) = read_both(variant, &payload);
            assert!(tagged.is_err(), "{variant} {payload}");
            assert!(direct.is_err(), "{variant} {payload}");
        }
    }

    #[test]
    fn bytes_read_without_a_value_in_between() {
        let bytes = br#"{"amount":"2.00","count":1}"#;
        let mut payload = serde_json::Deserializer::from_slice(bytes);
        let read: Sample = from_variant_and_payload("Moved", &mut payload).unwrap();
        payload.end().unwrap();
        assert_eq!(
            read,
            Sample::Moved {
                amount: "2.00".into(),
                count: 1
            }
        );
    }
}
