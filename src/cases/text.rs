//! The case store's texts for the terminal, in Chinese (reviewers read them).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use super::query::case_label;
use super::{AuditReport, CaseDetail, CaseRow, DeductionList, Estimate, EstimateLine, Interval, MergeReport};

/// Rule titles and category names.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    pub rules: HashMap<String, String>,
    pub categories: BTreeMap<String, String>,
}

impl Labels {
    /// The shipped rules' and checks' Chinese titles and the category names of the sample
    /// configuration; whatever cannot be loaded is shown by its code.
    pub fn load_default() -> Labels {
        let mut rules: HashMap<String, String> = HashMap::new();
        if let Ok(set) = crate::engine::RuleSet::load_default() {
            for r in &set.rules {
                rules.insert(r.id.clone(), r.title_zh.clone());
            }
        }
        for c in crate::builtin::CHECKS.iter() {
            rules.insert(c.id.to_string(), c.title_zh.to_string());
        }
        let categories =
            crate::sample::SampleConfig::load_default().map(|c| c.category_label).unwrap_or_default();
        Labels { rules, categories }
    }
    fn rule(&self, id: &str) -> String {
        match self.rules.get(id) {
            Some(t) => format!("{id} {t}"),
            None => id.to_string(),
        }
    }
    fn category<'a>(&'a self, c: &'a str) -> &'a str {
        self.categories.get(c).map_or(c, String::as_str)
    }
}

/// Display width: CJK and full-width characters take two columns.
fn width(s: &str) -> usize {
    s.chars().map(|c| if (c as u32) >= 0x1100 { 2 } else { 1 }).sum()
}

fn pad(s: &str, w: usize) -> String {
    let n = width(s);
    if n >= w { s.to_string() } else { format!("{s}{}", " ".repeat(w - n)) }
}

/// A table with a header row, columns padded to their widest cell.
fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = head.iter().map(|h| width(h)).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(width(c));
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<String>| -> String {
        let n = cells.len();
        cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| if i + 1 == n { c } else { pad(&c, w[i]) })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let _ = writeln!(out, "{}", line(head.iter().map(|s| s.to_string()).collect()));
    for r in rows {
        let _ = writeln!(out, "{}", line(r.clone()));
    }
    out
}

