//! Integration tests of the synthetic data generator (`medaudit::synth`): determinism, the
//! contract's types and identities, the labels, clean data that no knowledge-sheet rule would
//! flag, and the scorer.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use arrow::array::{Decimal128Array, RecordBatch, StringArray};
use chrono::{NaiveDate, NaiveDateTime};
use medaudit::schema::{self, FEE, MEDINS, PAY, PSN, SETL, TableSpec};
use medaudit::synth::{self, GenConfig, LabelRole, OutEncoding, OutFormat};
use rust_decimal::Decimal;

use crate::common;

/// A generated CSV data set, parsed: rows by table as field → text, malformed rows excluded.
struct Data {
    setl: Vec<HashMap<String, String>>,
    fee: Vec<HashMap<String, String>>,
    psn: HashMap<String, HashMap<String, String>>,
    medins: HashMap<String, HashMap<String, String>>,
    pay: Vec<HashMap<String, String>>,
    labels: Vec<synth::LabelRow>,
    /// Keys of malformed rows per table, with their reject class.
    malformed: HashMap<(String, String), String>,
    raw: BTreeMap<&'static str, Vec<Vec<String>>>,
}

fn read_table(dir: &Path, spec: &TableSpec) -> (Vec<String>, Vec<Vec<String>>) {
    let path = dir.join(format!("{}.csv", spec.name));
    let text = std::fs::read_to_string(&path).expect("csv");
    let mut r = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let header: Vec<String> = r.headers().expect("header").iter().map(String::from).collect();
    let rows = r.records().map(|x| x.expect("row").iter().map(String::from).collect()).collect();
    (header, rows)
}

impl Data {
    fn load(out: &Path) -> Data {
        let input = out.join("input");
        let labels = synth::read_labels(&out.join("labels")).expect("labels");
        let malformed: HashMap<(String, String), String> = labels
            .iter()
            .filter(|l| l.role == LabelRole::Malformed)
            .map(|l| ((l.table.clone(), l.key.clone()), l.expected.clone()))
            .collect();
        let mut raw = BTreeMap::new();
        let mut tables: HashMap<&str, Vec<HashMap<String, String>>> = HashMap::new();
        for spec in [&SETL, &FEE, &PSN, &MEDINS, &PAY] {
            let (header, rows) = read_table(&input, spec);
            assert_eq!(header, common::header(spec), "{} header", spec.name);
            let key = spec.key.unwrap();
            let ki = spec.index_of(key).unwrap();
            let mut seen = HashSet::new();
            let mut ok = Vec::new();
            for r in &rows {
                let k = r.get(ki).cloned().unwrap_or_default();
                let class = malformed.get(&(spec.name.to_string(), k.clone())).map(String::as_str);
                // A repeated key: the first row is the valid one; other malformed rows are extra.
                let keep = match class {
                    Some("duplicate_key") => !seen.contains(&k),
                    Some(_) => false,
                    None => true,
                };
                if !keep || r.len() != header.len() {
                    continue;
                }
                seen.insert(k);
                ok.push(header.iter().cloned().zip(r.iter().cloned()).collect::<HashMap<_, _>>());
            }
            raw.insert(spec.name, rows);
            tables.insert(spec.name, ok);
        }
        let by_key =
            |rows: Vec<HashMap<String, String>>, k: &str| -> HashMap<String, HashMap<String, String>> {
                rows.into_iter().map(|r| (r[k].clone(), r)).collect()
            };
        Data {
            setl: tables.remove("setl").unwrap(),
            fee: tables.remove("fee").unwrap(),
            psn: by_key(tables.remove("psn").unwrap(), "psn_no"),
            medins: by_key(tables.remove("medins").unwrap(), "fixmedins_code"),
            pay: tables.remove("pay").unwrap(),
            labels,
            malformed,
            raw,
        }
    }

    /// Settlements no label mentions.
    fn clean(&self) -> HashSet<String> {
        let labelled: HashSet<&str> = self.labels.iter().map(|l| l.setl_id.as_str()).collect();
        self.setl.iter().map(|r| r["setl_id"].clone()).filter(|s| !labelled.contains(s.as_str())).collect()
    }

