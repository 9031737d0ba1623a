//! Renders a bilingual document with a real system CJK font and reads it back with `pdftotext`.
//! Skipped (loudly) when the font or poppler-utils is absent, unless `LIAISON_REQUIRE_BROWSER`
//! is set (CI installs fonts-wqy-zenhei and poppler-utils).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use liaison_pdf::{Block, Document, FontSource, Rgb, render};
use std::path::PathBuf;
use std::process::Command;

const FONT: &str = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc";

fn tools() -> Option<PathBuf> {
    let font = PathBuf::from(FONT);
    let pdftotext = Command::new("pdftotext").arg("-v").output().is_ok();
    if font.is_file() && pdftotext {
        return Some(font);
    }
    let why = format!("needs {FONT} (apt-get install fonts-wqy-zenhei) and pdftotext (apt-get install poppler-utils)");
    if std::env::var_os("LIAISON_REQUIRE_BROWSER").is_some() {
        panic!("LIAISON_REQUIRE_BROWSER is set but this test {why}");
    }
    eprintln!("SKIPPED: this test {why}");
    None
}

fn text_of(pdf: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("liaison-pdf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("doc.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = Command::new("pdftotext")
        .arg("-enc")
        .arg("UTF-8")
        .arg(&path)
        .arg("-")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pdftotext: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn bilingual_text_is_embedded_subsetted_and_extractable() {
    let Some(font) = tools() else { return };
    let data = std::fs::read(font).unwrap();
    let long = "数据保全请求。".repeat(40);
    let doc = Document {
        title: "Test".into(),
        footer: "REF CN-MPS/2026/0001".into(),
        watermark: Some("DRAFT 草稿".into()),
        blocks: vec![
            Block::Title("Request for mutual legal assistance 刑事司法协助请求书".into()),
            Block::Badge {
                text: "TLP:AMBER".into(),
                fg: Rgb(0xff, 0xc0, 0x00),
                bg: Rgb(0, 0, 0),
            },
            Block::Heading("Particulars 请求事项".into()),
            Block::Field {
                label: "Requesting authority 请求机关".into(),
                value: "Ministry of Public Security 公安部".into(),
            },
            Block::Paragraph(long.clone()),
            Block::SignatureLine {
                caption: "Signature 签名".into(),
            },
        ],
    };
    let pdf = render(&doc, FontSource { data: &data, index: 0 }).unwrap();
    // The subset is a small part of the 11 MB collection.
    assert!(pdf.len() < 400_000, "{} bytes: the font was not subsetted", pdf.len());
    // Deterministic: the same document gives the same bytes.
    assert_eq!(pdf, render(&doc, FontSource { data: &data, index: 0 }).unwrap());
    let text = text_of(&pdf);
    for want in [
        "Request for mutual legal assistance",
        "刑事司法协助请求书",
        "TLP:AMBER",
        "公安部",
        "REF CN-MPS/2026/0001",
        "签名",
    ] {
        assert!(text.contains(want), "'{want}' not in the extracted text:\n{text}");
    }
    // The long paragraph wrapped instead of running off the page: all of it is there.
    let joined: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    assert_eq!(joined.matches("数据保全请求").count(), 40, "{text}");
}

#[test]
fn characters_the_font_lacks_are_refused_by_name() {
    let Some(font) = tools() else { return };
    let data = std::fs::read(font).unwrap();
    let doc = Document {
        blocks: vec![Block::Paragraph("ok \u{1F600}".into())],
        ..Default::default()
    };
    let err = render(&doc, FontSource { data: &data, index: 0 })
        .unwrap_err()
        .to_string();
    assert!(err.contains("U+1F600"), "{err}");
}
