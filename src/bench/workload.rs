//! The workload of `ledger bench engine`: the plain cqrs-es benchmark's shape (per
//! account an opening, one deposit, then buys of 100 @ 10.00 each followed by its
//! fill), split over the clients by account so that each account's commands keep
//! their order, as they would behind a gateway that routes an account to one session.

/// The instrument every order is for, and the price of every order and fill.
pub const INSTRUMENT: &str = "601398.SH";
pub const PRICE_CNY: &str = "10.00";
pub const TRADE_DATE: &str = "2024-03-04";
/// Each account's deposit: room for 390 orders of 100 @ 10.00 with their fees (at most
/// 1,005.01 each), and under the market rules' AML threshold (500,000.00), so that a
/// deposit is one event as in the plain benchmark.
pub const DEPOSIT_CNY: &str = "400000.00";
/// Most buy-and-fill pairs one account is given, so that its deposit always covers them.
pub const MAX_ORDERS_PER_ACCOUNT: u64 = 390;
/// Most accounts and commands a run may generate. The steps are generated as each
/// client sends them, so a run holds none of them ahead: 10,000,000 commands over a
/// million accounts write some fourteen million events.
pub const MAX_ACCOUNTS: u64 = 1_000_000;
pub const MAX_COMMANDS: u64 = 10_000_000;
/// Most concurrent clients.
pub const MAX_CLIENTS: u64 = 1_024;
/// The commands sent before the clock starts: the instrument and its previous close.
pub const SET_UP_COMMANDS: u64 = 2;

/// What a step asks of its account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Open,
    Deposit,
    /// Buy number `n` of the account.
    Buy(u64),
    /// The fill of buy number `n`, in full.
    Fill(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub account: u64,
    pub action: Action,
}

/// The plan of a run: who sends what, generated on demand ([`Workload::steps_of`]).
/// Account `a` belongs to client `a % clients`; buy-and-fill pairs are dealt round
/// robin over the accounts, so the first `pairs % accounts` accounts have one more.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    accounts: u64,
    pairs: u64,
    /// Clients with at least one account.
    pub clients: u64,
    /// Every step of every client.
    pub commands: u64,
}

/// `accounts` accounts, `commands` commands in all (each account opened with one
/// deposit, the rest buy-and-fill pairs dealt round robin), over `clients` clients.
pub fn simple(accounts: u64, commands: u64, clients: u64) -> anyhow::Result<Workload> {
    anyhow::ensure!(
        (1..=MAX_ACCOUNTS).contains(&accounts),
        "--accounts takes 1 to {MAX_ACCOUNTS}, not {accounts}"
    );
    anyhow::ensure!(
        (1..=MAX_CLIENTS).contains(&clients),
        "--clients takes 1 to {MAX_CLIENTS}, not {clients}"
    );
    anyhow::ensure!(
        commands <= MAX_COMMANDS,
        "--commands takes at most {MAX_COMMANDS}, not {commands}"
    );
    let opening = 2 * accounts;
    anyhow::ensure!(
        commands >= opening,
        "{commands} commands cannot open {accounts} accounts: each takes an opening and a deposit ({opening} commands)"
    );
    let pairs = (commands - opening) / 2;
    let most_per_account = pairs.div_ceil(accounts);
    anyhow::ensure!(
        most_per_account <= MAX_ORDERS_PER_ACCOUNT,
        "{pairs} orders over {accounts} accounts is {most_per_account} for some account, more than its deposit \
         covers ({MAX_ORDERS_PER_ACCOUNT}); give more accounts"
    );
    Ok(Workload {
        accounts,
        pairs,
        // A client without an account would send nothing: there are none.
        clients: clients.min(accounts),
        commands: opening + 2 * pairs,
    })
}

impl Workload {
    /// The steps client `client` sends, in order: its accounts opened and funded, then
    /// round after round one buy and its fill for each of its accounts that has one left.
    pub fn steps_of(&self, client: u64) -> impl Iterator<Item = Step> + Send + 'static {
        assert!(client < self.clients, "client {client} of {}", self.clients);
        let Workload {
            accounts,
            pairs,
            clients,
            ..
        } = *self;
        let orders_of = move |account: u64| pairs / accounts + u64::from(account < pairs % accounts);
        let own = move || (client..accounts).step_by(usize::try_from(clients).unwrap_or(usize::MAX));
        let opening = own().flat_map(|account| [Action::Open, Action::Deposit].map(|action| Step { account, action }));
        let trading = (0..pairs.div_ceil(accounts)).flat_map(move |order| {
            own()
                .filter(move |&account| order < orders_of(account))
                .flat_map(move |account| {
                    [Action::Buy(order), Action::Fill(order)].map(|action| Step { account, action })
                })
        });
        opening.chain(trading)
    }
}

pub fn account_id(account: u64) -> String {
    format!("BE{account:07}")
}

fn order_id(account: u64, order: u64) -> String {
    format!("BE{account:07}-O{order}")
}

/// The set-up, as command-file lines: the instrument and its previous close.
pub fn set_up_lines() -> [String; SET_UP_COMMANDS as usize] {
    [
        format!(
            r#"{{"type":"list_instrument","command_id":"be-list","instrument":"{INSTRUMENT}","name":"ICBC","board":"main","risk_level":1}}"#
        ),
        format!(
            r#"{{"type":"set_prev_close","command_id":"be-close","instrument":"{INSTRUMENT}","trade_date":"{TRADE_DATE}","price":"{PRICE_CNY}"}}"#
        ),
    ]
}

