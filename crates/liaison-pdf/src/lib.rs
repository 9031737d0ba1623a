//! A small PDF writer for Liaison's formal letters.
//!
//! One face (a TrueType or OpenType font, a collection member included) is embedded as a
//! CID-keyed font, **subsetted** to the glyphs the letter uses (`subsetter`), with a
//! `ToUnicode` map so that text extraction (`pdftotext`, search, copy) gives the original
//! characters back. Latin and CJK text come from the same face, so a face with both (WenQuanYi
//! Zen Hei, Noto Sans CJK) is enough for a bilingual letter.
//!
//! The layout is a column of blocks on A4 pages: titles, headings, wrapped paragraphs,
//! label/value fields, a coloured badge (the TLP marking), rules and a signature line, with a
//! footer and page numbers on every page and, for drafts, a diagonal watermark. Lines break at
//! spaces in Latin text and between any two CJK characters.
//!
//! No I/O: the caller reads the font file and writes the result. The output is deterministic
//! (no clock, no random ids), so the same letter gives the same bytes and the same hash.

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use std::collections::BTreeSet;

/// Why a document could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// The font bytes are not a font this writer can embed.
    #[error("the font is not a usable TrueType/OpenType face (index {index}): {reason}")]
    BadFont { index: u32, reason: String },
    /// The text uses characters the face has no glyph for (they would print as empty boxes).
    #[error("the font '{font}' has no glyph for {}: choose a font that covers them ([letter] font)", list_chars(.chars))]
    MissingGlyphs { font: String, chars: Vec<char> },
    /// The subsetter refused the face.
    #[error("the font could not be subsetted: {0}")]
    Subset(String),
    /// The document is larger than this writer accepts.
    #[error("the document is too long: {pages} pages (at most {max})")]
    TooLong { pages: usize, max: usize },
}

fn list_chars(chars: &[char]) -> String {
    chars
        .iter()
        .map(|c| format!("'{c}' (U+{:04X})", *c as u32))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An RGB colour, each channel 0-255.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    pub const BLACK: Rgb = Rgb(0, 0, 0);

    fn f(self) -> (f32, f32, f32) {
        (
            f32::from(self.0) / 255.0,
            f32::from(self.1) / 255.0,
            f32::from(self.2) / 255.0,
        )
    }
}

/// One block of the letter's column.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// The letter's title (large).
    Title(String),
    /// A section heading; kept on the page of the text that follows it.
    Heading(String),
    /// Wrapped body text.
    Paragraph(String),
    /// Wrapped smaller text (notes, citations).
    Small(String),
    /// A label in the left column and its value, wrapped, in the right one.
    Field { label: String, value: String },
    /// A filled box with a line of text in it (the TLP marking in its colours).
    Badge { text: String, fg: Rgb, bg: Rgb },
    /// Vertical space, in points.
    Gap(f32),
    /// A thin horizontal line across the column.
    Rule,
    /// An empty line to sign on, with a caption under it.
    SignatureLine { caption: String },
}

/// A document: metadata, the blocks, and what every page carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Document {
    /// The PDF's title (document information).
    pub title: String,
    pub blocks: Vec<Block>,
    /// Printed at the foot of every page, before the page number (`n / N`).
    pub footer: String,
    /// Printed across every page, large and light, when set (a draft).
    pub watermark: Option<String>,
}

/// The face to embed: the bytes of a font file and, for a collection (`.ttc`), which member.
#[derive(Debug, Clone, Copy)]
pub struct FontSource<'a> {
    pub data: &'a [u8],
    pub index: u32,
}

/// The most pages one document may have (a letter is a few pages; this bounds hostile input).
pub const MAX_PAGES: usize = 200;

const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN_X: f32 = 56.0;
const MARGIN_TOP: f32 = 60.0;
const MARGIN_BOTTOM: f32 = 64.0;
const LABEL_W: f32 = 150.0;
const GUTTER: f32 = 10.0;
const LEADING: f32 = 1.45;
const FONT_NAME: Name<'static> = Name(b"F1");

struct Glyphs<'a> {
    face: ttf_parser::Face<'a>,
    upem: f32,
    remapper: subsetter::GlyphRemapper,
    /// (new glyph id, character) pairs for the ToUnicode map.
    unicode: Vec<(u16, char)>,
    seen: BTreeSet<u16>,
    /// Advance widths of the new glyph ids, in 1/1000 em.
    widths: Vec<(u16, f32)>,
    missing: BTreeSet<char>,
}

