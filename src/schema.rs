//! The data contract of `SCHEMA.md` as code: the input tables, their fields and the Arrow
//! types the engine stores them as, and the output tables the engine writes.
//!
//! Money is `Decimal128(16,2)` (yuan), ratios `Decimal128(5,4)`, counts `Decimal128(16,4)`,
//! unit prices `Decimal128(16,6)`, dates `Date32`, timestamps `Timestamp(Second)` (local
//! time, no zone). Text and code values are `Utf8`.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// How a field is read and stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free text (names, ids).
    Text,
    /// A code value from a code list (`med_type`, `gend`, ...): unknown values are accepted
    /// and counted, never rejected.
    Code,
    /// `YYYY-MM-DD`.
    Date,
    /// `YYYY-MM-DD HH:MM:SS`.
    Timestamp,
    /// Exact decimal with the given precision and scale.
    Decimal { precision: u8, scale: i8 },
}

/// Money in yuan: `decimal(16,2)`.
pub const MONEY: Kind = Kind::Decimal { precision: 16, scale: 2 };
/// A ratio such as `pool_prop_selfpay`: `decimal(5,4)`.
pub const RATIO: Kind = Kind::Decimal { precision: 5, scale: 4 };
/// A quantity (`cnt`): `decimal(16,4)`.
pub const COUNT: Kind = Kind::Decimal { precision: 16, scale: 4 };
/// A unit price (`pric`): `decimal(16,6)`.
pub const PRICE: Kind = Kind::Decimal { precision: 16, scale: 6 };

/// Whether a column must exist in the input and whether its values may be empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// The column must exist and every row must carry a value.
    Required,
    /// The column must exist; the value may be empty.
    MayBeEmpty,
    /// The column may be absent altogether; stored as null then.
    Optional,
}

/// One field of an input table.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    pub name: &'static str,
    pub kind: Kind,
    pub presence: Presence,
    /// The Chinese name used in reports and reject reasons.
    pub label: &'static str,
}

impl FieldSpec {
    pub fn data_type(&self) -> DataType {
        kind_type(self.kind)
    }
    pub fn column_required(&self) -> bool {
        self.presence != Presence::Optional
    }
    pub fn value_required(&self) -> bool {
        self.presence == Presence::Required
    }
}

/// Arrow type a [`Kind`] is stored as.
pub fn kind_type(kind: Kind) -> DataType {
    match kind {
        Kind::Text | Kind::Code => DataType::Utf8,
        Kind::Date => DataType::Date32,
        Kind::Timestamp => DataType::Timestamp(TimeUnit::Second, None),
        Kind::Decimal { precision, scale } => DataType::Decimal128(precision, scale),
    }
}

/// One input table of the contract.
#[derive(Debug)]
pub struct TableSpec {
    pub name: &'static str,
    pub label: &'static str,
    /// `setl` and `fee` are required; the others optional.
    pub required: bool,
    /// The unique key, if any.
    pub key: Option<&'static str>,
    pub fields: &'static [FieldSpec],
}

impl TableSpec {
    /// The Arrow schema of the accepted rows (every field, optional ones nullable).
    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.fields
                .iter()
                .map(|f| Field::new(f.name, f.data_type(), !f.value_required()))
                .collect::<Vec<_>>(),
        ))
    }
    /// The same schema with every field nullable (rows not yet validated).
    pub fn arrow_schema_nullable(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.fields.iter().map(|f| Field::new(f.name, f.data_type(), true)).collect::<Vec<_>>(),
        ))
    }
    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }
}

const fn f(name: &'static str, kind: Kind, presence: Presence, label: &'static str) -> FieldSpec {
    FieldSpec { name, kind, presence, label }
}

use Kind::{Code, Date, Text, Timestamp};
use Presence::{MayBeEmpty, Optional, Required};

