//! Ingest: every reject reason, encodings, Parquet = CSV, the count identity, mappings,
//! unknown codes and data-quality findings.

use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use medaudit::ingest::{self, IngestOptions, IngestReport};
use medaudit::schema::{FEE, PAY, SETL};

use crate::common::{codes, header, read_csv, row, tempdir, write_csv};

fn ingest_dir(input: &Path, out: &Path) -> IngestReport {
    ingest::ingest(input, &out.join("data"), &out.join("quarantine"), &IngestOptions::new(codes()))
        .expect("ingest")
}

fn read_table(out: &Path, table: &str) -> Vec<RecordBatch> {
    medaudit::output::read_parquet(&out.join("data").join(format!("{table}.parquet"))).expect("read parquet")
}

fn strings(batches: &[RecordBatch], col: &str) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let c = b.column_by_name(col).expect("column").as_string::<i32>().clone();
            (0..c.len()).map(move |i| c.value(i).to_string()).collect::<Vec<_>>()
        })
        .collect()
}

/// One good settlement and fee line, and one bad row per reject reason.
fn write_bad_input(dir: &Path) {
    let s = |o: &[(&str, &str)]| row(&SETL, o);
    let setl = vec![
        s(&[("setl_id", "OK1")]),
        s(&[("setl_id", "BADDEC"), ("medfee_sumamt", "12.345")]),
        s(&[("setl_id", "BADDATE"), ("enddate", "2024-02-30")]),
        s(&[("setl_id", "NOTNUM"), ("hifp_pay", "八百")]),
        s(&[("setl_id", "MISSING"), ("psn_no", "")]),
        s(&[("setl_id", "OK1"), ("psn_no", "P9")]), // repeated key
        s(&[("setl_id", "BADTIME"), ("setl_time", "2024-03-05 25:61:00")]),
    ];
    write_csv(&dir.join("setl.csv"), &header(&SETL), &setl);
    // A row with the wrong number of fields, appended by hand.
    let mut text = std::fs::read_to_string(dir.join("setl.csv")).unwrap();
    text.push_str("SHORT,M9,01,P1\n");
    std::fs::write(dir.join("setl.csv"), text).unwrap();
    let f = |o: &[(&str, &str)]| row(&FEE, o);
    let fee = vec![
        f(&[("feedetl_sn", "F1"), ("setl_id", "OK1")]),
        f(&[("feedetl_sn", "F1"), ("setl_id", "OK1")]), // repeated key
        f(&[("feedetl_sn", "F2"), ("setl_id", "NOPE")]), // unknown settlement
        f(&[("feedetl_sn", "F3"), ("setl_id", "BADDEC")]), // settlement quarantined
        f(&[("feedetl_sn", "F4"), ("setl_id", "OK1"), ("cnt", "1e3")]),
    ];
    write_csv(&dir.join("fee.csv"), &header(&FEE), &fee);
}

