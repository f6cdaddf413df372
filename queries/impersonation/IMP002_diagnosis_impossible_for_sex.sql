/*
id = "IMP002"
name = "diagnosis-impossible-for-sex"
title_zh = "主诊断与性别不符"
title_en = "Main diagnosis impossible for the person's sex"
category = "impersonation"
severity = "high"
requires = ["setl"]
basis = ["河南大病合同 第十六条（冒名顶替、弄虚作假）", "漯河大额合同 第二十一条", "ICD-10 第十五章（妊娠、分娩和产褥期）、女性/男性生殖器官疾病"]
what = """Flags settlements (view `setl_valid`) whose main diagnosis (dise_codg) belongs to the other sex:
for a male (gend 1) the pregnancy chapter O, malignant neoplasms of female genital organs C51–C58 and
inflammatory and other disorders of female pelvic and genital organs N70–N98; for a female (gend 2)
malignant neoplasms of male genital organs C60–C63 and diseases of male genital organs N40–N51. The
code is matched by prefix (trimmed, upper case) against the two lists, which are parameters.
Settlements of unknown sex (0/9) are not checked."""
why = """A diagnosis the patient's body cannot have means the settlement belongs to someone else
(冒名顶替, e.g. a wife treated on her husband's card) or the diagnosis was falsified. The fund payments of
the settlement are at risk."""
example = """A man (gend 1) settled with main diagnosis O80.000 (单胎顺产): flagged."""

[params.female_only]
type = "text_list"
default = ["O", "C51", "C52", "C53", "C54", "C55", "C56", "C57", "C58", "N70", "N71", "N72", "N73", "N74", "N75", "N76", "N77", "N78", "N79", "N80", "N81", "N82", "N83", "N84", "N85", "N86", "N87", "N88", "N89", "N90", "N91", "N92", "N93", "N94", "N95", "N96", "N97", "N98"]
doc = "ICD-10 prefixes (1 to 5 characters) impossible for a male."

[params.male_only]
type = "text_list"
default = ["C60", "C61", "C62", "C63", "N40", "N41", "N42", "N43", "N44", "N45", "N46", "N47", "N48", "N49", "N50", "N51"]
doc = "ICD-10 prefixes (1 to 5 characters) impossible for a female."
*/
WITH s AS (
    SELECT setl_id, gend, dise_codg, fund_pay, upper(trim(dise_codg)) AS dx
    FROM setl_valid
    WHERE gend IN ('1', '2')
)
SELECT setl_id,
       fund_pay AS amount_at_risk,
       concat('主诊断', dise_codg,
              CASE WHEN gend = '1' THEN '仅见于女性，结算性别为男' ELSE '仅见于男性，结算性别为女' END) AS detail
FROM s
WHERE (gend = '1' AND (left(dx, 1) IN ${female_only} OR left(dx, 2) IN ${female_only} OR left(dx, 3) IN ${female_only}
                       OR left(dx, 4) IN ${female_only} OR left(dx, 5) IN ${female_only}))
   OR (gend = '2' AND (left(dx, 1) IN ${male_only} OR left(dx, 2) IN ${male_only} OR left(dx, 3) IN ${male_only}
                       OR left(dx, 4) IN ${male_only} OR left(dx, 5) IN ${male_only}))
