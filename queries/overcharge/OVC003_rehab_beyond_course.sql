/*
id = "OVC003"
name = "rehab-beyond-course"
title_zh = "康复项目超出限定支付疗程"
title_en = "Rehabilitation item billed beyond its paid course"
category = "overcharge"
severity = "medium"
requires = ["setl", "fee"]
basis = ["知识库 item_limit_course（限支付疗程）", "人社部发〔2016〕23号"]
what = """Flags rehabilitation items of kb_item_limit_course billed for one person beyond the course the
sheet pays: beyond max_course_days from the first day of the course (总时间/支付不超过N天), or sooner
than min_interval_days after the previous billing (评定间隔时间不短于N天, 每周最多一次), where the
sheet gives an interval. A course starts with the first billing of the item (limit_group) for the
person and continues, across settlements and facilities, until a pause longer than
new_course_gap_days, after which a new course (a new disease episode) starts. The interval check is
left to OVC002 for items that kb_item_limit_period also limits, so that one excess is not counted
twice. Refund lines are netted; lines fully paid by the patient neither count nor are flagged."""
why = """The 2016 rehabilitation catalogue (人社部发〔2016〕23号) pays these items for a limited course:
training billed for months after it, or assessments repeated weekly, are the typical padding of
rehabilitation wards."""
example = """Person P1 has 轮椅功能训练 (003402000220000, 支付不超过30天) billed from 2024-03-01 to 2024-04-09: the
lines from 2024-03-31 (day 31) on are flagged with their fund-paid part."""

[params.new_course_gap_days]
type = "int"
default = 180
doc = """A pause of more than this many days between two billings of the item for the same person starts
a new course (a new disease episode), with its own total span."""
*/
-- Conventions as in RST001 (stands = setl_valid; refunds netted; fund part = inscp_scp_amt, else
-- total - fulamt_ownpay_amt; 丙类 and zero-fund lines neither flagged nor counted).
WITH kb AS (
    SELECT DISTINCT c.med_list_codg, c.med_list_name AS kb_name, c.note,
           CAST(c.max_course_days AS INT) AS max_course_days,
           CASE WHEN p.med_list_codg IS NULL THEN CAST(c.min_interval_days AS INT) END AS min_interval_days,
           COALESCE(c.limit_group, c.med_list_codg) AS limit_group
    FROM kb_item_limit_course c
    LEFT JOIN (SELECT DISTINCT med_list_codg FROM kb_item_limit_period) p ON p.med_list_codg = c.med_list_codg
    WHERE c.max_course_days IS NOT NULL
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
           kb.kb_name, kb.note, kb.max_course_days, kb.min_interval_days, kb.limit_group,
           CAST(f.cnt + COALESCE(r.refund_cnt, 0) AS DECIMAL(20, 4)) AS cnt,
           CAST(COALESCE(f.inscp_scp_amt, f.det_item_fee_sumamt - COALESCE(f.fulamt_ownpay_amt, 0))
                + COALESCE(r.refund_fund, 0) AS DECIMAL(20, 2)) AS fund
    FROM refund r
    RIGHT JOIN (kb JOIN fee f ON f.med_list_codg = kb.med_list_codg) ON r.init_feedetl_sn = f.feedetl_sn
    WHERE COALESCE(f.init_feedetl_sn, '') = ''
      AND f.cnt > 0
      AND COALESCE(f.chrgitm_lv, '') <> '03'
),
-- one row per person, item group, day and settlement
daily AS (
    SELECT s.psn_no, l.limit_group, l.fee_day, CAST(l.fee_day AS INT) AS day_no, l.setl_id,
           MIN(l.kb_name) AS kb_name, MIN(l.med_list_codg) AS med_list_codg, MIN(l.note) AS note,
           MIN(l.max_course_days) AS max_course_days, MIN(l.min_interval_days) AS min_interval_days,
           SUM(l.cnt) AS cnt, SUM(l.fund) AS fund,
           string_agg(l.feedetl_sn, ';' ORDER BY l.feedetl_sn) AS sns
    FROM setl_valid s
    JOIN line l ON l.setl_id = s.setl_id
    WHERE l.cnt > 0 AND l.fund > 0
    GROUP BY s.psn_no, l.limit_group, l.fee_day, l.setl_id
),
gaps AS (
    SELECT d.*,
           d.day_no - LAG(d.day_no) OVER (PARTITION BY d.psn_no, d.limit_group ORDER BY d.day_no, d.setl_id) AS gap
    FROM daily d
),
courses AS (
    SELECT g.*,
           SUM(CASE WHEN g.gap IS NULL OR g.gap > ${new_course_gap_days} THEN 1 ELSE 0 END)
               OVER (PARTITION BY g.psn_no, g.limit_group ORDER BY g.day_no, g.setl_id
                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS course_no
    FROM gaps g
),
judged AS (
    SELECT c.*,
           MIN(c.fee_day) OVER (PARTITION BY c.psn_no, c.limit_group, c.course_no) AS course_start,
           c.day_no - MIN(c.day_no) OVER (PARTITION BY c.psn_no, c.limit_group, c.course_no) + 1 AS course_day
    FROM courses c
),
over AS (
    SELECT j.*,
           j.course_day > j.max_course_days AS beyond_span,
           COALESCE(j.gap < j.min_interval_days AND j.gap <= ${new_course_gap_days}, FALSE) AS too_soon,
           COALESCE(j.min_interval_days IS NOT NULL AND j.cnt > 1, FALSE) AS repeated
    FROM judged j
)
SELECT o.setl_id,
       CAST(CASE WHEN o.beyond_span OR o.too_soon THEN o.fund
                 ELSE round(CAST(CAST(o.fund AS DECIMAL(20, 2)) / CAST(o.cnt AS DECIMAL(20, 4)) AS DECIMAL(24, 8))
                            * CAST(o.cnt - 1 AS DECIMAL(20, 4)), 2)
            END AS DECIMAL(18, 2)) AS amount_at_risk,
       concat(o.kb_name, '(', o.med_list_codg, ')', o.note, '本疗程自', CAST(o.course_start AS VARCHAR), '起，',
              CAST(o.fee_day AS VARCHAR), '为第', CAST(o.course_day AS VARCHAR), '天',
              CASE WHEN o.beyond_span THEN '，超出支付疗程' ELSE '' END,
              CASE WHEN o.too_soon AND o.gap = 0 THEN '，同日已另行计费'
                   WHEN o.too_soon THEN concat('，距上次计费仅', CAST(o.gap AS VARCHAR), '天') ELSE '' END,
              CASE WHEN o.repeated AND NOT o.beyond_span AND NOT o.too_soon THEN '，当日重复计费' ELSE '' END,
              '，医保支付部分', CAST(CAST(o.fund AS DECIMAL(18, 2)) AS VARCHAR), '元') AS detail,
       o.sns AS feedetl_sns
FROM over o
WHERE o.beyond_span OR o.too_soon OR o.repeated
