/*
id = "IMP005"
name = "identity-contradicts-registry"
title_zh = "结算身份信息与参保登记不符"
title_en = "Settlement identity contradicts the person registry"
category = "impersonation"
severity = "high"
requires = ["setl", "psn"]
basis = ["河南大病合同 第十六条（冒名顶替）", "漯河大额合同 第二十一条（冒名顶替）"]
what = """Compares the identity fields of each settlement (view `setl_valid`) with the person registry
(`psn`) for the same psn_no: certno (trimmed, upper case), psn_name (trimmed), gend and brdy. Any
difference is flagged; the detail names which fields differ and never prints the ID number or the name.
Identity category and insurance type are not compared (they change lawfully during a year). A newborn
settled under a parent's number (the settlement carries the parent's certno but the newborn's birth date,
less than `newborn_days` days before admission) is not flagged."""
why = """The settlement system fills the identity from the card used; when it contradicts the registry,
another person's card or forged data was used (冒名顶替). The fund payments of the settlement are at risk."""
example = """psn P1 is registered as born 1962-04-01, but settlement S9 of P1 carries birth date 1970-11-23
and another ID number: flagged with detail 「结算证件号码、出生日期与参保登记不符」."""

[params.newborn_days]
type = "int"
default = 365
doc = "A settlement person younger than this many days at admission, carrying the registry's certno, is a newborn settled under a parent's number."
*/
WITH cmp AS (
    SELECT s.setl_id, s.fund_pay,
           upper(trim(COALESCE(s.certno, ''))) <> upper(trim(COALESCE(p.certno, ''))) AS d_certno,
           trim(COALESCE(s.psn_name, '')) <> trim(COALESCE(p.psn_name, '')) AS d_name,
           COALESCE(s.gend, '') <> COALESCE(p.gend, '') AS d_gend,
           COALESCE(s.brdy <> p.brdy, s.brdy IS NOT NULL OR p.brdy IS NOT NULL) AS d_brdy,
           CAST(s.begndate AS INT) - CAST(s.brdy AS INT) < ${newborn_days} AS newborn
    FROM setl_valid s
    JOIN psn p ON p.psn_no = s.psn_no
)
SELECT setl_id,
       fund_pay AS amount_at_risk,
       concat('结算',
              concat_ws('、',
                        CASE WHEN d_certno THEN '证件号码' END,
                        CASE WHEN d_name THEN '姓名' END,
                        CASE WHEN d_gend THEN '性别' END,
                        CASE WHEN d_brdy THEN '出生日期' END),
              '与参保登记（人员编号相同）不符') AS detail
FROM cmp
WHERE (d_certno OR d_name OR d_gend OR d_brdy)
  AND NOT (COALESCE(newborn, FALSE) AND NOT d_certno)
