//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The repository root (where `queries/` and `datasets/` are).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh temporary folder, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary folder")
}

use medaudit::schema::TableSpec;

/// A valid 18-digit ID number for a birth date and sex (`1` male).
pub fn certno(brdy: &str, gend: &str) -> String {
    let d = chrono::NaiveDate::parse_from_str(brdy, "%Y-%m-%d").expect("date");
    medaudit::idcard::make("411402", d, if gend == "1" { 11 } else { 12 })
}

/// A row of a table as (field → text), every contract column with a sane default value.
pub fn row(spec: &TableSpec, overrides: &[(&str, &str)]) -> Vec<String> {
    let default = |name: &str| -> String {
        match (spec.name, name) {
            (_, "setl_id") => "S1".into(),
            (_, "mdtrt_id") => "M1".into(),
            (_, "psn_no") => "P1".into(),
            (_, "psn_name") => "张三".into(),
            (_, "certno") => certno("1980-05-06", "1"),
            (_, "gend") => "1".into(),
            (_, "brdy") => "1980-05-06".into(),
            (_, "insutype") => "390".into(),
            (_, "insu_admdvs") | (_, "fix_blng_admdvs") | (_, "admdvs") => "411402".into(),
            (_, "fixmedins_code") => "H41140200001".into(),
            (_, "fixmedins_name") => "商丘市第一人民医院".into(),
            (_, "hosp_lv") => "3".into(),
            (_, "med_type") => "21".into(),
            (_, "begndate") => "2024-03-01".into(),
            (_, "enddate") => "2024-03-05".into(),
            (_, "setl_time") => "2024-03-05 10:00:00".into(),
            (_, "dise_codg") => "I63.900".into(),
            (_, "refl_flag") => "0".into(),
            (_, "setl_mode") => "1".into(),
            (_, "refd_setl_flag") => "0".into(),
            ("setl", "medfee_sumamt") | ("setl", "inscp_scp_amt") => "1000.00".into(),
            ("setl", "pool_prop_selfpay") => "0.8000".into(),
            ("setl", "hifp_pay") => "800.00".into(),
            ("setl", "psn_part_amt") => "200.00".into(),
            ("setl", f)
                if f.ends_with("_amt")
                    || f.ends_with("_pay")
                    || f.ends_with("_dedc")
                    || f == "overlmt_selfpay" =>
            {
                "0.00".into()
            }
            (_, "feedetl_sn") => "F1".into(),
            (_, "fee_ocur_time") => "2024-03-01 09:00:00".into(),
            (_, "med_list_codg") => "001109000010000".into(),
            (_, "med_list_name") => "普通病房床位费".into(),
            (_, "med_chrgitm_type") => "01".into(),
            (_, "chrgitm_lv") => "01".into(),
            (_, "cnt") => "4".into(),
            (_, "pric") => "250.000000".into(),
            (_, "det_item_fee_sumamt") => "1000.00".into(),
            (_, "pay_id") => "Y1".into(),
            (_, "fund") => "hifmi".into(),
            (_, "pay_chnl") => "1".into(),
            (_, "dcla_date") => "2024-03-06".into(),
            (_, "pay_date") => "2024-03-10".into(),
            (_, "pay_amt") => "0.00".into(),
            _ => String::new(),
        }
    };
    spec.fields
        .iter()
        .map(|f| {
            overrides
                .iter()
                .find(|(k, _)| *k == f.name)
                .map_or_else(|| default(f.name), |(_, v)| v.to_string())
        })
        .collect()
}

/// The header of a table: every contract column.
pub fn header(spec: &TableSpec) -> Vec<String> {
    spec.fields.iter().map(|f| f.name.to_string()).collect()
}

/// Writes rows as a UTF-8 CSV file.
pub fn write_csv(path: &std::path::Path, header: &[String], rows: &[Vec<String>]) {
    let mut w = csv::Writer::from_path(path).expect("create csv");
    w.write_record(header).expect("write");
    for r in rows {
        w.write_record(r).expect("write");
    }
    w.flush().expect("flush");
}

/// Reads a CSV file written by the engine (UTF-8 with BOM) into rows of strings.
pub fn read_csv(path: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).expect("read csv");
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut r = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let header = r.headers().expect("header").iter().map(String::from).collect();
    let rows = r.records().map(|x| x.expect("row").iter().map(String::from).collect()).collect();
    (header, rows)
}

/// The code tables shipped with the project.
pub fn codes() -> medaudit::codes::CodeTables {
    medaudit::codes::CodeTables::load(&repo().join("datasets/codes/codes.csv")).expect("codes")
}
