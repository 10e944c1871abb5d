//! Event versions: the version each event type is written at today, and the
//! upcasters that bring a payload stored at an older version up to it on read.
//!
//! The log keeps every event as it was written, its `event_version` included, and the
//! hash chain covers those bytes: an old event is never rewritten. When one is read,
//! [`upcast`] takes a copy of its payload from the stored version to the current one,
//! one version at a time, by pure functions on the JSON, before serde sees it. So the
//! domain's event types describe the current version only, and an old log replays as
//! if it had been written today. A version this build does not know (0, or one newer
//! than the current: written by a newer build) is refused, never guessed at.
//!
//! The store knows the stored contract's names, versions and JSON shapes
//! (docs/events.md), not what the events mean: an upcaster only spells out what an
//! older version left implicit.

use serde_json::{Map, Value};

/// The version each event type is written at today (docs/events.md), which is the
/// newest this build reads. Every event type the domain writes is here, once: a type
/// that is not is refused on read and on write (`codec::encode` also refuses an event
/// the domain writes at another version, so nothing is written that cannot be read back).
pub const CURRENT_VERSIONS: &[(&str, u32)] = &[
    // Account
    ("AccountOpened", 1),
    ("CashDeposited", 1),
    ("WithdrawalRequested", 1),
    ("WithdrawalConfirmed", 1),
    ("WithdrawalFailed", 1),
    ("LargeCashMovementFlagged", 1),
    // Version 2 added `order_type`.
    ("OrderPlaced", 2),
    ("OrderRejected", 1),
    ("FillBooked", 1),
    ("OrderCompleted", 1),
    ("CancelRequested", 1),
    ("OrderCanceled", 1),
    ("OrderExpired", 1),
    ("TradesSettled", 1),
    ("AccountFrozen", 1),
    ("AccountUnfrozen", 1),
    // Instrument
    ("InstrumentListed", 1),
    ("InstrumentUpdated", 1),
    ("PrevCloseSet", 1),
    // ClearingDay
    ("DayClosed", 1),
    ("DayCleared", 1),
    ("DaySettled", 1),
];

/// One step of an event type's history: a payload of version `from` as version `from + 1`,
/// or why this payload cannot be one. Pure: it sees the payload and nothing else.
pub type Upcaster = fn(Map<String, Value>) -> Result<Map<String, Value>, String>;

/// (event type, from version) -> the step to the next version. Every version below a
/// type's current one has exactly one step, and no step leads past it (the tests below
/// hold this table and [`CURRENT_VERSIONS`] in step).
pub const UPCASTERS: &[(&str, u32, Upcaster)] = &[("OrderPlaced", 1, order_placed_v1_to_v2)];

/// Why a stored payload cannot be brought to its type's current version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpcastError {
    #[error("{event_type} is not an event type this build knows")]
    UnknownType { event_type: String },
    #[error("{event_type} has no version {version}: its versions are 1 to {current}")]
    NoSuchVersion {
        event_type: String,
        version: u32,
        current: u32,
    },
    #[error(
        "version {version} of {event_type} is newer than this build reads (version {current}): \
         it was written by a newer build; read the log with that one or a later one"
    )]
    Newer {
        event_type: String,
        version: u32,
        current: u32,
    },
    #[error("this build cannot read version {from} of {event_type}: no upcaster to version {}", from + 1)]
    MissingStep { event_type: String, from: u32 },
    #[error("version {from} of {event_type} does not become version {}: {reason}", from + 1)]
    Refused {
        event_type: String,
        from: u32,
        reason: String,
    },
}

/// The version `event_type` is written at today; `None` for a type this build does not know.
pub fn current_version(event_type: &str) -> Option<u32> {
    CURRENT_VERSIONS
        .iter()
        .find(|(known, _)| *known == event_type)
        .map(|(_, current)| *current)
}

/// The step from version `from` of `event_type` to the next one.
pub fn upcaster(event_type: &str, from: u32) -> Option<Upcaster> {
    UPCASTERS
        .iter()
        .find(|(known, step_from, _)| *known == event_type && *step_from == from)
        .map(|(_, _, step)| *step)
}

/// The current version of `event_type` when this build reads its `version` (a known type,
/// from 1 to the current version); what `ledger import` checks of every event before it
/// writes any, so that a log this build cannot read is refused whole.
pub fn check_readable(event_type: &str, version: u32) -> Result<u32, UpcastError> {
    let current = current_version(event_type).ok_or_else(|| UpcastError::UnknownType {
        event_type: event_type.to_owned(),
    })?;
    if version == 0 {
        return Err(UpcastError::NoSuchVersion {
            event_type: event_type.to_owned(),
            version,
            current,
        });
    }
    if version > current {
        return Err(UpcastError::Newer {
            event_type: event_type.to_owned(),
            version,
            current,
        });
    }
    Ok(current)
}