/// A step as a command-file line.
pub fn wire_line(step: Step) -> String {
    let account = step.account;
    let id = account_id(account);
    match step.action {
        Action::Open => format!(
            r#"{{"type":"open_account","command_id":"be-open-{account}","account_id":"{id}","customer_name":"Bench {account}","id_number":"BE{account:016}","risk_level":3}}"#
        ),
        Action::Deposit => format!(
            r#"{{"type":"deposit","command_id":"be-deposit-{account}","account_id":"{id}","amount":"{DEPOSIT_CNY}","bank_ref":"BE-{account}"}}"#
        ),
        Action::Buy(order) => format!(
            r#"{{"type":"place_order","command_id":"be-buy-{account}-{order}","account_id":"{id}","order_id":"{}","instrument":"{INSTRUMENT}","side":"buy","quantity":100,"price":"{PRICE_CNY}","trade_date":"{TRADE_DATE}"}}"#,
            order_id(account, order)
        ),
        Action::Fill(order) => format!(
            r#"{{"type":"fill","command_id":"be-fill-{account}-{order}","account_id":"{id}","order_id":"{}","exec_id":"BE{account:07}-E{order}","quantity":100,"price":"{PRICE_CNY}"}}"#,
            order_id(account, order)
        ),
    }
}

/// A step as the baseline's command.
#[cfg(feature = "baseline")]
pub fn baseline_step(step: Step) -> anyhow::Result<ledger_bench_baseline::AccountStep> {
    use ledger_bench_baseline::BaselineCommand;
    let price_cny: rust_decimal::Decimal = PRICE_CNY.parse()?;
    let account = step.account;
    let command = match step.action {
        Action::Open => BaselineCommand::Open,
        Action::Deposit => BaselineCommand::Deposit {
            amount_cny: DEPOSIT_CNY.parse()?,
            bank_ref: format!("BE-{account}"),
        },
        Action::Buy(order) => BaselineCommand::Buy {
            order_id: order_id(account, order),
            quantity: 100,
            price_cny,
            trade_date: TRADE_DATE.parse()?,
            prev_close_cny: price_cny,
        },
        Action::Fill(order) => BaselineCommand::Fill {
            order_id: order_id(account, order),
            exec_id: format!("BE{account:07}-E{order}"),
            quantity: 100,
            price_cny,
        },
    };
    Ok(ledger_bench_baseline::AccountStep {
        account_id: account_id(account),
        command,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_account_is_opened_before_its_orders_and_each_fill_follows_its_buy() {
        let workload = simple(5, 42, 3).expect("a workload");
        assert_eq!(workload.commands, 42);
        assert_eq!(workload.clients, 3);
        let plans = plans_of(&workload);
        assert_eq!(plans.iter().map(Vec::len).sum::<usize>(), 42, "every step sent once");
        for plan in &plans {
            let client = plan[0].account % 3;
            for (index, step) in plan.iter().enumerate() {
                assert_eq!(step.account % 3, client, "an account stays with one client");
                let earlier = &plan[..index];
                let seen = |action| {
                    earlier.contains(&Step {
                        account: step.account,
                        action,
                    })
                };
                match step.action {
                    Action::Open => assert!(!seen(Action::Open)),
                    Action::Deposit => assert!(seen(Action::Open)),
                    Action::Buy(order) => assert!(seen(Action::Deposit) && !seen(Action::Buy(order))),
                    Action::Fill(order) => assert!(seen(Action::Buy(order)) && !seen(Action::Fill(order))),
                }
            }
        }
        // 42 commands: 10 to open 5 accounts, 16 pairs dealt 4, 3, 3, 3, 3.
        let buys_of = |account| {
            plans
                .iter()
                .flatten()
                .filter(|s| s.account == account && matches!(s.action, Action::Buy(_)))
                .count()
        };
        assert_eq!((0..5).map(buys_of).collect::<Vec<_>>(), vec![4, 3, 3, 3, 3]);
    }

    #[test]
    fn a_workload_that_cannot_be_built_is_refused_with_the_reason() {
        let message = |result: anyhow::Result<Workload>| result.expect_err("refused").to_string();
        assert!(message(simple(10, 19, 1)).contains("cannot open 10 accounts"));
        assert!(message(simple(1, 2 + 2 * (MAX_ORDERS_PER_ACCOUNT + 1), 1)).contains("give more accounts"));
        assert!(message(simple(0, 10, 1)).contains("--accounts"));
        assert!(message(simple(1, 10, 0)).contains("--clients"));
        assert!(message(simple(1, MAX_COMMANDS + 1, 1)).contains("--commands"));
    }

    #[test]
    fn fewer_accounts_than_clients_leaves_no_idle_client() {
        let workload = simple(2, 10, 8).expect("a workload");
        assert_eq!(workload.clients, 2);
        assert!(plans_of(&workload).iter().all(|plan| !plan.is_empty()));
    }

    #[test]
    fn a_run_at_the_limits_is_planned_without_building_its_steps() {
        let workload = simple(MAX_ACCOUNTS, MAX_COMMANDS, MAX_CLIENTS).expect("a workload");
        assert_eq!(workload.commands, MAX_COMMANDS);
        let first: Vec<Step> = workload.steps_of(7).take(3).collect();
        assert_eq!(
            first,
            vec![
                Step {
                    account: 7,
                    action: Action::Open
                },
                Step {
                    account: 7,
                    action: Action::Deposit
                },
                Step {
                    account: 7 + MAX_CLIENTS,
                    action: Action::Open
                },
            ]
        );
    }

    fn plans_of(workload: &Workload) -> Vec<Vec<Step>> {
        (0..workload.clients)
            .map(|client| workload.steps_of(client).collect())
            .collect()
    }
}
