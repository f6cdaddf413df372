/*
id = "IMP004"
name = "care-after-death"
title_zh = "死亡后仍有就医结算"
title_en = "Care after the person's registered death"
category = "impersonation"
severity = "high"
requires = ["setl", "psn"]
basis = ["河南大病合同 第十六条（冒名顶替、弄虚作假）", "漯河大额合同 第二十一条、第二十二条（虚假申报）"]
what = """Flags settlements (view `setl_valid`) of a person whose death_date (civil-affairs death registry,
table `psn`) is before the care: the visit or admission began after the death date, or the stay ended
more than `grace_days` days after it (a patient who dies in hospital is discharged on the day of death;
the grace absorbs a registration one day off)."""
why = """Nobody is treated after death: the settlement was invented, or someone else used the dead
person's insurance (冒名顶替). The fund payments of the settlement are at risk."""
example = """P1 died on 2024-05-10 (psn.death_date); an outpatient visit on 2024-06-02 and a stay admitted
on 2024-05-20 are flagged. A stay ending on 2024-05-10, the day of death, is not."""

[params.grace_days]
type = "int"
default = 1
doc = "Days a discharge may follow the registered death date before it is flagged."
*/
SELECT s.setl_id,
       s.fund_pay AS amount_at_risk,
       concat('参保人登记死亡日期', CAST(p.death_date AS VARCHAR), '，本次就医', CAST(s.begndate AS VARCHAR), '至',
              CAST(s.enddate AS VARCHAR),
              CASE WHEN s.begndate > p.death_date THEN '，开始于死亡之后' ELSE '，结束于死亡之后' END) AS detail
FROM setl_valid s
JOIN psn p ON p.psn_no = s.psn_no
WHERE p.death_date IS NOT NULL
  AND (s.begndate > p.death_date
       OR CAST(s.enddate AS INT) > CAST(p.death_date AS INT) + ${grace_days})
