//! The Excel workbook of a report (rust_xlsxwriter): a cover sheet (title, period, due date,
//! data sources) and one sheet per table with Chinese headings, amounts in 元 as numbers with
//! `#,##0.00`, and a 合计 row written as a `SUM` formula whose cached value is the exact
//! decimal total (Excel shows it without recalculating; a recalculation gives the same).
//!
//! Cell values are numbers in the file format (IEEE doubles); amounts are converted at this
//! boundary only, and every amount below 10^13 yuan round-trips to the cent.

use std::path::Path;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use rust_xlsxwriter::{Color, Format, FormatAlign, FormatBorder, Formula, Workbook, Worksheet};

use super::html::cell_text;
use super::model::{Cell, Report, Table};
use crate::error::Result;

fn xerr(e: rust_xlsxwriter::XlsxError) -> crate::error::Error {
    crate::other_err!("writing the Excel report: {e}")
}

/// Display width of a text (CJK characters count twice).
fn width(s: &str) -> f64 {
    s.chars().map(|c| if (c as u32) > 0x2E80 { 2.0 } else { 1.0 }).sum()
}

/// `A`, `B`, … `AA` for a zero-based column.
fn col_name(mut c: u16) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (c % 26) as u8);
        if c < 26 {
            break;
        }
        c = c / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

/// A sheet name Excel accepts: at most 31 characters, none of `[]:*?/\`, unique.
fn sheet_name(title: &str, used: &mut Vec<String>) -> String {
    // Without the section number (`一、`, `（一）`); full-width brackets are allowed.
    let t = title.split_once('、').map(|x| x.1).unwrap_or(title);
    let t = if t.starts_with('（') { t.split_once('）').map(|x| x.1).unwrap_or(t) } else { t };
    let mut base: String =
        t.chars().filter(|c| !"[]:*?/\\'".contains(*c)).take(28).collect::<String>().trim().to_string();
    if base.is_empty() {
        base = "表".into();
    }
    let mut name = base.clone();
    let mut k = 2;
    while used.contains(&name) {
        name = format!("{}{k}", base.chars().take(26).collect::<String>());
        k += 1;
    }
    used.push(name.clone());
    name
}

struct Formats {
    title: Format,
    head: Format,
    text: Format,
    money: Format,
    int: Format,
    pct: Format,
    total_text: Format,
    total_money: Format,
    total_int: Format,
    note: Format,
}

fn formats() -> Formats {
    let b = Format::new().set_border(FormatBorder::Thin);
    Formats {
        title: Format::new().set_bold().set_font_size(14),
        head: b
            .clone()
            .set_bold()
            .set_align(FormatAlign::Center)
            .set_text_wrap()
            .set_background_color(Color::RGB(0xE9EFF6)),
        text: b.clone(),
        money: b.clone().set_num_format("#,##0.00"),
        int: b.clone().set_num_format("#,##0"),
        pct: b.clone().set_num_format("0.00%"),
        total_text: b.clone().set_bold().set_background_color(Color::RGB(0xF7F9FB)),
        total_money: b
            .clone()
            .set_bold()
            .set_num_format("#,##0.00")
            .set_background_color(Color::RGB(0xF7F9FB)),
        total_int: b.set_bold().set_num_format("#,##0").set_background_color(Color::RGB(0xF7F9FB)),
        note: Format::new().set_font_color(Color::RGB(0x55606B)),
    }
}

