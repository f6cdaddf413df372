//! The person's settlements of a year as an inline SVG timeline: one bar per stay from its
//! begin to its end date, the case's own settlement highlighted, overlapping stays in red and
//! the gap in days between consecutive stays written beside them, so that overlaps and
//! readmissions show at a glance.

use chrono::{Datelike, NaiveDate};

use super::html::esc;
use crate::cases::SettlementRow;

fn day(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d").ok()
}

struct Stay<'a> {
    s: &'a SettlementRow,
    begin: NaiveDate,
    end: NaiveDate,
    own: bool,
}

const W: f64 = 1000.0;
const LEFT: f64 = 230.0;
const RIGHT: f64 = 20.0;
const ROW: f64 = 26.0;
const TOP: f64 = 28.0;

/// The timeline of `own` (the case's settlements) and `others` (the person's other
/// settlements that year); `None` when no dates can be read.
pub(crate) fn svg(own: &[&SettlementRow], others: &[SettlementRow]) -> Option<String> {
    let mut stays: Vec<Stay> = Vec::new();
    for (s, is_own) in own.iter().map(|s| (*s, true)).chain(others.iter().map(|s| (s, false))) {
        let Some(begin) = day(&s.begndate).or_else(|| day(&s.setl_date)) else { continue };
        let end = day(&s.enddate).unwrap_or(begin).max(begin);
        stays.push(Stay { s, begin, end, own: is_own });
    }
    if stays.is_empty() {
        return None;
    }
    stays.sort_by(|a, b| (a.begin, a.end, &a.s.setl_id).cmp(&(b.begin, b.end, &b.s.setl_id)));
    let year = stays.iter().find(|s| s.own).unwrap_or(&stays[0]).begin.year();
    let start = NaiveDate::from_ymd_opt(year, 1, 1)?;
    let stop = NaiveDate::from_ymd_opt(year + 1, 1, 1)?;
    // Stays reaching outside the year are clipped to it (their dates stay in the labels).
    let span = (stop - start).num_days() as f64;
    let x = |d: NaiveDate| -> f64 {
        let d = d.clamp(start, stop);
        LEFT + (d - start).num_days() as f64 / span * (W - LEFT - RIGHT)
    };
    let overlaps: Vec<bool> = (0..stays.len())
        .map(|i| {
            stays.iter().enumerate().any(|(j, o)| {
                j != i && o.begin < stays[i].end && stays[i].begin < o.end
                    || j != i && o.begin == stays[i].begin && o.end == stays[i].end
            })
        })
        .collect();
    let h = TOP + ROW * stays.len() as f64 + 24.0;
    let mut o = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{h}\" viewBox=\"0 0 {W} {h}\" role=\"img\" aria-label=\"{year}年结算时间轴\">"
    );
    o.push_str(&format!("<rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{h}\" fill=\"#fff\"/>"));
    for m in 1..=12u32 {
        let Some(d) = NaiveDate::from_ymd_opt(year, m, 1) else { continue };
        let mx = x(d);
        o.push_str(&format!(
            "<line x1=\"{mx:.1}\" y1=\"{}\" x2=\"{mx:.1}\" y2=\"{}\" stroke=\"#e2e8f0\"/><text x=\"{:.1}\" y=\"16\" font-size=\"11\" fill=\"#5b6b7d\">{m}月</text>",
            TOP - 6.0,
            h - 18.0,
            mx + 3.0
        ));
    }
    let mut prev_end: Option<NaiveDate> = None;
    for (i, st) in stays.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let x1 = x(st.begin);
        let x2 = x(st.end + chrono::Duration::days(1)).max(x1 + 3.0);
        let fill = if st.own { "#17406d" } else { "#7aa2cf" };
        let stroke = if overlaps[i] { "#d11a1a" } else { fill };
        let days = (st.end - st.begin).num_days() + 1;
        let title = format!(
            "{} {}～{}（{}天）医疗类别 {} 机构 {}{}",
            st.s.setl_id,
            st.begin,
            st.end,
            days,
            st.s.med_type,
            st.s.fixmedins_code,
            if overlaps[i] { "，与其他结算时间重叠" } else { "" }
        );
        o.push_str(&format!(
            "<text x=\"4\" y=\"{:.1}\" font-size=\"12\" fill=\"{}\"{}>{}</text>",
            y + 14.0,
            if st.own { "#17406d" } else { "#334155" },
            if st.own { " font-weight=\"700\"" } else { "" },
            esc(&format!("{} {}", st.s.setl_id, st.s.fixmedins_code))
        ));
        o.push_str(&format!(
            "<rect x=\"{x1:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"14\" rx=\"2\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{}\"><title>{}</title></rect>",
            y + 4.0,
            x2 - x1,
            if overlaps[i] { 2.5 } else { 1.0 },
            esc(&title)
        ));
        let mut note = format!("{}～{}", st.begin.format("%m-%d"), st.end.format("%m-%d"));
        if overlaps[i] {
            note.push_str(" 重叠");
        } else if let Some(pe) = prev_end {
            let gap = (st.begin - pe).num_days();
            if gap >= 0 {
                note.push_str(&format!(" 距上次出院{gap}天"));
            }
        }
        o.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"{}\">{}</text>",
            (x2 + 4.0).min(W - 150.0),
            y + 15.0,
            if overlaps[i] { "#d11a1a" } else { "#334155" },
            esc(&note)
        ));
        prev_end = Some(prev_end.map_or(st.end, |p| p.max(st.end)));
    }
    o.push_str(&format!(
        "<text x=\"4\" y=\"{:.1}\" font-size=\"11\" fill=\"#5b6b7d\">深色：本案结算　浅色：同年其他结算　红框：时间重叠</text></svg>",
        h - 4.0
    ));
    Some(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, b: &str, e: &str) -> SettlementRow {
        SettlementRow {
            setl_id: id.into(),
            psn_no: "P1".into(),
            psn_name: "张*".into(),
            certno: "4114**********1234".into(),
            fixmedins_code: "H1".into(),
            fixmedins_name: None,
            insu_admdvs: "411100".into(),
            med_type: "21".into(),
            setl_date: e.into(),
            begndate: b.into(),
            enddate: e.into(),
            setl_mode: "1".into(),
            medfee_sumamt: None,
            fund_pay: None,
            fields: vec![],
            case: None,
        }
    }

    #[test]
    fn overlaps_are_red_and_gaps_are_counted() {
        let own = row("S1", "2024-03-01", "2024-03-10");
        let others = vec![row("S2", "2024-03-05", "2024-03-12"), row("S3", "2024-03-20", "2024-03-25")];
        let s = svg(&[&own], &others).unwrap();
        assert_eq!(s.matches("stroke=\"#d11a1a\"").count(), 2, "{s}");
        assert!(s.contains("距上次出院8天"), "{s}");
        assert!(s.contains("<title>S1 2024-03-01～2024-03-10（10天）"), "{s}");
        assert!(svg(&[], &[row("S4", "bad", "bad")]).is_none());
    }
}