    fn labelled(&self, subkind: &str) -> HashSet<String> {
        self.labels.iter().filter(|l| l.subkind == subkind).map(|l| l.setl_id.clone()).collect()
    }
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap_or_else(|_| panic!("`{s}` is not a decimal"))
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_else(|_| panic!("`{s}` is not a date"))
}

fn generate_into(dir: &Path, n: u64, seed: u64) -> synth::GenSummary {
    synth::generate(&GenConfig::new(dir.to_path_buf(), n, seed)).expect("generate")
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for sub in ["input", "labels"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let p = e.unwrap().path();
            out.insert(
                format!("{sub}/{}", p.file_name().unwrap().to_string_lossy()),
                std::fs::read(&p).unwrap(),
            );
        }
    }
    out
}

#[test]
fn generation_is_deterministic_and_independent_of_threads() {
    let (a, b, c) = (common::tempdir(), common::tempdir(), common::tempdir());
    let s = generate_into(a.path(), 9_000, 5);
    assert_eq!(s.settlements, 9_000);
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    one.install(|| generate_into(b.path(), 9_000, 5));
    let fa = files(a.path());
    let fb = files(b.path());
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (k, v) in &fa {
        assert!(v == &fb[k], "{k} differs between 1 and the default number of threads");
    }
    generate_into(c.path(), 9_000, 6);
    assert_ne!(fa["input/fee.csv"], files(c.path())["input/fee.csv"], "another seed, other data");
}

#[test]
fn amounts_add_up_and_identities_are_valid() {
    let dir = common::tempdir();
    generate_into(dir.path(), 4_000, 21);
    let d = Data::load(dir.path());
    assert_eq!(d.setl.len(), 4_000);
    let broken = d.labelled("amount_identity");
    let unsummed = d.labelled("fee_sum_mismatch");
    let bad_ids: HashSet<String> =
        ["id_check_digit", "id_birth_date", "id_sex_digit"].iter().flat_map(|k| d.labelled(k)).collect();
    let impostors = d.labelled("identity_mismatch");
    let mut fee_sum: HashMap<&str, Decimal> = HashMap::new();
    for f in &d.fee {
        let (cnt, pric, amt) = (dec(&f["cnt"]), dec(&f["pric"]), dec(&f["det_item_fee_sumamt"]));
        assert!(f["cnt"].split('.').nth(1).is_some_and(|x| x.len() == 4), "cnt has 4 decimals");
        assert_eq!(
            (cnt * pric).round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero),
            amt
        );
        *fee_sum.entry(f["setl_id"].as_str()).or_default() += amt;
    }
    for s in &d.setl {
        let id = &s["setl_id"];
        let total = dec(&s["medfee_sumamt"]);
        let parts: Decimal = ["fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt"]
            .iter()
            .map(|k| dec(&s[*k]))
            .sum();
        assert_eq!(parts == total, !broken.contains(id), "amount identity of {id}");
        let lines = fee_sum.get(id.as_str()).copied().unwrap_or_default();
        assert_eq!(lines == total, !unsummed.contains(id), "fee lines of {id}");
        let paid: Decimal = ["hifp_pay", "hifmi_pay", "hifob_pay", "maf_pay", "psn_part_amt"]
            .iter()
            .map(|k| dec(&s[*k]))
            .sum();
        assert_eq!(paid, total, "who pays what adds up for {id}");
        let brdy = date(&s["brdy"]);
        let problems = medaudit::idcard::problems(&s["certno"], Some(brdy), &s["gend"]);
        assert_eq!(problems.is_empty(), !bad_ids.contains(id), "{id}: {problems:?}");
        let p = &d.psn[&s["psn_no"]];
        let same =
            ["certno", "psn_name", "gend", "brdy", "insutype", "insu_admdvs"].iter().all(|k| p[*k] == s[*k]);
        assert_eq!(same, !impostors.contains(id), "identity of {id} against psn");
        assert_eq!(s["insu_admdvs"][..4], *if s["insutype"] == "390" { "4114" } else { "4111" });
        let end = date(&s["enddate"]);
        assert!(
            end >= date("2024-01-01") && end <= date("2026-10-31") || d.labelled("date_order").contains(id)
        );
        if s["refd_setl_flag"] == "1" {
            let orig = d
                .setl
                .iter()
                .find(|o| o["setl_id"] == s["init_setl_id"])
                .expect("reversal names its original");
            assert_eq!(dec(&orig["medfee_sumamt"]), -total);
        }
    }
    for p in d.psn.values() {
        let problems = medaudit::idcard::problems(&p["certno"], Some(date(&p["brdy"])), &p["gend"]);
        let labelled = d.labels.iter().any(|l| l.psn_no == p["psn_no"] && l.subkind.starts_with("id_"));
        assert_eq!(problems.is_empty(), !labelled, "psn {}", p["psn_no"]);
    }
}

