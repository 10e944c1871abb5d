//! Where everything on the PDF statement goes: pure placement of text runs, rules and
//! shaded boxes on A4 landscape pages, measured with the statement font. Tables break
//! across pages with their header repeated; one too wide for the page is set smaller.

use ledger_domain::money::format_cny;

use super::pdf::PdfFont;
use super::render::{clamp_sentence, notes, other_fees_cny};
use super::Statement;

pub(super) const PAGE_WIDTH_PT: f32 = 842.0;
pub(super) const PAGE_HEIGHT_PT: f32 = 595.0;
const MARGIN_PT: f32 = 36.0;
const CONTENT_WIDTH_PT: f32 = PAGE_WIDTH_PT - 2.0 * MARGIN_PT;
const BODY_PT: f32 = 9.0;
const TABLE_PT: f32 = 8.0;
const CELL_PAD_PT: f32 = 3.0;
const LINE_FACTOR: f32 = 1.35;

/// One thing drawn on a page; `y` of a text run is its baseline.
pub(super) enum Op {
    Text {
        x: f32,
        y: f32,
        size: f32,
        text: String,
        grey: bool,
    },
    Rule {
        x1: f32,
        x2: f32,
        y: f32,
        width: f32,
    },
    Shade {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
    },
}

/// A table cell; figures are right-aligned.
struct Cell {
    text: String,
    right: bool,
}

fn left(text: impl Into<String>) -> Cell {
    Cell {
        text: text.into(),
        right: false,
    }
}

fn right(text: impl Into<String>) -> Cell {
    Cell {
        text: text.into(),
        right: true,
    }
}

struct Pages<'a> {
    font: &'a PdfFont,
    pages: Vec<Vec<Op>>,
    /// The top of the next thing to place on the last page.
    y: f32,
}

impl Pages<'_> {
    fn push(&mut self, op: Op) {
        if let Some(page) = self.pages.last_mut() {
            page.push(op);
        }
    }

    /// Starts a new page unless `height` more points fit on this one.
    fn room(&mut self, height: f32) -> bool {
        let broke = self.y + height > PAGE_HEIGHT_PT - MARGIN_PT;
        if broke {
            self.pages.push(Vec::new());
            self.y = MARGIN_PT;
        }
        broke
    }

    fn text_at(&mut self, x: f32, baseline: f32, size: f32, text: &str, grey: bool) {
        let text = text.to_owned();
        self.push(Op::Text {
            x,
            y: baseline,
            size,
            text,
            grey,
        });
    }

    /// Text wrapped to the page's width, one line after another.
    fn paragraph(&mut self, text: &str, size: f32, grey: bool) {
        for line in wrap(self.font, text, size, CONTENT_WIDTH_PT) {
            self.room(size * LINE_FACTOR);
            self.text_at(MARGIN_PT, self.y + size, size, &line, grey);
            self.y += size * LINE_FACTOR;
        }
    }

    fn heading(&mut self, text: &str) {
        // A heading is never left alone at a page's foot: keep room for a few lines under it.
        self.room(11.0 * LINE_FACTOR + 4.0 * TABLE_PT * LINE_FACTOR);
        self.y += 6.0;
        self.paragraph(text, 11.0, false);
        self.y += 2.0;
    }

    /// A horizontal rule `length` points long from the left margin, at the current height.
    fn rule(&mut self, length: f32, width: f32) {
        let y = self.y;
        self.push(Op::Rule {
            x1: MARGIN_PT,
            x2: MARGIN_PT + length,
            y,
            width,
        });
    }

    fn table(&mut self, header: &[&str], rows: &[Vec<Cell>]) {
        let (size, widths) = self.column_widths(header, rows);
        let row_height = size * LINE_FACTOR + 2.0 * CELL_PAD_PT;
        self.room(2.0 * row_height + row_height);
        self.table_header(header, &widths, size);
        for row in rows {
            if self.room(row_height) {
                self.table_header(header, &widths, size);
            }
            let mut x = MARGIN_PT;
            for (cell, width) in row.iter().zip(&widths) {
                let text_x = if cell.right {
                    x + width - CELL_PAD_PT - self.font.width_pt(&cell.text, size)
                } else {
                    x + CELL_PAD_PT
                };
                self.text_at(text_x, self.y + CELL_PAD_PT + size, size, &cell.text, false);
                x += width;
            }
            self.y += row_height;
            self.rule(widths.iter().sum(), 0.3);
        }
        self.y += 4.0;
    }

    /// A bilingual header on two lines, Chinese above English, on a shaded band.
    fn table_header(&mut self, header: &[&str], widths: &[f32], size: f32) {
        let height = 2.0 * size * LINE_FACTOR + 2.0 * CELL_PAD_PT;
        let (top, total) = (self.y, widths.iter().sum());
        self.push(Op::Shade {
            x: MARGIN_PT,
            y: top,
            w: total,
            h: height,
        });
        let mut x = MARGIN_PT;
        for (label, width) in header.iter().zip(widths) {
            let (chinese, english) = label.split_once(' ').unwrap_or((label, ""));
            self.text_at(x + CELL_PAD_PT, top + CELL_PAD_PT + size, size, chinese, false);
            self.text_at(
                x + CELL_PAD_PT,
                top + CELL_PAD_PT + size * (1.0 + LINE_FACTOR),
                size,
                english,
                true,
            );
            x += width;
        }
        self.y += height;
        self.rule(total, 0.6);
    }

    /// Each column as wide as its widest text; the whole set smaller when it would not fit.
    fn column_widths(&self, header: &[&str], rows: &[Vec<Cell>]) -> (f32, Vec<f32>) {
        let mut widths: Vec<f32> = header
            .iter()
            .map(|label| {
                let (chinese, english) = label.split_once(' ').unwrap_or((label, ""));
                self.font
                    .width_pt(chinese, TABLE_PT)
                    .max(self.font.width_pt(english, TABLE_PT))
            })
            .collect();
        for row in rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = width.max(self.font.width_pt(&cell.text, TABLE_PT));
            }
        }
        let natural: f32 = widths.iter().map(|w| w + 2.0 * CELL_PAD_PT).sum();
        let scale = if natural > CONTENT_WIDTH_PT {
            CONTENT_WIDTH_PT / natural
        } else {
            1.0
        };
        let widths = widths.iter().map(|w| (w + 2.0 * CELL_PAD_PT) * scale).collect();
        (TABLE_PT * scale, widths)
    }
}