/// `payload`, stored as `event_type` at `version`, as the current version of that type:
/// unchanged when it is the current one, else through each step in turn. It works on the
/// caller's copy; the stored event stays as it is.
pub fn upcast(event_type: &str, version: u32, payload: Value) -> Result<Value, UpcastError> {
    let current = check_readable(event_type, version)?;
    // Bounded by the current version, a constant of the table above.
    let mut payload = payload;
    for from in version..current {
        let refused = |reason: String| UpcastError::Refused {
            event_type: event_type.to_owned(),
            from,
            reason,
        };
        let step = upcaster(event_type, from).ok_or_else(|| UpcastError::MissingStep {
            event_type: event_type.to_owned(),
            from,
        })?;
        let Value::Object(fields) = payload else {
            return Err(refused("the payload is not a JSON object".to_owned()));
        };
        payload = Value::Object(step(fields).map_err(refused)?);
    }
    Ok(payload)
}

/// Version 1 had no `order_type`: every order was a limit order then, and is read as one.
/// A version 1 payload that names an order type is not one the ledger wrote: refused
/// rather than overwritten.
fn order_placed_v1_to_v2(mut payload: Map<String, Value>) -> Result<Map<String, Value>, String> {
    if payload.contains_key("order_type") {
        return Err("a version 1 OrderPlaced has no order_type, this one has".to_owned());
    }
    payload.insert("order_type".to_owned(), Value::from("limit"));
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::*;

    /// An `OrderPlaced` as the builds before versions wrote it (the old log of tests/fixtures).
    fn order_placed_v1() -> Value {
        json!({
            "order_id": "O0001", "instrument": "601398.SH", "board": "main", "side": "buy",
            "quantity": 1000, "limit_price": "5.30", "trade_date": "2024-03-04", "reserved_cny": "5306.19"
        })
    }

    #[test]
    fn a_version_1_order_placed_becomes_version_2_as_a_limit_order() {
        let mut expected = order_placed_v1();
        expected["order_type"] = json!("limit");
        assert_eq!(upcast("OrderPlaced", 1, order_placed_v1()), Ok(expected));
    }

    #[test]
    fn a_current_payload_is_left_as_it_is() {
        let mut v2 = order_placed_v1();
        v2["order_type"] = json!("limit");
        assert_eq!(upcast("OrderPlaced", 2, v2.clone()), Ok(v2));
        // At its current version a payload goes to serde untouched, whatever it holds.
        assert_eq!(
            upcast("CashDeposited", 1, json!("not even an object")),
            Ok(json!("not even an object"))
        );
    }

    #[test]
    fn a_newer_version_is_refused_and_says_so() {
        let refused = upcast("OrderPlaced", 3, order_placed_v1()).unwrap_err();
        assert_eq!(
            refused,
            UpcastError::Newer {
                event_type: "OrderPlaced".into(),
                version: 3,
                current: 2
            }
        );
        assert!(refused.to_string().contains("newer than this build reads"), "{refused}");
        assert!(matches!(
            upcast("DayClosed", 2, json!({"trade_date": "2024-03-04"})),
            Err(UpcastError::Newer { current: 1, .. })
        ));
    }

    #[test]
    fn an_unknown_type_or_version_is_refused() {
        assert_eq!(
            upcast("OrderAmended", 1, json!({})),
            Err(UpcastError::UnknownType {
                event_type: "OrderAmended".into()
            })
        );
        // Names are matched exactly, as they are stored.
        assert!(matches!(
            upcast("orderplaced", 1, json!({})),
            Err(UpcastError::UnknownType { .. })
        ));
        assert_eq!(
            upcast("OrderPlaced", 0, order_placed_v1()),
            Err(UpcastError::NoSuchVersion {
                event_type: "OrderPlaced".into(),
                version: 0,
                current: 2
            })
        );
    }

    #[test]
    fn a_version_1_payload_that_is_not_one_is_refused() {
        let mut named = order_placed_v1();
        named["order_type"] = json!("market");
        let refused = upcast("OrderPlaced", 1, named).unwrap_err();
        assert!(
            matches!(&refused, UpcastError::Refused { from: 1, reason, .. } if reason.contains("order_type")),
            "{refused}"
        );
        assert!(matches!(
            upcast("OrderPlaced", 1, json!([1, 2])),
            Err(UpcastError::Refused { from: 1, .. })
        ));
    }

    #[test]
    fn every_older_version_has_one_step_and_no_step_leads_past_the_current_one() {
        let types: BTreeSet<&str> = CURRENT_VERSIONS.iter().map(|(t, _)| *t).collect();
        assert_eq!(types.len(), CURRENT_VERSIONS.len(), "an event type is listed twice");
        for (event_type, current) in CURRENT_VERSIONS {
            assert!(*current >= 1, "{event_type}: versions start at 1");
            for from in 1..*current {
                let steps = UPCASTERS
                    .iter()
                    .filter(|(t, f, _)| t == event_type && *f == from)
                    .count();
                assert_eq!(steps, 1, "{event_type}: one step from version {from}");
            }
        }
        for (event_type, from, _) in UPCASTERS {
            let current = current_version(event_type).unwrap_or_else(|| panic!("{event_type} is not listed"));
            assert!(
                (1..current).contains(from),
                "{event_type}: a step from version {from}, current {current}"
            );
        }
    }
}
