//! The rows one chunk of generated data holds before they are written: compact structs with
//! integer money (cents) and indices into the assets, no per-line strings.

/// An insured person (one `psn` row).
#[derive(Debug, Clone)]
pub struct Person {
    pub psn_no: String,
    pub name: String,
    pub certno: String,
    /// `1` male, `2` female.
    pub gend: u8,
    pub brdy: i32,
    pub employee: bool,
    /// Identity category in the registry now (`psn_idet_type`), may be empty.
    pub idet: &'static str,
    /// Index into `Assets::regions`.
    pub county: u16,
    pub death: Option<i32>,
}

impl Person {
    pub fn insutype(&self) -> &'static str {
        if self.employee { "310" } else { "390" }
    }
    /// Age in whole years on a day.
    pub fn age_at(&self, day: i32) -> i32 {
        use chrono::Datelike;
        let b = crate::synth::cal::date(self.brdy);
        let d = crate::synth::cal::date(day);
        let mut a = d.year() - b.year();
        if (d.month(), d.day()) < (b.month(), b.day()) {
            a -= 1;
        }
        a
    }
}

/// Identity fields a settlement carries when they differ from the person registry.
#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    pub certno: String,
    pub gend: u8,
    pub brdy: i32,
}

/// One fee line.
#[derive(Debug, Clone, Copy)]
pub struct Line {
    /// Line number within its settlement (`feedetl_sn` = `setl_id` + 4 digits).
    pub sn: u16,
    pub time: i64,
    /// Index into `Assets::bill`.
    pub bill: u32,
    /// `cnt` × 10⁴.
    pub cnt4: i64,
    /// `pric` × 10⁶.
    pub pric6: i64,
    /// `det_item_fee_sumamt` in cents.
    pub amt: i64,
    pub inscp: i64,
    pub fulamt: i64,
    pub pre: i64,
    pub overlmt: i64,
    pub lmt: bool,
    pub dr: u16,
    pub dept: u8,
    /// For a refund line: the `sn` of the line it cancels (in the settlement `init_setl`).
    pub init_sn: Option<u16>,
}

/// Money fields of a settlement, in cents (`pool4`: ratio × 10⁴).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Money {
    pub medfee: i64,
    pub fulamt: i64,
    pub overlmt: i64,
    pub pre: i64,
    pub inscp: i64,
    pub dedc: i64,
    pub hifp: i64,
    pub pool4: i64,
    pub hifmi: i64,
    pub hifob: i64,
    pub maf: i64,
    pub part: i64,
}

impl Money {
    pub fn negated(&self) -> Money {
        Money {
            medfee: -self.medfee,
            fulamt: -self.fulamt,
            overlmt: -self.overlmt,
            pre: -self.pre,
            inscp: -self.inscp,
            dedc: -self.dedc,
            hifp: -self.hifp,
            pool4: self.pool4,
            hifmi: -self.hifmi,
            hifob: -self.hifob,
            maf: -self.maf,
            part: -self.part,
        }
    }
}

/// One settlement, as written.
#[derive(Debug, Clone)]
pub struct Setl {
    pub id: u64,
    pub mdtrt: u64,
    /// Index of the person in the chunk.
    pub psn: u32,
    pub ident: Option<Box<Identity>>,
    pub fac: u16,
    pub med_type: &'static str,
    pub begn: i32,
    pub end: i32,
    pub time: i64,
    pub dise: &'static str,
    pub refl: bool,
    pub manual: bool,
    pub reversal: bool,
    pub init: Option<u64>,
    pub idet: &'static str,
    pub m: Money,
    /// Range of this settlement's lines in the chunk's line vector.
    pub lines: (u32, u32),
}

/// One payment record (`pay`).
#[derive(Debug, Clone, Copy)]
pub struct Pay {
    pub setl: u64,
    pub employee: bool,
    pub manual: bool,
    pub dcla: i32,
    pub paid: Option<i32>,
    pub amt: i64,
}

/// What a label says about a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// An injected anomaly the checks must find.
    Anomaly,
    /// Part of an anomaly without being its target (the first stay of a split admission...).
    Related,
    /// Looks suspicious to a careless check, but a correct one must not flag it.
    NegativeControl,
    /// A malformed row that ingest must quarantine.
    Malformed,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Anomaly => "anomaly",
            Role::Related => "related",
            Role::NegativeControl => "negative_control",
            Role::Malformed => "malformed",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "anomaly" => Role::Anomaly,
            "related" => Role::Related,
            "negative_control" => Role::NegativeControl,
            "malformed" => Role::Malformed,
            _ => return None,
        })
    }
}

/// One row of `labels/labels.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub anomaly_id: String,
    pub role: Role,
    /// A SCHEMA category, or `quarantine` for malformed rows.
    pub kind: &'static str,
    pub subkind: &'static str,
    /// Input table of the row (`setl`, `fee`, `pay`, `psn`, `medins`).
    pub table: &'static str,
    /// The settlement concerned (empty when none).
    pub setl_id: String,
    pub psn_no: String,
    /// `settlement`, `person` or `facility`: what a check should name.
    pub entity_type: &'static str,
    pub entity_id: String,
    /// The row's key in `table` (`setl_id`, `feedetl_sn`, `pay_id`, `psn_no`, `fixmedins_code`).
    pub key: String,
    /// For malformed rows: the reject class expected in quarantine.
    pub expected: &'static str,
    pub note: String,
}

/// The textual change that makes a copied row malformed (CSV output).
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Replace the text of one field.
    Field(&'static str, String),
    /// Append one field too many.
    ExtraField,
}

/// An extra, malformed row: a copy of a generated row with a mutation.
#[derive(Debug, Clone)]
pub enum BadRow {
    Setl(Setl, Mutation),
    /// A fee line naming settlement `setl` (which may not exist).
    Fee {
        line: Line,
        setl: u64,
        psn: u32,
        mdtrt: u64,
        fac: u16,
        m: Mutation,
    },
    Psn(Person, Mutation),
    Pay(Pay, String, Mutation),
}

/// Ids derived from numbers, identical in every output format.
pub fn setl_id(n: u64) -> String {
    format!("S{n:013}")
}

pub fn feedetl_sn(setl: u64, sn: u16) -> String {
    format!("F{setl:013}{sn:04}")
}

pub fn pay_id(setl: u64) -> String {
    format!("P{setl:013}")
}