#[test]
fn labels_reference_existing_rows_and_malformed_rows_are_malformed() {
    let dir = common::tempdir();
    generate_into(dir.path(), 3_000, 8);
    let d = Data::load(dir.path());
    let setl_ids: HashSet<&str> = d.setl.iter().map(|s| s["setl_id"].as_str()).collect();
    let pay_ids: HashSet<&str> = d.pay.iter().map(|p| p["pay_id"].as_str()).collect();
    let kinds: HashSet<(&str, &str, &str)> = synth::label_kinds().into_iter().collect();
    assert!(!d.labels.is_empty());
    for l in &d.labels {
        match l.role {
            LabelRole::Malformed => {
                let spec = schema::table(&l.table).expect("table");
                let ki = spec.index_of(spec.key.unwrap()).unwrap();
                let rows: Vec<&Vec<String>> =
                    d.raw[spec.name].iter().filter(|r| r.get(ki) == Some(&l.key)).collect();
                assert!(!rows.is_empty(), "malformed row {} {} is in the input", l.table, l.key);
                let last = rows.last().unwrap();
                let field = |f: &str| last.get(spec.index_of(f).unwrap()).map_or("", String::as_str);
                match l.expected.as_str() {
                    "duplicate_key" => assert!(rows.len() >= 2, "{} repeated", l.key),
                    "field_count" => assert_eq!(last.len(), spec.fields.len() + 1),
                    "missing_value" => assert!(last.iter().any(String::is_empty)),
                    "unknown_settlement" => assert!(!setl_ids.contains(field("setl_id"))),
                    "nonexistent_date" => assert!(spec.fields.iter().enumerate().any(|(i, f)| {
                        matches!(f.kind, schema::Kind::Date | schema::Kind::Timestamp)
                            && !last[i].is_empty()
                            && NaiveDate::parse_from_str(&last[i], "%Y-%m-%d").is_err()
                            && NaiveDateTime::parse_from_str(&last[i], "%Y-%m-%d %H:%M:%S").is_err()
                    })),
                    "not_a_number" | "too_many_decimals" => {
                        assert!(
                            spec.fields.iter().enumerate().any(|(i, f)| {
                                matches!(f.kind, schema::Kind::Decimal { .. }) && {
                                    let v = &last[i];
                                    v.parse::<Decimal>().is_err()
                                        || v.split('.').nth(1).is_some_and(|x| {
                                            x.len() > 2 && f.name != "cnt" && f.name != "pric"
                                        })
                                }
                            }),
                            "{} {} {:?}",
                            l.table,
                            l.expected,
                            last
                        )
                    }
                    other => panic!("unknown reject class {other}"),
                }
            }
            _ => {
                assert!(
                    kinds.contains(&(l.kind.as_str(), l.subkind.as_str(), l.role.as_str()))
                        || l.role == LabelRole::Related,
                    "label kind {} {}",
                    l.kind,
                    l.subkind
                );
                assert!(schema::CATEGORIES.contains(&l.kind.as_str()), "{} is a SCHEMA category", l.kind);
                assert!(
                    setl_ids.contains(l.setl_id.as_str()),
                    "{} {} names settlement {}",
                    l.kind,
                    l.subkind,
                    l.setl_id
                );
                if l.table == "pay" {
                    assert!(pay_ids.contains(l.key.as_str()), "payment {}", l.key);
                }
                match l.entity_type.as_str() {
                    "person" => assert!(d.psn.contains_key(&l.entity_id)),
                    "facility" => assert!(d.medins.contains_key(&l.entity_id)),
                    t => assert_eq!(t, "settlement"),
                }
            }
        }
    }
    // Every anomaly and control kind is present at this size.
    let present: HashSet<(&str, &str)> =
        d.labels.iter().map(|l| (l.kind.as_str(), l.subkind.as_str())).collect();
    for (k, s, _) in synth::label_kinds() {
        assert!(present.contains(&(k, s)), "{k}/{s} missing");
    }
    let summary = synth::Summary::read(&dir.path().join("labels")).unwrap();
    assert_eq!(summary.clean_settlements as usize, d.clean().len());
    assert_eq!(summary.malformed_rows as usize, d.malformed.len());
}