#[test]
fn every_reject_reason_lands_in_quarantine_with_its_reason() {
    let tmp = tempdir();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    write_bad_input(&input);
    let out = tmp.path().join("out");
    let r = ingest_dir(&input, &out);

    let setl = r.table("setl").unwrap();
    assert_eq!((setl.read, setl.accepted, setl.quarantined), (8, 1, 7));
    let fee = r.table("fee").unwrap();
    assert_eq!((fee.read, fee.accepted, fee.quarantined), (5, 1, 4));
    for t in &r.tables {
        assert_eq!(t.accepted + t.quarantined, t.read, "{}", t.table);
    }

    let (head, rows) = read_csv(&out.join("quarantine/setl.csv"));
    assert_eq!(
        &head[..6],
        &["reject_reason", "source_file", "source_line", "setl_id", "mdtrt_id", "psn_cert_type"]
    );
    let reason_of = |id: &str| -> String {
        rows.iter()
            .find(|r| r[3] == id)
            .map(|r| r[0].clone())
            .unwrap_or_else(|| panic!("{id} not in quarantine"))
    };
    assert!(
        reason_of("BADDEC").contains("medfee_sumamt（医疗费总额）小数位超过2位：12.345"),
        "{}",
        reason_of("BADDEC")
    );
    assert!(reason_of("BADDATE").contains("enddate（结束日期）日期不存在：2024-02-30"));
    assert!(reason_of("NOTNUM").contains("hifp_pay（统筹基金支出）不是数字：八百"));
    assert!(reason_of("MISSING").contains("psn_no（人员编号）缺少必填值"));
    assert!(reason_of("BADTIME").contains("setl_time（结算时间）时间不存在"));
    assert!(reason_of("SHORT").contains("字段个数应为35，实际为4"));
    // The repeated key: the second row (person P9) is the one rejected.
    let dup = rows.iter().find(|r| r[3] == "OK1").expect("duplicate in quarantine");
    assert_eq!(dup[3 + 3], "P9");
    assert!(dup[0].contains("setl_id（结算ID）重复：OK1"));
    // The original cells are kept unchanged.
    assert_eq!(
        rows.iter().find(|r| r[3] == "BADDEC").unwrap()[3 + SETL.index_of("medfee_sumamt").unwrap()],
        "12.345"
    );
    assert_eq!(rows.iter().find(|r| r[3] == "SHORT").unwrap().len(), 3 + 4);

    let (_, frows) = read_csv(&out.join("quarantine/fee.csv"));
    let freason = |sn: &str, setl: &str| -> String {
        frows
            .iter()
            .find(|r| r[3] == sn && r[4] == setl)
            .map(|r| r[0].clone())
            .expect("fee row in quarantine")
    };
    assert!(freason("F1", "OK1").contains("feedetl_sn（费用明细流水号）重复"));
    assert!(freason("F2", "NOPE").contains("在结算信息中不存在"));
    assert!(freason("F3", "BADDEC").contains("所属结算已被隔离"));
    assert!(freason("F4", "OK1").contains("cnt（数量）不是数字：1e3"));
    let f1 = frows.iter().find(|r| r[3] == "F1").unwrap();
    assert_eq!((f1[1].as_str(), f1[2].as_str()), ("fee.csv", "3"), "line numbers count the header as line 1");

    let classes: Vec<&String> = setl.reject_reasons.keys().collect();
    for c in [
        "too_many_decimals",
        "nonexistent_date",
        "not_a_number",
        "missing_value",
        "duplicate_key",
        "field_count",
    ] {
        assert!(classes.iter().any(|x| *x == c), "class {c} missing from {classes:?}");
    }
    // A quarantined settlement marks its person-year incomplete.
    assert!(
        r.quarantined_settlements.iter().any(|q| q.psn_no.as_deref() == Some("P1") && q.year == Some(2024))
    );
    // The accepted rows are exactly the good ones.
    assert_eq!(strings(&read_table(&out, "setl"), "setl_id"), vec!["OK1"]);
    assert_eq!(strings(&read_table(&out, "fee"), "feedetl_sn"), vec!["F1"]);
}

