//! Writing a chunk's rows as CSV text (UTF-8 or GB18030) or as Arrow record batches with
//! exactly the contract's types. Each table's row is emitted once, through [`Sink`], so both
//! formats carry the same values.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Date32Builder, Decimal128Builder, RecordBatch, StringBuilder, TimestampSecondBuilder,
};

use crate::error::{Error, Result};
use crate::schema::{FEE, Kind, MEDINS, PAY, PSN, SETL, TableSpec};
use crate::synth::assets::{Assets, Facility};
use crate::synth::cal::DateText;
use crate::synth::chunk::Gen;
use crate::synth::clinical::DEPTS;
use crate::synth::model::{BadRow, Line, Mutation, Pay, Person, Setl};

/// Receives one row's values, field by field in the contract's order.
pub trait Sink {
    fn s(&mut self, v: &str);
    fn f(&mut self, args: std::fmt::Arguments<'_>);
    fn dec(&mut self, v: i64, scale: u32);
    fn date(&mut self, d: Option<i32>);
    fn ts(&mut self, t: i64);
    /// An empty value (an empty CSV cell, a null in Arrow).
    fn empty(&mut self);
    fn end(&mut self);
    /// One field too many (CSV only).
    fn extra(&mut self) {}
}

/// Writes `v / 10^scale` with exactly `scale` decimals.
pub fn push_scaled(v: i64, scale: u32, out: &mut Vec<u8>) {
    let neg = v < 0;
    let mut u = v.unsigned_abs();
    let mut digits = [0u8; 24];
    let mut n = 0;
    loop {
        digits[n] = b'0' + (u % 10) as u8;
        u /= 10;
        n += 1;
        if u == 0 && n > scale as usize {
            break;
        }
    }
    if neg {
        out.push(b'-');
    }
    for i in (0..n).rev() {
        out.push(digits[i]);
        if i == scale as usize && scale > 0 {
            out.push(b'.');
        }
    }
}

/// A CSV row writer.
pub struct CsvSink<'d> {
    pub buf: Vec<u8>,
    first: bool,
    dates: &'d DateText,
    tmp: String,
}

impl<'d> CsvSink<'d> {
    pub fn new(dates: &'d DateText, cap: usize) -> Self {
        CsvSink { buf: Vec::with_capacity(cap), first: true, dates, tmp: String::new() }
    }
    fn sep(&mut self) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
    }
    fn text(&mut self, v: &str) {
        if v.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
            self.buf.push(b'"');
            for b in v.bytes() {
                if b == b'"' {
                    self.buf.push(b'"');
                }
                self.buf.push(b);
            }
            self.buf.push(b'"');
        } else {
            self.buf.extend_from_slice(v.as_bytes());
        }
    }
    /// The header line of a table.
    pub fn header(spec: &TableSpec) -> Vec<u8> {
        let mut h = spec.fields.iter().map(|f| f.name).collect::<Vec<_>>().join(",").into_bytes();
        h.push(b'\n');
        h
    }
}

impl Sink for CsvSink<'_> {
    fn s(&mut self, v: &str) {
        self.sep();
        self.text(v);
    }
    fn f(&mut self, args: std::fmt::Arguments<'_>) {
        self.sep();
        self.tmp.clear();
        let _ = self.tmp.write_fmt(args);
        let t = std::mem::take(&mut self.tmp);
        self.text(&t);
        self.tmp = t;
    }
    fn dec(&mut self, v: i64, scale: u32) {
        self.sep();
        push_scaled(v, scale, &mut self.buf);
    }
    fn date(&mut self, d: Option<i32>) {
        self.sep();
        if let Some(d) = d {
            self.dates.push(d, &mut self.buf);
        }
    }
    fn ts(&mut self, t: i64) {
        self.sep();
        self.dates.push_ts(t, &mut self.buf);
    }
    fn empty(&mut self) {
        self.sep();
    }
    fn end(&mut self) {
        self.buf.push(b'\n');
        self.first = true;
    }
    fn extra(&mut self) {
        self.sep();
        self.buf.extend_from_slice(b"EXTRA");
    }
}

enum Col {
    Str(StringBuilder),
    Dec(Decimal128Builder, u8, i8),
    Date(Date32Builder),
    Ts(TimestampSecondBuilder),
}