/// A knowledge-base sheet of `datasets/kb/` as rows (field → text).
fn kb(name: &str) -> Vec<HashMap<String, String>> {
    let path = common::repo().join("datasets/kb").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{}", path.display()));
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let h: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    r.records().map(|x| h.iter().cloned().zip(x.unwrap().iter().map(String::from)).collect()).collect()
}

#[test]
fn clean_settlements_break_no_knowledge_sheet_rule() {
    let dir = common::tempdir();
    generate_into(dir.path(), 12_000, 33);
    let d = Data::load(dir.path());
    let clean = d.clean();
    assert!(clean.len() > 10_000, "{} clean settlements", clean.len());
    let setl: HashMap<&str, &HashMap<String, String>> =
        d.setl.iter().map(|s| (s["setl_id"].as_str(), s)).collect();
    let mut lines: HashMap<&str, Vec<&HashMap<String, String>>> = HashMap::new();
    for f in &d.fee {
        lines.entry(f["setl_id"].as_str()).or_default().push(f);
    }
    let freq: HashMap<String, Decimal> = kb("item_limit_frequency.csv")
        .into_iter()
        .map(|r| (r["med_list_codg"].clone(), dec(&r["max_cnt"])))
        .collect();
    let mut sex: HashMap<String, String> = HashMap::new();
    for sheet in ["item_limit_gender.csv", "drug_limit_gender.csv"] {
        for r in kb(sheet) {
            sex.insert(
                r["med_list_codg"].clone(),
                if r["limit_gender"] == "男" { "1".into() } else { "2".into() },
            );
        }
    }
    let child: HashSet<String> = ["item_limit_age.csv", "drug_limit_age.csv"]
        .iter()
        .flat_map(|s| kb(s))
        .filter(|r| r["limit_age_group"] == "儿童")
        .map(|r| r["med_list_codg"].clone())
        .collect();
    let inpatient_only: HashSet<String> =
        kb("drug_limit_care_setting.csv").into_iter().map(|r| r["med_list_codg"].clone()).collect();
    let level: HashMap<String, u32> = kb("drug_limit_hospital_level.csv")
        .into_iter()
        .map(|r| (r["med_list_codg"].clone(), if r["min_hospital_level"] == "三级" { 3 } else { 2 }))
        .collect();
    let work_injury: HashSet<String> = kb("drug_limit_insurance.csv")
        .into_iter()
        .filter(|r| r["limit_insurance"] == "工伤")
        .map(|r| r["med_list_codg"].clone())
        .collect();
    let course: HashSet<String> = ["item_limit_course.csv", "drug_limit_course_days.csv"]
        .iter()
        .flat_map(|s| kb(s))
        .map(|r| r["med_list_codg"].clone())
        .collect();
    let mut group: HashMap<String, Vec<String>> = HashMap::new();
    for r in kb("item_secondary_surgery.csv") {
        group.entry(r["med_list_codg"].clone()).or_default().push(r["surgery_group"].clone());
    }
    let pairs: Vec<(String, String)> = kb("item_duplicate_pairs.csv")
        .into_iter()
        .map(|r| (r["main_codg"].clone(), r["sub_codg"].clone()))
        .collect();
    let inpatient = |m: &str| matches!(m, "21" | "22" | "23" | "24" | "52" | "92");
    for id in &clean {
        let s = setl[id.as_str()];
        let fl = lines.get(id.as_str()).cloned().unwrap_or_default();
        let brdy = date(&s["brdy"]);
        let lv: u32 = d.medins[&s["fixmedins_code"]]["hosp_lv"].parse().unwrap_or(0);
        let mut per_day: HashMap<(&str, &str), Decimal> = HashMap::new();
        let mut identical = HashSet::new();
        let codes: HashSet<&str> = fl.iter().map(|f| f["med_list_codg"].as_str()).collect();
        let mut groups: HashMap<&str, HashSet<&str>> = HashMap::new();
        for f in &fl {
            let c = f["med_list_codg"].as_str();
            let day = &f["fee_ocur_time"][..10];
            let age_days = (date(day) - brdy).num_days();
            *per_day.entry((c, day)).or_default() += dec(&f["cnt"]);
            assert!(
                identical.insert((c, f["fee_ocur_time"].as_str(), f["cnt"].as_str(), f["pric"].as_str())),
                "{id}: identical fee lines of {c}"
            );
            if s["refd_setl_flag"] == "1" {
                continue;
            }
            assert!(
                date(day) >= date(&s["begndate"]) && date(day) <= date(&s["enddate"]),
                "{id}: {c} on {day}"
            );
            if let Some(x) = sex.get(c) {
                assert_eq!(x, &s["gend"], "{id}: {c} is limited to the other sex");
            }
            assert!(!child.contains(c) || age_days < 18 * 365, "{id}: child-only {c} at {age_days} days");
            assert!(!inpatient_only.contains(c) || inpatient(&s["med_type"]), "{id}: inpatient-only {c}");
            assert!(level.get(c).is_none_or(|&l| lv >= l), "{id}: {c} at level {lv}");
            assert!(!work_injury.contains(c), "{id}: work-injury drug {c}");
            assert!(!course.contains(c), "{id}: course-limited {c}");
            for g in group.get(c).into_iter().flatten() {
                groups.entry(g.as_str()).or_default().insert(c);
            }
        }
        for ((c, day), n) in &per_day {
            if let Some(max) = freq.get(*c) {
                assert!(n <= max, "{id}: {c} {n} times on {day}");
            }
        }
        assert!(groups.values().all(|v| v.len() <= 1), "{id}: two operations of one group");
        for (m, sub) in &pairs {
            assert!(!(codes.contains(m.as_str()) && codes.contains(sub.as_str())), "{id}: pair {m} + {sub}");
        }
        if inpatient(&s["med_type"]) && s["refd_setl_flag"] == "0" {
            assert!(
                s["insu_admdvs"][..4] == s["fix_blng_admdvs"][..4] || s["refl_flag"] == "1",
                "{id}: out of area without filing"
            );
        }
        let d3 = &s["dise_codg"];
        assert!(
            !d3.starts_with('S') && !d3.starts_with('T') || !inpatient(&s["med_type"]),
            "{id}: unlabelled injury stay"
        );
    }
    // Stays of a person: no overlap between facilities, no readmission to the same facility
    // within 15 days with the same category, bed-days never above days in hospital.
    let mut stays: HashMap<&str, BTreeMap<&str, Vec<&HashMap<String, String>>>> = HashMap::new();
    let reversed: HashSet<&str> = d.setl.iter().map(|s| s["init_setl_id"].as_str()).collect();
    for s in &d.setl {
        if inpatient(&s["med_type"])
            && s["refd_setl_flag"] == "0"
            && !reversed.contains(s["setl_id"].as_str())
        {
            stays.entry(s["psn_no"].as_str()).or_default().entry(s["mdtrt_id"].as_str()).or_default().push(s);
        }
    }
    for (psn, by_stay) in &stays {
        let v: Vec<(NaiveDate, NaiveDate, &str, &str, bool)> = by_stay
            .values()
            .map(|rows| {
                let b = rows.iter().map(|r| date(&r["begndate"])).min().unwrap();
                let e = rows.iter().map(|r| date(&r["enddate"])).max().unwrap();
                let all_clean = rows.iter().all(|r| clean.contains(&r["setl_id"]));
                if all_clean {
                    let beds: Decimal = rows
                        .iter()
                        .flat_map(|r| lines.get(r["setl_id"].as_str()).cloned().unwrap_or_default())
                        .filter(|f| f["med_list_codg"] == "001109000010000")
                        .map(|f| dec(&f["cnt"]))
                        .sum();
                    assert!(
                        beds <= Decimal::from((e - b).num_days().max(1)),
                        "{psn}: {beds} bed-days from {b} to {e}"
                    );
                }
                (b, e, rows[0]["fixmedins_code"].as_str(), &rows[0]["dise_codg"][..3], all_clean)
            })
            .collect();
        for (i, a) in v.iter().enumerate() {
            for b in &v[i + 1..] {
                if !(a.4 && b.4) {
                    continue;
                }
                let (first, second) = if a.0 <= b.0 { (a, b) } else { (b, a) };
                assert!(
                    !(second.0 < first.1 && first.2 != second.2),
                    "{psn}: stays overlap at two facilities"
                );
                let gap = (second.0 - first.1).num_days();
                assert!(
                    !(first.2 == second.2
                        && (0..=15).contains(&gap)
                        && first.3 == second.3
                        && first.3 != "Z51"),
                    "{psn}: readmission after {gap} days"
                );
            }
        }
    }
}