pub static SETL: TableSpec = TableSpec {
    name: "setl",
    label: "结算信息",
    required: true,
    key: Some("setl_id"),
    fields: &[
        f("setl_id", Text, Required, "结算ID"),
        f("mdtrt_id", Text, Required, "就诊ID"),
        f("psn_cert_type", Code, Optional, "证件类型"),
        f("psn_no", Text, Required, "人员编号"),
        f("psn_name", Text, Required, "姓名"),
        f("certno", Text, Required, "证件号码"),
        f("gend", Code, Required, "性别"),
        f("brdy", Date, Required, "出生日期"),
        f("insutype", Code, Required, "险种类型"),
        f("psn_idet_type", Code, MayBeEmpty, "人员身份类别"),
        f("insu_admdvs", Text, Required, "参保地医保区划"),
        f("fix_blng_admdvs", Text, Required, "定点归属医保区划"),
        f("fixmedins_code", Text, Required, "定点医药机构编号"),
        f("hosp_lv", Code, Optional, "医院等级"),
        f("med_type", Code, Required, "医疗类别"),
        f("begndate", Date, Required, "开始日期"),
        f("enddate", Date, Required, "结束日期"),
        f("setl_time", Timestamp, Required, "结算时间"),
        f("dise_codg", Text, Required, "主诊断代码"),
        f("refl_flag", Code, Required, "异地就医备案或转诊"),
        f("setl_mode", Code, Required, "结算方式"),
        f("refd_setl_flag", Code, Required, "退费结算标志"),
        f("init_setl_id", Text, MayBeEmpty, "原结算ID"),
        f("medfee_sumamt", MONEY, Required, "医疗费总额"),
        f("fulamt_ownpay_amt", MONEY, Required, "全自费金额"),
        f("overlmt_selfpay", MONEY, Required, "超限价自费费用"),
        f("preselfpay_amt", MONEY, Required, "先行自付金额"),
        f("inscp_scp_amt", MONEY, Required, "符合政策范围金额"),
        f("act_pay_dedc", MONEY, Required, "实际支付起付线"),
        f("hifp_pay", MONEY, Required, "统筹基金支出"),
        f("pool_prop_selfpay", RATIO, Required, "统筹基金支付比例"),
        f("hifmi_pay", MONEY, Required, "居民大病保险资金支出"),
        f("hifob_pay", MONEY, Required, "职工大额医疗费用补助基金支出"),
        f("maf_pay", MONEY, Required, "医疗救助基金支出"),
        f("psn_part_amt", MONEY, Required, "个人负担总金额"),
    ],
};

pub static FEE: TableSpec = TableSpec {
    name: "fee",
    label: "费用明细",
    required: true,
    key: Some("feedetl_sn"),
    fields: &[
        f("feedetl_sn", Text, Required, "费用明细流水号"),
        f("setl_id", Text, Required, "结算ID"),
        f("psn_no", Text, Required, "人员编号"),
        f("fee_ocur_time", Timestamp, Required, "费用发生时间"),
        f("med_list_codg", Text, Required, "医保目录编码"),
        f("med_list_name", Text, Required, "医保目录名称"),
        f("med_chrgitm_type", Code, Required, "医疗收费项目类别"),
        f("chrgitm_lv", Code, Required, "收费项目等级"),
        f("cnt", COUNT, Required, "数量"),
        f("pric", PRICE, Required, "单价"),
        f("det_item_fee_sumamt", MONEY, Required, "明细项目费用总额"),
        f("init_feedetl_sn", Text, MayBeEmpty, "原费用明细流水号"),
        f("mdtrt_id", Text, Optional, "就诊ID"),
        f("inscp_scp_amt", MONEY, Optional, "符合政策范围金额"),
        f("fulamt_ownpay_amt", MONEY, Optional, "全自费金额"),
        f("lmt_used_flag", Code, Optional, "限制使用标志"),
        f("bilg_dr_codg", Text, Optional, "开单医生编码"),
        f("bilg_dept_codg", Text, Optional, "开单科室编码"),
    ],
};

pub static PSN: TableSpec = TableSpec {
    name: "psn",
    label: "参保人员信息",
    required: false,
    key: Some("psn_no"),
    fields: &[
        f("psn_no", Text, Required, "人员编号"),
        f("certno", Text, Required, "公民身份号码"),
        f("psn_name", Text, Required, "姓名"),
        f("gend", Code, Required, "性别"),
        f("brdy", Date, Required, "出生日期"),
        f("insutype", Code, Required, "险种类型"),
        f("psn_idet_type", Code, MayBeEmpty, "人员身份类别"),
        f("insu_admdvs", Text, Required, "参保地医保区划"),
        f("death_date", Date, MayBeEmpty, "死亡日期"),
    ],
};

