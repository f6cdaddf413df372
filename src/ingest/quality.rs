//! Data-quality checks on accepted rows: rows that are well-formed but contradict themselves
//! are evidence, not garbage. They are accepted and reported as `data_quality` findings.
//! Checks across tables (fee lines against their settlement) are SQL rules in
//! `queries/data_quality/`.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Date32Type, Decimal128Type};
use rust_decimal::Decimal;

use super::parse;
use crate::findings::{Finding, Severity};
use crate::mask;

fn str_col<'a>(b: &'a RecordBatch, name: &str) -> Option<&'a arrow::array::StringArray> {
    b.column_by_name(name).map(|c| c.as_string::<i32>())
}

fn dec_col<'a>(b: &'a RecordBatch, name: &str) -> &'a arrow::array::PrimitiveArray<Decimal128Type> {
    b.column_by_name(name).expect("contract column").as_primitive::<Decimal128Type>()
}

fn money(v: i128) -> Decimal {
    Decimal::from_i128_with_scale(v, 2)
}

fn finding(
    b: &RecordBatch,
    r: usize,
    rule: &str,
    severity: Severity,
    amount: Decimal,
    detail: String,
) -> Finding {
    let s = |n: &str| str_col(b, n).filter(|c| !c.is_null(r)).map(|c| c.value(r).to_string());
    let setl_id = s("setl_id").unwrap_or_default();
    Finding {
        psn_no: s("psn_no"),
        fixmedins_code: s("fixmedins_code"),
        rule_id: rule.to_string(),
        category: "data_quality",
        severity,
        amount_at_risk: amount,
        detail,
        entity_type: "settlement",
        entity_id: setl_id.clone(),
        feedetl_sns: None,
        setl_id,
    }
}

/// Checks accepted settlements: the amount identity, the order of the dates and the ID
/// number against birth date and sex.
pub fn check_setl(b: &RecordBatch) -> Vec<Finding> {
    let mut out = Vec::new();
    let sum = dec_col(b, "medfee_sumamt");
    let parts =
        ["fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt"].map(|n| dec_col(b, n));
    let begn = b.column_by_name("begndate").expect("contract column").as_primitive::<Date32Type>();
    let end = b.column_by_name("enddate").expect("contract column").as_primitive::<Date32Type>();
    let cert_type = str_col(b, "psn_cert_type");
    let certno = str_col(b, "certno").expect("contract column");
    let gend = str_col(b, "gend").expect("contract column");
    let brdy = b.column_by_name("brdy").expect("contract column").as_primitive::<Date32Type>();
    for r in 0..b.num_rows() {
        let total: i128 = parts.iter().map(|p| p.value(r)).sum();
        if total != sum.value(r) {
            let diff = money(sum.value(r) - total);
            out.push(finding(
                b,
                r,
                "DQ001",
                Severity::Medium,
                diff.abs(),
                format!(
                    "医疗费总额{}元≠全自费{}+超限价自费{}+先行自付{}+符合政策范围{}（差额{}元）",
                    money(sum.value(r)),
                    money(parts[0].value(r)),
                    money(parts[1].value(r)),
                    money(parts[2].value(r)),
                    money(parts[3].value(r)),
                    diff
                ),
            ));
        }
        if end.value(r) < begn.value(r) {
            let d = |v: i32| parse::from_days(v).map(|d| d.to_string()).unwrap_or_default();
            out.push(finding(
                b,
                r,
                "DQ002",
                Severity::Low,
                Decimal::ZERO,
                format!("结束日期{}早于开始日期{}", d(end.value(r)), d(begn.value(r))),
            ));
        }
        let ct = cert_type.filter(|c| !c.is_null(r)).map_or("", |c| c.value(r));
        if ct.is_empty() || ct == "01" {
            let problems =
                crate::idcard::problems(certno.value(r), parse::from_days(brdy.value(r)), gend.value(r));
            if !problems.is_empty() {
                out.push(finding(
                    b,
                    r,
                    "DQ004",
                    Severity::Medium,
                    Decimal::ZERO,
                    format!("居民身份证号码{}：{}", mask::certno(certno.value(r)), problems.join("，")),
                ));
            }
        }
    }
    out
}

/// A fee line whose amount is not `cnt × pric` to the cent.
pub struct LineMismatch {
    pub setl_id: String,
    pub psn_no: String,
    pub feedetl_sn: String,
    pub recorded: Decimal,
    pub computed: Decimal,
}

/// Checks accepted fee lines: `det_item_fee_sumamt = cnt × pric`, rounded half away from
/// zero to the cent.
pub fn check_fee(b: &RecordBatch) -> Vec<LineMismatch> {
    let cnt = dec_col(b, "cnt");
    let pric = dec_col(b, "pric");
    let amt = dec_col(b, "det_item_fee_sumamt");
    let mut out = Vec::new();
    for r in 0..b.num_rows() {
        // cnt has 4 places and pric 6: the product has 10 (at most 32 digits, no overflow).
        let product = cnt.value(r) * pric.value(r);
        let cents = round_div(product, 100_000_000);
        if cents != amt.value(r) {
            let s = |n: &str| str_col(b, n).map(|c| c.value(r).to_string()).unwrap_or_default();
            out.push(LineMismatch {
                setl_id: s("setl_id"),
                psn_no: s("psn_no"),
                feedetl_sn: s("feedetl_sn"),
                recorded: money(amt.value(r)),
                computed: money(cents),
            });
        }
    }
    out
}

/// Integer division rounding half away from zero.
fn round_div(v: i128, d: i128) -> i128 {
    let q = v / d;
    let rem = v % d;
    if rem.abs() * 2 >= d { q + v.signum() } else { q }
}

/// One finding per settlement from its mismatching lines.
pub fn fee_line_findings(mut lines: Vec<LineMismatch>) -> Vec<Finding> {
    lines.sort_by(|a, b| a.setl_id.cmp(&b.setl_id).then_with(|| a.feedetl_sn.cmp(&b.feedetl_sn)));
    let mut out: Vec<Finding> = Vec::new();
    for group in lines.chunk_by(|a, b| a.setl_id == b.setl_id) {
        let diff: Decimal = group.iter().map(|l| (l.recorded - l.computed).abs()).sum();
        let shown: Vec<String> = group
            .iter()
            .take(5)
            .map(|l| format!("{}：记录{}元，数量×单价={}元", l.feedetl_sn, l.recorded, l.computed))
            .collect();
        let more = if group.len() > 5 { format!("等{}条", group.len()) } else { String::new() };
        out.push(Finding {
            setl_id: group[0].setl_id.clone(),
            psn_no: Some(group[0].psn_no.clone()),
            fixmedins_code: None,
            rule_id: "DQ005".into(),
            category: "data_quality",
            severity: Severity::Low,
            amount_at_risk: diff,
            detail: format!("明细金额不等于数量×单价：{}{}", shown.join("；"), more),
            entity_type: "settlement",
            entity_id: group[0].setl_id.clone(),
            feedetl_sns: Some(group.iter().map(|l| l.feedetl_sn.as_str()).collect::<Vec<_>>().join(";")),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::round_div;

    #[test]
    fn rounding_half_away_from_zero() {
        assert_eq!(round_div(1_250_000_000, 100_000_000), 13);
        assert_eq!(round_div(1_249_999_999, 100_000_000), 12);
        assert_eq!(round_div(-1_250_000_000, 100_000_000), -13);
        assert_eq!(round_div(-1_249_999_999, 100_000_000), -12);
    }
}