#[test]
fn parquet_output_has_the_contract_types() {
    let dir = common::tempdir();
    let mut cfg = GenConfig::new(dir.path().to_path_buf(), 5_000, 2);
    cfg.format = OutFormat::Parquet;
    let s = synth::generate(&cfg).unwrap();
    let mut rows = HashMap::new();
    for spec in [&SETL, &FEE, &PSN, &MEDINS, &PAY] {
        let path = dir.path().join("input").join(format!("{}.parquet", spec.name));
        let file = std::fs::File::open(&path).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        assert_eq!(batches[0].schema(), spec.arrow_schema(), "{} schema", spec.name);
        rows.insert(spec.name, batches);
    }
    let n: usize = rows["fee"].iter().map(|b| b.num_rows()).sum();
    let labels = synth::read_labels(&dir.path().join("labels")).unwrap();
    let bad_fee = labels.iter().filter(|l| l.role == LabelRole::Malformed && l.table == "fee").count();
    assert_eq!(n as u64, s.fee_lines + bad_fee as u64);
    // The fee lines of each settlement add up to its total (money as Decimal128 cents).
    let mut sums: HashMap<String, i128> = HashMap::new();
    for b in &rows["fee"] {
        let id = b.column_by_name("setl_id").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
        let amt = b
            .column_by_name("det_item_fee_sumamt")
            .unwrap()
            .as_any()
            .downcast_ref::<Decimal128Array>()
            .unwrap();
        for r in 0..b.num_rows() {
            *sums.entry(id.value(r).to_string()).or_default() += amt.value(r);
        }
    }
    let mut checked = 0;
    let special: HashSet<&str> = labels
        .iter()
        .filter(|l| l.subkind == "fee_sum_mismatch" || l.role == LabelRole::Malformed)
        .map(|l| l.setl_id.as_str())
        .collect();
    for b in &rows["setl"] {
        let id = b.column_by_name("setl_id").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
        let tot =
            b.column_by_name("medfee_sumamt").unwrap().as_any().downcast_ref::<Decimal128Array>().unwrap();
        for r in 0..b.num_rows() {
            if !special.contains(id.value(r)) {
                assert_eq!(sums.get(id.value(r)).copied().unwrap_or(0), tot.value(r), "{}", id.value(r));
                checked += 1;
            }
        }
    }
    assert!(checked > 4_000);
}