impl Glyphs<'_> {
    fn gid(&self, c: char) -> Option<ttf_parser::GlyphId> {
        self.face.glyph_index(c)
    }

    fn advance(&self, c: char, size: f32) -> f32 {
        let c = if c == '\t' { ' ' } else { c };
        match self.gid(c) {
            Some(g) => f32::from(self.face.glyph_hor_advance(g).unwrap_or(0)) / self.upem * size,
            None => size * 0.5,
        }
    }

    fn width(&self, s: &str, size: f32) -> f32 {
        s.chars().map(|c| self.advance(c, size)).sum()
    }

    /// The text as 2-byte CIDs of the subset (Identity-H), recording what the subset needs.
    fn encode(&mut self, s: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(s.len() * 2);
        for c in s.chars() {
            let c = if c == '\t' { ' ' } else { c };
            if c.is_control() {
                continue;
            }
            let Some(g) = self.gid(c) else {
                self.missing.insert(c);
                continue;
            };
            let new = self.remapper.remap(g.0);
            if self.seen.insert(new) {
                self.unicode.push((new, c));
                let adv = f32::from(self.face.glyph_hor_advance(g).unwrap_or(0)) / self.upem * 1000.0;
                self.widths.push((new, adv));
            }
            out.extend_from_slice(&new.to_be_bytes());
        }
        out
    }
}

/// A drawing operation on a page, in PDF points from the bottom left.
enum Op {
    Text {
        x: f32,
        y: f32,
        size: f32,
        color: Rgb,
        text: String,
    },
    Fill {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        color: Rgb,
    },
    Line {
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
        width: f32,
    },
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x2E80..=0x2FDF | 0x3000..=0x30FF | 0x3100..=0x31FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF
        | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFFEF | 0x20000..=0x2FFFF)
}

/// Characters a line should not start with (closing punctuation, CJK and Latin).
fn no_line_start(c: char) -> bool {
    "，。、；：？！）》」』】〉,.;:?!)]}".contains(c)
}

/// Breaks `text` into lines no wider than `max` at `size`. Newlines force a break.
fn wrap(g: &Glyphs<'_>, text: &str, size: f32, max: f32) -> Vec<String> {
    let mut lines = Vec::new();
    for para in text.split('\n') {
        // Tokens: a run of non-CJK, non-space characters is a word; each CJK character and
        // each space is a token of its own.
        let mut tokens: Vec<String> = Vec::new();
        let mut word = String::new();
        for c in para.chars() {
            if c == ' ' || c == '\t' || is_cjk(c) {
                if !word.is_empty() {
                    tokens.push(std::mem::take(&mut word));
                }
                // Closing punctuation sticks to the token before it.
                if no_line_start(c)
                    && let Some(last) = tokens.last_mut()
                    && last != " "
                {
                    last.push(c);
                    continue;
                }
                tokens.push(if c == '\t' { " ".into() } else { c.to_string() });
            } else if no_line_start(c) && word.is_empty() && tokens.last().is_some_and(|t| t != " ") {
                if let Some(last) = tokens.last_mut() {
                    last.push(c);
                }
            } else {
                word.push(c);
            }
        }
        if !word.is_empty() {
            tokens.push(word);
        }
        let mut line = String::new();
        let mut line_w = 0.0;
        for tok in tokens {
            let is_space = tok == " ";
            if is_space && line.is_empty() {
                continue;
            }
            let w = g.width(&tok, size);
            if line_w + w > max && !line.is_empty() {
                lines.push(line.trim_end().to_string());
                line.clear();
                line_w = 0.0;
                if is_space {
                    continue;
                }
            }
            if w > max {
                // A token wider than the line (a long URL, a hash): break it by characters.
                for c in tok.chars() {
                    let cw = g.advance(c, size);
                    if line_w + cw > max && !line.is_empty() {
                        lines.push(std::mem::take(&mut line));
                        line_w = 0.0;
                    }
                    line.push(c);
                    line_w += cw;
                }
                continue;
            }
            line.push_str(&tok);
            line_w += w;
        }
        lines.push(line.trim_end().to_string());
    }
    lines
}

struct Layout<'g, 'a> {
    g: &'g Glyphs<'a>,
    pages: Vec<Vec<Op>>,
    y: f32,
}

impl Layout<'_, '_> {
    fn page(&mut self) -> &mut Vec<Op> {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let n = self.pages.len() - 1;
        &mut self.pages[n]
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = PAGE_H - MARGIN_TOP;
    }

