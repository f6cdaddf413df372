#!/usr/bin/env python3
"""Build the default rule knowledge base (datasets/kb/) from the national sheets.

Reads the knowledge-point sheets (UTF-8 or GB18030 CSV, one file per sheet, the
layout of ../shared/knowledge/) and writes one normalised UTF-8 CSV per table: every
source column is kept with its Chinese values, machine columns are added (numbers,
codes, flags) so that the SQL rules never parse Chinese text. Python 3 standard
library only.

    python3 datasets/kb/build.py                      # ../shared/knowledge -> datasets/kb
    python3 datasets/kb/build.py --src DIR --out DIR  # a province's own sheets
    python3 datasets/kb/build.py --check              # fail if datasets/kb is stale

A sheet that is missing from --src is skipped (a province may replace only some
tables); a value the builder does not understand is an error naming the file, the
line and the value, never a silent guess. Every source row is accounted for: the
builder prints rows read, written and dropped (exact duplicate rows only) per table.
"""

import argparse
import csv
import io
import os
import re
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_SRC = os.path.join(os.path.dirname(REPO), "shared", "knowledge")

# Age groups of the age-limited sheets. The sheets name the groups but give no bounds;
# these are the defaults (configurable: edit here and rebuild, or ship an age_group.csv
# in a --kb folder). A person is inside the group while the completed age, in
# `age_unit`s at the fee date, is below `age_below`.
AGE_GROUPS = [
    # limit_age_group, age_below, age_unit, exempt_on_maternity, note
    ("儿童", 18, "year", "false", "未满18周岁"),
    ("婴幼儿", 3, "year", "true", "未满3周岁"),
    ("新生儿", 29, "day", "true", "出生后28天内（含第28天）"),
]

# Sex-limited drugs that also have indications for the other sex: a hit on them is a
# question, not a finding (low severity). Matched as substrings of med_list_name.
OTHER_INDICATIONS = {
    "他达拉非": "亦用于肺动脉高压（男女均可）",
    "西地那非": "亦用于肺动脉高压（男女均可）",
}

GENDER = {"男": "1", "女": "2", "1": "1", "2": "2"}
LEVEL = {"一级": 1, "二级": 2, "三级": 3, "1": 1, "2": 2, "3": 3}
# limit_insurance value -> does it restrict medical-insurance payment?
# 生育: Henan pays maternity drugs through medical insurance (生育保险 merged into the
# employee medical insurance), so they are not restricted; only 工伤 (work injury) is.
INSURANCE = {"工伤": "true", "生育": "false"}
FREQ_UNIT = {"日": "day", "天": "day", "小时": "hour"}


class SheetError(Exception):
    pass


def read_sheet(path):
    """Rows of a CSV sheet as dicts (stripped), with their 2-based line numbers."""
    raw = open(path, "rb").read()
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise SheetError(f"{path}: neither UTF-8 nor GB18030")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise SheetError(f"{path}: empty file")
    rows = []
    for n, rec in enumerate(reader, start=2):
        if not any(c.strip() for c in rec):
            continue
        if len(rec) != len(header):
            raise SheetError(f"{path}:{n}: {len(rec)} fields, header has {len(header)}")
        rows.append((n, {h: v.strip() for h, v in zip(header, rec)}))
    return header, rows


def need(path, header, cols):
    missing = [c for c in cols if c not in header]
    if missing:
        raise SheetError(f"{path}: missing column(s) {', '.join(missing)}")


def bad(path, n, col, value, why):
    return SheetError(f"{path}:{n}: {col} = {value!r}: {why}")


def as_int(path, n, col, value):
    if not re.fullmatch(r"\d+", value):
        raise bad(path, n, col, value, "not a whole number")
    return int(value)


def days_of(text):
    """A duration such as 14天, 2周, 12个月, 一年 in days, else None."""
    m = re.fullmatch(r"(\d+)\s*(天|日|周|个月|月|年)", text)
    if m:
        return int(m.group(1)) * {"天": 1, "日": 1, "周": 7, "个月": 30, "月": 30, "年": 365}[m.group(2)]
    return {"一年": 365, "半年": 182, "一周": 7, "一个月": 30}.get(text)


# ---- one function per table: (source header, rows) -> (output header, rows) -------------


def t_gender(path, header, rows, drugs):
    need(path, header, ["med_list_codg", "med_list_name", "limit_gender"])
    out = []
    for n, r in rows:
        g = GENDER.get(r["limit_gender"])
        if g is None:
            raise bad(path, n, "limit_gender", r["limit_gender"], "expected 男 or 女")
        note = ""
        if drugs:
            note = next((v for k, v in OTHER_INDICATIONS.items() if k in r["med_list_name"]), "")
        r.update(gend=g, other_indications="true" if note else "false", other_indications_note=note)
        out.append(r)
    return header + ["gend", "other_indications", "other_indications_note"], out


