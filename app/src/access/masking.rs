//! Personal data: a customer's name and id number. Only [`Role::Operations`] and
//! [`Role::Compliance`] see them in full ([`sees_personal_data`]); every other role,
//! stream and export gets them masked, by the two rules here and no other.
//!
//! An id number is masked as the statement masks it (the first 4 and last 4
//! characters kept): [`mask_id_number`] is the statement's own function.

pub use ledger_projections::statement::mask_id_number;

use super::roles::Role;

/// Whether `role` sees customers' names and id numbers in full.
pub fn sees_personal_data(role: Role) -> bool {
    matches!(role, Role::Operations | Role::Compliance)
}

/// A name with only its first character kept (and its last, when it has three or more),
/// every other character `*`: 张三 → 张*, 王小明 → 王*明, 欧阳娜娜 → 欧**娜.
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    match chars.len() {
        0 => String::new(),
        1 => "*".to_owned(),
        2 => format!("{}*", chars[0]),
        n => std::iter::once(chars[0])
            .chain(std::iter::repeat_n('*', n - 2))
            .chain(std::iter::once(chars[n - 1]))
            .collect(),
    }
}

/// A name as `role` may see it.
pub fn name_for(role: Role, name: &str) -> String {
    if sees_personal_data(role) {
        name.to_owned()
    } else {
        mask_name(name)
    }
}

/// An id number as `role` may see it.
pub fn id_number_for(role: Role, id_number: &str) -> String {
    if sees_personal_data(role) {
        id_number.to_owned()
    } else {
        mask_id_number(id_number)
    }
}

/// How one kind of personal data is masked.
type MaskRule = fn(&str) -> String;

/// The fields of an event payload that hold personal data (`AccountOpened`'s), and the
/// rule that masks each.
const PERSONAL_FIELDS: [(&str, MaskRule); 2] = [("customer_name", mask_name), ("id_number", mask_id_number)];

/// An event's payload as `role` may see it: for a role that does not see personal data,
/// every text field named `customer_name` or `id_number` masked.
pub fn payload_for(role: Role, payload: &serde_json::Value) -> std::borrow::Cow<'_, serde_json::Value> {
    let Some(object) = payload.as_object() else {
        return std::borrow::Cow::Borrowed(payload);
    };
    let personal = PERSONAL_FIELDS
        .iter()
        .any(|(field, _)| object.get(*field).is_some_and(serde_json::Value::is_string));
    if sees_personal_data(role) || !personal {
        return std::borrow::Cow::Borrowed(payload);
    }
    let mut masked = object.clone();
    for (field, mask) in PERSONAL_FIELDS {
        if let Some(serde_json::Value::String(text)) = masked.get_mut(field) {
            *text = mask(text);
        }
    }
    std::borrow::Cow::Owned(serde_json::Value::Object(masked))
}

#[cfg(test)]
mod tests {
    use strum::IntoEnumIterator;

    use super::*;

    #[test]
    fn names_keep_their_first_and_last_characters_only() {
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("王小明"), "王*明");
        assert_eq!(mask_name("欧阳娜娜"), "欧**娜");
        assert_eq!(mask_name("Li"), "L*");
        assert_eq!(mask_name("X"), "*");
        assert_eq!(mask_name(""), "");
    }

    #[test]
    fn only_operations_and_compliance_see_personal_data_in_full() {
        let full: Vec<Role> = Role::iter().filter(|r| sees_personal_data(*r)).collect();
        assert_eq!(full, [Role::Operations, Role::Compliance]);
        assert_eq!(name_for(Role::Operations, "王小明"), "王小明");
        assert_eq!(name_for(Role::Auditor, "王小明"), "王*明");
        assert_eq!(
            id_number_for(Role::Compliance, "110101199003071234"),
            "110101199003071234"
        );
        // The statement's rule, the one rule: first 4 and last 4 kept.
        assert_eq!(id_number_for(Role::Gateway, "110101199003071234"), "1101**********1234");
        assert_eq!(id_number_for(Role::Subscriber, "12345678"), "********");
    }

    #[test]
    fn payloads_are_masked_for_every_role_but_operations_and_compliance() {
        let opened = serde_json::json!({"account_id":"A1","customer_name":"王小明","id_number":"110101199003071234","risk_level":3});
        for role in Role::iter() {
            let seen = payload_for(role, &opened);
            if sees_personal_data(role) {
                assert_eq!(*seen, opened);
            } else {
                assert_eq!(seen["customer_name"], "王*明", "{role}");
                assert_eq!(seen["id_number"], "1101**********1234", "{role}");
                assert_eq!(seen["account_id"], "A1");
                assert_eq!(seen["risk_level"], 3);
            }
        }
        let deposit = serde_json::json!({"account_id":"A1","amount":"10.00"});
        assert_eq!(*payload_for(Role::Auditor, &deposit), deposit);
    }
}
