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
}