#[cfg(unix)]
#[test]
fn quarantine_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempdir();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    write_bad_input(&input);
    let out = tmp.path().join("out");
    ingest_dir(&input, &out);
    let mode = std::fs::metadata(out.join("quarantine/setl.csv")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

fn chinese_input(dir: &Path) -> (Vec<String>, Vec<Vec<String>>, Vec<Vec<String>>) {
    std::fs::create_dir_all(dir).unwrap();
    let setl = vec![
        row(&SETL, &[("setl_id", "S1"), ("psn_name", "欧阳娜娜")]),
        row(&SETL, &[("setl_id", "S2"), ("psn_name", "𠀀龘"), ("psn_no", "P2")]),
    ];
    let fee = vec![row(
        &FEE,
        &[("feedetl_sn", "F1"), ("setl_id", "S1"), ("med_list_name", "普通病房床位费（三人间）")],
    )];
    (header(&SETL), setl, fee)
}

#[test]
fn gb18030_input_is_detected_and_chinese_comes_through_intact() {
    let tmp = tempdir();
    let input = tmp.path().join("in");
    let (h, setl, fee) = chinese_input(&input);
    let mut text = String::new();
    text.push_str(&h.join(","));
    text.push('\n');
    for r in &setl {
        text.push_str(&r.join(","));
        text.push('\n');
    }
    let (bytes, _, unmappable) = encoding_rs::GB18030.encode(&text);
    assert!(!unmappable);
    assert!(std::str::from_utf8(&bytes).is_err(), "the test file must not be valid UTF-8");
    std::fs::write(input.join("setl.csv"), &bytes).unwrap();
    write_csv(&input.join("fee.csv"), &header(&FEE), &fee);
    let out = tmp.path().join("out");
    let r = ingest_dir(&input, &out);
    assert_eq!(r.table("setl").unwrap().files[0].encoding, Some(ingest::Encoding::Gb18030));
    assert_eq!(r.table("fee").unwrap().files[0].encoding, Some(ingest::Encoding::Utf8));
    assert_eq!(strings(&read_table(&out, "setl"), "psn_name"), vec!["欧阳娜娜", "𠀀龘"]);
    assert_eq!(strings(&read_table(&out, "fee"), "med_list_name"), vec!["普通病房床位费（三人间）"]);
}

#[test]
fn utf8_with_bom_reads_its_first_column() {
    let tmp = tempdir();
    let input = tmp.path().join("in");
    let (h, setl, fee) = chinese_input(&input);
    write_csv(&input.join("setl.csv"), &h, &setl);
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(std::fs::read(input.join("setl.csv")).unwrap());
    std::fs::write(input.join("setl.csv"), bytes).unwrap();
    write_csv(&input.join("fee.csv"), &header(&FEE), &fee);
    let out = tmp.path().join("out");
    let r = ingest_dir(&input, &out);
    assert_eq!(r.table("setl").unwrap().accepted, 2);
    assert_eq!(strings(&read_table(&out, "setl"), "setl_id"), vec!["S1", "S2"]);
    assert_eq!(strings(&read_table(&out, "setl"), "psn_name"), vec!["欧阳娜娜", "𠀀龘"]);
}

#[test]
fn parquet_and_csv_of_the_same_data_give_the_same_accepted_rows() {
    let tmp = tempdir();
    let csv_in = tmp.path().join("csv");
    std::fs::create_dir(&csv_in).unwrap();
    write_bad_input(&csv_in);
    let out_csv = tmp.path().join("out_csv");
    ingest_dir(&csv_in, &out_csv);
    // The same files as Parquet with every column as text (as many exports do), and the fee
    // table as a folder of two parts.
    let pq_in = tmp.path().join("pq");
    std::fs::create_dir_all(pq_in.join("fee")).unwrap();
    let to_parquet = |src: &Path, dst: &Path, rows: std::ops::Range<usize>| {
        let (head, all) = read_csv(src);
        let all: Vec<Vec<String>> = all.into_iter().filter(|r| r.len() == head.len()).collect();
        let rows = &all[rows.start.min(all.len())..rows.end.min(all.len())];
        let fields: Vec<arrow::datatypes::Field> = head
            .iter()
            .map(|h| arrow::datatypes::Field::new(h, arrow::datatypes::DataType::Utf8, true))
            .collect();
        let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(fields));
        let cols: Vec<arrow::array::ArrayRef> = (0..head.len())
            .map(|j| {
                std::sync::Arc::new(arrow::array::StringArray::from_iter_values(
                    rows.iter().map(|r| r[j].clone()),
                )) as arrow::array::ArrayRef
            })
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
        medaudit::output::write_parquet(dst, schema, &[batch]).unwrap();
    };
    to_parquet(&csv_in.join("setl.csv"), &pq_in.join("setl.parquet"), 0..100);
    to_parquet(&csv_in.join("fee.csv"), &pq_in.join("fee/part-0.parquet"), 0..2);
    to_parquet(&csv_in.join("fee.csv"), &pq_in.join("fee/part-1.parquet"), 2..100);
    let out_pq = tmp.path().join("out_pq");
    let r = ingest_dir(&pq_in, &out_pq);
    assert_eq!(r.table("fee").unwrap().files.len(), 2);
    for t in ["setl", "fee"] {
        let a =
            arrow::compute::concat_batches(&read_table(&out_csv, t)[0].schema(), &read_table(&out_csv, t))
                .unwrap();
        let b = arrow::compute::concat_batches(&read_table(&out_pq, t)[0].schema(), &read_table(&out_pq, t))
            .unwrap();
        assert_eq!(a, b, "table {t}");
    }
}

#[test]
fn typed_parquet_input_is_read_without_conversion_loss() {
    let tmp = tempdir();
    let csv_in = tmp.path().join("csv");
    std::fs::create_dir(&csv_in).unwrap();
    write_bad_input(&csv_in);
    let out1 = tmp.path().join("out1");
    ingest_dir(&csv_in, &out1);
    // Re-ingest the accepted (typed) Parquet output as input: nothing changes.
    let pq_in = tmp.path().join("pq");
    std::fs::create_dir(&pq_in).unwrap();
    for t in ["setl", "fee"] {
        std::fs::copy(out1.join("data").join(format!("{t}.parquet")), pq_in.join(format!("{t}.parquet")))
            .unwrap();
    }
    let out2 = tmp.path().join("out2");
    let r = ingest_dir(&pq_in, &out2);
    assert_eq!(r.table("setl").unwrap().quarantined, 0);
    for t in ["setl", "fee"] {
        assert_eq!(read_table(&out1, t), read_table(&out2, t), "table {t}");
    }
}

