//! The self-contained HTML page of a report: tables and inline SVG charts drawn here (no
//! script, no file from the net), with a CJK font-family stack so that Chinese text renders
//! wherever a CJK font is installed (Debian: `fonts-noto-cjk`).

use std::fmt::Write as _;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::model::{Cell, Chart, ChartKind, Report, Table};

/// The font stack of the page and the charts.
pub const FONT_STACK: &str = "\"Noto Sans CJK SC\", \"Noto Sans SC\", \"Source Han Sans SC\", \"Microsoft YaHei\", \
     \"PingFang SC\", \"WenQuanYi Micro Hei\", \"SimHei\", sans-serif";

const COLORS: [&str; 6] = ["#2f6db5", "#e08a1e", "#c0392b", "#8e44ad", "#7f8c8d", "#27ae60"];

/// `1234567.5` → `1,234,567.50` (yuan to the cent, sign kept).
pub fn yuan(d: Decimal) -> String {
    let mut r = crate::benefit::policy::round_cent(d);
    r.rescale(2);
    let neg = r.is_sign_negative() && !r.is_zero();
    let s = r.abs().to_string();
    let (int, frac) = s.split_once('.').unwrap_or((s.as_str(), "00"));
    let mut g = String::with_capacity(int.len() + int.len() / 3 + 4);
    if neg {
        g.push('-');
    }
    for (k, ch) in int.chars().enumerate() {
        if k > 0 && (int.len() - k) % 3 == 0 {
            g.push(',');
        }
        g.push(ch);
    }
    g.push('.');
    g.push_str(frac);
    g
}

/// A ratio as a percentage with two decimals: `0.95` → `95.00%`.
pub fn pct(d: Decimal) -> String {
    let mut p = (d * Decimal::from(100))
        .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    p.rescale(2);
    format!("{p}%")
}

pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The text of a cell as shown in the page.
pub fn cell_text(c: &Cell) -> String {
    match c {
        Cell::Text(s) => s.clone(),
        Cell::Money(d) => yuan(*d),
        Cell::Int(i) => i.to_string(),
        Cell::Pct(Some(d)) => pct(*d),
        Cell::Pct(None) => "—".into(),
        Cell::Date(d) => d.format("%Y-%m-%d").to_string(),
        Cell::Empty => String::new(),
    }
}

