/*
id = "DQ003"
name = "fee-lines-do-not-add-up"
title_zh = "费用明细合计与医疗费总额不符"
title_en = "Fee lines do not add up to the settlement total"
category = "data_quality"
severity = "medium"
requires = ["setl", "fee"]
basis = ["SCHEMA.md: the fee lines of a settlement add up to its medfee_sumamt", "河南大病合同 第二十九条（100%全覆盖初审）"]
what = """Sums the accepted fee lines of every settlement that has any and compares the sum with the
settlement's medfee_sumamt, to the cent. Settlements without any fee line are not judged here
(manual reimbursements often arrive without detail); the manifest counts them."""
why = """The first-pass review checks items line by line: when the lines do not add up to what was
settled, money was settled that no line explains, or lines were dropped from the export."""
example = """A stay settled at 12,000.00 whose 85 fee lines add up to 11,400.00: 600.00 unexplained."""
*/
WITH sums AS (
    SELECT setl_id, SUM(det_item_fee_sumamt) AS line_total, COUNT(*) AS line_count
    FROM fee
    GROUP BY setl_id
)
SELECT
    s.setl_id,
    abs(s.medfee_sumamt - f.line_total) AS amount_at_risk,
    concat('医疗费总额', CAST(s.medfee_sumamt AS VARCHAR), '元，', CAST(f.line_count AS VARCHAR),
           '条费用明细合计', CAST(f.line_total AS VARCHAR), '元，差额',
           CAST(s.medfee_sumamt - f.line_total AS VARCHAR), '元') AS detail
FROM setl s
JOIN sums f ON f.setl_id = s.setl_id
WHERE f.line_total <> s.medfee_sumamt