#[test]
fn gb18030_output_decodes_to_the_utf8_output() {
    let (a, b) = (common::tempdir(), common::tempdir());
    generate_into(a.path(), 1_500, 4);
    let mut cfg = GenConfig::new(b.path().to_path_buf(), 1_500, 4);
    cfg.encoding = OutEncoding::Gb18030;
    synth::generate(&cfg).unwrap();
    for t in ["setl", "fee", "psn", "medins", "pay"] {
        let utf8 = std::fs::read(a.path().join(format!("input/{t}.csv"))).unwrap();
        let gbk = std::fs::read(b.path().join(format!("input/{t}.csv"))).unwrap();
        let (decoded, _, errors) = encoding_rs::GB18030.decode(&gbk);
        assert!(!errors);
        assert_eq!(decoded.as_bytes(), &utf8[..], "{t}");
        if t == "psn" {
            assert_ne!(gbk, utf8, "names are encoded");
        }
    }
}

/// Findings batches naming the given (setl_id, category) pairs.
fn findings(hits: &[(String, String)]) -> Vec<RecordBatch> {
    let f: Vec<medaudit::findings::Finding> = hits
        .iter()
        .map(|(s, c)| medaudit::findings::Finding {
            setl_id: s.clone(),
            psn_no: None,
            fixmedins_code: None,
            rule_id: format!("test.{c}"),
            category: schema::CATEGORIES.iter().find(|x| **x == c.as_str()).copied().unwrap(),
            severity: medaudit::findings::Severity::Low,
            amount_at_risk: Decimal::ZERO,
            detail: "测试".into(),
            entity_type: "settlement",
            entity_id: s.clone(),
            feedetl_sns: None,
        })
        .collect();
    vec![medaudit::findings::to_batch(&f, "test").unwrap()]
}

