//! The bank's and the depository's files: a line that would silently override an
//! earlier one is refused, naming both lines.

use ledger_app::{read_bank_file, read_depository_file, AppError};

#[test]
fn an_account_listed_twice_in_the_bank_file_is_refused() {
    let file = "account,balance\nA0001,100.00\nA0002,5.00\nA0001,200.00\n";
    match read_bank_file(file.as_bytes()) {
        Err(error @ AppError::MalformedFileLine { line: 4, .. }) => {
            let message = error.to_string();
            assert!(message.contains("A0001 again (first on line 2)"), "{message}");
        }
        other => panic!("expected line 4 refused, got {other:?}"),
    }
}

#[test]
fn a_holding_listed_twice_in_the_depository_file_is_refused() {
    let file = "account,instrument,quantity\nA0001,600519.SH,100\nA0001,000001.SZ,100\nA0001,600519.SH,300\n";
    match read_depository_file(file.as_bytes()) {
        Err(error @ AppError::MalformedFileLine { line: 4, .. }) => {
            let message = error.to_string();
            assert!(
                message.contains("600519.SH of account A0001 again (first on line 2)"),
                "{message}"
            );
        }
        other => panic!("expected line 4 refused, got {other:?}"),
    }
}

#[test]
fn distinct_lines_are_all_read() {
    let bank = read_bank_file("account,balance\nA0001,1.00\nA0002,2.00\n".as_bytes()).unwrap();
    assert_eq!(bank.len(), 2);
    let holdings =
        read_depository_file("account,instrument,quantity\nA0001,600519.SH,100\nA0002,600519.SH,100\n".as_bytes())
            .unwrap();
    assert_eq!(holdings.len(), 2);
}