/// An Arrow row writer with the contract's column types.
pub struct ArrowSink {
    spec: &'static TableSpec,
    cols: Vec<Col>,
    col: usize,
    err: Option<String>,
}

impl ArrowSink {
    pub fn new(spec: &'static TableSpec, rows: usize) -> Self {
        let cols = spec
            .fields
            .iter()
            .map(|f| match f.kind {
                Kind::Text | Kind::Code => Col::Str(StringBuilder::with_capacity(rows, rows * 12)),
                Kind::Date => Col::Date(Date32Builder::with_capacity(rows)),
                Kind::Timestamp => Col::Ts(TimestampSecondBuilder::with_capacity(rows)),
                Kind::Decimal { precision, scale } => {
                    Col::Dec(Decimal128Builder::with_capacity(rows), precision, scale)
                }
            })
            .collect();
        ArrowSink { spec, cols, col: 0, err: None }
    }

    fn mismatch(&mut self, what: &str) {
        if self.err.is_none() {
            let f = self.spec.fields.get(self.col).map_or("?", |f| f.name);
            self.err = Some(format!("{}.{f}: cannot hold {what}", self.spec.name));
        }
        self.col += 1;
    }

    pub fn finish(self) -> Result<RecordBatch> {
        if let Some(e) = self.err {
            return Err(crate::other_err!("generator bug: {e}"));
        }
        let spec = self.spec;
        let cols: Vec<ArrayRef> = self
            .cols
            .into_iter()
            .map(|c| -> Result<ArrayRef> {
                Ok(match c {
                    Col::Str(mut b) => Arc::new(b.finish()),
                    Col::Date(mut b) => Arc::new(b.finish()),
                    Col::Ts(mut b) => Arc::new(b.finish()),
                    Col::Dec(mut b, p, s) => Arc::new(
                        b.finish().with_precision_and_scale(p, s).map_err(|e| Error::arrow(spec.name, e))?,
                    ),
                })
            })
            .collect::<Result<_>>()?;
        RecordBatch::try_new(spec.arrow_schema(), cols)
            .map_err(|e| Error::arrow(format!("table {}", spec.name), e))
    }
}

impl Sink for ArrowSink {
    fn s(&mut self, v: &str) {
        match self.cols.get_mut(self.col) {
            Some(Col::Str(b)) => {
                b.append_value(v);
                self.col += 1;
            }
            _ => self.mismatch("text"),
        }
    }
    fn f(&mut self, args: std::fmt::Arguments<'_>) {
        match self.cols.get_mut(self.col) {
            Some(Col::Str(b)) => {
                let _ = b.write_fmt(args);
                b.append_value("");
                self.col += 1;
            }
            _ => self.mismatch("text"),
        }
    }
    fn dec(&mut self, v: i64, scale: u32) {
        match self.cols.get_mut(self.col) {
            Some(Col::Dec(b, _, s)) if *s as u32 == scale => {
                b.append_value(i128::from(v));
                self.col += 1;
            }
            _ => self.mismatch("a decimal of this scale"),
        }
    }
    fn date(&mut self, d: Option<i32>) {
        match self.cols.get_mut(self.col) {
            Some(Col::Date(b)) => {
                b.append_option(d);
                self.col += 1;
            }
            _ => self.mismatch("a date"),
        }
    }
    fn ts(&mut self, t: i64) {
        match self.cols.get_mut(self.col) {
            Some(Col::Ts(b)) => {
                b.append_value(t);
                self.col += 1;
            }
            _ => self.mismatch("a timestamp"),
        }
    }
    fn empty(&mut self) {
        match self.cols.get_mut(self.col) {
            Some(Col::Str(b)) => b.append_null(),
            Some(Col::Dec(b, _, _)) => b.append_null(),
            Some(Col::Date(b)) => b.append_null(),
            Some(Col::Ts(b)) => b.append_null(),
            None => {}
        }
        self.col += 1;
    }
    fn end(&mut self) {
        if self.col != self.spec.fields.len() && self.err.is_none() {
            self.err = Some(format!("{}: row of {} values", self.spec.name, self.col));
        }
        self.col = 0;
    }
}

/// Applies a malformed row's mutation on the way to a sink.
struct Mutate<'a, S: Sink> {
    inner: &'a mut S,
    col: usize,
    target: Option<usize>,
    text: &'a str,
    extra: bool,
}