#[test]
fn missing_tables_and_columns_are_clear_errors() {
    let tmp = tempdir();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    write_csv(&input.join("setl.csv"), &header(&SETL), &[row(&SETL, &[])]);
    let err =
        ingest::ingest(&input, &tmp.path().join("d"), &tmp.path().join("q"), &IngestOptions::new(codes()))
            .unwrap_err()
            .to_string();
    assert!(err.contains("required table `fee`"), "{err}");

    let mut h = header(&FEE);
    let pos = h.iter().position(|x| x == "pric").unwrap();
    h.remove(pos);
    let mut r = row(&FEE, &[]);
    r.remove(pos);
    write_csv(&input.join("fee.csv"), &h, &[r]);
    let err =
        ingest::ingest(&input, &tmp.path().join("d"), &tmp.path().join("q"), &IngestOptions::new(codes()))
            .unwrap_err()
            .to_string();
    assert!(err.contains("fee.csv") && err.contains("pric（单价）"), "{err}");
}

#[test]
fn optional_tables_may_be_absent_and_optional_columns_too() {
    let tmp = tempdir();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    write_csv(&input.join("setl.csv"), &header(&SETL), &[row(&SETL, &[])]);
    // fee without its optional columns
    let keep = |f: &&medaudit::schema::FieldSpec| f.column_required();
    let h: Vec<String> = FEE.fields.iter().filter(keep).map(|f| f.name.to_string()).collect();
    let full = row(&FEE, &[]);
    let r: Vec<String> =
        FEE.fields.iter().zip(full).filter(|(f, _)| f.column_required()).map(|(_, v)| v).collect();
    write_csv(&input.join("fee.csv"), &h, &[r]);
    let out = tmp.path().join("out");
    let rep = ingest_dir(&input, &out);
    assert!(!rep.present("psn") && !rep.present("pay"));
    let fee = read_table(&out, "fee");
    assert_eq!(fee[0].num_rows(), 1);
    assert!(fee[0].column_by_name("inscp_scp_amt").unwrap().is_null(0));
}

#[test]
fn unknown_codes_are_accepted_and_counted() {
    let tmp = tempdir();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let setl = vec![
        row(&SETL, &[("setl_id", "S1"), ("med_type", "9901")]),
        row(&SETL, &[("setl_id", "S2"), ("med_type", "9901")]),
    ];
    write_csv(&input.join("setl.csv"), &header(&SETL), &setl);
    write_csv(&input.join("fee.csv"), &header(&FEE), &[row(&FEE, &[("chrgitm_lv", "07")])]);
    let r = ingest_dir(&input, &tmp.path().join("out"));
    assert_eq!(r.table("setl").unwrap().accepted, 2);
    assert_eq!(r.unknown_codes["setl.med_type"]["9901"], 2);
    assert_eq!(r.unknown_codes["fee.chrgitm_lv"]["07"], 1);
}

#[test]
fn self_contradicting_rows_are_accepted_as_data_quality_findings() {
    let tmp = tempdir();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let good_id = crate::common::certno("1980-05-06", "1");
    let mut bad_check = good_id.clone();
    let last = if bad_check.ends_with('1') { "2" } else { "1" };
    bad_check.replace_range(17..18, last);
    let setl = vec![
        row(&SETL, &[("setl_id", "IDENT"), ("medfee_sumamt", "1020.00")]),
        row(&SETL, &[("setl_id", "DATES"), ("enddate", "2024-02-20")]),
        row(&SETL, &[("setl_id", "CHECK"), ("certno", &bad_check)]),
        row(&SETL, &[("setl_id", "SEX"), ("gend", "2")]),
        row(&SETL, &[("setl_id", "OTHERDOC"), ("psn_cert_type", "03"), ("certno", "E12345678")]),
        row(&SETL, &[("setl_id", "CLEAN")]),
    ];
    write_csv(&input.join("setl.csv"), &header(&SETL), &setl);
    let fee = vec![
        row(&FEE, &[("feedetl_sn", "L1"), ("setl_id", "CLEAN")]),
        row(&FEE, &[("feedetl_sn", "L2"), ("setl_id", "IDENT"), ("det_item_fee_sumamt", "1001.00")]),
    ];
    write_csv(&input.join("fee.csv"), &header(&FEE), &fee);
    let r = ingest_dir(&input, &tmp.path().join("out"));
    assert_eq!(r.table("setl").unwrap().quarantined, 0);
    let hits: Vec<(String, String)> =
        r.findings.iter().map(|f| (f.setl_id.clone(), f.rule_id.clone())).collect();
    let mut expected = vec![
        ("IDENT".to_string(), "DQ001".to_string()),
        ("DATES".into(), "DQ002".into()),
        ("CHECK".into(), "DQ004".into()),
        ("SEX".into(), "DQ004".into()),
        ("IDENT".into(), "DQ005".into()),
    ];
    let mut got = hits.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    for f in &r.findings {
        assert_eq!(f.category, "data_quality");
        assert!(
            !f.detail.contains(&good_id) && !f.detail.contains(&bad_check),
            "full ID in detail: {}",
            f.detail
        );
        assert!(!f.detail.contains("张三"));
    }
    let ident = r.findings.iter().find(|f| f.rule_id == "DQ001").unwrap();
    assert_eq!(ident.amount_at_risk.to_string(), "20.00");
}