def t_age(path, header, rows, groups):
    need(path, header, ["med_list_codg", "med_list_name", "limit_age_group"])
    for n, r in rows:
        if r["limit_age_group"] not in groups:
            raise bad(path, n, "limit_age_group", r["limit_age_group"], f"not in age_group ({', '.join(groups)})")
    return header, [r for _, r in rows]


def t_working_age(path, header, rows):
    need(path, header, ["med_list_codg", "med_list_name"])
    return header, [r for _, r in rows]


WINDOWS = {"单日": ("day", ""), "当日": ("day", ""), "同日": ("day", ""), "单次就诊": ("visit", ""),
           "同一次就诊": ("visit", ""), "单次住院": ("visit", ""), "同一小时": ("1h", "1")}


def t_pairs(path, header, rows):
    need(path, header, ["window", "main_codg", "main_name", "sub_codg", "sub_name"])
    out = []
    for n, r in rows:
        w = r["window"]
        if w in WINDOWS:
            code, hours = WINDOWS[w]
        else:
            m = re.fullmatch(r"(\d+)\s*小时", w)
            if not m or int(m.group(1)) < 2:
                raise bad(path, n, "window", w, "expected 单日, 单次就诊, 同一小时 or N小时")
            code, hours = f"{int(m.group(1))}h", m.group(1)
        if r["main_codg"] == r["sub_codg"]:
            raise bad(path, n, "sub_codg", r["sub_codg"], "same as main_codg")
        r.update(window_code=code, window_hours=hours)
        out.append(r)
    return header + ["window_code", "window_hours"], out


def t_frequency(path, header, rows):
    need(path, header, ["med_list_codg", "med_list_name", "max_cnt", "per"])
    out = []
    for n, r in rows:
        as_int(path, n, "max_cnt", r["max_cnt"])
        unit = FREQ_UNIT.get(r["per"])
        if unit is None:
            raise bad(path, n, "per", r["per"], "expected 日, 天 or 小时")
        r.update(per_unit=unit)
        out.append(r)
    return header + ["per_unit"], out


def t_period(path, header, rows):
    need(path, header, ["med_list_codg", "med_list_name", "max_cnt", "period_days"])
    out = []
    for n, r in rows:
        as_int(path, n, "max_cnt", r["max_cnt"])
        if as_int(path, n, "period_days", r["period_days"]) < 1:
            raise bad(path, n, "period_days", r["period_days"], "must be at least 1")
        r.update(limit_group=r["med_list_codg"])
        out.append(r)
    return header + ["limit_group"], out


def t_course(path, header, rows):
    need(path, header, ["med_list_codg", "med_list_name", "note"])
    out = []
    for n, r in rows:
        note = r["note"]
        total = None
        m = re.search(r"不超过\s*(\d+\s*(?:天|日|周|个月|月|年)|一年|半年|一个月)", note)
        if m:
            total = days_of(m.group(1).replace(" ", ""))
        interval = ""
        m = re.search(r"间隔时间不短于\s*(\d+)\s*天", note)
        if m:
            interval = m.group(1)
        elif re.search(r"每周最多(?:支付)?一次", note):
            interval = "7"
        if total is None:
            raise bad(path, n, "note", note, "no total course (不超过N天) found")
        r.update(max_course_days=str(total), min_interval_days=interval, limit_group=r["med_list_codg"])
        out.append(r)
    return header + ["max_course_days", "min_interval_days", "limit_group"], out


def t_surgery(path, header, rows):
    need(path, header, ["med_list_codg", "med_list_name", "surgery_group"])
    for n, r in rows:
        if not r["surgery_group"]:
            raise bad(path, n, "surgery_group", "", "empty")
    return header, [r for _, r in rows]


def t_insurance(path, header, rows):
    need(path, header, ["med_list_codg", "med_list_name", "limit_insurance"])
    out = []
    for n, r in rows:
        v = INSURANCE.get(r["limit_insurance"])
        if v is None:
            raise bad(path, n, "limit_insurance", r["limit_insurance"], "expected 工伤 or 生育")
        r.update(restricts=v)
        out.append(r)
    return header + ["restricts"], out


def t_care_setting(path, header, rows):
    need(path, header, ["med_list_codg", "med_list_name", "limit_care_setting"])
    out = []
    for n, r in rows:
        s = r["limit_care_setting"]
        if s not in ("住院", "急诊或住院", "住院或急诊"):
            raise bad(path, n, "limit_care_setting", s, "expected 住院")
        emergency = "急诊" in s or "限急诊或住院" in r.get("description", "")
        r.update(allows_emergency="true" if emergency else "false")
        out.append(r)
    return header + ["allows_emergency"], out