impl<'a, S: Sink> Mutate<'a, S> {
    fn new(inner: &'a mut S, spec: &TableSpec, m: &'a Mutation) -> Self {
        match m {
            Mutation::Field(f, text) => {
                Mutate { inner, col: 0, target: spec.index_of(f), text: text.as_str(), extra: false }
            }
            Mutation::ExtraField => Mutate { inner, col: 0, target: None, text: "", extra: true },
        }
    }
    fn hit(&mut self) -> bool {
        let h = Some(self.col) == self.target;
        self.col += 1;
        if h {
            // An empty text, not a null: a missing value in a non-nullable column.
            self.inner.s(self.text);
        }
        h
    }
}

impl<S: Sink> Sink for Mutate<'_, S> {
    fn s(&mut self, v: &str) {
        if !self.hit() {
            self.inner.s(v);
        }
    }
    fn f(&mut self, args: std::fmt::Arguments<'_>) {
        if !self.hit() {
            self.inner.f(args);
        }
    }
    fn dec(&mut self, v: i64, scale: u32) {
        if !self.hit() {
            self.inner.dec(v, scale);
        }
    }
    fn date(&mut self, d: Option<i32>) {
        if !self.hit() {
            self.inner.date(d);
        }
    }
    fn ts(&mut self, t: i64) {
        if !self.hit() {
            self.inner.ts(t);
        }
    }
    fn empty(&mut self) {
        if !self.hit() {
            self.inner.empty();
        }
    }
    fn end(&mut self) {
        if self.extra {
            self.inner.extra();
        }
        self.inner.end();
    }
}

fn text_or_empty<S: Sink>(o: &mut S, v: &str) {
    if v.is_empty() { o.empty() } else { o.s(v) }
}

/// One `setl` row.
pub fn setl_row<S: Sink>(o: &mut S, g: &Gen, s: &Setl) {
    let a = g.a;
    let p = &g.persons[s.psn as usize];
    let f = &a.facilities[s.fac as usize];
    let (name, certno, gend, brdy) = match &s.ident {
        Some(i) => (i.name.as_str(), i.certno.as_str(), i.gend, i.brdy),
        None => (p.name.as_str(), p.certno.as_str(), p.gend, p.brdy),
    };
    let m = &s.m;
    o.f(format_args!("S{:013}", s.id));
    o.f(format_args!("M{:013}", s.mdtrt));
    o.s("01");
    o.s(&p.psn_no);
    o.s(name);
    o.s(certno);
    o.s(if gend == 1 { "1" } else { "2" });
    o.date(Some(brdy));
    o.s(p.insutype());
    text_or_empty(o, s.idet);
    o.s(&a.regions[p.county as usize].admdvs);
    o.s(&f.admdvs);
    o.s(&f.code);
    text_or_empty(o, f.lv_str());
    o.s(s.med_type);
    o.date(Some(s.begn));
    o.date(Some(s.end));
    o.ts(s.time);
    o.s(s.dise);
    o.s(if s.refl { "1" } else { "0" });
    o.s(if s.manual { "2" } else { "1" });
    o.s(if s.reversal { "1" } else { "0" });
    match s.init {
        Some(i) => o.f(format_args!("S{i:013}")),
        None => o.empty(),
    }
    for v in [m.medfee, m.fulamt, m.overlmt, m.pre, m.inscp, m.dedc, m.hifp] {
        o.dec(v, 2);
    }
    o.dec(m.pool4, 4);
    for v in [m.hifmi, m.hifob, m.maf, m.part] {
        o.dec(v, 2);
    }
    o.end();
}

/// One `fee` row.
#[allow(clippy::too_many_arguments)]
pub fn fee_row<S: Sink>(
    o: &mut S,
    a: &Assets,
    l: &Line,
    setl: u64,
    init: Option<u64>,
    mdtrt: u64,
    p: &Person,
    f: &Facility,
) {
    let b = &a.bill[l.bill as usize];
    o.f(format_args!("F{setl:013}{:04}", l.sn));
    o.f(format_args!("S{setl:013}"));
    o.s(&p.psn_no);
    o.ts(l.time);
    o.s(&b.code);
    o.s(&b.name);
    o.s(&b.typ);
    o.s(&b.lv);
    o.dec(l.cnt4, 4);
    o.dec(l.pric6, 6);
    o.dec(l.amt, 2);
    match (l.init_sn, init) {
        (Some(sn), Some(i)) => o.f(format_args!("F{i:013}{sn:04}")),
        _ => o.empty(),
    }
    o.f(format_args!("M{mdtrt:013}"));
    o.dec(l.inscp, 2);
    o.dec(l.fulamt, 2);
    o.s(if l.lmt { "1" } else { "0" });
    o.f(format_args!("D{}{:03}", &f.code[1..], l.dr));
    o.s(DEPTS[l.dept as usize % DEPTS.len()]);
    o.end();
}

