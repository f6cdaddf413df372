//! Exports of a filtered set of cases for investigators: CSV (UTF-8 with BOM, so that Excel
//! shows Chinese), Excel (.xlsx) and Parquet, one row per case.
//!
//! ID numbers and names are masked (`4114**********1234`, `张*`) unless an investigator
//! states a purpose (河南大病合同 第十条、第三十四条(六)，漯河大额合同 第八条: the insurer is liable
//! for any leak). Every export is logged: who, when, filter, rows, masked or not, purpose,
//! and the file's SHA-256. Files are written beside the target and renamed into place;
//! unmasked files are readable by their owner only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Decimal128Builder, Int64Builder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rusqlite::TransactionBehavior;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use super::auth::{Actor, Permission};
use super::query::{CaseRow, Filter, case_label, list_rows};
use super::{CaseError, CaseResult, Store, audit, restrict_permissions};

/// The format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Xlsx,
    Parquet,
}

impl ExportFormat {
    /// From the file extension (`.csv`, `.xlsx`, `.parquet`).
    pub fn from_path(p: &Path) -> Option<ExportFormat> {
        match p.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(ExportFormat::Csv),
            "xlsx" => Some(ExportFormat::Xlsx),
            "parquet" => Some(ExportFormat::Parquet),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Xlsx => "xlsx",
            ExportFormat::Parquet => "parquet",
        }
    }
}

/// An authorised unmasked export: why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmask {
    pub purpose: String,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExportReport {
    pub path: PathBuf,
    pub format: ExportFormat,
    pub rows: usize,
    pub masked: bool,
    pub sha256: String,
}

/// The columns: (name, Chinese header for Excel).
pub const COLUMNS: &[(&str, &str)] = &[
    ("case_id", "案件编号"),
    ("entity_type", "案件类型"),
    ("entity_id", "对象"),
    ("status", "状态"),
    ("setl_id", "结算ID"),
    ("psn_no", "人员编号"),
    ("psn_name", "姓名"),
    ("certno", "证件号码"),
    ("fixmedins_code", "定点医药机构编号"),
    ("fixmedins_name", "定点医药机构名称"),
    ("insu_admdvs", "参保地医保区划"),
    ("med_type", "医疗类别"),
    ("setl_mode", "结算方式"),
    ("first_date", "结算日期（起）"),
    ("last_date", "结算日期（止）"),
    ("settlements", "结算笔数"),
    ("medfee_sumamt", "医疗费总额"),
    ("fund_pay", "基金支付"),
    ("rules", "预警规则"),
    ("categories", "预警类别"),
    ("amount_at_risk", "风险金额"),
    ("deduct_amount", "确认扣款金额"),
    ("recover_from", "追回对象"),
    ("reviewer", "复审员"),
    ("decided_on", "结论日期"),
    ("dismiss_reason", "排除理由"),
    ("deducted_month", "扣款月份"),
    ("details", "预警详情"),
];

const MONEY: [&str; 4] = ["medfee_sumamt", "fund_pay", "amount_at_risk", "deduct_amount"];

/// The Arrow schema of an export.
pub fn export_schema() -> SchemaRef {
    Arc::new(Schema::new(
        COLUMNS
            .iter()
            .map(|(n, _)| match *n {
                "settlements" => Field::new(*n, DataType::Int64, false),
                n if MONEY.contains(&n) => Field::new(n, DataType::Decimal128(18, 2), true),
                n => Field::new(n, DataType::Utf8, true),
            })
            .collect::<Vec<_>>(),
    ))
}

fn entity_label(t: &str) -> &str {
    match t {
        "settlement" => "结算",
        "person" => "人员",
        "facility" => "机构",
        other => other,
    }
}

fn text_of(r: &CaseRow, col: &str) -> Option<String> {
    match col {
        "case_id" => Some(case_label(r.case_id)),
        "entity_type" => Some(entity_label(&r.entity_type).to_string()),
        "entity_id" => Some(r.entity_id.clone()),
        "status" => Some(r.status.label().to_string()),
        "setl_id" => r.setl_id.clone(),
        "psn_no" => r.psn_no.clone(),
        "psn_name" => r.psn_name.clone(),
        "certno" => r.certno.clone(),
        "fixmedins_code" => r.fixmedins_code.clone(),
        "fixmedins_name" => r.fixmedins_name.clone(),
        "insu_admdvs" => r.insu_admdvs.clone(),
        "med_type" => r.med_type.clone(),
        "setl_mode" => r.setl_mode.clone(),
        "first_date" => r.first_date.clone(),
        "last_date" => r.last_date.clone(),
        "rules" => Some(r.rules.join(";")),
        "categories" => Some(r.categories.join(";")),
        "recover_from" => r.recover_party.as_ref().map(|p| {
            format!("{}:{p}", if r.recover_from.as_deref() == Some("person") { "参保人" } else { "机构" })
        }),
        "reviewer" => r.reviewer.clone(),
        "decided_on" => r.decided_on.clone(),
        "dismiss_reason" => r.dismiss_reason.clone(),
        "deducted_month" => r.deducted_month.clone(),
        "details" => Some(r.details.clone()),
        _ => None,
    }
}

fn money_of(r: &CaseRow, col: &str) -> Option<Decimal> {
    match col {
        "medfee_sumamt" => r.medfee_sumamt,
        "fund_pay" => r.fund_pay,
        "amount_at_risk" => Some(r.amount_at_risk),
        "deduct_amount" => r.deduct_amount,
        _ => None,
    }
}