pub static MEDINS: TableSpec = TableSpec {
    name: "medins",
    label: "定点医药机构",
    required: false,
    key: Some("fixmedins_code"),
    fields: &[
        f("fixmedins_code", Text, Required, "定点医药机构编号"),
        f("fixmedins_name", Text, Required, "定点医药机构名称"),
        f("admdvs", Text, Required, "所在医保区划"),
        f("hosp_lv", Code, MayBeEmpty, "医院等级"),
    ],
};

pub static PAY: TableSpec = TableSpec {
    name: "pay",
    label: "大病/大额支付记录",
    required: false,
    key: Some("pay_id"),
    fields: &[
        f("pay_id", Text, Required, "支付ID"),
        f("setl_id", Text, Required, "结算ID"),
        f("fund", Code, Required, "基金"),
        f("pay_chnl", Code, Required, "支付渠道"),
        f("dcla_date", Date, Required, "申报日期"),
        f("pay_date", Date, MayBeEmpty, "支付日期"),
        f("pay_amt", MONEY, Required, "支付金额"),
    ],
};

/// Every input table, in the order they are ingested (`setl` before `fee` and `pay`, which
/// refer to it).
pub static TABLES: [&TableSpec; 5] = [&SETL, &PSN, &MEDINS, &FEE, &PAY];

/// Looks a table up by name.
pub fn table(name: &str) -> Option<&'static TableSpec> {
    TABLES.iter().copied().find(|t| t.name == name)
}

/// `findings.parquet`: one row per (settlement, rule) hit.
pub fn findings_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("setl_id", DataType::Utf8, false),
        Field::new("psn_no", DataType::Utf8, true),
        Field::new("fixmedins_code", DataType::Utf8, true),
        Field::new("rule_id", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("severity", DataType::Utf8, false),
        Field::new("amount_at_risk", DataType::Decimal128(18, 2), false),
        Field::new("detail", DataType::Utf8, false),
        Field::new("entity_type", DataType::Utf8, false),
        Field::new("entity_id", DataType::Utf8, false),
        Field::new("feedetl_sns", DataType::Utf8, true),
        Field::new("run_id", DataType::Utf8, false),
    ]))
}

/// `benefit_check.parquet`: one row per settlement the fund covers or should cover.
pub fn benefit_check_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("setl_id", DataType::Utf8, false),
        Field::new("fund", DataType::Utf8, false),
        Field::new("recorded", DataType::Decimal128(18, 2), false),
        Field::new("expected", DataType::Decimal128(18, 2), false),
        Field::new("diff", DataType::Decimal128(18, 2), false),
        Field::new("status", DataType::Utf8, false),
    ]))
}

/// The finding categories of SCHEMA.md.
pub const CATEGORIES: &[&str] = &[
    "impersonation",
    "duplicate_billing",
    "out_of_area",
    "split_admission",
    "phantom_stay",
    "overcharge",
    "restricted_item",
    "benefit_mismatch",
    "late_payment",
    "statistical_outlier",
    "injury_review",
    "data_quality",
];

/// The severities of SCHEMA.md.
pub const SEVERITIES: &[&str] = &["high", "medium", "low"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_its_key_as_a_required_field() {
        for t in TABLES {
            let key = t.key.expect("every input table has a key");
            assert_eq!(t.field(key).unwrap().presence, Presence::Required, "{}", t.name);
            assert_eq!(t.arrow_schema().fields().len(), t.fields.len());
        }
    }

    #[test]
    fn money_is_decimal() {
        let s = SETL.arrow_schema();
        assert_eq!(s.field_with_name("hifmi_pay").unwrap().data_type(), &DataType::Decimal128(16, 2));
        assert_eq!(s.field_with_name("pool_prop_selfpay").unwrap().data_type(), &DataType::Decimal128(5, 4));
    }
}