    /// Makes room for `h` points, starting a new page if the column has less left.
    fn need(&mut self, h: f32) {
        if self.y - h < MARGIN_BOTTOM && self.y < PAGE_H - MARGIN_TOP {
            self.new_page();
        }
    }

    fn lines(&mut self, x: f32, max: f32, text: &str, size: f32, color: Rgb) {
        let lead = size * LEADING;
        for line in wrap(self.g, text, size, max) {
            self.need(lead);
            self.y -= lead;
            let y = self.y + size * 0.3;
            if !line.is_empty() {
                self.page().push(Op::Text {
                    x,
                    y,
                    size,
                    color,
                    text: line,
                });
            }
        }
    }

    fn block(&mut self, b: &Block, next_is_text: bool) {
        let col = PAGE_W - 2.0 * MARGIN_X;
        match b {
            Block::Title(t) => {
                self.lines(MARGIN_X, col, t, 16.0, Rgb::BLACK);
                self.y -= 4.0;
            }
            Block::Heading(t) => {
                // Keep a heading with at least three lines of what follows.
                let keep = if next_is_text { 11.0 * LEADING * 3.0 } else { 0.0 };
                self.need(12.5 * LEADING + 8.0 + keep);
                self.y -= 8.0;
                self.lines(MARGIN_X, col, t, 12.5, Rgb(0x1f, 0x3a, 0x5f));
                let y = self.y - 2.0;
                self.page().push(Op::Line {
                    x1: MARGIN_X,
                    y1: y,
                    x2: PAGE_W - MARGIN_X,
                    y2: y,
                    width: 0.5,
                });
                self.y -= 4.0;
            }
            Block::Paragraph(t) => self.lines(MARGIN_X, col, t, 10.5, Rgb::BLACK),
            Block::Small(t) => self.lines(MARGIN_X, col, t, 8.5, Rgb(0x44, 0x44, 0x44)),
            Block::Field { label, value } => {
                let size = 10.0;
                let lead = size * LEADING;
                let vx = MARGIN_X + LABEL_W + GUTTER;
                let lw = wrap(self.g, label, size, LABEL_W);
                let vw = wrap(self.g, value, size, col - LABEL_W - GUTTER);
                let n = lw.len().max(vw.len());
                for i in 0..n {
                    self.need(lead);
                    self.y -= lead;
                    let y = self.y + size * 0.3;
                    let (l, v) = (lw.get(i).cloned(), vw.get(i).cloned());
                    let page = self.page();
                    if let Some(l) = l.filter(|l| !l.is_empty()) {
                        page.push(Op::Text {
                            x: MARGIN_X,
                            y,
                            size,
                            color: Rgb(0x44, 0x44, 0x44),
                            text: l,
                        });
                    }
                    if let Some(v) = v.filter(|v| !v.is_empty()) {
                        page.push(Op::Text {
                            x: vx,
                            y,
                            size,
                            color: Rgb::BLACK,
                            text: v,
                        });
                    }
                }
                self.y -= 4.0;
            }
            Block::Badge { text, fg, bg } => {
                let size = 11.0;
                let w = self.g.width(text, size) + 16.0;
                let h = size + 10.0;
                self.need(h + 4.0);
                self.y -= h;
                let y = self.y;
                let page = self.page();
                page.push(Op::Fill {
                    x: MARGIN_X,
                    y,
                    w,
                    h,
                    color: *bg,
                });
                page.push(Op::Text {
                    x: MARGIN_X + 8.0,
                    y: y + 6.5,
                    size,
                    color: *fg,
                    text: text.clone(),
                });
                self.y -= 4.0;
            }
            Block::Gap(h) => {
                let h = h.clamp(0.0, PAGE_H / 2.0);
                if self.y - h < MARGIN_BOTTOM {
                    self.new_page();
                } else {
                    self.y -= h;
                }
            }
            Block::Rule => {
                self.need(8.0);
                self.y -= 4.0;
                let y = self.y;
                self.page().push(Op::Line {
                    x1: MARGIN_X,
                    y1: y,
                    x2: PAGE_W - MARGIN_X,
                    y2: y,
                    width: 0.5,
                });
                self.y -= 4.0;
            }
            Block::SignatureLine { caption } => {
                self.need(48.0);
                self.y -= 34.0;
                let y = self.y;
                self.page().push(Op::Line {
                    x1: MARGIN_X,
                    y1: y,
                    x2: MARGIN_X + 260.0,
                    y2: y,
                    width: 0.8,
                });
                self.lines(MARGIN_X, col, caption, 8.5, Rgb(0x44, 0x44, 0x44));
            }
        }
    }
}

