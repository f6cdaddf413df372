/*
id = "RST009"
name = "drug-beyond-course-days"
title_zh = "限定支付疗程药品超疗程使用"
title_en = "Drug billed beyond its maximum paid course"
category = "restricted_item"
severity = "medium"
requires = ["setl", "fee"]
basis = ["知识库 drug_limit_course_days（限定支付疗程）"]
what = """Flags fee lines of a drug that the knowledge base pays for at most max_course_days days
(kb_drug_limit_course_days, e.g. 14天 for ozagrel after an acute cerebral infarction) dated after the
last paid day of the course. The course is counted per person, per stay (mdtrt_id: pieces of one
long stay are one course) and per drug (course_group, the drug's name, so that switching between
manufacturers or pack sizes of one drug does not restart it): day 1 is the first fee day of the drug
in the stay, and a line dated on day max_course_days + 1 or later is beyond the course. Lines fully
paid by the patient neither start nor extend the course and are not flagged."""
why = """The catalogue pays these drugs for a short acute phase only; billing them for the whole of a long
stay is a classic overuse pattern of injections with limited evidence."""
example = """奥扎格雷钠注射液 (支付不超过14天) is billed daily from 2024-03-01 to 2024-03-18 in one stay: the lines
of 2024-03-15 to 2024-03-18 (days 15-18) are flagged with their fund-paid part."""
*/
-- Conventions as in RST001 (stands = setl_valid; refunds netted; fund part = inscp_scp_amt, else
-- total - fulamt_ownpay_amt; 丙类 and zero-fund lines not flagged).
WITH kb AS (
    SELECT DISTINCT med_list_codg, med_list_name AS kb_name, max_course,
           CAST(max_course_days AS INT) AS max_course_days,
           COALESCE(course_group, med_list_codg) AS course_group
    FROM kb_drug_limit_course_days
    WHERE max_course_days IS NOT NULL
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
           kb.max_course, kb.max_course_days, kb.course_group,
           CAST(f.cnt + COALESCE(r.refund_cnt, 0) AS DECIMAL(20, 4)) AS cnt,
           CAST(COALESCE(f.inscp_scp_amt, f.det_item_fee_sumamt - COALESCE(f.fulamt_ownpay_amt, 0))
                + COALESCE(r.refund_fund, 0) AS DECIMAL(20, 2)) AS fund
    FROM refund r
    RIGHT JOIN (kb JOIN fee f ON f.med_list_codg = kb.med_list_codg) ON r.init_feedetl_sn = f.feedetl_sn
    WHERE COALESCE(f.init_feedetl_sn, '') = ''
      AND f.cnt > 0
      AND COALESCE(f.chrgitm_lv, '') <> '03'
),
course AS (
    SELECT l.*, s.psn_no, s.mdtrt_id,
           MIN(l.fee_day) OVER (PARTITION BY s.psn_no, s.mdtrt_id, l.course_group) AS first_day
    FROM setl_valid s
    JOIN line l ON l.setl_id = s.setl_id
    WHERE l.cnt > 0 AND l.fund > 0
)
SELECT c.setl_id,
       CAST(c.fund AS DECIMAL(18, 2)) AS amount_at_risk,
       concat(c.kb_name, '(', c.med_list_codg, ')限支付', c.max_course, '，本次就诊自',
              CAST(c.first_day AS VARCHAR), '起用药，', CAST(c.fee_day AS VARCHAR), '为第',
              CAST(CAST(c.fee_day AS INT) - CAST(c.first_day AS INT) + 1 AS VARCHAR),
              '天，医保支付部分', CAST(CAST(c.fund AS DECIMAL(18, 2)) AS VARCHAR), '元') AS detail,
       c.feedetl_sn AS feedetl_sns
FROM course c
WHERE CAST(c.fee_day AS INT) - CAST(c.first_day AS INT) + 1 > c.max_course_days