/// Breaks `text` into lines no wider than `width_pt`, at a space where there is one.
fn wrap(font: &PdfFont, text: &str, size: f32, width_pt: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for c in text.chars() {
        line.push(c);
        if font.width_pt(&line, size) <= width_pt {
            continue;
        }
        let split_at = line
            .trim_end()
            .rfind(' ')
            .filter(|at| *at > 0)
            .unwrap_or(line.len() - c.len_utf8());
        let rest = line.split_off(split_at);
        lines.push(std::mem::take(&mut line));
        line = rest.trim_start().to_owned();
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Every page of the statement, with its page number at the foot.
pub(super) fn layout(statement: &Statement, font: &PdfFont) -> Vec<Vec<Op>> {
    let mut pages = Pages {
        font,
        pages: vec![Vec::new()],
        y: MARGIN_PT,
    };
    heading_block(&mut pages, statement);
    summary_table(&mut pages, statement);
    pages.heading("资金流水 Movements");
    movements_table(&mut pages, statement);
    pages.heading(&format!("持仓 Positions at the close of {}", statement.to));
    positions_table(&mut pages, statement);
    pages.heading("说明 Notes");
    for note in notes(statement) {
        pages.paragraph(&note, 7.5, true);
        pages.y += 2.0;
    }
    let count = pages.pages.len();
    for (number, page) in pages.pages.iter_mut().enumerate() {
        let text = format!(
            "{} · 第 {} / {count} 页 Page {} of {count}",
            statement.account_id,
            number + 1,
            number + 1
        );
        let x = PAGE_WIDTH_PT - MARGIN_PT - font.width_pt(&text, 7.0);
        page.push(Op::Text {
            x,
            y: PAGE_HEIGHT_PT - MARGIN_PT / 2.0,
            size: 7.0,
            text,
            grey: true,
        });
    }
    pages.pages
}

fn heading_block(pages: &mut Pages<'_>, statement: &Statement) {
    let broker = &statement.context.broker;
    pages.paragraph(&broker.name, 14.0, false);
    let contact = match &broker.phone {
        Some(phone) => format!("{}    客服电话 Service phone: {phone}", broker.address),
        None => broker.address.clone(),
    };
    pages.paragraph(&contact, BODY_PT, true);
    pages.y += 3.0;
    pages.rule(CONTENT_WIDTH_PT, 1.2);
    pages.y += 8.0;
    pages.paragraph(
        &format!("对账单 Statement of account {}", statement.account_id),
        16.0,
        false,
    );
    pages.y += 4.0;
    pages.paragraph(
        &format!(
            "客户 Customer: {}    证件号码 ID number: {}",
            statement.customer_name, statement.id_number_masked
        ),
        BODY_PT,
        false,
    );
    pages.paragraph(
        &format!(
            "期间 Period: {} — {}    币种 Currency: CNY",
            statement.from, statement.to
        ),
        BODY_PT,
        false,
    );
    if let Some(clamp) = clamp_sentence(statement) {
        pages.paragraph(&clamp, BODY_PT, false);
    }
    pages.y += 6.0;
}

fn summary_table(pages: &mut Pages<'_>, s: &Statement) {
    let header = [
        "期初资金 Opening cash",
        "期末资金 Closing cash",
        "证券市值 Market value",
        "总资产 Total assets",
        "佣金 Commission",
        "印花税 Stamp duty",
        "其他费用 Other fees",
    ];
    let row = vec![
        right(format_cny(s.opening_cash_cny)),
        right(format_cny(s.closing_cash_cny)),
        right(format_cny(s.total_market_value_cny)),
        right(format_cny(s.total_assets_cny)),
        right(format_cny(s.total_fees.commission_cny)),
        right(format_cny(s.total_fees.stamp_duty_cny)),
        right(format_cny(other_fees_cny(&s.total_fees))),
    ];
    pages.table(&header, &[row]);
}

fn none(pages: &mut Pages<'_>) {
    pages.paragraph("无 none", BODY_PT, true);
}

fn movements_table(pages: &mut Pages<'_>, s: &Statement) {
    if s.movements.is_empty() {
        return none(pages);
    }
    let header = [
        "日期 Date",
        "业务 Type",
        "证券代码 Code",
        "证券名称 Name",
        "数量 Quantity",
        "价格 Price",
        "佣金 Commission",
        "印花税 Stamp duty",
        "其他费用 Other fees",
        "发生金额 Amount",
        "资金余额 Cash after",
    ];
    let rows: Vec<Vec<Cell>> = s
        .movements
        .iter()
        .map(|m| {
            vec![
                left(m.date.to_string()),
                left(m.kind.clone()),
                left(m.instrument.clone()),
                left(m.instrument_name.clone()),
                right(if m.quantity > 0 {
                    m.quantity.to_string()
                } else {
                    String::new()
                }),
                right(m.price.clone()),
                right(format_cny(m.fees.commission_cny)),
                right(format_cny(m.fees.stamp_duty_cny)),
                right(format_cny(other_fees_cny(&m.fees))),
                right(format_cny(m.amount_cny)),
                right(format_cny(m.cash_after_cny)),
            ]
        })
        .collect();
    pages.table(&header, &rows);
}

fn positions_table(pages: &mut Pages<'_>, s: &Statement) {
    if s.positions.is_empty() {
        return none(pages);
    }
    let header = [
        "证券代码 Code",
        "证券名称 Name",
        "数量 Quantity",
        "成本 Cost",
        "成本价 Avg cost",
        "价格 Price",
        "价格来源 Price source",
        "市值 Market value",
    ];
    let rows: Vec<Vec<Cell>> = s
        .positions
        .iter()
        .map(|p| {
            vec![
                left(p.instrument.clone()),
                left(p.instrument_name.clone()),
                right(p.quantity.to_string()),
                right(format_cny(p.cost_cny)),
                right(format!("{:.4}", p.avg_cost)),
                right(p.price.map(|v| v.to_string()).unwrap_or_default()),
                left(p.price_source),
                right(p.market_value_cny.map(format_cny).unwrap_or_default()),
            ]
        })
        .collect();
    pages.table(&header, &rows);
}
