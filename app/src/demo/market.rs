//! The demo's market: the instruments it lists, with their boards, risk levels and previous closes.

use ledger_domain::Board;
use rust_decimal::Decimal;

pub(super) struct DemoInstrument {
    pub(super) code: &'static str,
    pub(super) name: &'static str,
    pub(super) board: Board,
    pub(super) risk_level: u8,
    /// `None`: a new listing with no previous close (orders on it are refused).
    pub(super) prev_close: Option<Decimal>,
}

pub(super) fn instruments() -> Vec<DemoInstrument> {
    let stock = |code, name, board, risk_level, cents: i64| DemoInstrument {
        code,
        name,
        board,
        risk_level,
        prev_close: Some(Decimal::new(cents, 2)),
    };
    vec![
        stock("601398.SH", "ICBC", Board::Main, 1, 512),
        stock("600519.SH", "Kweichow Moutai", Board::Main, 2, 168_800),
        stock("601318.SH", "Ping An Insurance", Board::Main, 2, 4_437),
        stock("000001.SZ", "Ping An Bank", Board::Main, 2, 1_052),
        stock("000858.SZ", "Wuliangye", Board::Main, 3, 14_820),
        stock("600036.SH", "China Merchants Bank", Board::Main, 2, 3_250),
        stock("600900.SH", "China Yangtze Power", Board::Main, 1, 2_410),
        stock("000333.SZ", "Midea Group", Board::Main, 2, 6_035),
        stock("601012.SH", "LONGi Green Energy", Board::Main, 3, 2_215),
        stock("002594.SZ", "BYD", Board::Main, 3, 19_860),
        stock("300750.SZ", "CATL", Board::Chinext, 3, 18_766),
        stock("300059.SZ", "East Money", Board::Chinext, 3, 1_391),
        stock("300760.SZ", "Mindray", Board::Chinext, 3, 28_540),
        stock("688981.SH", "SMIC", Board::Star, 4, 4_893),
        stock("688111.SH", "Kingsoft Office", Board::Star, 4, 27_640),
        stock("688599.SH", "Trina Solar", Board::Star, 4, 2_876),
        stock("600654.SH", "*ST Zhongan", Board::St, 5, 247),
        stock("000972.SZ", "*ST Zhongji", Board::St, 5, 185),
        DemoInstrument {
            code: "301999.SZ",
            name: "New Listing Tech",
            board: Board::Chinext,
            risk_level: 3,
            prev_close: None,
        },
    ]
}
