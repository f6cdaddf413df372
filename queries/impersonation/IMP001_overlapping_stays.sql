/*
id = "IMP001"
name = "overlapping-stays"
title_zh = "同一人同期在两家机构住院"
title_en = "Overlapping inpatient stays at two facilities"
category = "impersonation"
severity = "high"
requires = ["setl"]
basis = ["河南大病合同 第十六条（冒名顶替）", "漯河大额合同 第二十一条（冒名顶替）"]
what = """Flags every inpatient stay (view `stay`: the pieces of one mdtrt_id are one stay) of a person
that overlaps a stay of the same person at another facility. Two stays overlap when each begins before
the other ends (strictly): a discharge from one hospital and an admission to another on the same day is a
transfer, not an overlap. Stays of one person at the same facility are first merged into islands, so that
only stays at two different facilities are compared. Both stays of an overlapping pair are flagged
(either may be the false one); each settlement (piece) of a flagged stay carries its own fund payments."""
why = """One person cannot lie in two hospitals at once: one of the stays was either invented or used the
person's insurance for someone else (冒名顶替). The contracts tell the insurer to refuse such payments and
recover them in the next month's settlement."""
example = """P1 is in hospital A from 2024-03-01 to 2024-03-10 and is admitted to hospital B on 2024-03-05
(discharged 2024-03-08): both stays are flagged. Had B admitted P1 on 2024-03-10, the day A discharged
P1, it would be a transfer and neither is flagged."""
*/
-- Windows only (no self-join), over the inpatient settlements (pieces) in one scan of setl_valid:
--   1. each piece carries its stay's admission and discharge (min/max over its mdtrt_id);
--   2. islands: a person's stays at one facility, merged where they overlap (gaps and islands);
--   3. an island overlaps an island of another facility iff the running max of discharge dates of the
--      islands ordered before it (by admission, discharge) is later than its admission, or the running
--      min of admission dates of the islands ordered after it is earlier than its discharge (GROUPS
--      frames, so that the pieces of the same island are not compared with each other). Islands of the
--      same facility never overlap each other, so a hit is always another facility.
-- Only persons with inpatient settlements at two facilities or more can have an overlap; they are
-- found first by a hash aggregate, so that the windows (whose cost grows with the number of partitions)
-- see only their settlements.
WITH inp AS (
    SELECT setl_id, psn_no, fixmedins_code, mdtrt_id, fund_pay, begndate, enddate
    FROM setl_valid
    WHERE is_inpatient
),
multi AS (
    SELECT psn_no
    FROM inp
    GROUP BY psn_no
    HAVING MIN(fixmedins_code) <> MAX(fixmedins_code)
),
p AS (
    SELECT i.setl_id, i.psn_no, i.fixmedins_code, i.mdtrt_id, i.fund_pay,
           MIN(i.begndate) OVER (PARTITION BY i.psn_no, i.fixmedins_code, i.mdtrt_id) AS b,
           MAX(i.enddate) OVER (PARTITION BY i.psn_no, i.fixmedins_code, i.mdtrt_id) AS e
    FROM multi m
    JOIN inp i ON i.psn_no = m.psn_no
),
marked AS (
    SELECT p.*,
           CASE WHEN b < MAX(e) OVER (PARTITION BY psn_no, fixmedins_code ORDER BY b, e, mdtrt_id
                                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                THEN 0 ELSE 1 END AS new_island
    FROM p
),
numbered AS (
    SELECT marked.*,
           SUM(new_island) OVER (PARTITION BY psn_no, fixmedins_code ORDER BY b, e, mdtrt_id
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS island
    FROM marked
),
isl AS (
    SELECT numbered.*,
           MIN(b) OVER (PARTITION BY psn_no, fixmedins_code, island) AS ib,
           MAX(e) OVER (PARTITION BY psn_no, fixmedins_code, island) AS ie
    FROM numbered
),
checked AS (
    SELECT isl.*,
           MAX(concat(CAST(ie AS VARCHAR), ' ', fixmedins_code)) OVER (
               PARTITION BY psn_no ORDER BY ib, ie, fixmedins_code, island
               GROUPS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before_end,
           MIN(concat(CAST(ib AS VARCHAR), ' ', fixmedins_code)) OVER (
               PARTITION BY psn_no ORDER BY ib, ie, fixmedins_code, island
               GROUPS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS after_begin
    FROM isl
),
hits AS (
    SELECT checked.*,
           substr(before_end, 1, 10) > CAST(ib AS VARCHAR) AS hit_before,
           substr(after_begin, 1, 10) < CAST(ie AS VARCHAR) AS hit_after
    FROM checked
)
SELECT setl_id,
       fund_pay AS amount_at_risk,
       concat('本次住院', CAST(b AS VARCHAR), '至', CAST(e AS VARCHAR), '（', fixmedins_code, '）',
              CASE WHEN hit_before
                   THEN concat('，入院时仍在', substr(before_end, 12), '住院（至', substr(before_end, 1, 10), '出院）')
                   ELSE '' END,
              CASE WHEN hit_after
                   THEN concat('，出院前已于', substr(after_begin, 1, 10), '在', substr(after_begin, 12), '入院')
                   ELSE '' END,
              '：同一人同期在两家机构住院') AS detail
FROM hits
WHERE COALESCE(hit_before, FALSE) OR COALESCE(hit_after, FALSE)
