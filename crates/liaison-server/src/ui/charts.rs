//! The cooperation report's line and bar charts, drawn on the server as SVG (no script; the
//! CSP forbids inline style, so colours are attributes): each busy pair's median time to
//! answer by month of sending, and the requests still open by age. Each point and bar says in
//! words what it shows (`<title>`), and the page repeats the figures in a table.

use super::i18n::Lang;
use liaison_core::stats::{AGE_BANDS, Ageing, Trend};

/// Lines drawn at most (the busiest pairs); the table lists all.
const MAX_LINES: usize = 6;
/// Bars drawn at most (the pairs with the most open requests).
const MAX_BARS: usize = 12;

/// Line colours, distinguishable with the common colour-vision deficiencies and at least
/// 3:1 against white (WCAG 1.4.11).
const LINE: [&str; MAX_LINES] = ["#0072b2", "#c74400", "#007a5a", "#a8457e", "#6b5300", "#333333"];
/// Age band fills, young to old.
const BAND: [&str; 5] = ["#c6dbef", "#7fb0d8", "#3c7fb8", "#e59a2f", "#b3261e"];

pub(crate) struct TrendChart {
    pub width: usize,
    pub height: usize,
    /// Horizontal grid lines: y and the label (days).
    pub grid: Vec<(usize, String)>,
    /// Month labels: x and text.
    pub ticks: Vec<(usize, String)>,
    pub lines: Vec<TrendLine>,
    /// The figures as a table: header (months) and one row per line.
    pub months: Vec<String>,
    pub left: usize,
    pub bottom: usize,
}

pub(crate) struct TrendLine {
    pub label: String,
    pub colour: &'static str,
    /// Runs of consecutive months with a value, as SVG `points` lists.
    pub runs: Vec<String>,
    /// Each point: x, y, and what it says.
    pub points: Vec<(usize, usize, String)>,
    /// The table row: each month's median in words ("—" without one).
    pub cells: Vec<String>,
}

fn days_text(l: Lang, d: f64) -> String {
    l.t1("chart.days", &format!("{d:.1}"))
}

/// A round upper bound for the days axis.
fn axis_top(max: f64) -> f64 {
    [4.0, 8.0, 20.0, 40.0, 60.0, 120.0, 180.0, 360.0, 720.0]
        .into_iter()
        .find(|t| max <= *t)
        .unwrap_or((max / 360.0).ceil() * 360.0)
}

pub(crate) fn trend_chart(l: Lang, months: &[String], trends: &[Trend]) -> Option<TrendChart> {
    let mut drawn: Vec<&Trend> = trends
        .iter()
        .filter(|t| t.points.iter().any(|p| p.median_days_to_answer.is_some()))
        .collect();
    drawn.sort_by(|a, b| b.sent.cmp(&a.sent).then(a.requesting.cmp(&b.requesting)));
    drawn.truncate(MAX_LINES);
    if drawn.is_empty() || months.is_empty() {
        return None;
    }
    let (left, top, bottom) = (56usize, 12usize, 36usize);
    let step = (760 / months.len()).clamp(18, 60);
    let plot_h = 220usize;
    let width = left + step * months.len() + 16;
    let height = top + plot_h + bottom;
    let max = drawn
        .iter()
        .flat_map(|t| t.points.iter().filter_map(|p| p.median_days_to_answer))
        .fold(0.0f64, f64::max);
    let top_days = axis_top(max.max(1.0));
    let y_of = |d: f64| top + plot_h - ((d / top_days) * plot_h as f64).round() as usize;
    let x_of = |i: usize| left + step * i + step / 2;
    let grid = (0..=4)
        .map(|k| {
            let d = top_days * f64::from(k) / 4.0;
            (y_of(d), format!("{d:.0}"))
        })
        .collect();
    let every = months.len().div_ceil(12).max(1);
    let ticks = months
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .map(|(i, m)| (x_of(i), m.clone()))
        .collect();
    let lines = drawn
        .iter()
        .zip(LINE)
        .map(|(t, colour)| {
            let label = format!("{} → {}", t.requesting, t.requested);
            let mut runs = Vec::new();
            let mut run: Vec<String> = Vec::new();
            let mut points = Vec::new();
            let mut cells = Vec::new();
            for (i, p) in t.points.iter().enumerate() {
                match p.median_days_to_answer {
                    Some(d) => {
                        let (x, y) = (x_of(i), y_of(d));
                        run.push(format!("{x},{y}"));
                        let says = l
                            .t("chart.trend_point")
                            .replace("{pair}", &label)
                            .replace("{month}", &p.month)
                            .replace("{days}", &days_text(l, d))
                            .replace("{n}", &p.answered.to_string());
                        points.push((x, y, says));
                        cells.push(days_text(l, d));
                    }
                    None => {
                        if run.len() > 1 {
                            runs.push(run.join(" "));
                        }
                        run.clear();
                        cells.push("—".into());
                    }
                }
            }
            if run.len() > 1 {
                runs.push(run.join(" "));
            }
            TrendLine {
                label,
                colour,
                runs,
                points,
                cells,
            }
        })
        .collect();
    Some(TrendChart {
        width,
        height,
        grid,
        ticks,
        lines,
        months: months.to_vec(),
        left,
        bottom: top + plot_h,
    })
}

