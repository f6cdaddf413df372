/*
id = "INJ001"
name = "injury-admission"
title_zh = "意外伤害住院（第三方责任核查）"
title_en = "Injury admission to check for a liable third party"
category = "injury_review"
severity = "low"
requires = ["setl"]
basis = ["河南大病合同 第二十八条（城乡居民意外伤害案例核查）"]
what = """Lists inpatient settlements (view `setl_valid`) admitted for an injury: med_type in
`injury_med_types` (default 22 外伤住院) or a main diagnosis in chapter S/T (prefixes
`injury_prefixes`). A request to look, not an accusation: low severity. The amount at risk is what
the insurer's own funds paid on the settlement, hifmi_pay + hifob_pay, which a liable third party (traffic
accident, work injury, assault) should bear instead."""
why = """Medical insurance does not pay for injuries a third party is liable for (基本医疗保险不予支付:
应当由第三人负担的); the contract asks the insurer to check resident accident cases."""
example = """A resident admitted with S72.000 (股骨颈骨折) after a traffic accident: listed, with the
critical-illness payment of the settlement as amount at risk."""

[params.injury_med_types]
type = "text_list"
default = ["22"]
doc = "med_type codes of injury admissions."

[params.injury_prefixes]
type = "text_list"
default = ["S", "T"]
doc = "Main-diagnosis prefixes (1 to 3 characters) of injuries."
*/
SELECT setl_id,
       hifmi_pay + hifob_pay AS amount_at_risk,
       concat('外伤住院待核查第三方责任：医疗类别', med_type, '，主诊断', dise_codg, '，', CAST(begndate AS VARCHAR), '入院') AS detail
FROM setl_valid
WHERE is_inpatient
  AND (COALESCE(med_type IN ${injury_med_types}, FALSE)
       OR COALESCE(upper(left(trim(dise_codg), 1)) IN ${injury_prefixes}
                   OR upper(left(trim(dise_codg), 2)) IN ${injury_prefixes}
                   OR upper(left(trim(dise_codg), 3)) IN ${injury_prefixes}, FALSE))