const CSS: &str = "
body { margin: 24px auto; max-width: 1180px; color: #1d2733; background: #fff; font-size: 14px; }
h1 { font-size: 22px; margin: 0 0 6px; }
h2 { font-size: 17px; margin: 26px 0 8px; border-left: 4px solid #2f6db5; padding-left: 8px; }
.meta { color: #4a5866; margin: 2px 0; }
.due { font-size: 15px; margin: 10px 0; padding: 8px 12px; background: #f1f6fc; border: 1px solid #c9dcf0; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; }
th, td { border: 1px solid #b8c4d0; padding: 4px 8px; }
th { background: #e9eff6; font-weight: 600; text-align: center; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total td { font-weight: 700; background: #f7f9fb; }
.note { color: #55606b; font-size: 12.5px; margin: 2px 0; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
figure.chart { margin: 0; border: 1px solid #dde3ea; padding: 8px; background: #fff; }
figure.chart figcaption { font-weight: 600; margin-bottom: 4px; }
.prov td { font-size: 12px; word-break: break-all; }
";

fn table_html(t: &Table, out: &mut String) {
    let _ = writeln!(out, "<h2 id=\"{}\">{}</h2>", esc(&t.id), esc(&t.title));
    let _ = writeln!(out, "<table data-id=\"{}\"><thead><tr>", esc(&t.id));
    for c in &t.columns {
        let _ = write!(out, "<th>{}</th>", esc(c));
    }
    out.push_str("</tr></thead><tbody>\n");
    let row = |r: &[Cell], class: &str, out: &mut String| {
        let _ = write!(out, "<tr{}>", class);
        for c in r {
            let num = matches!(c, Cell::Money(_) | Cell::Int(_) | Cell::Pct(_));
            let _ = write!(out, "<td{}>{}</td>", if num { " class=\"n\"" } else { "" }, esc(&cell_text(c)));
        }
        out.push_str("</tr>\n");
    };
    if t.rows.is_empty() {
        let _ = writeln!(out, "<tr><td colspan=\"{}\">（本期无数据）</td></tr>", t.columns.len());
    }
    for r in &t.rows {
        row(r, "", out);
    }
    if let Some(tot) = t.totals() {
        row(&tot, " class=\"total\"", out);
    }
    out.push_str("</tbody></table>\n");
    for n in &t.notes {
        let _ = writeln!(out, "<p class=\"note\">注：{}</p>", esc(n));
    }
}

/// A "nice" axis maximum and step for values up to `max`.
fn axis(max: f64) -> (f64, f64) {
    if max <= 0.0 {
        return (1.0, 0.25);
    }
    let raw = max / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    ((max / step).ceil() * step, step)
}

/// Axis labels: `12.5万`, `3,000`.
fn short(v: f64, unit: &str) -> String {
    if unit == "元" && v.abs() >= 10_000.0 {
        let w = v / 10_000.0;
        if (w - w.round()).abs() < 1e-9 { format!("{:.0}万", w) } else { format!("{:.1}万", w) }
    } else if (v - v.round()).abs() < 1e-9 {
        format!("{:.0}", v)
    } else {
        format!("{:.1}", v)
    }
}

fn legend(series: &[String], x: f64, y: f64, out: &mut String) {
    let mut cx = x;
    for (i, s) in series.iter().enumerate() {
        let _ = write!(
            out,
            "<rect x=\"{cx:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\">{}</text>",
            y - 10.0,
            COLORS[i % COLORS.len()],
            cx + 16.0,
            y,
            esc(s)
        );
        cx += 28.0 + 13.0 * s.chars().count() as f64;
    }
}

/// The SVG of a chart (values are drawn as floating point: pixels, not money).
pub fn svg(ch: &Chart) -> String {
    let f = |d: &Decimal| d.to_f64().unwrap_or(0.0);
    let mut out = String::new();
    let names: Vec<String> = ch.series.iter().map(|s| s.name.clone()).collect();
    match ch.kind {
        ChartKind::Columns => {
            let n = ch.categories.len().max(1);
            let (w, h, left, top, bottom) = ((80 + n * 70).clamp(520, 1100) as f64, 340.0, 70.0, 36.0, 50.0);
            let max = ch.series.iter().flat_map(|s| s.values.iter()).map(f).fold(0.0, f64::max);
            let (amax, step) = axis(max);
            let plot_h = h - top - bottom;
            let plot_w = w - left - 20.0;
            let _ = write!(
                out,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family='{}'>",
                FONT_STACK.replace('\'', "")
            );
            legend(&names, left, 18.0, &mut out);
            let mut v = 0.0;
            while v <= amax + 1e-9 {
                let y = top + plot_h - v / amax * plot_h;
                let _ = write!(
                    out,
                    "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e3e8ee\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#4a5866\">{}</text>",
                    left + plot_w,
                    left - 6.0,
                    y + 4.0,
                    short(v, &ch.unit)
                );
                v += step;
            }
            let group = plot_w / n as f64;
            let k = ch.series.len().max(1) as f64;
            let bar = (group * 0.75 / k).min(40.0);
            for (ci, cat) in ch.categories.iter().enumerate() {
                let gx = left + group * ci as f64 + (group - bar * k) / 2.0;
                for (si, s) in ch.series.iter().enumerate() {
                    let val = s.values.get(ci).map(f).unwrap_or(0.0).max(0.0);
                    let bh = val / amax * plot_h;
                    let _ = write!(
                        out,
                        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{bh:.1}\" fill=\"{}\"><title>{} {}：{}</title></rect>",
                        gx + bar * si as f64,
                        top + plot_h - bh,
                        COLORS[si % COLORS.len()],
                        esc(cat),
                        esc(&s.name),
                        s.values.get(ci).map(|d| yuan(*d)).unwrap_or_default()
                    );
                }
                let _ = write!(
                    out,
                    "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\">{}</text>",
                    left + group * (ci as f64 + 0.5),
                    top + plot_h + 18.0,
                    esc(cat)
                );
            }
            let _ = write!(
                out,
                "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#6b7785\"/><text x=\"8\" y=\"{:.1}\" font-size=\"11\" fill=\"#4a5866\">单位：{}</text></svg>",
                left + plot_w,
                top + plot_h,
                top + plot_h,
                h - 8.0,
                esc(&ch.unit)
            );
        }
        ChartKind::Bars | ChartKind::Stacked => {
            let n = ch.categories.len().max(1);
            let label_w =
                ch.categories.iter().map(|c| c.chars().count()).max().unwrap_or(4).clamp(4, 30) as f64 * 13.0;
            let (w, row_h, top) = (760.0f64.max(label_w + 420.0), 28.0, 34.0);
            let h = top + row_h * n as f64 + 34.0;
            let left = label_w + 16.0;
            let plot_w = w - left - 110.0;
            let totals: Vec<f64> = (0..ch.categories.len())
                .map(|i| {
                    if ch.kind == ChartKind::Stacked {
                        ch.series.iter().map(|s| s.values.get(i).map(f).unwrap_or(0.0).max(0.0)).sum()
                    } else {
                        ch.series.first().and_then(|s| s.values.get(i)).map(f).unwrap_or(0.0).max(0.0)
                    }
                })
                .collect();
            let max = totals.iter().copied().fold(0.0, f64::max);
            let amax = if max > 0.0 { max } else { 1.0 };
            let _ = write!(
                out,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family='{}'>",
                FONT_STACK.replace('\'', "")
            );
            if ch.kind == ChartKind::Stacked {
                legend(&names, left, 18.0, &mut out);
            }
            for (ci, cat) in ch.categories.iter().enumerate() {
                let y = top + row_h * ci as f64;
                let _ = write!(
                    out,
                    "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\">{}</text>",
                    left - 8.0,
                    y + row_h * 0.62,
                    esc(cat)
                );
                let mut x = left;
                let series: Vec<_> = if ch.kind == ChartKind::Stacked {
                    ch.series.iter().enumerate().collect()
                } else {
                    ch.series.iter().take(1).enumerate().collect()
                };
                for (si, s) in series {
                    let val = s.values.get(ci).map(f).unwrap_or(0.0).max(0.0);
                    let bw = val / amax * plot_w;
                    if bw > 0.0 {
                        let _ = write!(
                            out,
                            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}</title></rect>",
                            y + 4.0,
                            row_h - 8.0,
                            COLORS[si % COLORS.len()],
                            esc(&s.name)
                        );
                    }
                    x += bw;
                }
                let label = if ch.unit == "元" {
                    yuan(Decimal::try_from(totals[ci]).unwrap_or_default())
                } else {
                    short(totals[ci], "")
                };
                let _ = write!(
                    out,
                    "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11.5\" fill=\"#33404d\">{}</text>",
                    x + 6.0,
                    y + row_h * 0.62,
                    esc(&label)
                );
            }
            let _ = write!(
                out,
                "<text x=\"8\" y=\"{:.1}\" font-size=\"11\" fill=\"#4a5866\">单位：{}</text></svg>",
                h - 8.0,
                esc(&ch.unit)
            );
        }
    }
    out
}

fn figure(ch: &Chart) -> String {
    format!(
        "<figure class=\"chart\" id=\"chart-{}\"><figcaption>{}</figcaption>{}</figure>",
        esc(&ch.id),
        esc(&ch.title),
        svg(ch)
    )
}

fn head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body {{ font-family: {FONT_STACK}; }}{CSS}</style></head><body>\n",
        esc(title)
    )
}

/// A page with one chart only (for the PNG of a chart).
pub fn chart_page(ch: &Chart) -> String {
    format!("{}{}</body></html>\n", head(&ch.title), figure(ch))
}

/// The whole page.
pub fn page(r: &Report) -> String {
    let mut o = head(&r.title);
    let _ = writeln!(o, "<h1>{}</h1>", esc(&r.title));
    let _ = writeln!(
        o,
        "<p class=\"meta\">报告期间：{} 至 {}　　金额单位：元　　生成时间：{}</p>",
        r.period.start().format("%Y-%m-%d"),
        r.period.end().format("%Y-%m-%d"),
        esc(&r.generated_at)
    );
    let due = match r.due.due {
        Some(d) => format!("报送截止日：<b>{}</b>", d.format("%Y-%m-%d")),
        None => "报送截止日：<b>未定</b>".to_string(),
    };
    let _ = writeln!(
        o,
        "<div class=\"due\">{due}{}<br><span class=\"note\">依据：{}</span></div>",
        if r.due.note.is_empty() { String::new() } else { format!("（{}）", esc(&r.due.note)) },
        esc(&r.due_article)
    );
    for n in &r.notes {
        let _ = writeln!(o, "<p class=\"note\">注：{}</p>", esc(n));
    }
    if !r.charts.is_empty() {
        o.push_str("<h2>图表</h2><div class=\"charts\">\n");
        for ch in &r.charts {
            if !ch.categories.is_empty() {
                o.push_str(&figure(ch));
                o.push('\n');
            }
        }
        o.push_str("</div>\n");
    }
    for t in &r.tables {
        table_html(t, &mut o);
    }
    o.push_str(&provenance_html(r));
    o.push_str("</body></html>\n");
    o
}

fn provenance_html(r: &Report) -> String {
    let p = &r.provenance;
    let mut o = String::from("<h2 id=\"provenance\">数据来源</h2><table class=\"prov\"><tbody>\n");
    let kind = if p.kind == "store" { "夜间审核历史库" } else { "审核运行输出目录" };
    let _ = writeln!(o, "<tr><th>来源</th><td>{kind}：{}</td></tr>", esc(&p.locations.join("；")));
    let _ = writeln!(o, "<tr><th>运行编号</th><td>{}</td></tr>", esc(&p.run_ids.join("；")));
    let _ = writeln!(o, "<tr><th>截至日期</th><td>{}</td></tr>", esc(&p.as_of.join("；")));
    for f in &p.input_files {
        let _ = writeln!(
            o,
            "<tr><th>输入 {}</th><td>{}（{} 行）sha256 {}</td></tr>",
            esc(&f.table),
            esc(&f.path),
            f.rows,
            esc(&f.sha256)
        );
    }
    for (path, sha) in &r.input_files {
        let _ = writeln!(o, "<tr><th>报表输入</th><td>{}　sha256 {}</td></tr>", esc(path), esc(sha));
    }
    for (k, sha) in &p.versions {
        let _ = writeln!(o, "<tr><th>版本 {}</th><td>sha256 {}</td></tr>", esc(k), esc(sha));
    }
    o.push_str("</tbody></table>\n");
    o
}
