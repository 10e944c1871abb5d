//! The statement as PDF, written by krilla with the given font embedded as a subset
//! (only the glyphs used), so the file shows its Chinese text anywhere.
//!
//! Laid out in two steps: `layout` places every text run, rule and shaded box on
//! A4 landscape pages (breaking tables across pages, header repeated); `draw` then
//! hands each page to krilla. Figures are right-aligned with the font's own advance
//! widths (read by skrifa, krilla's font reader). Coordinates are points, top-left origin.

use std::sync::Arc;

use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::Metadata;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::surface::Surface;
use krilla::text::{Font, TextDirection};
use krilla::Document;
use skrifa::instance::{LocationRef, Size};
use skrifa::{FontRef, MetadataProvider};

use super::layout::{layout, Op, PAGE_HEIGHT_PT, PAGE_WIDTH_PT};
use super::Statement;

/// Characters a statement font must have: without them its headings would be empty boxes.
const REQUIRED_CHARS: &str = "对账单期初资金 Statement0123456789.-";

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("it is not a TrueType or OpenType font (or has no font at index {index})")]
    NotAFont { index: u32 },
    #[error("it has no glyph for {missing:?}: a font with Chinese glyphs is needed")]
    MissingGlyphs { missing: String },
    #[error("the PDF could not be written: {0}")]
    Write(String),
}

/// A font to write statements with: TrueType or OpenType, or one font of a collection (.ttc).
#[derive(Clone)]
pub struct PdfFont {
    data: Arc<Vec<u8>>,
    index: u32,
    font: Font,
}

impl std::fmt::Debug for PdfFont {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PdfFont")
            .field("bytes", &self.data.len())
            .field("index", &self.index)
            .finish()
    }
}

impl PdfFont {
    /// Takes the font's bytes; refuses what is not a font, or a font without Chinese glyphs.
    pub fn new(bytes: Vec<u8>, index: u32) -> Result<Self, PdfError> {
        let data = Arc::new(bytes);
        let font = Font::new(Arc::clone(&data).into(), index).ok_or(PdfError::NotAFont { index })?;
        let pdf_font = Self { data, index, font };
        let reader = pdf_font.reader()?;
        let charmap = reader.charmap();
        let missing: String = REQUIRED_CHARS.chars().filter(|c| charmap.map(*c).is_none()).collect();
        if !missing.is_empty() {
            return Err(PdfError::MissingGlyphs { missing });
        }
        Ok(pdf_font)
    }

    fn reader(&self) -> Result<FontRef<'_>, PdfError> {
        FontRef::from_index(&self.data, self.index).map_err(|_| PdfError::NotAFont { index: self.index })
    }

    /// The width of `text` set at `size_pt`, in points.
    pub(super) fn width_pt(&self, text: &str, size_pt: f32) -> f32 {
        let Ok(reader) = self.reader() else {
            return 0.0;
        };
        let charmap = reader.charmap();
        let metrics = reader.glyph_metrics(Size::new(size_pt), LocationRef::default());
        text.chars()
            .filter_map(|c| charmap.map(c).and_then(|glyph| metrics.advance_width(glyph)))
            .sum()
    }
}

/// The statement as a PDF document (A4 landscape), its text in `font`.
pub fn render_pdf(statement: &Statement, font: &PdfFont) -> Result<Vec<u8>, PdfError> {
    let pages = layout(statement, font);
    let mut document = Document::new();
    document.set_metadata(
        Metadata::new()
            .title(format!("对账单 Statement {}", statement.account_id))
            .creator("ledger".to_owned()),
    );
    let settings = PageSettings::from_wh(PAGE_WIDTH_PT, PAGE_HEIGHT_PT)
        .ok_or_else(|| PdfError::Write("the page size is not valid".to_owned()))?;
    for ops in &pages {
        let mut page = document.start_page_with(settings.clone());
        let mut surface = page.surface();
        for op in ops {
            draw(&mut surface, op, font);
        }
        surface.finish();
        page.finish();
    }
    document.finish().map_err(|e| PdfError::Write(e.to_string()))
}

fn draw(surface: &mut Surface<'_>, op: &Op, font: &PdfFont) {
    match op {
        Op::Text { x, y, size, text, grey } => {
            let shade = if *grey { 90 } else { 20 };
            surface.set_fill(Some(Fill {
                paint: rgb::Color::new(shade, shade, shade).into(),
                ..Default::default()
            }));
            surface.set_stroke(None);
            surface.draw_text(
                Point::from_xy(*x, *y),
                font.font.clone(),
                *size,
                text,
                false,
                TextDirection::Auto,
            );
        }
        Op::Rule { x1, x2, y, width } => {
            let mut path = PathBuilder::new();
            path.move_to(*x1, *y);
            path.line_to(*x2, *y);
            let Some(path) = path.finish() else { return };
            surface.set_fill(None);
            surface.set_stroke(Some(Stroke {
                paint: rgb::Color::new(150, 150, 160).into(),
                width: *width,
                ..Default::default()
            }));
            surface.draw_path(&path);
        }
        Op::Shade { x, y, w, h } => {
            let mut path = PathBuilder::new();
            let Some(rect) = Rect::from_xywh(*x, *y, *w, *h) else {
                return;
            };
            path.push_rect(rect);
            let Some(path) = path.finish() else { return };
            surface.set_stroke(None);
            surface.set_fill(Some(Fill {
                paint: rgb::Color::new(232, 234, 248).into(),
                ..Default::default()
            }));
            surface.draw_path(&path);
        }
    }
}