#[test]
fn a_mapping_file_reads_the_platform_backend_layout() {
    let tmp = tempdir();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let rename = |h: &[String], table: &str| -> Vec<String> {
        h.iter()
            .map(|c| match (table, c.as_str()) {
                (_, "inscp_scp_amt") => "INSCP_AMT".to_string(),
                (_, other) => other.to_ascii_uppercase(),
            })
            .collect()
    };
    write_csv(&input.join("SETL_D.csv"), &rename(&header(&SETL), "setl"), &[row(&SETL, &[])]);
    write_csv(&input.join("FEE_LIST_D.csv"), &rename(&header(&FEE), "fee"), &[row(&FEE, &[])]);
    write_csv(&input.join("pay.csv"), &header(&PAY), &[row(&PAY, &[])]);
    let mut o = IngestOptions::new(codes());
    o.mapping = ingest::Mapping::load(&crate::common::repo().join("datasets/mappings/platform_backend.toml"))
        .unwrap();
    let out = tmp.path().join("out");
    let r = ingest::ingest(&input, &out.join("data"), &out.join("quarantine"), &o).unwrap();
    assert_eq!(r.table("setl").unwrap().accepted, 1);
    assert_eq!(r.table("fee").unwrap().accepted, 1);
    assert_eq!(r.table("pay").unwrap().accepted, 1);
    let setl = read_table(&out, "setl");
    let inscp =
        setl[0].column_by_name("inscp_scp_amt").unwrap().as_primitive::<arrow::datatypes::Decimal128Type>();
    assert_eq!(inscp.value(0), 100_000);
    // Without the mapping the same folder is missing its tables.
    let err =
        ingest::ingest(&input, &out.join("d2"), &out.join("q2"), &IngestOptions::new(codes())).unwrap_err();
    assert!(err.to_string().contains("required table `setl`"));
}

#[test]
fn a_mapping_recodes_values() {
    let tmp = tempdir();
    let m = tmp.path().join("m.toml");
    std::fs::write(&m, "[tables.setl.values.med_type]\n\"2101\" = \"21\"\n").unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    write_csv(&input.join("setl.csv"), &header(&SETL), &[row(&SETL, &[("med_type", "2101")])]);
    write_csv(&input.join("fee.csv"), &header(&FEE), &[row(&FEE, &[])]);
    let mut o = IngestOptions::new(codes());
    o.mapping = ingest::Mapping::load(&m).unwrap();
    let out = tmp.path().join("out");
    let r = ingest::ingest(&input, &out.join("data"), &out.join("quarantine"), &o).unwrap();
    assert!(r.unknown_codes.is_empty(), "{:?}", r.unknown_codes);
    assert_eq!(strings(&read_table(&out, "setl"), "med_type"), vec!["21"]);
    // A mapping naming a column the contract does not have is refused.
    std::fs::write(&m, "[tables.setl.columns]\nfoo = \"no_such_column\"\n").unwrap();
    let err = ingest::Mapping::load(&m).unwrap_err().to_string();
    assert!(err.contains("no_such_column"), "{err}");
}

#[test]
fn small_chunks_give_the_same_result_as_large_ones() {
    let tmp = tempdir();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    write_bad_input(&input);
    let big = tmp.path().join("big");
    ingest_dir(&input, &big);
    let small = tmp.path().join("small");
    let mut o = IngestOptions::new(codes());
    o.chunk_rows = 1;
    ingest::ingest(&input, &small.join("data"), &small.join("quarantine"), &o).unwrap();
    for t in ["setl", "fee"] {
        let a = read_table(&big, t);
        let b = read_table(&small, t);
        let a = arrow::compute::concat_batches(&a[0].schema(), &a).unwrap();
        let b = arrow::compute::concat_batches(&b[0].schema(), &b).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            std::fs::read_to_string(big.join(format!("quarantine/{t}.csv"))).unwrap(),
            std::fs::read_to_string(small.join(format!("quarantine/{t}.csv"))).unwrap()
        );
    }
}
