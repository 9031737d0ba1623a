//! Human output (tables) and machine output (`--json`).

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    t
}

pub fn json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// An instant as `YYYY-MM-DD HH:MM UTC`, or "-".
pub fn when(t: Option<jiff::Timestamp>) -> String {
    t.map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "-".into())
}

/// Agency id → short code, for tables.
pub async fn agency_codes(
    node: &liaison_service::Node,
    p: &liaison_service::Principal,
) -> anyhow::Result<std::collections::HashMap<liaison_core::AgencyId, String>> {
    Ok(node
        .agencies(p)
        .await?
        .into_iter()
        .map(|(a, _)| (a.id, a.code))
        .collect())
}