pub(crate) struct AgeingChart {
    pub width: usize,
    pub height: usize,
    pub bars: Vec<AgeingBar>,
    /// The bands' legend: x, fill, label.
    pub legend: Vec<(usize, &'static str, String)>,
    /// The bands' labels, for the table's header.
    pub bands: Vec<String>,
}

pub(crate) struct AgeingBar {
    pub label: String,
    pub y: usize,
    /// Segments: x, width, fill, what it says.
    pub segments: Vec<(usize, usize, &'static str, String)>,
    /// "12 open, 3 overdue", at the bar's end.
    pub total: String,
    pub total_x: usize,
    /// The table row: the count in each band.
    pub counts: Vec<u64>,
    pub overdue: u64,
}

fn band_label(l: Lang, k: usize) -> String {
    match AGE_BANDS.get(k) {
        Some((from, Some(to))) if *from == 0 => l.t1("chart.band_under", &to.to_string()),
        Some((from, Some(to))) => {
            l.t("chart.band_between")
                .replacen("{}", &from.to_string(), 1)
                .replacen("{}", &to.to_string(), 1)
        }
        Some((from, None)) => l.t1("chart.band_over", &from.to_string()),
        None => String::new(),
    }
}

pub(crate) fn ageing_chart(l: Lang, ageing: &[Ageing]) -> Option<AgeingChart> {
    let mut drawn: Vec<&Ageing> = ageing.iter().collect();
    let total = |a: &Ageing| a.bands.iter().sum::<u64>();
    drawn.sort_by(|a, b| total(b).cmp(&total(a)).then(a.requesting.cmp(&b.requesting)));
    drawn.truncate(MAX_BARS);
    let max = drawn.iter().map(|a| total(a)).max().unwrap_or(0);
    if max == 0 {
        return None;
    }
    let (left, bar_w, row_h, top) = (150usize, 520usize, 30usize, 8usize);
    let width = left + bar_w + 190;
    let bars: Vec<AgeingBar> = drawn
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let label = format!("{} → {}", a.requesting, a.requested);
            let mut x = left;
            let segments = a
                .bands
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| {
                    let w = ((*n as f64 / max as f64) * bar_w as f64).round().max(2.0) as usize;
                    let seg = (
                        x,
                        w,
                        BAND.get(k).copied().unwrap_or("#777777"),
                        l.t("chart.ageing_segment")
                            .replace("{pair}", &label)
                            .replace("{n}", &n.to_string())
                            .replace("{band}", &band_label(l, k)),
                    );
                    x += w;
                    seg
                })
                .collect();
            AgeingBar {
                y: top + i * row_h,
                total: l
                    .t("chart.ageing_total")
                    .replace("{n}", &total(a).to_string())
                    .replace("{overdue}", &a.overdue.to_string()),
                total_x: x + 8,
                label,
                segments,
                counts: a.bands.to_vec(),
                overdue: a.overdue,
            }
        })
        .collect();
    let height = top + bars.len() * row_h + 8;
    let legend = (0..AGE_BANDS.len())
        .map(|k| (k * 130, BAND.get(k).copied().unwrap_or("#777777"), band_label(l, k)))
        .collect();
    Some(AgeingChart {
        width,
        height,
        bars,
        legend,
        bands: (0..AGE_BANDS.len()).map(|k| band_label(l, k)).collect(),
    })
}