#[test]
fn scorer_measures_recall_false_positives_and_controls() {
    let dir = common::tempdir();
    generate_into(dir.path(), 3_000, 13);
    let labels_dir = dir.path().join("labels");
    let d = Data::load(dir.path());
    let perfect: Vec<(String, String)> = d
        .labels
        .iter()
        .filter(|l| l.role == LabelRole::Anomaly)
        .map(|l| (l.setl_id.clone(), l.kind.clone()))
        .collect();
    let t = synth::score(&labels_dir, &findings(&perfect)).unwrap();
    assert!(t.failures(&[], 0.95, 0.01).is_empty(), "{t}");
    assert_eq!(t.kind_recall("impersonation"), Some(1.0));
    assert_eq!(t.clean_flagged_any, 0);
    let shown = t.to_string();
    assert!(shown.contains("overlapping_stays") && shown.contains("negative controls"), "{shown}");

    // Nothing found for one kind: its recall is 0 and the failure names it.
    let without: Vec<(String, String)> =
        perfect.iter().filter(|(_, k)| k != "phantom_stay").cloned().collect();
    let t = synth::score(&labels_dir, &findings(&without)).unwrap();
    assert_eq!(t.kind_recall("phantom_stay"), Some(0.0));
    let f = t.failures(&["phantom_stay", "impersonation"], 0.95, 0.01);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].starts_with("phantom_stay: recall 0.000"), "{f:?}");

    // Flagging 2 % of the clean settlements fails the false-positive threshold.
    let clean: Vec<String> = d.clean().into_iter().collect();
    let k = clean.len() / 50;
    let mut noisy = perfect.clone();
    noisy.extend(clean.iter().take(k).map(|s| (s.clone(), "overcharge".to_string())));
    let t = synth::score(&labels_dir, &findings(&noisy)).unwrap();
    assert!((t.fp_rate("overcharge") - k as f64 / clean.len() as f64).abs() < 1e-12);
    assert_eq!(t.failures(&["overcharge"], 0.95, 0.01).len(), 1);
    assert!(t.failures(&["overcharge"], 0.95, 0.05).is_empty());

    // A negative control flagged by a check of its kind is a failure; by another kind it is not.
    let ctl = d.labels.iter().find(|l| l.subkind == "chemo_readmission").unwrap();
    let mut on_control = perfect.clone();
    on_control.push((ctl.setl_id.clone(), "split_admission".into()));
    let t = synth::score(&labels_dir, &findings(&on_control)).unwrap();
    assert_eq!(t.control_hits("split_admission"), 1);
    assert!(t.failures(&["split_admission"], 0.95, 0.01).iter().any(|f| f.contains("chemo_readmission")));
    let mut other = perfect;
    other.push((ctl.setl_id.clone(), "injury_review".into()));
    let t = synth::score(&labels_dir, &findings(&other)).unwrap();
    assert_eq!(t.control_hits("split_admission"), 0);
    assert!(t.failures(&[], 0.95, 0.01).is_empty());
}

#[test]
fn sample_folder_matches_the_generator() {
    let sample = common::repo().join("datasets/sample");
    if std::env::var_os("MEDAUDIT_WRITE_SAMPLE").is_some() {
        synth::write_sample(&sample).unwrap();
    }
    let dir = common::tempdir();
    synth::write_sample(dir.path()).unwrap();
    let ours = files(dir.path());
    let shipped = files(&sample);
    for (k, v) in &ours {
        assert!(
            shipped.get(k) == Some(v),
            "datasets/sample/{k} is stale: regenerate it with `medaudit::synth::write_sample` \
             (the test `sample_folder_matches_the_generator` does with MEDAUDIT_WRITE_SAMPLE=1)"
        );
    }
    let size: usize = shipped.values().map(Vec::len).sum();
    assert!(size < 2 * 1024 * 1024, "the sample is {size} bytes");
}
