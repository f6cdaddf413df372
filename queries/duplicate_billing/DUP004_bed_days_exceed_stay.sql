/*
id = "DUP004"
name = "bed-days-exceed-stay"
title_zh = "床位费天数多于住院天数"
title_en = "More bed-days billed than days in hospital"
category = "duplicate_billing"
severity = "medium"
requires = ["setl", "fee"]
basis = ["河南大病合同 第十六条（不符合政策规定纳入支付范围）", "漯河大额合同 第二十一条", "知识库 item_limit_frequency（床位费 1 日 1 次）"]
what = """Per inpatient stay (view `stay`: the pieces of one mdtrt_id together, because a piece may bill
the bed of its last day while the next piece starts the day after), sums the cnt of the bed lines of all
its settlements, refund lines included (their negative cnt nets), and compares it with the days in
hospital, enddate − begndate of the stay, at least 1. Bed lines: med_chrgitm_type in `bed_types`, or a
code starting with `bed_code_prefix` (床位费, 001109…). Every settlement of a stay with more bed-days
than days is flagged; the excess days times the stay's average fund-paid bed price is the amount at risk,
put on the stay's last settlement (0 on the others)."""
why = """Bed fees are charged per night: admission day counts, discharge day does not. Billing the
discharge day too, or two beds on one day, charges the fund for days nobody spent in hospital."""
example = """A stay from 2024-03-01 to 2024-03-08 (7 days) billed 8 days of 普通病房床位费 at 40.00: 1 day
too many, 40.00 at risk."""

[params.bed_types]
type = "text_list"
default = ["01"]
doc = "med_chrgitm_type values of bed fees."

[params.bed_code_prefix]
type = "text"
default = "001109"
doc = "Code prefix of bed fee items (医疗服务项目 001109 床位费); empty to use bed_types only."
*/
WITH bed AS (
    SELECT setl_id,
           SUM(cnt) AS cnt,
           SUM(CASE WHEN chrgitm_lv = '03' THEN CAST(0 AS DECIMAL(18, 2))
                    ELSE COALESCE(inscp_scp_amt, det_item_fee_sumamt - COALESCE(fulamt_ownpay_amt, 0)) END) AS fund
    FROM fee
    WHERE med_chrgitm_type IN ${bed_types}
       OR (${bed_code_prefix} <> '' AND starts_with(med_list_codg, ${bed_code_prefix}))
    GROUP BY setl_id
),
-- The stay sums come from a hash aggregate; which piece is a stay's last is an ordered aggregate of the
-- same grouping (a window numbering every inpatient settlement would pay per stay), and only the pieces
-- of the few stays over the limit are read again.
per_stay AS (
    SELECT s.psn_no, s.fixmedins_code, s.mdtrt_id,
           SUM(COALESCE(b.cnt, 0)) AS bed_cnt,
           SUM(COALESCE(b.fund, 0)) AS bed_fund,
           first_value(s.setl_id ORDER BY s.enddate DESC, s.setl_time DESC, s.setl_id DESC) AS last_setl_id
    FROM setl_valid s
    LEFT JOIN bed b ON b.setl_id = s.setl_id
    WHERE s.is_inpatient
    GROUP BY s.psn_no, s.fixmedins_code, s.mdtrt_id
),
excess AS (
    SELECT t.*, st.begndate, st.enddate, st.pieces,
           greatest(CAST(st.enddate AS INT) - CAST(st.begndate AS INT), 1) AS days
    FROM per_stay t
    JOIN stay st ON st.psn_no = t.psn_no AND st.fixmedins_code = t.fixmedins_code AND st.mdtrt_id = t.mdtrt_id
    WHERE t.bed_cnt > greatest(CAST(st.enddate AS INT) - CAST(st.begndate AS INT), 1)
)
SELECT p.setl_id,
       CASE WHEN p.setl_id = o.last_setl_id
            THEN CAST((o.bed_cnt - o.days) * o.bed_fund / o.bed_cnt AS DECIMAL(18, 2))
            ELSE CAST(0 AS DECIMAL(18, 2)) END AS amount_at_risk,
       concat('住院', CAST(o.begndate AS VARCHAR), '至', CAST(o.enddate AS VARCHAR), '共', CAST(o.days AS VARCHAR), '天',
              CASE WHEN o.pieces > 1 THEN concat('（中途结算', CAST(o.pieces AS VARCHAR), '段合计）') ELSE '' END,
              '，床位费计',
              regexp_replace(regexp_replace(CAST(o.bed_cnt AS VARCHAR), '0+$', ''), '\.$', ''), '天') AS detail
FROM excess o
JOIN setl_valid p ON p.psn_no = o.psn_no AND p.fixmedins_code = o.fixmedins_code AND p.mdtrt_id = o.mdtrt_id
WHERE p.is_inpatient
