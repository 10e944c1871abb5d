//! Roles and what each may do: the permission matrix, as data.
//!
//! Every command type of the command-file contract and every read capability is
//! listed once in [`COMMAND_ROLES`] or [`READ_ROLES`] with the roles that may use
//! it; [`may`] only looks it up. docs/api.md ("Roles and tokens") shows the same
//! matrix, and a test holds the two equal.

pub use ledger_commands::CommandType;
use serde::{Deserialize, Serialize};

/// Who a token speaks for. Its string (`gateway`, …) is what ledger.toml and the access log hold.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::EnumIter,
    strum::VariantNames,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Role {
    /// A trading gateway: orders, fills, cancels, rejects; reads nothing beyond its answers.
    Gateway,
    /// Back office: reference data, accounts, cash, end of day, settlement, and the reads of those areas.
    Operations,
    /// Compliance: freezes accounts, reads alerts and accounts.
    Compliance,
    /// Internal or external audit: reads everything, writes nothing.
    Auditor,
    /// A downstream system fed by the event stream only.
    Subscriber,
}

/// What can be read. Each is one capability of the matrix, whatever the front end
/// (CLI read-out, HTTP route, stream) that serves it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::EnumIter,
    strum::VariantNames,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Read {
    Balances,
    Positions,
    Orders,
    Trades,
    ClearingReport,
    ReconciliationBreaks,
    ComplianceAlerts,
    Statements,
    Events,
    Verify,
    AccessLog,
    EventStream,
    Metrics,
}

/// Something a principal asks to do: submit a command of a type, or read something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Submit(CommandType),
    Read(Read),
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Submit(command) => write!(f, "submit {command}"),
            Action::Read(read) => write!(f, "read {read}"),
        }
    }
}

use CommandType as C;
use Role::{Auditor, Compliance, Gateway, Operations, Subscriber};

/// Who may submit each command type. Auditors and subscribers write nothing.
pub const COMMAND_ROLES: &[(CommandType, &[Role])] = &[
    (C::ListInstrument, &[Operations]),
    (C::SetPrevClose, &[Operations]),
    (C::OpenAccount, &[Operations]),
    (C::Deposit, &[Operations]),
    (C::Withdraw, &[Operations]),
    (C::ConfirmWithdrawal, &[Operations]),
    (C::FailWithdrawal, &[Operations]),
    (C::PlaceOrder, &[Gateway]),
    (C::RejectOrder, &[Gateway]),
    (C::Fill, &[Gateway]),
    (C::CancelOrder, &[Gateway]),
    (C::ConfirmCancel, &[Gateway]),
    (C::EndOfDay, &[Operations]),
    (C::Settle, &[Operations]),
    (C::FreezeAccount, &[Compliance]),
    (C::UnfreezeAccount, &[Compliance]),
];

/// Who may read each thing. The gateway reads nothing (its answers carry what it needs);
/// operations reads the areas it runs; compliance reads alerts and the accounts'
/// holdings and activity; the auditor reads everything; the subscriber only the stream.
pub const READ_ROLES: &[(Read, &[Role])] = &[
    (Read::Balances, &[Operations, Compliance, Auditor]),
    (Read::Positions, &[Operations, Compliance, Auditor]),
    (Read::Orders, &[Operations, Compliance, Auditor]),
    (Read::Trades, &[Operations, Compliance, Auditor]),
    (Read::ClearingReport, &[Operations, Auditor]),
    (Read::ReconciliationBreaks, &[Operations, Auditor]),
    (Read::ComplianceAlerts, &[Compliance, Auditor]),
    (Read::Statements, &[Operations, Auditor]),
    (Read::Events, &[Auditor]),
    (Read::Verify, &[Auditor]),
    (Read::AccessLog, &[Auditor]),
    (Read::EventStream, &[Auditor, Subscriber]),
    (Read::Metrics, &[Operations, Auditor]),
];

/// Whether `role` may do `action`: the matrix looked up, nothing else. A capability
/// missing from the tables is allowed to no one (a test keeps none missing).
pub fn may(role: Role, action: Action) -> bool {
    let roles = match action {
        Action::Submit(command) => COMMAND_ROLES
            .iter()
            .find(|(listed, _)| *listed == command)
            .map(|(_, roles)| *roles),
        Action::Read(read) => READ_ROLES
            .iter()
            .find(|(listed, _)| *listed == read)
            .map(|(_, roles)| *roles),
    };
    roles.is_some_and(|roles| roles.contains(&role))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::str::FromStr;

    use strum::{IntoEnumIterator, VariantNames};

    use super::*;

    #[test]
    fn role_strings_are_pinned() {
        assert_eq!(
            Role::VARIANTS,
            ["gateway", "operations", "compliance", "auditor", "subscriber"]
        );
        for role in Role::iter() {
            assert_eq!(Role::from_str(&role.to_string()), Ok(role));
        }
        assert!(Role::from_str("admin").is_err());
    }

    #[test]
    fn command_types_are_exactly_the_contracts_commands() {
        assert_eq!(CommandType::VARIANTS, ledger_commands::LedgerCommand::VARIANTS);
    }

    #[test]
    fn every_capability_is_in_the_tables_exactly_once() {
        let commands: Vec<CommandType> = COMMAND_ROLES.iter().map(|(c, _)| *c).collect();
        assert_eq!(commands.iter().collect::<BTreeSet<_>>().len(), commands.len());
        assert_eq!(commands.len(), CommandType::iter().count());
        let reads: Vec<Read> = READ_ROLES.iter().map(|(r, _)| *r).collect();
        assert_eq!(reads.iter().collect::<BTreeSet<_>>().len(), reads.len());
        assert_eq!(reads.len(), Read::iter().count());
    }

    #[test]
    fn the_matrix_says_what_the_issue_says() {
        let submits = |role| {
            CommandType::iter()
                .filter(|c| may(role, Action::Submit(*c)))
                .map(<&str>::from)
                .collect::<Vec<_>>()
        };
        let reads = |role| {
            Read::iter()
                .filter(|r| may(role, Action::Read(*r)))
                .map(<&str>::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            submits(Gateway),
            ["place_order", "reject_order", "fill", "cancel_order", "confirm_cancel"]
        );
        assert!(
            reads(Gateway).is_empty(),
            "the gateway reads no balances beyond its answers"
        );
        assert_eq!(submits(Compliance), ["freeze_account", "unfreeze_account"]);
        assert!(reads(Compliance).contains(&"compliance_alerts"));
        assert!(!reads(Operations).contains(&"compliance_alerts"));
        assert!(
            !reads(Operations).contains(&"access_log"),
            "operations cannot read the access log"
        );
        assert!(submits(Auditor).is_empty(), "the auditor writes nothing");
        assert_eq!(
            reads(Auditor).len(),
            Read::iter().count(),
            "the auditor reads everything"
        );
        assert!(submits(Subscriber).is_empty());
        assert_eq!(reads(Subscriber), ["event_stream"]);
        // Everything that writes is someone's job: no command is left to no role.
        for command in CommandType::iter() {
            assert!(Role::iter().any(|role| may(role, Action::Submit(command))), "{command}");
        }
    }
}