fn font_name(face: &ttf_parser::Face<'_>) -> String {
    let ps = face
        .names()
        .into_iter()
        .filter(|n| n.name_id == ttf_parser::name_id::POST_SCRIPT_NAME)
        .find_map(|n| n.to_string())
        .unwrap_or_else(|| "Embedded".to_string());
    ps.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(60)
        .collect()
}

/// Writes `doc` as a PDF with `font` embedded (subsetted).
pub fn render(doc: &Document, font: FontSource<'_>) -> Result<Vec<u8>, PdfError> {
    let face = ttf_parser::Face::parse(font.data, font.index).map_err(|e| PdfError::BadFont {
        index: font.index,
        reason: e.to_string(),
    })?;
    let upem = f32::from(face.units_per_em());
    if upem <= 0.0 {
        return Err(PdfError::BadFont {
            index: font.index,
            reason: "units per em is zero".into(),
        });
    }
    let cff = face.tables().cff.is_some();
    let base = font_name(&face);
    let mut glyphs = Glyphs {
        face,
        upem,
        remapper: subsetter::GlyphRemapper::new(),
        unicode: Vec::new(),
        seen: BTreeSet::new(),
        widths: Vec::new(),
        missing: BTreeSet::new(),
    };

    // Lay out first (widths only), then encode the text of every page.
    let mut pages = {
        let mut layout = Layout {
            g: &glyphs,
            pages: vec![Vec::new()],
            y: PAGE_H - MARGIN_TOP,
        };
        for (i, b) in doc.blocks.iter().enumerate() {
            let next_is_text = matches!(
                doc.blocks.get(i + 1),
                Some(Block::Paragraph(_) | Block::Field { .. } | Block::Small(_))
            );
            layout.block(b, next_is_text);
            if layout.pages.len() > MAX_PAGES {
                return Err(PdfError::TooLong {
                    pages: layout.pages.len(),
                    max: MAX_PAGES,
                });
            }
        }
        layout.pages
    };
    let total = pages.len();
    for (i, ops) in pages.iter_mut().enumerate() {
        let foot = if doc.footer.is_empty() {
            format!("{} / {total}", i + 1)
        } else {
            format!("{}    {} / {total}", doc.footer, i + 1)
        };
        let lines = wrap(&glyphs, &foot, 8.0, PAGE_W - 2.0 * MARGIN_X);
        let mut y = 40.0;
        for l in lines.into_iter().take(3) {
            ops.push(Op::Text {
                x: MARGIN_X,
                y,
                size: 8.0,
                color: Rgb(0x55, 0x55, 0x55),
                text: l,
            });
            y -= 10.0;
        }
    }

    // Content streams (glyphs are remapped as they are first used).
    let mut contents = Vec::with_capacity(pages.len());
    for ops in &pages {
        let mut c = Content::new();
        if let Some(w) = &doc.watermark {
            let size = 54.0;
            let width = glyphs.width(w, size);
            let text = glyphs.encode(w);
            let (cos, sin) = (std::f32::consts::FRAC_PI_4.cos(), std::f32::consts::FRAC_PI_4.sin());
            let (cx, cy) = (PAGE_W / 2.0, PAGE_H / 2.0);
            let (x0, y0) = (cx - cos * width / 2.0, cy - sin * width / 2.0);
            c.save_state();
            c.set_fill_rgb(0.85, 0.85, 0.85);
            c.begin_text();
            c.set_font(FONT_NAME, size);
            c.set_text_matrix([cos, sin, -sin, cos, x0, y0]);
            c.show(Str(&text));
            c.end_text();
            c.restore_state();
        }
        for op in ops {
            match op {
                Op::Text {
                    x,
                    y,
                    size,
                    color,
                    text,
                } => {
                    let bytes = glyphs.encode(text);
                    let (r, g, b) = color.f();
                    c.set_fill_rgb(r, g, b);
                    c.begin_text();
                    c.set_font(FONT_NAME, *size);
                    c.next_line(*x, *y);
                    c.show(Str(&bytes));
                    c.end_text();
                }
                Op::Fill { x, y, w, h, color } => {
                    let (r, g, b) = color.f();
                    c.set_fill_rgb(r, g, b);
                    c.rect(*x, *y, *w, *h);
                    c.fill_nonzero();
                }
                Op::Line { x1, y1, x2, y2, width } => {
                    c.set_line_width(*width);
                    c.set_stroke_rgb(0.4, 0.4, 0.4);
                    c.move_to(*x1, *y1);
                    c.line_to(*x2, *y2);
                    c.stroke();
                }
            }
        }
        contents.push(c.finish());
    }
    if !glyphs.missing.is_empty() {
        return Err(PdfError::MissingGlyphs {
            font: base,
            chars: glyphs.missing.into_iter().collect(),
        });
    }

    let subset =
        subsetter::subset(font.data, font.index, &glyphs.remapper).map_err(|e| PdfError::Subset(e.to_string()))?;

    let mut pdf = Pdf::new();
    let mut next = 1;
    let mut alloc = || {
        let r = Ref::new(next);
        next += 1;
        r
    };
    let catalog_id = alloc();
    let pages_id = alloc();
    let info_id = alloc();
    let type0_id = alloc();
    let cid_id = alloc();
    let descriptor_id = alloc();
    let file_id = alloc();
    let cmap_id = alloc();
    let page_ids: Vec<(Ref, Ref)> = (0..contents.len()).map(|_| (alloc(), alloc())).collect();

    pdf.catalog(catalog_id).pages(pages_id);
    pdf.pages(pages_id)
        .kids(page_ids.iter().map(|(p, _)| *p))
        .count(page_ids.len() as i32);
    pdf.document_info(info_id)
        .title(TextStr(&doc.title))
        .producer(TextStr("Liaison"));
    for ((page_id, content_id), content) in page_ids.iter().zip(&contents) {
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H))
            .parent(pages_id)
            .contents(*content_id);
        page.resources().fonts().pair(FONT_NAME, type0_id);
        page.finish();
        let packed = miniz_oxide::deflate::compress_to_vec_zlib(content, 6);
        pdf.stream(*content_id, &packed).filter(Filter::FlateDecode);
    }

    let tagged = format!("LIAISN+{base}");
    pdf.type0_font(type0_id)
        .base_font(Name(tagged.as_bytes()))
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid_id)
        .to_unicode(cmap_id);
    let system = SystemInfo {
        registry: Str(b"Adobe"),
        ordering: Str(b"Identity"),
        supplement: 0,
    };
    {
        let mut cid = pdf.cid_font(cid_id);
        cid.subtype(if cff { CidFontType::Type0 } else { CidFontType::Type2 })
            .base_font(Name(tagged.as_bytes()))
            .system_info(system)
            .font_descriptor(descriptor_id)
            .default_width(0.0);
        if !cff {
            cid.cid_to_gid_map_predefined(Name(b"Identity"));
        }
        let mut widths = glyphs.widths.clone();
        widths.sort_by_key(|w| w.0);
        let mut w = cid.widths();
        for (gid, adv) in widths {
            w.consecutive(gid, [adv]);
        }
        w.finish();
        cid.finish();
    }
    let face = &glyphs.face;
    let s = |v: i16| f32::from(v) / upem * 1000.0;
    let bb = face.global_bounding_box();
    let mut d = pdf.font_descriptor(descriptor_id);
    d.name(Name(tagged.as_bytes()))
        .flags(FontFlags::SYMBOLIC)
        .bbox(Rect::new(s(bb.x_min), s(bb.y_min), s(bb.x_max), s(bb.y_max)))
        .italic_angle(0.0)
        .ascent(s(face.ascender()))
        .descent(s(face.descender()))
        .cap_height(s(face.capital_height().unwrap_or(face.ascender())))
        .stem_v(80.0);
    if cff {
        d.font_file3(file_id);
    } else {
        d.font_file2(file_id);
    }
    d.finish();
    let packed = miniz_oxide::deflate::compress_to_vec_zlib(&subset, 6);
    let mut stream = pdf.stream(file_id, &packed);
    stream.filter(Filter::FlateDecode);
    if cff {
        stream.pair(Name(b"Subtype"), Name(b"OpenType"));
    }
    stream.finish();

    let mut cmap = UnicodeCmap::new(Name(b"Custom"), system);
    for (gid, c) in &glyphs.unicode {
        cmap.pair(*gid, *c);
    }
    let cmap = cmap.finish();
    pdf.cmap(cmap_id, &cmap);
    Ok(pdf.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cjk_is_recognised() {
        assert!(is_cjk('中'));
        assert!(is_cjk('，'));
        assert!(!is_cjk('a'));
    }

    #[test]
    fn a_non_font_is_refused_with_its_reason() {
        let doc = Document::default();
        let err = render(
            &doc,
            FontSource {
                data: b"not a font",
                index: 0,
            },
        )
        .unwrap_err();
        assert!(matches!(err, PdfError::BadFont { .. }), "{err}");
    }
}
