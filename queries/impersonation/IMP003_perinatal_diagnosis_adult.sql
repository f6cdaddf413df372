/*
id = "IMP003"
name = "perinatal-diagnosis-adult"
title_zh = "成人主诊断为围生期疾病"
title_en = "Perinatal main diagnosis for an adult"
category = "impersonation"
severity = "medium"
requires = ["setl"]
basis = ["河南大病合同 第十六条（冒名顶替、弄虚作假）", "漯河大额合同 第二十一条", "ICD-10 第十六章（起源于围生期的某些情况 P00–P96）"]
what = """Flags settlements (view `setl_valid`) whose main diagnosis is in the perinatal chapter P (conditions
originating in the perinatal period) although the person was at least `min_age` full years old on the
admission date (age from the settlement's brdy; full years, a birthday counts on its day). Medium
severity: a newborn settled under a parent's number (SCHEMA: newborns may settle under a parent's number)
looks the same and must be ruled out by the reviewer."""
why = """A perinatal condition on an adult's settlement means a newborn was treated on the adult's
insurance, or the diagnosis was falsified to fit a fee schedule."""
example = """A woman born 1990-05-02 admitted on 2024-03-01 with main diagnosis P07.300 (早产儿): flagged;
the fund payments of the settlement are at risk."""

[params.min_age]
type = "int"
default = 18
doc = "Age in full years at admission from which a perinatal main diagnosis is flagged."
*/
WITH s AS (
    SELECT setl_id, dise_codg, brdy, begndate, fund_pay,
           (CAST(to_char(begndate, '%Y%m%d') AS BIGINT) - CAST(to_char(brdy, '%Y%m%d') AS BIGINT)) / 10000 AS age
    FROM setl_valid
    WHERE upper(left(trim(dise_codg), 1)) = 'P'
)
SELECT setl_id,
       fund_pay AS amount_at_risk,
       concat('主诊断', dise_codg, '属围生期疾病（P00–P96），入院时年龄', CAST(age AS VARCHAR),
              '岁；若为新生儿随父母结算请核实') AS detail
FROM s
WHERE age >= ${min_age}