fn num(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

fn write_cell(ws: &mut Worksheet, row: u32, col: u16, c: &Cell, f: &Formats) -> Result<()> {
    match c {
        Cell::Text(s) => ws.write_string_with_format(row, col, s, &f.text).map(|_| ()),
        Cell::Money(d) => ws.write_number_with_format(row, col, num(*d), &f.money).map(|_| ()),
        Cell::Int(i) => ws.write_number_with_format(row, col, *i as f64, &f.int).map(|_| ()),
        Cell::Pct(Some(d)) => ws.write_number_with_format(row, col, num(*d), &f.pct).map(|_| ()),
        Cell::Pct(None) => ws.write_string_with_format(row, col, "—", &f.text).map(|_| ()),
        Cell::Date(d) => {
            ws.write_string_with_format(row, col, d.format("%Y-%m-%d").to_string(), &f.text).map(|_| ())
        }
        Cell::Empty => ws.write_blank(row, col, &f.text).map(|_| ()),
    }
    .map_err(xerr)
}

fn table_sheet(ws: &mut Worksheet, t: &Table, f: &Formats) -> Result<()> {
    ws.write_string_with_format(0, 0, &t.title, &f.title).map_err(xerr)?;
    ws.write_string_with_format(1, 0, "金额单位：元", &f.note).map_err(xerr)?;
    let head_row = 2u32;
    let mut widths: Vec<f64> = t.columns.iter().map(|c| width(c).min(24.0)).collect();
    for (c, name) in t.columns.iter().enumerate() {
        ws.write_string_with_format(head_row, c as u16, name, &f.head).map_err(xerr)?;
    }
    let first = head_row + 1;
    for (i, r) in t.rows.iter().enumerate() {
        for (c, cell) in r.iter().enumerate() {
            write_cell(ws, first + i as u32, c as u16, cell, f)?;
            if let Some(w) = widths.get_mut(c) {
                *w = w.max(width(&cell_text(cell)) + 1.0);
            }
        }
    }
    let mut next = first + t.rows.len() as u32;
    if let Some(tot) = t.totals() {
        for (c, cell) in tot.iter().enumerate() {
            let col = c as u16;
            let range = |fmt: &Format, v: Decimal, ws: &mut Worksheet| -> Result<()> {
                let l = col_name(col);
                let text = if t.rows.is_empty() {
                    "=0".to_string()
                } else {
                    format!("=SUM({l}{}:{l}{})", first + 1, first + t.rows.len() as u32)
                };
                ws.write_formula_with_format(
                    next,
                    col,
                    Formula::new(text).set_result(v.normalize().to_string()),
                    fmt,
                )
                .map_err(xerr)?;
                Ok(())
            };
            match cell {
                Cell::Money(d) => range(&f.total_money, *d, ws)?,
                Cell::Int(i) => range(&f.total_int, Decimal::from(*i), ws)?,
                Cell::Text(s) => {
                    ws.write_string_with_format(next, col, s, &f.total_text).map_err(xerr)?;
                }
                _ => {
                    ws.write_blank(next, col, &f.total_text).map_err(xerr)?;
                }
            }
            if let Some(w) = widths.get_mut(c) {
                *w = w.max(width(&cell_text(cell)) + 1.0);
            }
        }
        next += 1;
    }
    if t.rows.is_empty() {
        ws.write_string_with_format(next, 0, "（本期无数据）", &f.note).map_err(xerr)?;
        next += 1;
    }
    for n in &t.notes {
        next += 1;
        ws.write_string_with_format(next, 0, format!("注：{n}"), &f.note).map_err(xerr)?;
    }
    for (c, w) in widths.iter().enumerate() {
        ws.set_column_width(c as u16, w.clamp(8.0, 60.0) + 1.0).map_err(xerr)?;
    }
    ws.set_freeze_panes(first, 0).map_err(xerr)?;
    Ok(())
}

/// Writes the workbook.
pub fn write(r: &Report, path: &Path) -> Result<()> {
    let mut wb = Workbook::new();
    let f = formats();
    let mut used = vec!["封面".to_string()];
    {
        let ws = wb.add_worksheet().set_name("封面").map_err(xerr)?;
        ws.write_string_with_format(0, 0, &r.title, &f.title).map_err(xerr)?;
        let mut lines: Vec<(String, String)> = vec![
            ("报告期间".into(), format!("{} 至 {}", r.period.start(), r.period.end())),
            (
                "报送截止日".into(),
                match r.due.due {
                    Some(d) => format!(
                        "{}{}",
                        d,
                        if r.due.note.is_empty() { String::new() } else { format!("（{}）", r.due.note) }
                    ),
                    None => format!("未定（{}）", r.due.note),
                },
            ),
            ("依据".into(), r.due_article.clone()),
            ("金额单位".into(), "元".into()),
            ("生成时间".into(), r.generated_at.clone()),
            ("数据来源".into(), r.provenance.locations.join("；")),
            ("运行编号".into(), r.provenance.run_ids.join("；")),
            ("截至日期".into(), r.provenance.as_of.join("；")),
        ];
        for fi in &r.provenance.input_files {
            lines.push((
                format!("输入 {}", fi.table),
                format!("{}（{} 行）sha256 {}", fi.path, fi.rows, fi.sha256),
            ));
        }
        for (p, h) in &r.input_files {
            lines.push(("报表输入".into(), format!("{p} sha256 {h}")));
        }
        for n in &r.notes {
            lines.push(("注".into(), n.clone()));
        }
        for (i, (k, v)) in lines.iter().enumerate() {
            ws.write_string_with_format(2 + i as u32, 0, k, &f.head).map_err(xerr)?;
            ws.write_string_with_format(2 + i as u32, 1, v, &f.text).map_err(xerr)?;
        }
        ws.set_column_width(0, 14).map_err(xerr)?;
        ws.set_column_width(1, 110).map_err(xerr)?;
    }
    for t in &r.tables {
        let name = sheet_name(&t.title, &mut used);
        let ws = wb.add_worksheet().set_name(&name).map_err(xerr)?;
        table_sheet(ws, t, &f)?;
    }
    wb.save(path).map_err(xerr)
}
