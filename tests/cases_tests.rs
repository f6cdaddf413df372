//! The case store: idempotent merge, lifecycle, roles, masking of exports, the audit chain,
//! Horvitz–Thompson estimates, and the whole flow through the CLI.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use medaudit::cases::{
    Actor, AppealOutcome, CaseError, CaseRef, Confirmation, ExportFormat, Filter, Party, RecoverFrom, Role,
    Status, Store, Unmask,
};
use rust_decimal::Decimal;

use crate::common::{repo, tempdir};

const PW: &str = "correct horse battery";

/// One `medaudit run` over the bundled sample (200 synthetic settlements with labelled
/// anomalies), shared by the tests of this module; they only read it.
pub(crate) fn sample_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("cases-sample-run-{}", std::process::id()));
        let opts = medaudit::run::RunOptions {
            input: repo().join("datasets/sample/input"),
            out: out.clone(),
            ..Default::default()
        };
        medaudit::run::run(&opts).expect("run over the bundled sample");
        out
    })
}

/// A copy of a run output folder with another run id, a later start and some edits.
fn later_run(src: &Path, dst: &Path, run_id: &str, edit_manifest: impl FnOnce(&mut serde_json::Value)) {
    copy_dir(src, dst);
    let path = dst.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    m["run_id"] = run_id.into();
    m["started_at"] = "2999-01-01T00:00:00+00:00".into();
    edit_manifest(&mut m);
    std::fs::write(&path, m.to_string()).unwrap();
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// Rewrites `findings.parquet` of a run folder: keeps the rows `keep` accepts, sets `run_id`.
fn rewrite_findings(dir: &Path, run_id: &str, keep: impl Fn(&str, &str) -> bool) {
    use arrow::array::{Array, AsArray, BooleanArray, RecordBatch, StringArray};
    let path = dir.join("findings.parquet");
    let batches = medaudit::output::read_parquet(&path).unwrap();
    let schema = medaudit::schema::findings_schema();
    let mut out = Vec::new();
    for b in &batches {
        let setl = b.column_by_name("setl_id").unwrap().as_string::<i32>();
        let rule = b.column_by_name("rule_id").unwrap().as_string::<i32>();
        let mask = BooleanArray::from(
            (0..b.num_rows()).map(|r| keep(setl.value(r), rule.value(r))).collect::<Vec<_>>(),
        );
        let f = arrow::compute::filter_record_batch(b, &mask).unwrap();
        let mut cols = f.columns().to_vec();
        let i = schema.index_of("run_id").unwrap();
        cols[i] = std::sync::Arc::new(StringArray::from(vec![run_id; f.num_rows()]));
        let _ = cols[i].len();
        out.push(RecordBatch::try_new(schema.clone(), cols).unwrap());
    }
    medaudit::output::write_parquet(&path, schema, &out).unwrap();
}

struct Team {
    admin: Actor,
    reviewer: Actor,
    reviewer2: Actor,
    investigator: Actor,
}

fn team(store: &mut Store) -> Team {
    let admin = store.init_admin("admin", PW).unwrap();
    store.add_user(&admin, "li", &[Role::Reviewer], PW).unwrap();
    store.add_user(&admin, "wang", &[Role::Reviewer], PW).unwrap();
    store.add_user(&admin, "zhao", &[Role::Investigator], PW).unwrap();
    Team {
        reviewer: store.login("li", PW).unwrap(),
        reviewer2: store.login("wang", PW).unwrap(),
        investigator: store.login("zhao", PW).unwrap(),
        admin,
    }
}

fn count(store: &Store, sql: &str) -> i64 {
    store.connection().query_row(sql, [], |r| r.get(0)).unwrap()
}

fn merged_store(dir: &Path) -> (Store, Team) {
    let mut store = Store::open(dir).unwrap();
    let t = team(&mut store);
    let r = store.merge_run(&t.admin, sample_run()).unwrap();
    assert!(!r.already_merged);
    assert!(r.findings_read > 0 && r.sample_rows > 0, "{r:?}");
    (store, t)
}

/// The distinct (entity type, entity id) of a findings file, settlement-level ones by setl_id.
fn entity_keys(run: &Path) -> std::collections::BTreeSet<(String, String)> {
    use arrow::array::AsArray;
    let mut keys = std::collections::BTreeSet::new();
    for b in medaudit::output::read_parquet(&run.join("findings.parquet")).unwrap() {
        let s = b.column_by_name("setl_id").unwrap().as_string::<i32>();
        let t = b.column_by_name("entity_type").unwrap().as_string::<i32>();
        let e = b.column_by_name("entity_id").unwrap().as_string::<i32>();
        for r in 0..b.num_rows() {
            let key = match t.value(r) {
                "person" | "facility" => (t.value(r).to_string(), e.value(r).to_string()),
                _ => ("settlement".to_string(), s.value(r).to_string()),
            };
            keys.insert(key);
        }
    }
    keys
}

#[test]
fn merging_is_idempotent_and_entity_findings_make_one_case() {
    let tmp = tempdir();
    let (mut store, t) = merged_store(tmp.path());
    let cases = count(&store, "SELECT count(*) FROM cases");
    let parts = count(&store, "SELECT count(*) FROM findings");
    let log = count(&store, "SELECT count(*) FROM audit_log");

    // The same run again: nothing.
    let again = store.merge_run(&t.admin, sample_run()).unwrap();
    assert!(again.already_merged);
    assert_eq!(count(&store, "SELECT count(*) FROM cases"), cases);
    assert_eq!(count(&store, "SELECT count(*) FROM findings"), parts);
    assert_eq!(count(&store, "SELECT count(*) FROM audit_log"), log);

    // Another run over the same data flags the same keys: updated, never added.
    let run2 = tmp.path().join("run2");
    later_run(sample_run(), &run2, "R2-same-data", |_| {});
    rewrite_findings(&run2, "R2-same-data", |_, _| true);
    let r2 = store.merge_run(&t.admin, &run2).unwrap();
    assert_eq!((r2.new_cases, r2.new_findings, r2.no_longer_flagged), (0, 0, 0), "{r2:?}");
    assert_eq!(r2.updated_findings as i64, parts);
    assert_eq!(count(&store, "SELECT count(*) FROM cases"), cases);

    // One case per entity: person- and facility-level findings are not copied per settlement.
    let keys = entity_keys(sample_run());
    let finding_cases = count(
        &store,
        "SELECT count(*) FROM cases WHERE EXISTS (SELECT 1 FROM findings f WHERE f.case_id = cases.case_id)",
    );
    assert_eq!(finding_cases as usize, keys.len());
    let entity_keys: Vec<&(String, String)> = keys.iter().filter(|k| k.0 != "settlement").collect();
    for (t_, id) in &entity_keys {
        let n: i64 = store
            .connection()
            .query_row(
                "SELECT count(*) FROM cases WHERE entity_type = ?1 AND entity_id = ?2",
                [t_, id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "{t_}:{id}");
    }
    // Every sampled settlement has a case with its inclusion probability.
    let (_, sample) = crate::common::read_csv(&sample_run().join("review_sample.csv"));
    for row in &sample {
        let id = store.resolve(&CaseRef::Settlement(row[0].clone())).unwrap();
        let p: f64 = store
            .connection()
            .query_row("SELECT inclusion_prob FROM samples WHERE case_id = ?1 LIMIT 1", [id], |r| r.get(0))
            .unwrap();
        assert_eq!(p, row[3].parse::<f64>().unwrap());
    }
    // Evidence is in the store: a case is shown without the run folder.
    let first = store
        .list(&t.reviewer, &Filter { entity_type: vec!["settlement".into()], ..Default::default() })
        .unwrap();
    let setl = first.iter().find(|c| c.findings > 0).unwrap().entity_id.clone();
    let d = store.show(&t.reviewer, &CaseRef::parse(&setl), None).unwrap();
    assert!(d.settlement.is_some() && !d.fee_lines.is_empty() && !d.findings.is_empty());
}

#[test]
fn a_later_run_that_no_longer_flags_a_settlement_records_it() {
    let tmp = tempdir();
    let (mut store, t) = merged_store(tmp.path());
    // A settlement-level finding to drop.
    let (setl, rule): (String, String) = store
        .connection()
        .query_row(
            "SELECT f.setl_id, f.rule_id FROM findings f JOIN cases c ON c.case_id = f.case_id
             WHERE c.entity_type = 'settlement' ORDER BY f.setl_id, f.rule_id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    // A later run that did not run the rule changes nothing.
    let skipped = tmp.path().join("skipped");
    later_run(sample_run(), &skipped, "R2-rule-skipped", |m| {
        for r in m["rules"].as_array_mut().unwrap() {
            if r["id"] == rule.as_str() {
                r["status"] = "skipped".into();
            }
        }
    });
    rewrite_findings(&skipped, "R2-rule-skipped", |s, r| !(s == setl && r == rule));
    let r = store.merge_run(&t.admin, &skipped).unwrap();
    assert_eq!(r.no_longer_flagged, 0, "{r:?}");

    // A later run that ran the rule and no longer flags the settlement records it.
    let later = tmp.path().join("later");
    later_run(sample_run(), &later, "R3-not-flagged", |m| {
        m["started_at"] = "2999-02-01T00:00:00+00:00".into()
    });
    rewrite_findings(&later, "R3-not-flagged", |s, r| !(s == setl && r == rule));
    let r = store.merge_run(&t.admin, &later).unwrap();
    assert_eq!(r.no_longer_flagged, 1, "{r:?}");
    let (status, by): (String, String) = store
        .connection()
        .query_row(
            "SELECT status, status_run_id FROM findings WHERE setl_id = ?1 AND rule_id = ?2",
            [&setl, &rule],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((status.as_str(), by.as_str()), ("no_longer_flagged", "R3-not-flagged"));
    let d = store.show(&t.reviewer, &CaseRef::parse(&setl), None).unwrap();
    assert!(d.findings.iter().any(|f| f.rule_id == rule && f.status == "no_longer_flagged"));

    // Flagged again by a still later run: active again.
    let again = tmp.path().join("again");
    later_run(sample_run(), &again, "R4-flagged-again", |m| {
        m["started_at"] = "2999-03-01T00:00:00+00:00".into()
    });
    rewrite_findings(&again, "R4-flagged-again", |_, _| true);
    let r = store.merge_run(&t.admin, &again).unwrap();
    assert_eq!((r.reflagged, r.new_findings), (1, 0), "{r:?}");
}

/// The sampled settlement cases, in case order.
fn sampled(store: &Store, who: &Actor) -> Vec<medaudit::cases::CaseRow> {
    store
        .list(
            who,
            &Filter {
                status: vec![Status::Sampled],
                entity_type: vec!["settlement".into()],
                ..Default::default()
            },
        )
        .unwrap()
}

#[test]
fn the_lifecycle_refuses_illegal_transitions_and_needs_three_confirmations() {
    let tmp = tempdir();
    let (mut store, t) = merged_store(tmp.path());
    let cases = sampled(&store, &t.reviewer);
    assert!(cases.len() >= 3, "{} sampled cases", cases.len());
    let (a, b, c) = (cases[0].case_id, cases[1].case_id, cases[2].case_id);
    let amount = Decimal::new(12_345, 2);

    // Not in review yet.
    let e = store.confirm(&t.reviewer, a, amount, "测试", None, None).unwrap_err();
    assert!(matches!(e, CaseError::IllegalTransition(_)), "{e}");
    assert!(e.to_string().contains("已抽样"), "{e}");
    assert_eq!(store.start_review(&t.reviewer, a).unwrap(), Status::InReview);
    assert!(matches!(store.start_review(&t.reviewer, a), Err(CaseError::IllegalTransition(_))));
    // A deduction before the confirmation is refused.
    assert!(matches!(store.deduct(&t.reviewer, a, "2030-01"), Err(CaseError::IllegalTransition(_))));
    // An amount of 0 or with three decimals is refused.
    assert!(matches!(
        store.confirm(&t.reviewer, a, Decimal::ZERO, "测试", None, None),
        Err(CaseError::Invalid(_))
    ));
    assert!(store.confirm(&t.reviewer, a, Decimal::new(1, 3), "测试", None, None).is_err());
    let day = chrono::NaiveDate::from_ymd_opt(2027, 1, 10).unwrap();
    store.confirm(&t.reviewer, a, amount, "重复收取床位费", None, Some(day)).unwrap();
    let row =
        store.list(&t.reviewer, &Filter::default()).unwrap().into_iter().find(|r| r.case_id == a).unwrap();
    // Direct settlement: deducted from the facility of the settlement.
    assert_eq!(row.recover_from.as_deref(), Some("facility"));
    assert_eq!(row.recover_party, row.fixmedins_code);
    assert_eq!(row.deduct_amount, Some(amount));

    // Four eyes: the insurer's confirmation comes from another reviewer.
    let conf = |p: Party, d: u32| Confirmation {
        party: p,
        date: chrono::NaiveDate::from_ymd_opt(2027, 1, d),
        reference: format!("确认函-{d}"),
    };
    assert!(matches!(
        store.record_confirmation(&t.reviewer, a, &conf(Party::Insurer, 11)),
        Err(CaseError::Denied(_))
    ));
    store.record_confirmation(&t.reviewer2, a, &conf(Party::Insurer, 11)).unwrap();
    store.record_confirmation(&t.reviewer, a, &conf(Party::Agency, 12)).unwrap();
    assert!(store.record_confirmation(&t.reviewer, a, &conf(Party::Agency, 13)).is_err(), "recorded twice");
    // Two of three: not yet.
    let e = store.deduct(&t.reviewer, a, "2027-02").unwrap_err();
    assert!(e.to_string().contains("定点医疗机构"), "{e}");
    store.record_confirmation(&t.reviewer, a, &conf(Party::Facility, 20)).unwrap();
    // Confirmed in January: deducted from February's payment, not January's.
    assert!(matches!(store.deduct(&t.reviewer, a, "2027-01"), Err(CaseError::IllegalTransition(_))));
    let jan = store.deductions(&t.reviewer, "2027-01").unwrap();
    assert!(jan.facilities.is_empty());
    assert!(jan.pending.iter().any(|p| p.case_id == a));

    // Appeal before deduction: case b.
    store.start_review(&t.reviewer, b).unwrap();
    store.confirm(&t.reviewer, b, Decimal::new(50_000, 2), "挂床住院", None, Some(day)).unwrap();
    store.record_confirmation(&t.reviewer2, b, &conf(Party::Insurer, 11)).unwrap();
    store.record_confirmation(&t.reviewer, b, &conf(Party::Agency, 12)).unwrap();
    store.record_confirmation(&t.reviewer, b, &conf(Party::Facility, 13)).unwrap();
    assert_eq!(store.appeal(&t.reviewer, b, "病历显示有治疗", None).unwrap(), Status::Appealed);
    assert!(matches!(store.deduct(&t.reviewer, b, "2027-02"), Err(CaseError::IllegalTransition(_))));
    // Partly upheld: a new amount, confirmed again by all three.
    store
        .resolve_appeal(&t.reviewer, b, AppealOutcome::Adjusted(Decimal::new(20_000, 2)), "部分成立")
        .unwrap();
    let feb = store.deductions(&t.reviewer, "2027-02").unwrap();
    let pending_b = feb.pending.iter().find(|p| p.case_id == b).unwrap();
    assert_eq!(pending_b.missing, vec![Party::Insurer, Party::Agency, Party::Facility]);
    let line_a = feb.facilities.iter().flat_map(|f| &f.lines).find(|l| l.case_id == a).unwrap();
    assert_eq!(line_a.amount, amount);
    assert!(!line_a.deducted);

    // Recording February's deductions: a is deducted, and can no longer be appealed.
    let done = store.record_deductions(&t.reviewer, "2027-02").unwrap();
    assert_eq!(done, vec![a]);
    let feb = store.deductions(&t.reviewer, "2027-02").unwrap();
    assert!(feb.facilities.iter().flat_map(|f| &f.lines).any(|l| l.case_id == a && l.deducted));
    assert_eq!(feb.total, amount);
    let e = store.appeal(&t.reviewer, a, "迟到的申诉", None).unwrap_err();
    assert!(e.to_string().contains("已扣款"), "{e}");

    // Dismissal needs a reason; a manual reimbursement is recovered from the person.
    store.start_review(&t.reviewer, c).unwrap();
    assert!(store.dismiss(&t.reviewer, c, "  ").is_err());
    store.dismiss(&t.reviewer, c, "病历齐全，属合理诊疗").unwrap();
    assert!(matches!(
        store.confirm(&t.reviewer, c, amount, "x", None, None),
        Err(CaseError::IllegalTransition(_))
    ));
    store.reopen(&t.reviewer, c, "新线索").unwrap();
    let psn = cases[2].psn_no.clone().unwrap();
    store
        .confirm(&t.reviewer, c, amount, "冒名报销", Some(RecoverFrom::Person(psn.clone())), Some(day))
        .unwrap();
    assert!(
        store.record_confirmation(&t.reviewer, c, &conf(Party::Facility, 12)).is_err(),
        "no facility in a recovery"
    );
    assert!(store.appeal(&t.reviewer, c, "x", None).is_err(), "no facility appeal in a recovery");
    store.record_confirmation(&t.reviewer2, c, &conf(Party::Insurer, 12)).unwrap();
    store.record_confirmation(&t.reviewer, c, &conf(Party::Agency, 12)).unwrap();
    assert!(store.deduct(&t.reviewer, c, "2027-02").is_err(), "recovered from the person, not deducted");
    let feb = store.deductions(&t.reviewer, "2027-02").unwrap();
    assert!(feb.recoveries.iter().any(|r| r.case_id == c && r.psn_no == psn));
    assert_eq!(
        store.recover(&t.reviewer, c, chrono::NaiveDate::from_ymd_opt(2027, 2, 3), "已退回").unwrap(),
        Status::Recovered
    );

    // Every step is in the case's history.
    let d = store.show(&t.reviewer, &CaseRef::Id(a), None).unwrap();
    let actions: Vec<&str> = d.history.iter().map(|h| h.action.as_str()).collect();
    assert_eq!(
        actions,
        ["start_review", "confirm", "confirmation", "confirmation", "confirmation", "deduct"]
    );
}

#[test]
fn roles_are_checked_and_failed_logins_logged() {
    let tmp = tempdir();
    let (mut store, t) = merged_store(tmp.path());
    let id = sampled(&store, &t.reviewer)[0].case_id;
    // Only reviewers decide.
    for who in [&t.admin, &t.investigator] {
        assert!(matches!(store.start_review(who, id), Err(CaseError::Denied(_))), "{}", who.name);
    }
    // Only administrators merge and manage users.
    assert!(matches!(store.merge_run(&t.reviewer, sample_run()), Err(CaseError::Denied(_))));
    assert!(matches!(store.add_user(&t.reviewer, "x", &[Role::Admin], PW), Err(CaseError::Denied(_))));
    assert!(matches!(store.init_admin("second", PW), Err(CaseError::Denied(_))));
    // Only investigators see or export unmasked data, and only with a purpose.
    let out = tmp.path().join("x.csv");
    let purpose = Unmask { purpose: "公安协查".into() };
    for who in [&t.reviewer, &t.admin] {
        let e = store.export(who, &Filter::default(), &out, ExportFormat::Csv, Some(&purpose)).unwrap_err();
        assert!(matches!(e, CaseError::Denied(_)), "{e}");
    }
    let empty = Unmask { purpose: " ".into() };
    assert!(
        store.export(&t.investigator, &Filter::default(), &out, ExportFormat::Csv, Some(&empty)).is_err()
    );
    assert!(!out.exists());
    assert!(matches!(store.show(&t.reviewer, &CaseRef::Id(id), Some("好奇")), Err(CaseError::Denied(_))));
    // An actor without roles can do nothing.
    let nobody = Actor { name: "nobody".into(), roles: vec![] };
    assert!(store.list(&nobody, &Filter::default()).is_err());

    // Failed logins are refused and logged; a disabled user cannot log in.
    assert!(matches!(store.login("li", "wrong password"), Err(CaseError::Login(_))));
    assert!(matches!(store.login("ghost", PW), Err(CaseError::Login(_))));
    store.set_active(&t.admin, "li", false).unwrap();
    assert!(matches!(store.login("li", PW), Err(CaseError::Login(_))));
    let log = store.audit_entries(&t.admin, None, 100).unwrap();
    let failed: Vec<(&str, &str)> = log
        .iter()
        .filter(|e| e.action == "login_failed")
        .map(|e| (e.user.as_str(), e.detail.as_str()))
        .collect();
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert!(failed.iter().any(|(u, d)| *u == "ghost" && d.contains("unknown user")));
    assert!(failed.iter().any(|(u, d)| *u == "li" && d.contains("account disabled")));
    assert!(failed.iter().all(|(_, d)| !d.contains(PW)), "passwords are never logged");
    // Reviewers do not read the audit log.
    assert!(store.audit_entries(&t.reviewer2, None, 10).is_err());
}

/// The 18-character resident ID numbers in a text: 17 digits and the GB 11643 check
/// character, with a valid birth date (item codes of 18 digits are not ID numbers).
fn id_numbers(text: &str) -> Vec<String> {
    let b: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 18 <= b.len() {
        let candidate: String = b[i..i + 18].iter().collect();
        let boundary = i == 0 || !b[i - 1].is_ascii_digit();
        let shaped = b[i..i + 17].iter().all(|c| c.is_ascii_digit())
            && (b[i + 17].is_ascii_digit() || b[i + 17] == 'X' || b[i + 17] == 'x');
        if boundary
            && shaped
            && chrono::NaiveDate::parse_from_str(&candidate[6..14], "%Y%m%d").is_ok()
            && medaudit::idcard::check_char(&candidate[..17]) == Some(b[i + 17].to_ascii_uppercase())
        {
            out.push(candidate);
            i += 18;
        } else {
            i += 1;
        }
    }
    out
}

/// Every text of an exported file (xlsx: its XML parts unzipped).
fn exported_text(path: &Path) -> String {
    match path.extension().and_then(|e| e.to_str()) {
        Some("xlsx") => {
            let f = std::fs::File::open(path).unwrap();
            let mut z = zip::ZipArchive::new(f).unwrap();
            let mut all = String::new();
            for i in 0..z.len() {
                let mut part = z.by_index(i).unwrap();
                let mut s = String::new();
                std::io::Read::read_to_string(&mut part, &mut s).unwrap_or_default();
                all.push_str(&s);
            }
            all
        }
        Some("parquet") => {
            let batches = medaudit::output::read_parquet(path).unwrap();
            let mut buf = Vec::new();
            medaudit::output::write_csv_to(&mut buf, &medaudit::cases::export_schema(), &batches).unwrap();
            String::from_utf8(buf).unwrap()
        }
        _ => std::fs::read_to_string(path).unwrap(),
    }
}

#[test]
fn default_exports_never_carry_a_full_id_number_or_name() {
    let tmp = tempdir();
    let (store, t) = merged_store(tmp.path());
    // The full names and ID numbers the store holds.
    let mut st = store.connection().prepare("SELECT DISTINCT psn_name, certno FROM settlements").unwrap();
    let people: Vec<(String, String)> =
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    drop(st);
    assert!(people.len() > 10);
    let mut rows = 0;
    for (name, format) in [
        ("cases.csv", ExportFormat::Csv),
        ("cases.xlsx", ExportFormat::Xlsx),
        ("cases.parquet", ExportFormat::Parquet),
    ] {
        let path = tmp.path().join(name);
        let r = store.export(&t.investigator, &Filter::default(), &path, format, None).unwrap();
        assert!(r.masked && r.rows > 0);
        rows = r.rows;
        let text = exported_text(&path);
        assert!(id_numbers(&text).is_empty(), "{name}: {:?}", id_numbers(&text));
        for (n, c) in &people {
            if n.chars().count() >= 2 {
                assert!(!text.contains(n.as_str()), "{name} contains the name {n}");
            }
            assert!(!text.contains(c.as_str()), "{name} contains an ID number");
        }
        // The masked forms are there.
        assert!(text.contains("**********"), "{name}");
        if format == ExportFormat::Csv {
            assert!(std::fs::read(&path).unwrap().starts_with(b"\xEF\xBB\xBF"));
            assert!(text.contains("预警") || text.contains("已抽样"));
        }
    }
    // Shown on the terminal, masked too.
    let setl = store
        .list(&t.reviewer, &Filter { entity_type: vec!["settlement".into()], ..Default::default() })
        .unwrap()[0]
        .entity_id
        .clone();
    let d = store.show(&t.reviewer, &CaseRef::parse(&setl), None).unwrap();
    let shown = medaudit::cases::text::case_detail(&d, &Default::default());
    assert!(id_numbers(&shown).is_empty(), "{:?}", id_numbers(&shown));

    // Unmasked: an investigator with a purpose; the full numbers are there; logged.
    let path = tmp.path().join("full.csv");
    let u = Unmask { purpose: "配合公安机关调查冒名就医".into() };
    let r = store.export(&t.investigator, &Filter::default(), &path, ExportFormat::Csv, Some(&u)).unwrap();
    assert!(!r.masked);
    assert_eq!(r.rows, rows);
    assert!(!id_numbers(&std::fs::read_to_string(&path).unwrap()).is_empty());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o077, 0, "owner only");
    }
    let log = store.audit_entries(&t.admin, None, 10).unwrap();
    let exports: Vec<serde_json::Value> = log
        .iter()
        .filter(|e| e.action == "export")
        .map(|e| serde_json::from_str(&e.detail).unwrap())
        .collect();
    assert_eq!(exports.len(), 4);
    let last = &exports[0];
    assert_eq!(last["masked"], false);
    assert_eq!(last["purpose"], u.purpose.as_str());
    assert_eq!(last["rows"], rows);
    assert_eq!(log.iter().find(|e| e.action == "export").unwrap().user, "zhao");
    assert!(exports[1..].iter().all(|e| e["masked"] == true));
}

#[test]
fn the_audit_chain_detects_an_edited_entry() {
    let tmp = tempdir();
    let (mut store, t) = merged_store(tmp.path());
    let id = sampled(&store, &t.reviewer)[0].case_id;
    store.start_review(&t.reviewer, id).unwrap();
    store.dismiss(&t.reviewer, id, "合理诊疗").unwrap();
    let ok = store.verify_audit(&t.admin).unwrap();
    assert!(ok.ok(), "{ok:?}");
    assert!(ok.entries >= 6);
    // The log refuses changes through SQL.
    let conn = store.connection();
    assert!(conn.execute("UPDATE audit_log SET user = 'x' WHERE seq = 1", []).is_err());
    assert!(conn.execute("DELETE FROM audit_log WHERE seq = 1", []).is_err());
    // Someone with the file drops the guard and rewrites the dismissal's reason.
    let seq: i64 =
        conn.query_row("SELECT seq FROM audit_log WHERE action = 'dismiss'", [], |r| r.get(0)).unwrap();
    conn.execute_batch("DROP TRIGGER audit_log_no_update;").unwrap();
    conn.execute("UPDATE audit_log SET detail = replace(detail, '合理诊疗', '已核实') WHERE seq = ?1", [seq])
        .unwrap();
    let bad = store.verify_audit(&t.admin).unwrap();
    assert!(!bad.ok());
    assert_eq!(bad.broken[0].0, seq, "{bad:?}");
    // Recomputing that entry's hash breaks the link to the next one instead.
    let text = medaudit::cases::text::audit_report(&bad);
    assert!(text.contains(&format!("第 {seq} 条")), "{text}");
}

#[test]
fn estimates_weight_reviews_by_inverse_inclusion_probability() {
    let tmp = tempdir();
    let (mut store, t) = merged_store(tmp.path());
    let run_id: String = store.connection().query_row("SELECT run_id FROM runs", [], |r| r.get(0)).unwrap();
    // Review every sampled settlement: violations in the certainty stratum, the rest dismissed.
    let mut st = store
        .connection()
        .prepare("SELECT case_id, stratum, inclusion_prob FROM samples WHERE run_id = ?1 ORDER BY case_id")
        .unwrap();
    let rows: Vec<(i64, String, f64)> = st
        .query_map([&run_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    drop(st);
    let mut certainty = 0;
    let amount = Decimal::new(10_000, 2);
    for (id, stratum, p) in &rows {
        store.start_review(&t.reviewer, *id).unwrap();
        if stratum.ends_with("/certainty") {
            assert_eq!(*p, 1.0);
            store.confirm(&t.reviewer, *id, amount, "确认", None, None).unwrap();
            certainty += 1;
        } else {
            store.dismiss(&t.reviewer, *id, "合规").unwrap();
        }
    }
    assert!(certainty > 0, "the sample has a certainty stratum");
    let e = store.estimate(&t.reviewer, None, 0.95).unwrap();
    assert_eq!(e.run_id, run_id);
    assert_eq!(e.overall.reviewed as usize, rows.len());
    assert_eq!(e.overall.confirmed, certainty);
    // Certainty strata count once each; every other stratum saw only zeros: no variance.
    assert!((e.overall.violations.estimate - certainty as f64).abs() < 1e-9);
    assert_eq!(e.overall.violations.low, Some(e.overall.violations.estimate));
    assert_eq!(e.overall.violations.high, Some(e.overall.violations.estimate));
    assert!((e.overall.amount.estimate - 100.0 * certainty as f64).abs() < 1e-6);
    let population: i64 = e.localities.iter().map(|l| l.population).sum();
    assert_eq!(population, e.overall.population);
    assert!((e.overall.rate.estimate - certainty as f64 / population as f64).abs() < 1e-12);
    // The certainty stratum is flagged by definition: nothing missed.
    assert_eq!(e.overall.missed_violations.estimate, 0.0);
    // Precision per rule: confirmed / reviewed over decided cases.
    assert!(!e.rules.is_empty());
    for r in &e.rules {
        assert!(r.confirmed <= r.reviewed);
        assert_eq!(r.precision, Some(r.confirmed as f64 / r.reviewed as f64));
    }

    // One dismissed non-certainty settlement turned into a violation: the estimate grows by
    // n_h / (r_h π) for its stratum — here every drawn unit is reviewed, so by 1/π.
    let (id, stratum, p) = rows.iter().find(|(_, s, _)| !s.ends_with("/certainty")).unwrap().clone();
    store.reopen(&t.reviewer, id, "复核").unwrap();
    store.confirm(&t.reviewer, id, amount, "确认", None, None).unwrap();
    let e2 = store.estimate(&t.reviewer, Some(&run_id), 0.95).unwrap();
    let drawn: i64 = store
        .connection()
        .query_row(
            "SELECT drawn FROM strata WHERE run_id = ?1 AND locality || '/' || stratum = ?2",
            [&run_id, &stratum],
            |r| r.get(0),
        )
        .unwrap();
    let reviewed = rows.iter().filter(|r| r.1 == stratum).count() as f64;
    let expected = certainty as f64 + drawn as f64 / reviewed / p;
    assert!(
        (e2.overall.violations.estimate - expected).abs() < 1e-6,
        "{} vs {expected}",
        e2.overall.violations.estimate
    );
    assert!(e2.overall.violations.high.unwrap() >= e2.overall.violations.estimate);
}

/// Runs the binary with the password in the environment.
fn cli(store: &Path, user: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_medaudit"))
        .args(args)
        .env("MEDAUDIT_STORE", store)
        .env("MEDAUDIT_USER", user)
        .env("MEDAUDIT_PASSWORD", PW)
        .env("MEDAUDIT_NEW_PASSWORD", PW)
        .env("MEDAUDIT_HOME", repo())
        .output()
        .expect("run medaudit");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn from_sample_to_deduction_list_and_export_through_the_cli() {
    let tmp = tempdir();
    let store = tmp.path().join("store");
    let run = sample_run().to_str().unwrap().to_string();
    let ok = |r: (bool, String, String)| -> String {
        assert!(r.0, "stdout:\n{}\nstderr:\n{}", r.1, r.2);
        r.1
    };
    // No user yet: nothing works but `users init`.
    let r = cli(&store, "admin", &["cases", "list"]);
    assert!(!r.0 && r.2.contains("users init"), "{}", r.2);
    ok(cli(&store, "admin", &["users", "init"]));
    assert!(!cli(&store, "admin", &["users", "init"]).0, "only once");
    ok(cli(&store, "admin", &["users", "add", "li", "--role", "reviewer"]));
    ok(cli(&store, "admin", &["users", "add", "wang", "--role", "reviewer"]));
    ok(cli(&store, "admin", &["users", "add", "zhao", "--role", "investigator"]));
    let merged = ok(cli(&store, "admin", &["cases", "merge", &run]));
    assert!(merged.contains("已合并审核结果"), "{merged}");
    assert!(ok(cli(&store, "admin", &["cases", "merge", &run])).contains("已合并过"));
    // A reviewer cannot merge; a wrong password is refused.
    assert!(!cli(&store, "li", &["cases", "merge", &run]).0);
    let bad = Command::new(env!("CARGO_BIN_EXE_medaudit"))
        .args(["cases", "list", "--store", store.to_str().unwrap(), "--user", "li"])
        .env("MEDAUDIT_PASSWORD", "not the password")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("登录失败"));

    // The reviewer's queue: sampled cases.
    let list =
        ok(cli(&store, "li", &["cases", "list", "--status", "sampled", "--type", "settlement", "--json"]));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&list).unwrap();
    assert!(!rows.is_empty());
    let case = format!("C{}", rows[0]["case_id"]);
    let setl = rows[0]["entity_id"].as_str().unwrap().to_string();
    let shown = ok(cli(&store, "li", &["cases", "show", &setl]));
    assert!(shown.contains("已抽样") && shown.contains("费用明细") && shown.contains("脱敏"), "{shown}");
    assert!(id_numbers(&shown).is_empty(), "{:?}", id_numbers(&shown));

    // Decisions.
    let e = cli(&store, "li", &["review", "confirm", &case, "--amount", "88.50", "--note", "x"]);
    assert!(!e.0 && e.2.contains("请先开始复审"), "{}", e.2);
    ok(cli(&store, "li", &["review", "start", &case]));
    ok(cli(
        &store,
        "li",
        &["review", "confirm", &case, "--amount", "88.50", "--note", "重复收费", "--date", "2027-03-05"],
    ));
    ok(cli(
        &store,
        "wang",
        &[
            "review",
            "confirmation",
            &case,
            "--party",
            "insurer",
            "--date",
            "2027-03-06",
            "--reference",
            "保函〔2027〕1号",
        ],
    ));
    ok(cli(&store, "li", &["review", "confirmation", &case, "--party", "agency", "--date", "2027-03-08"]));
    ok(cli(&store, "li", &["review", "confirmation", &case, "--party", "facility", "--date", "2027-03-09"]));
    let list = ok(cli(&store, "li", &["deductions", "--month", "2027-04"]));
    assert!(list.contains(&case) && list.contains("88.50") && list.contains("待扣款"), "{list}");
    let recorded = ok(cli(&store, "li", &["deductions", "--month", "2027-04", "--record"]));
    assert!(recorded.contains("已扣款"), "{recorded}");
    let e = cli(&store, "li", &["review", "appeal", &case, "--reason", "x"]);
    assert!(!e.0 && e.2.contains("已扣款"), "{}", e.2);

    // The investigator exports flagged cases; unmasked needs a purpose.
    let out = tmp.path().join("flagged.xlsx");
    let msg =
        ok(cli(&store, "zhao", &["export", "--out", out.to_str().unwrap(), "--status", "flagged,sampled"]));
    assert!(msg.contains("已脱敏"), "{msg}");
    assert!(out.exists());
    assert!(!cli(&store, "zhao", &["export", "--out", "x.csv", "--unmasked"]).0);
    assert!(!cli(&store, "li", &["export", "--out", "x.csv", "--unmasked", "--purpose", "核查"]).0);
    let est = ok(cli(&store, "li", &["estimate"]));
    assert!(est.contains("Horvitz") && est.contains("合计"), "{est}");

    // The audit log shows each step and verifies.
    let log = ok(cli(&store, "admin", &["audit", "log", "--limit", "100"]));
    for action in [
        "user_init",
        "user_add",
        "merge_run",
        "start_review",
        "confirm",
        "confirmation",
        "deduct",
        "export",
        "login_failed",
    ] {
        assert!(log.contains(&format!(" {action} ")), "{action} missing:\n{log}");
    }
    assert!(ok(cli(&store, "admin", &["audit", "verify"])).contains("哈希链无误"));
    assert!(!cli(&store, "li", &["audit", "verify"]).0, "reviewers do not read the log");
}