/// One `psn` row.
pub fn psn_row<S: Sink>(o: &mut S, a: &Assets, p: &Person) {
    o.s(&p.psn_no);
    o.s(&p.certno);
    o.s(&p.name);
    o.s(if p.gend == 1 { "1" } else { "2" });
    o.date(Some(p.brdy));
    o.s(p.insutype());
    text_or_empty(o, p.idet);
    o.s(&a.regions[p.county as usize].admdvs);
    o.date(p.death);
    o.end();
}

/// One `pay` row.
pub fn pay_row<S: Sink>(o: &mut S, pay: &Pay, id: Option<&str>) {
    match id {
        Some(id) => o.s(id),
        None => o.f(format_args!("P{:013}", pay.setl)),
    }
    o.f(format_args!("S{:013}", pay.setl));
    o.s(if pay.employee { "hifob" } else { "hifmi" });
    o.s(if pay.manual { "2" } else { "1" });
    o.date(Some(pay.dcla));
    o.date(pay.paid);
    o.dec(pay.amt, 2);
    o.end();
}

/// One `medins` row.
pub fn medins_row<S: Sink>(o: &mut S, f: &Facility, name: &str) {
    o.s(&f.code);
    o.s(name);
    o.s(&f.admdvs);
    text_or_empty(o, f.lv_str());
    o.end();
}

/// Emits every row of a table of a chunk (normal rows, then the malformed copies).
pub fn emit<S: Sink>(o: &mut S, g: &Gen, table: &str) {
    let a = g.a;
    match table {
        "setl" => {
            for s in &g.setls {
                setl_row(o, g, s);
            }
            for b in &g.bad {
                if let BadRow::Setl(s, m) = b {
                    setl_row(&mut Mutate::new(o, &SETL, m), g, s);
                }
            }
        }
        "fee" => {
            for s in &g.setls {
                let p = &g.persons[s.psn as usize];
                let f = &a.facilities[s.fac as usize];
                for l in &g.lines[s.lines.0 as usize..s.lines.1 as usize] {
                    fee_row(o, a, l, s.id, s.init, s.mdtrt, p, f);
                }
            }
            for b in &g.bad {
                if let BadRow::Fee { line, setl, psn, mdtrt, fac, m } = b {
                    let p = &g.persons[*psn as usize];
                    let f = &a.facilities[*fac as usize];
                    fee_row(&mut Mutate::new(o, &FEE, m), a, line, *setl, None, *mdtrt, p, f);
                }
            }
        }
        "psn" => {
            for p in &g.persons {
                psn_row(o, a, p);
            }
            for b in &g.bad {
                if let BadRow::Psn(p, m) = b {
                    psn_row(&mut Mutate::new(o, &PSN, m), a, p);
                }
            }
        }
        _ => {
            for pay in &g.pays {
                pay_row(o, pay, None);
            }
            for b in &g.bad {
                if let BadRow::Pay(pay, id, m) = b {
                    pay_row(&mut Mutate::new(o, &PAY, m), pay, Some(id));
                }
            }
        }
    }
}

/// The spec of an emitted table.
pub fn spec(table: &str) -> &'static TableSpec {
    match table {
        "setl" => &SETL,
        "fee" => &FEE,
        "psn" => &PSN,
        "medins" => &MEDINS,
        _ => &PAY,
    }
}

/// Row count hint of a chunk's table.
pub fn rows_hint(g: &Gen, table: &str) -> usize {
    match table {
        "setl" => g.setls.len() + 8,
        "fee" => g.lines.len() + 8,
        "psn" => g.persons.len() + 8,
        _ => g.pays.len() + 8,
    }
}