fn entity(t: &str) -> &str {
    match t {
        "settlement" => "结算",
        "person" => "人员",
        "facility" => "机构",
        o => o,
    }
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

/// `medaudit cases list`.
pub fn case_list(rows: &[CaseRow]) -> String {
    if rows.is_empty() {
        return "没有符合条件的案件。\n".into();
    }
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let who = match r.entity_type.as_str() {
                "settlement" => r.entity_id.clone(),
                _ => format!("{}（{} 笔结算）", r.entity_id, r.settlements),
            };
            vec![
                case_label(r.case_id),
                entity(&r.entity_type).to_string(),
                r.status.label().to_string(),
                who,
                opt(&r.fixmedins_code).to_string(),
                opt(&r.insu_admdvs).to_string(),
                opt(&r.first_date).to_string(),
                if r.rules.is_empty() { "（已不再预警）".to_string() } else { r.rules.join(",") },
                r.amount_at_risk.to_string(),
                r.deduct_amount.map(|d| d.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    let mut out = table(
        &["案件", "类型", "状态", "结算/对象", "机构", "参保地", "结算日期", "规则", "风险金额", "确认金额"],
        &body,
    );
    let total: rust_decimal::Decimal = rows.iter().map(|r| r.amount_at_risk).sum();
    let _ = writeln!(out, "共 {} 件，风险金额合计 {} 元", rows.len(), total);
    out
}

/// `medaudit cases show`.
pub fn case_detail(d: &CaseDetail, labels: &Labels) -> String {
    let mut out = String::new();
    let w = &mut out;
    if let Some(c) = &d.case {
        let r = &c.row;
        let _ = writeln!(
            w,
            "案件 {}（{}：{}）  状态：{}",
            case_label(r.case_id),
            entity(&r.entity_type),
            r.entity_id,
            r.status.label()
        );
        let _ = writeln!(w, "  风险金额：{} 元；创建于审核结果 {}", r.amount_at_risk, c.created_run_id);
        if let Some(rv) = &r.reviewer {
            let _ = writeln!(w, "  复审员：{rv}（开始于 {}）", opt(&c.review_started));
        }
        if let Some(a) = r.deduct_amount {
            let _ = writeln!(
                w,
                "  确认违规：{} 元，{} 于 {}；{}；追回对象：{}",
                a,
                opt(&r.decided_by),
                opt(&r.decided_on),
                opt(&c.decision_note),
                match (r.recover_from.as_deref(), &r.recover_party) {
                    (Some("person"), Some(p)) => format!("参保人 {p}（手工报销）"),
                    (_, Some(p)) => format!("机构 {p}（下月结算资金中扣除）"),
                    _ => String::new(),
                }
            );
            for (party, on, by, rf) in &c.confirmations {
                let label = match party.as_str() {
                    "insurer" => "保险公司",
                    "agency" => "医保经办机构",
                    _ => "定点医疗机构",
                };
                match on {
                    Some(day) => {
                        let _ = writeln!(w, "    {label}确认：{day}（{}，{}）", opt(by), opt(rf));
                    }
                    None => {
                        let _ = writeln!(w, "    {label}确认：未登记");
                    }
                }
            }
        }
        if let Some(reason) = &r.dismiss_reason {
            let _ = writeln!(w, "  排除：{reason}（{} 于 {}）", opt(&r.decided_by), opt(&r.decided_on));
        }
        if let Some(a) = &c.appeal_on {
            let _ = writeln!(w, "  申诉：{a}，{}；处理：{}", opt(&c.appeal_reason), opt(&c.appeal_outcome));
        }
        if let Some(m) = &r.deducted_month {
            let _ = writeln!(w, "  已在 {m} 结算资金中扣除");
        }
        if let Some(day) = &c.recovered_on {
            let _ = writeln!(w, "  已于 {day} 向参保人追回");
        }
        for (run, stratum, p, score, reason) in &d.samples {
            let _ =
                writeln!(w, "  抽样：{run}，层 {stratum}，入样概率 {p:.4}，风险分 {score:.2}（{reason}）");
        }
    }
    if let Some(s) = &d.settlement {
        let _ = writeln!(w, "\n结算 {}", s.setl_id);
        for (k, v) in &s.fields {
            let label = crate::schema::SETL.field(k).map_or(k.as_str(), |f| f.label);
            let _ = writeln!(w, "  {}：{}", label, v);
        }
        if let Some(n) = &s.fixmedins_name {
            let _ = writeln!(w, "  定点医药机构名称：{n}");
        }
    }
    if !d.fee_lines.is_empty() {
        let _ = writeln!(w, "\n费用明细（* 为预警所依据的明细）");
        let body: Vec<Vec<String>> = d
            .fee_lines
            .iter()
            .map(|f| {
                let g =
                    |n: &str| f.fields.iter().find(|(k, _)| k == n).map_or(String::new(), |(_, v)| v.clone());
                vec![
                    format!("{}{}", if f.cited { "*" } else { " " }, f.feedetl_sn),
                    g("fee_ocur_time"),
                    g("med_list_codg"),
                    g("med_list_name"),
                    g("med_chrgitm_type"),
                    g("chrgitm_lv"),
                    g("cnt"),
                    g("pric"),
                    g("det_item_fee_sumamt"),
                ]
            })
            .collect();
        out.push_str(&table(
            &["流水号", "发生时间", "目录编码", "名称", "类别", "等级", "数量", "单价", "金额"],
            &body,
        ));
    }
    let w = &mut out;
    if !d.findings.is_empty() {
        let _ = writeln!(w, "\n预警");
        for f in &d.findings {
            let state = if f.status == "active" {
                format!("有效（最近 {}）", f.last_run_id)
            } else {
                format!("已不再预警（{}）", f.status_run_id)
            };
            let _ = writeln!(
                w,
                "  {} [{}，{}] 结算 {} 风险金额 {} 元，{}",
                labels.rule(&f.rule_id),
                labels.category(&f.category),
                f.severity,
                f.setl_id,
                f.amount_at_risk,
                state
            );
            let _ = writeln!(w, "    {}", f.detail);
            if let Some(sns) = &f.feedetl_sns {
                let _ = writeln!(w, "    依据明细：{sns}");
            }
        }
    }
    if !d.benefit.is_empty() {
        let _ = writeln!(w, "\n待遇核算");
        for b in &d.benefit {
            let _ = writeln!(
                w,
                "  {}：实付 {} 元，应付 {} 元，差额 {} 元（{}）",
                if b.fund == "hifmi" { "大病保险" } else { "大额补助" },
                b.recorded,
                b.expected,
                b.diff,
                b.status
            );
        }
    }
    if !d.linked_cases.is_empty() {
        let _ = writeln!(w, "\n涉及本结算的其他案件");
        for c in &d.linked_cases {
            let _ = writeln!(
                w,
                "  {}（{}：{}）{}，规则 {}，风险金额 {} 元",
                case_label(c.case_id),
                entity(&c.entity_type),
                c.entity_id,
                c.status.label(),
                c.rules.join(","),
                c.amount_at_risk
            );
        }
    }
    let settlement_rows = |rows: &[super::SettlementRow]| -> String {
        let body: Vec<Vec<String>> = rows
            .iter()
            .map(|s| {
                vec![
                    s.setl_id.clone(),
                    s.setl_date.clone(),
                    s.fixmedins_code.clone(),
                    s.med_type.clone(),
                    format!("{}~{}", s.begndate, s.enddate),
                    s.medfee_sumamt.map(|d| d.to_string()).unwrap_or_default(),
                    s.fund_pay.map(|d| d.to_string()).unwrap_or_default(),
                    s.case.map(|(id, st)| format!("{} {}", case_label(id), st.label())).unwrap_or_default(),
                ]
            })
            .collect();
        table(
            &["结算ID", "结算日期", "机构", "医疗类别", "就诊期间", "医疗费总额", "基金支付", "案件"],
            &body,
        )
    };
    if !d.case_settlements.is_empty() {
        let _ = writeln!(w, "\n本案涉及的结算（{} 笔）", d.case_settlements.len());
        out.push_str(&settlement_rows(&d.case_settlements));
    }
    if !d.other_settlements.is_empty() {
        let _ = writeln!(out, "\n该参保人当年的其他结算（{} 笔）", d.other_settlements.len());
        out.push_str(&settlement_rows(&d.other_settlements));
    }
    if !d.history.is_empty() {
        let _ = writeln!(out, "\n处理记录");
        for h in &d.history {
            let _ = writeln!(out, "  {} {} {} {}", h.at, h.user, h.action, h.detail);
        }
    }
    if !d.unmasked {
        let _ = writeln!(out, "\n（证件号码和姓名已脱敏）");
    }
    out
}

/// `medaudit cases merge`.
pub fn merge_report(r: &MergeReport) -> String {
    if r.already_merged {
        return format!("审核结果 {} 已合并过，未做任何改动。\n", r.run_id);
    }
    format!(
        "已合并审核结果 {}：预警 {} 条（新增 {}，更新 {}，已不再预警 {}，重新预警 {}），新建案件 {} 件，\
         复审抽样 {} 笔（新纳入抽样的案件 {} 件），复制结算 {} 笔、费用明细 {} 条。\n",
        r.run_id,
        r.findings_read,
        r.new_findings,
        r.updated_findings,
        r.no_longer_flagged,
        r.reflagged,
        r.new_cases,
        r.sample_rows,
        r.newly_sampled,
        r.settlements_copied,
        r.fee_lines_copied
    )
}

/// `medaudit deductions`.
pub fn deduction_list(d: &DeductionList) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} 结算资金扣款清单（三方确认已于本月前完成）", d.month);
    if d.facilities.is_empty() {
        let _ = writeln!(out, "  本月无应扣款项。");
    }
    for f in &d.facilities {
        let _ = writeln!(
            out,
            "\n{} {}：{} 件，合计 {} 元",
            f.fixmedins_code,
            opt(&f.fixmedins_name),
            f.lines.len(),
            f.total
        );
        let body: Vec<Vec<String>> = f
            .lines
            .iter()
            .map(|l| {
                vec![
                    case_label(l.case_id),
                    format!("{}:{}", entity(&l.entity_type), l.entity_id),
                    l.rules.join(","),
                    l.amount.to_string(),
                    l.confirmed_on.clone(),
                    opt(&l.decided_by).to_string(),
                    if l.deducted { "已扣款".into() } else { "待扣款".into() },
                ]
            })
            .collect();
        out.push_str(&table(&["案件", "对象", "规则", "扣款金额", "确认完成", "复审员", "状态"], &body));
    }
    let _ = writeln!(out, "\n机构扣款合计 {} 元", d.total);
    if !d.recoveries.is_empty() {
        let _ = writeln!(out, "\n向参保人追回（手工报销）");
        let body: Vec<Vec<String>> = d
            .recoveries
            .iter()
            .map(|r| {
                vec![
                    case_label(r.case_id),
                    r.psn_no.clone(),
                    opt(&r.psn_name).to_string(),
                    r.amount.to_string(),
                    r.confirmed_on.clone(),
                    r.recovered_on
                        .clone()
                        .map(|d| format!("已于 {d} 追回"))
                        .unwrap_or_else(|| "待追回".into()),
                ]
            })
            .collect();
        out.push_str(&table(&["案件", "人员编号", "姓名", "金额", "确认完成", "状态"], &body));
    }
    if !d.pending.is_empty() {
        let _ = writeln!(out, "\n尚不能扣款");
        for p in &d.pending {
            let why = if p.status == super::Status::Appealed {
                "申诉处理中".to_string()
            } else if !p.missing.is_empty() {
                format!("缺{}确认", p.missing.iter().map(|x| x.label()).collect::<Vec<_>>().join("、"))
            } else {
                format!("{} 完成确认，下月扣除", opt(&p.confirmed_on))
            };
            let _ = writeln!(
                out,
                "  {} {} {} 元：{}",
                case_label(p.case_id),
                opt(&p.recover_party),
                p.amount,
                why
            );
        }
    }
    out
}

fn iv(i: &Interval, digits: usize, scale: f64) -> String {
    match (i.low, i.high) {
        (Some(l), Some(h)) => {
            format!("{:.d$}（{:.d$}～{:.d$}）", i.estimate * scale, l * scale, h * scale, d = digits)
        }
        _ => format!("{:.d$}（区间无法估计）", i.estimate * scale, d = digits),
    }
}

fn estimate_line(out: &mut String, l: &EstimateLine) {
    let name = if l.locality.is_empty() { "合计".to_string() } else { format!("参保地 {}", l.locality) };
    let _ = writeln!(
        out,
        "\n{name}：结算 {} 笔，抽样 {}，已复审 {}，确认违规 {}",
        l.population, l.drawn, l.reviewed, l.confirmed
    );
    let _ = writeln!(out, "  违规率 %：{}", iv(&l.rate, 2, 100.0));
    let _ = writeln!(out, "  违规结算数：{}", iv(&l.violations, 0, 1.0));
    let _ = writeln!(out, "  涉及金额（元）：{}", iv(&l.amount, 2, 1.0));
    let _ = writeln!(out, "  初审未预警而违规的结算数：{}", iv(&l.missed_violations, 0, 1.0));
    let _ = writeln!(out, "  初审未预警而违规的金额（元）：{}", iv(&l.missed_amount, 2, 1.0));
    if !l.unreviewed_strata.is_empty() {
        let _ = writeln!(out, "  尚无复审结论的层（估计未覆盖）：{}", l.unreviewed_strata.join("，"));
    }
}

/// `medaudit estimate`.
pub fn estimate(e: &Estimate, labels: &Labels) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "审核结果 {} 的复审抽样推断（Horvitz–Thompson，置信水平 {:.0}%）",
        e.run_id,
        e.confidence * 100.0
    );
    for l in &e.localities {
        estimate_line(&mut out, l);
    }
    estimate_line(&mut out, &e.overall);
    if !e.rules.is_empty() {
        let _ = writeln!(out, "\n规则精确率（确认违规 / 已复审）");
        let body: Vec<Vec<String>> = e
            .rules
            .iter()
            .map(|r| {
                vec![
                    labels.rule(&r.rule_id),
                    labels.category(&r.category).to_string(),
                    r.reviewed.to_string(),
                    r.confirmed.to_string(),
                    r.precision.map(|p| format!("{:.1}%", p * 100.0)).unwrap_or_default(),
                ]
            })
            .collect();
        out.push_str(&table(&["规则", "类别", "已复审", "确认违规", "精确率"], &body));
    }
    out
}

/// `medaudit audit verify`.
pub fn audit_report(r: &AuditReport) -> String {
    if r.ok() {
        format!("审计日志完整：{} 条，哈希链无误。末条哈希 {}\n", r.entries, r.head)
    } else {
        let mut out = format!("审计日志被改动：{} 条中发现 {} 处异常\n", r.entries, r.broken.len());
        for (seq, why) in &r.broken {
            let _ = writeln!(out, "  第 {seq} 条：{why}");
        }
        out
    }
}
