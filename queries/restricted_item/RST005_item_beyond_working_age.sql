/*
id = "RST005"
name = "item-beyond-working-age"
title_zh = "超出法定就业年龄收取职业训练项目"
title_en = "Vocational item billed beyond legal working age"
category = "restricted_item"
severity = "medium"
requires = ["setl", "fee"]
basis = ["知识库 item_limit_working_age（限法定就业年龄）"]
what = """Flags fee lines of an item that is payable only within legal working age (kb_item_limit_working_age:
职业功能训练) billed for a man aged male_max_age or more, or a woman aged female_max_age or more, in
completed years at the fee date (from setl.brdy). Settlements of unknown sex are not checked; lines
fully paid by the patient are not flagged."""
why = """Vocational training restores the ability to work; the catalogue pays it only for persons of working
age. Billed for a retired person it is either not needed or a disguised other service."""
example = """A man born 1950-06-01 is billed 职业功能训练 (003402000320000) on 2024-03-02, aged 73: flagged."""

[params.male_max_age]
type = "int"
default = 60
doc = """Legal working age limit of men, in completed years: from this birthday on, the item is not
payable. 60 is the statutory retirement age before the 2025 reform, which raises it gradually (by
one month every four months of birth cohort, from 1965 births) to 63: raise the value for later
years if the finding count shows persons just past 60."""

[params.female_max_age]
type = "int"
default = 55
doc = """Legal working age limit of women, in completed years. Before the 2025 reform the statutory
retirement age was 50 for female workers and 55 for female cadres; the default takes the higher
one, so that no woman still of working age is flagged (the reform raises both gradually, to 55 and
58)."""
*/
-- Conventions as in RST001 (stands = setl_valid; refunds netted; fund part = inscp_scp_amt, else
-- total - fulamt_ownpay_amt; 丙类 and zero-fund lines not flagged).
WITH kb AS (
    SELECT DISTINCT med_list_codg, med_list_name AS kb_name
    FROM kb_item_limit_working_age
),
refund AS (
    SELECT r.init_feedetl_sn,
           SUM(r.cnt) AS refund_cnt,
           SUM(COALESCE(r.inscp_scp_amt, r.det_item_fee_sumamt - COALESCE(r.fulamt_ownpay_amt, 0))) AS refund_fund
    FROM (SELECT DISTINCT med_list_codg FROM kb) k
    JOIN fee r ON r.med_list_codg = k.med_list_codg
    WHERE r.init_feedetl_sn <> ''
    GROUP BY r.init_feedetl_sn
),
line AS (
    SELECT arrow_cast(f.feedetl_sn, 'Utf8') AS feedetl_sn, arrow_cast(f.setl_id, 'Utf8') AS setl_id,
           CAST(f.fee_ocur_time AS DATE) AS fee_day, arrow_cast(f.med_list_codg, 'Utf8') AS med_list_codg,
           kb.kb_name,
           CAST(f.cnt + COALESCE(r.refund_cnt, 0) AS DECIMAL(20, 4)) AS cnt,
           CAST(COALESCE(f.inscp_scp_amt, f.det_item_fee_sumamt - COALESCE(f.fulamt_ownpay_amt, 0))
                + COALESCE(r.refund_fund, 0) AS DECIMAL(20, 2)) AS fund
    FROM refund r
    RIGHT JOIN (kb JOIN fee f ON f.med_list_codg = kb.med_list_codg) ON r.init_feedetl_sn = f.feedetl_sn
    WHERE COALESCE(f.init_feedetl_sn, '') = ''
      AND f.cnt > 0
      AND COALESCE(f.chrgitm_lv, '') <> '03'
),
aged AS (
    SELECT l.*, s.gend,
           CAST(floor(((date_part('year', l.fee_day) - date_part('year', s.brdy)) * 12
               + (date_part('month', l.fee_day) - date_part('month', s.brdy))
               - CASE WHEN date_part('day', l.fee_day) < date_part('day', s.brdy) THEN 1 ELSE 0 END) / 12)
               AS BIGINT) AS age_years
    FROM setl_valid s
    JOIN line l ON l.setl_id = s.setl_id
    WHERE l.cnt > 0 AND l.fund > 0 AND s.brdy IS NOT NULL AND s.gend IN ('1', '2')
)
SELECT a.setl_id,
       CAST(a.fund AS DECIMAL(18, 2)) AS amount_at_risk,
       concat(CASE a.gend WHEN '1' THEN '男' ELSE '女' END, '性参保人费用发生时', CAST(a.age_years AS VARCHAR),
              '周岁，超出法定就业年龄（', CASE a.gend WHEN '1' THEN CAST(${male_max_age} AS VARCHAR)
              ELSE CAST(${female_max_age} AS VARCHAR) END, '周岁），收取', a.kb_name, '(', a.med_list_codg, ')，',
              CAST(a.fee_day AS VARCHAR), '，医保支付部分', CAST(CAST(a.fund AS DECIMAL(18, 2)) AS VARCHAR), '元')
           AS detail,
       a.feedetl_sn AS feedetl_sns
FROM aged a
WHERE (a.gend = '1' AND a.age_years >= ${male_max_age})
   OR (a.gend = '2' AND a.age_years >= ${female_max_age})
