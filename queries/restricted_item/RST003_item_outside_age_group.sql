/*
id = "RST003"
name = "item-outside-age-group"
title_zh = "限年龄诊疗项目超出年龄范围"
title_en = "Age-limited service item billed for a person outside the age group"
category = "restricted_item"
severity = "medium"
requires = ["setl", "fee"]
basis = ["知识库 item_limit_age（限年龄诊疗项目）", "知识库 age_group（年龄组界值）"]
what = """Flags fee lines of a service item limited to an age group (kb_item_limit_age: 儿童, 婴幼儿, 新生儿)
billed for a person who, at the fee date, is outside the group. The bounds come from kb_age_group:
inside the group while the completed age in age_unit (year / month / day) is below age_below
(defaults 儿童 < 18 years, 婴幼儿 < 3 years, 新生儿 < 29 days, i.e. 28 days or younger). Age is
computed from setl.brdy and the date of fee_ocur_time. For groups with exempt_on_maternity = true
(新生儿, 婴幼儿), a settlement that is a mother-and-baby stay is not checked: med_type class
maternity, or a main diagnosis in parent_account_diagnoses (a newborn settled under a parent's
number carries the parent's birth date). Lines fully paid by the patient are not flagged."""
why = """Items priced for children (小儿头皮静脉输液, 新生儿暖箱, 儿童龋齿预防保健...) billed for an adult are
either invented, upcoded or given to a child under an adult's insurance."""
example = """A person born 1970-01-01 is billed 新生儿护理 (001201000070000) on 2024-03-02 during an ordinary
inpatient stay (med_type 21, diagnosis I63.900): flagged. The same line on a maternity stay
(med_type 52) is newborn care billed on the mother's account and is not flagged."""

[params.parent_account_diagnoses]
type = "text_list"
default = ["O", "P", "Z37", "Z38", "Z39"]
doc = """ICD-10 chapter letters (1 character) or categories (3 characters): a settlement whose main
diagnosis starts with one of them is a mother-and-baby stay, where newborn and infant items are
billed on the parent's account (O pregnancy and delivery, P perinatal, Z37-Z39 delivery outcome,
liveborn infant, postpartum care)."""
*/
-- Conventions as in RST001 (stands = setl_valid; refunds netted; fund part = inscp_scp_amt, else
-- total - fulamt_ownpay_amt; 丙类 and zero-fund lines not flagged).
WITH kb AS (
    SELECT DISTINCT i.med_list_codg, i.med_list_name AS kb_name, i.limit_age_group,
           CAST(g.age_below AS INT) AS age_below, g.age_unit,
           COALESCE(g.exempt_on_maternity, 'false') AS exempt_on_maternity
    FROM kb_item_limit_age i
    JOIN kb_age_group g ON g.limit_age_group = i.limit_age_group
    WHERE g.age_unit IN ('year', 'month', 'day')
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
           kb.kb_name, kb.limit_age_group, kb.age_below, kb.age_unit, kb.exempt_on_maternity,
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
    SELECT l.*, s.dise_codg, s.med_class,
           -- completed months and days of age at the fee date
           (date_part('year', l.fee_day) - date_part('year', s.brdy)) * 12
               + (date_part('month', l.fee_day) - date_part('month', s.brdy))
               - CASE WHEN date_part('day', l.fee_day) < date_part('day', s.brdy) THEN 1 ELSE 0 END AS age_months,
           CAST(l.fee_day AS INT) - CAST(s.brdy AS INT) AS age_days
    FROM setl_valid s
    JOIN line l ON l.setl_id = s.setl_id
    WHERE l.cnt > 0 AND l.fund > 0 AND s.brdy IS NOT NULL
)
SELECT a.setl_id,
       CAST(a.fund AS DECIMAL(18, 2)) AS amount_at_risk,
       concat('参保人费用发生时',
              CASE WHEN a.age_months >= 12 THEN concat(CAST(CAST(floor(a.age_months / 12) AS BIGINT) AS VARCHAR), '周岁')
                   WHEN a.age_unit = 'month' THEN concat(CAST(a.age_months AS VARCHAR), '个月')
                   ELSE concat('出生', CAST(a.age_days AS VARCHAR), '天') END,
              '，收取限', a.limit_age_group, '项目', a.kb_name, '(', a.med_list_codg, ')，',
              CAST(a.fee_day AS VARCHAR),
              '，医保支付部分', CAST(CAST(a.fund AS DECIMAL(18, 2)) AS VARCHAR), '元') AS detail,
       a.feedetl_sn AS feedetl_sns
FROM aged a
WHERE CASE a.age_unit
          WHEN 'year' THEN a.age_months >= 12 * a.age_below
          WHEN 'month' THEN a.age_months >= a.age_below
          ELSE a.age_days >= a.age_below
      END
  AND NOT (a.exempt_on_maternity = 'true'
           AND (COALESCE(a.med_class = 'maternity', FALSE)
                OR COALESCE(substr(a.dise_codg, 1, 1) IN ${parent_account_diagnoses}, FALSE)
                OR COALESCE(substr(a.dise_codg, 1, 3) IN ${parent_account_diagnoses}, FALSE)))
