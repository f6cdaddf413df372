/*
id = "OOA001"
name = "unfiled-out-of-area-stay"
title_zh = "异地住院未备案"
title_en = "Out-of-area inpatient stay without filing or referral"
category = "out_of_area"
severity = "medium"
requires = ["setl"]
basis = ["河南大病合同 第二十七条（异地就医病历调查）", "漯河大额合同 第二十三条（异地就医信息核查）"]
what = """Flags inpatient settlements (view `setl_valid`, is_inpatient) outside the insured city: the first
4 digits of insu_admdvs (where insured) and fix_blng_admdvs (where treated) differ (another county of
the same city is not 异地), with refl_flag = '0' (no filing or referral). Emergency admissions
(med_type in `filed_med_types`, default 24 急诊转住院) count as filed. Medium severity: unfiled
out-of-area care is lawful, at a lower reimbursement ratio; the finding asks whether that ratio was
applied and whether the stay is genuine. Amount at risk: the settlement's fund payments."""
why = """Unfiled out-of-area stays are reimbursed at a lower ratio, and out-of-area care is where invented
stays are hardest to check: the contracts require the insurer to investigate out-of-area medical records."""
example = """A resident insured in 商丘 (411402) is admitted to a Zhengzhou hospital (fix_blng_admdvs
410105) with refl_flag 0 and med_type 21: flagged. The same stay with refl_flag 1, or med_type 24, or at
a hospital of 虞城县 (411425, same city 4114) is not."""

[params.filed_med_types]
type = "text_list"
default = ["24"]
doc = "med_type codes that count as filed (emergency admissions)."
*/
SELECT setl_id,
       fund_pay AS amount_at_risk,
       concat('参保地', insu_admdvs, '，就医地', fix_blng_admdvs, '（非同一统筹地市），住院', CAST(begndate AS VARCHAR), '至',
              CAST(enddate AS VARCHAR), '，未办理异地就医备案或转诊') AS detail
FROM setl_valid
WHERE is_inpatient
  AND substr(insu_admdvs, 1, 4) <> substr(fix_blng_admdvs, 1, 4)
  AND COALESCE(refl_flag, '0') = '0'
  AND NOT COALESCE(med_type IN ${filed_med_types}, FALSE)