def t_hospital_level(path, header, rows):
    need(path, header, ["med_list_codg", "med_list_name", "min_hospital_level"])
    out = []
    for n, r in rows:
        lv = LEVEL.get(r["min_hospital_level"])
        if lv is None:
            raise bad(path, n, "min_hospital_level", r["min_hospital_level"], "expected 一级, 二级 or 三级")
        r.update(min_level=str(lv))
        out.append(r)
    return header + ["min_level"], out


def t_course_days(path, header, rows):
    need(path, header, ["med_list_codg", "med_list_name", "max_course"])
    out = []
    for n, r in rows:
        d = days_of(r["max_course"])
        if d is None or d < 1:
            raise bad(path, n, "max_course", r["max_course"], "expected a duration such as 14天")
        r.update(max_course_days=str(d), course_group=r["med_list_name"])
        out.append(r)
    return header + ["max_course_days", "course_group"], out


def tables(src):
    """(stem, builder) for every sheet, in a fixed order."""
    groups = [g[0] for g in AGE_GROUPS]
    age_csv = os.path.join(src, "age_group.csv")
    if os.path.exists(age_csv):
        h, rows = read_sheet(age_csv)
        need(age_csv, h, ["limit_age_group", "age_below", "age_unit"])
        groups = [r["limit_age_group"] for _, r in rows]
    return [
        ("item_limit_gender", lambda p, h, r: t_gender(p, h, r, drugs=False)),
        ("drug_limit_gender", lambda p, h, r: t_gender(p, h, r, drugs=True)),
        ("item_limit_age", lambda p, h, r: t_age(p, h, r, groups)),
        ("drug_limit_age", lambda p, h, r: t_age(p, h, r, groups)),
        ("item_limit_working_age", t_working_age),
        ("item_duplicate_pairs", t_pairs),
        ("item_limit_frequency", t_frequency),
        ("item_limit_period", t_period),
        ("item_limit_course", t_course),
        ("item_secondary_surgery", t_surgery),
        ("drug_limit_insurance", t_insurance),
        ("drug_limit_care_setting", t_care_setting),
        ("drug_limit_hospital_level", t_hospital_level),
        ("drug_limit_course_days", t_course_days),
    ]


def write_csv(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for r in rows:
            w.writerow([r.get(h, "") for h in header])


def build(src, out):
    """Builds every table found in src into out; returns the accounting lines."""
    os.makedirs(out, exist_ok=True)
    report = []
    if not os.path.exists(os.path.join(src, "age_group.csv")):
        write_csv(os.path.join(out, "age_group.csv"),
                  ["limit_age_group", "age_below", "age_unit", "exempt_on_maternity", "note"],
                  [dict(zip(["limit_age_group", "age_below", "age_unit", "exempt_on_maternity", "note"],
                            map(str, g))) for g in AGE_GROUPS])
        report.append(("age_group", 0, len(AGE_GROUPS), 0, "built-in defaults"))
    for stem, fn in tables(src):
        path = os.path.join(src, stem + ".csv")
        if not os.path.exists(path):
            report.append((stem, 0, 0, 0, "no sheet, skipped"))
            continue
        header, rows = read_sheet(path)
        seen, kept, dropped = set(), [], 0
        for n, r in rows:
            key = tuple(r[h] for h in header)
            if key in seen:
                dropped += 1
                continue
            seen.add(key)
            if not r.get("med_list_codg", r.get("main_codg", "x")):
                raise bad(path, n, "med_list_codg", "", "empty code")
            kept.append((n, r))
        out_header, out_rows = fn(path, header, kept)
        write_csv(os.path.join(out, stem + ".csv"), out_header, out_rows)
        report.append((stem, len(rows), len(out_rows), dropped, "exact duplicate rows dropped" if dropped else ""))
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=DEFAULT_SRC, help="folder of source sheets (default: %(default)s)")
    ap.add_argument("--out", default=HERE, help="output folder (default: %(default)s)")
    ap.add_argument("--check", action="store_true", help="rebuild into a temporary folder and compare with --out")
    a = ap.parse_args()
    try:
        if a.check:
            with tempfile.TemporaryDirectory() as tmp:
                build(a.src, tmp)
                stale = []
                for name in sorted(os.listdir(tmp)):
                    mine = os.path.join(a.out, name)
                    if not os.path.exists(mine) or open(mine, "rb").read() != open(os.path.join(tmp, name), "rb").read():
                        stale.append(name)
                if stale:
                    print(f"stale or missing in {a.out}: {', '.join(stale)}", file=sys.stderr)
                    return 1
                print(f"{a.out} is up to date with {a.src}")
                return 0
        report = build(a.src, a.out)
    except (SheetError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{'table':<28}{'read':>7}{'written':>9}{'dropped':>9}  note")
    for stem, read, written, dropped, note in report:
        print(f"{stem:<28}{read:>7}{written:>9}{dropped:>9}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
