/*
id = "DQ006"
name = "fee-line-of-another-person"
title_zh = "费用明细人员编号与结算不符"
title_en = "Fee line carries another person's number"
category = "data_quality"
severity = "medium"
requires = ["setl", "fee"]
basis = ["SCHEMA.md: fee.psn_no", "河南大病合同 第十六条（冒名顶替）"]
what = """Flags settlements with fee lines whose psn_no differs from the settlement's psn_no."""
why = """A line billed under one person and settled under another is either an export fault or care
moved between persons' accounts; either way the line cannot be attributed with confidence."""
example = """Settlement S1 of person P1 carries a CT line recorded for person P2."""
*/
SELECT
    s.setl_id,
    f.det_item_fee_sumamt AS amount_at_risk,
    concat('费用明细', f.feedetl_sn, '的人员编号与结算的人员编号不一致') AS detail,
    f.feedetl_sn AS feedetl_sns
FROM fee f
JOIN setl s ON s.setl_id = f.setl_id
WHERE f.psn_no <> s.psn_no