/// The rows as one record batch of [`export_schema`].
pub fn to_batch(rows: &[CaseRow]) -> CaseResult<RecordBatch> {
    let schema = export_schema();
    let mut cols: Vec<ArrayRef> = Vec::new();
    for (name, _) in COLUMNS {
        if *name == "settlements" {
            let mut b = Int64Builder::with_capacity(rows.len());
            rows.iter().for_each(|r| b.append_value(r.settlements));
            cols.push(Arc::new(b.finish()));
        } else if MONEY.contains(name) {
            let mut b = Decimal128Builder::with_capacity(rows.len());
            for r in rows {
                b.append_option(money_of(r, name).map(|d| crate::findings::decimal_to_i128(d, 2)));
            }
            cols.push(Arc::new(
                b.finish().with_precision_and_scale(18, 2).map_err(|e| CaseError::Io(e.to_string()))?,
            ));
        } else {
            let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 16);
            rows.iter().for_each(|r| b.append_option(text_of(r, name)));
            cols.push(Arc::new(b.finish()));
        }
    }
    RecordBatch::try_new(schema, cols).map_err(|e| CaseError::Io(format!("building the export: {e}")))
}

fn write_xlsx(path: &Path, rows: &[CaseRow]) -> CaseResult<()> {
    use rust_xlsxwriter::{Format, Workbook};
    if rows.len() >= 1_048_576 {
        return Err(CaseError::Invalid(format!(
            "{} 行超出 Excel 单表上限（1048575 行），请缩小筛选范围或导出 CSV/Parquet",
            rows.len()
        )));
    }
    let x = |e: rust_xlsxwriter::XlsxError| CaseError::Io(format!("writing {}: {e}", path.display()));
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let money = Format::new().set_num_format("#,##0.00");
    let ws = wb.add_worksheet();
    ws.set_name("案件").map_err(x)?;
    for (c, (_, label)) in COLUMNS.iter().enumerate() {
        let c = c as u16;
        ws.write_string_with_format(0, c, *label, &bold).map_err(x)?;
        ws.set_column_width(c, 14).map_err(x)?;
    }
    for (i, r) in rows.iter().enumerate() {
        let row = (i + 1) as u32;
        for (c, (name, _)) in COLUMNS.iter().enumerate() {
            let c = c as u16;
            if *name == "settlements" {
                ws.write_number(row, c, r.settlements as f64).map_err(x)?;
            } else if MONEY.contains(name) {
                // Excel stores numbers as binary floating point; the amounts are exact to the fen
                // (well below 2^53 fen) and shown with two decimals.
                if let Some(d) = money_of(r, name) {
                    let v: f64 = d.to_string().parse().unwrap_or(0.0);
                    ws.write_number_with_format(row, c, v, &money).map_err(x)?;
                }
            } else if let Some(t) = text_of(r, name) {
                ws.write_string(row, c, t).map_err(x)?;
            }
        }
    }
    ws.set_freeze_panes(1, 0).map_err(x)?;
    wb.save(path).map_err(x)
}

impl Store {
    /// Exports the cases matching `filter` to `path` in `format`. Masked unless `unmask`
    /// is given, which needs the investigator role and a non-empty purpose.
    pub fn export(
        &self,
        actor: &Actor,
        filter: &Filter,
        path: &Path,
        format: ExportFormat,
        unmask: Option<&Unmask>,
    ) -> CaseResult<ExportReport> {
        actor.require(Permission::Export)?;
        if let Some(u) = unmask {
            actor.require(Permission::Unmask)?;
            if u.purpose.trim().is_empty() {
                return Err(CaseError::Invalid("未脱敏导出须说明用途（--purpose）".into()));
            }
        }
        let rows = list_rows(&self.conn, filter, unmask.is_some())?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| CaseError::Invalid(format!("导出文件名不可用：{}", path.display())))?;
        let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| CaseError::Io(format!("creating {}: {e}", parent.display())))?;
        }
        let written = (|| -> CaseResult<()> {
            match format {
                ExportFormat::Csv => {
                    crate::output::write_csv(&tmp, &export_schema(), &[to_batch(&rows)?])?;
                }
                ExportFormat::Parquet => {
                    crate::output::write_parquet(&tmp, export_schema(), &[to_batch(&rows)?])?;
                }
                ExportFormat::Xlsx => write_xlsx(&tmp, &rows)?,
            }
            if unmask.is_some() {
                restrict_permissions(&tmp);
            }
            Ok(())
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let bytes =
            std::fs::read(&tmp).map_err(|e| CaseError::Io(format!("reading {}: {e}", tmp.display())))?;
        let sha256: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        let report = ExportReport {
            path: path.to_path_buf(),
            format,
            rows: rows.len(),
            masked: unmask.is_none(),
            sha256,
        };
        // Log first, then publish: an export that is not in the log never appears.
        let logged = (|| -> CaseResult<()> {
            let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
            audit::append(
                &tx,
                &actor.name,
                "export",
                None,
                &serde_json::json!({
                    "path": path.display().to_string(),
                    "format": format.as_str(),
                    "filter": filter,
                    "rows": rows.len(),
                    "masked": unmask.is_none(),
                    "purpose": unmask.map(|u| u.purpose.clone()),
                    "sha256": report.sha256,
                }),
            )?;
            tx.commit()?;
            Ok(())
        })();
        if let Err(e) = logged {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        if let Err(e) = std::fs::rename(&tmp, path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(CaseError::Io(format!("writing {}: {e}", path.display())));
        }
        Ok(report)
    }
}
