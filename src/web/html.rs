//! HTML helpers: escaping, the page frame with its style sheet, small widgets.

use axum::response::Html;
use rust_decimal::Decimal;

use super::Session;

/// Escaping and money as in the reports: one implementation of each.
pub(crate) use crate::report::html::{esc, yuan as money};

/// Percent-encodes a query-string value.
pub(crate) fn url(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

pub(crate) fn opt_money(d: Option<Decimal>) -> String {
    d.map(money).unwrap_or_else(|| "—".into())
}

pub(crate) fn opt(s: Option<&str>) -> String {
    match s {
        Some(s) if !s.is_empty() => esc(s),
        _ => "—".into(),
    }
}

/// The hidden CSRF field of a form.
pub(crate) fn csrf(s: &Session) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(&s.csrf))
}

pub(crate) fn entity_label(t: &str) -> &str {
    match t {
        "settlement" => "结算",
        "person" => "人员",
        "facility" => "机构",
        other => other,
    }
}

pub(crate) fn category_label(c: &str) -> &str {
    match c {
        "impersonation" => "冒名就医",
        "duplicate_billing" => "重复收费",
        "out_of_area" => "异地就医",
        "split_admission" => "分解住院",
        "phantom_stay" => "虚假住院",
        "overcharge" => "超标准收费",
        "restricted_item" => "限制用药/项目",
        "injury_review" => "外伤审核",
        "data_quality" => "数据质量",
        "benefit_mismatch" => "待遇计算不符",
        "late_payment" => "拨付逾期",
        "statistical_outlier" => "统计异常",
        other => other,
    }
}

const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 "Noto Sans CJK SC","Microsoft YaHei","PingFang SC",sans-serif;color:#1d2733;background:#f3f5f8}
header{background:#17406d;color:#fff;padding:8px 20px;display:flex;align-items:center;gap:24px}
header .brand{font-weight:700;font-size:16px}
header nav a{color:#dbe7f5;margin-right:16px;text-decoration:none}
header nav a:hover{color:#fff;text-decoration:underline}
header .user{margin-left:auto;font-size:13px;color:#cfe0f3}
header form{display:inline;margin-left:10px}
header button{background:none;border:1px solid #9db8d6;color:#fff;border-radius:3px;padding:2px 8px;cursor:pointer}
main{padding:16px 20px;max-width:1500px}
h1{font-size:20px;margin:4px 0 12px}
h2{font-size:16px;margin:20px 0 8px;border-left:4px solid #17406d;padding-left:8px}
table{border-collapse:collapse;background:#fff;width:100%;margin-bottom:8px}
th,td{border:1px solid #d8dee6;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#e8edf3;font-weight:600;white-space:nowrap}
th a{color:#1d2733;text-decoration:none}
td.num,th.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
tr.cited td{background:#fff4c2}
tr.cited td:first-child{border-left:4px solid #e0a800}
a{color:#1657a6}
.card{background:#fff;border:1px solid #d8dee6;border-radius:4px;padding:12px 16px;margin-bottom:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:4px 16px}
.kv span{color:#5b6b7d;margin-right:6px}
.msg{padding:8px 12px;border-radius:4px;margin:8px 0}
.err{background:#fde8e8;border:1px solid #e4a3a3;color:#8a1c1c}
.ok{background:#e6f5ea;border:1px solid #9ccfa9;color:#1f5f2e}
.warn{background:#fff6dc;border:1px solid #e6cf8a;color:#6b5000}
.badge{display:inline-block;padding:0 6px;border-radius:3px;font-size:12px;background:#e2e8f0;white-space:nowrap}
.st-flagged{background:#e2e8f0}.st-sampled{background:#dbeafe}.st-in_review{background:#fde68a}
.st-confirmed{background:#fecaca}.st-appealed{background:#fed7aa}.st-dismissed{background:#d1fae5}
.st-deducted{background:#c7d2fe}.st-recovered{background:#c7d2fe}
.sev-high{color:#b91c1c;font-weight:600}.sev-medium{color:#b45309}.sev-low{color:#475569}
form.filters{display:flex;flex-wrap:wrap;gap:8px 14px;align-items:flex-end}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:#5b6b7d}
input,select,textarea{font:inherit;padding:3px 6px;border:1px solid #b8c3cf;border-radius:3px;background:#fff}
textarea{width:100%;min-height:60px}
button,.button{font:inherit;background:#17406d;color:#fff;border:0;border-radius:3px;padding:5px 14px;cursor:pointer;text-decoration:none;display:inline-block}
button.secondary{background:#5b6b7d}
button.danger{background:#a61b1b}
.chips a{display:inline-block;margin:2px 6px 2px 0;padding:1px 8px;border-radius:10px;background:#e8edf3;text-decoration:none;color:#1d2733;font-size:12px}
.chips a.on{background:#17406d;color:#fff}
.forms{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:12px}
.forms .card h3{margin:0 0 8px;font-size:15px}
.forms label{display:block;margin:6px 0 2px;color:#5b6b7d;font-size:13px}
details summary{cursor:pointer;color:#1657a6}
.doc p{margin:4px 0}.doc b{color:#5b6b7d;font-weight:600;margin-right:4px}
.bar{background:#17406d;height:12px;border-radius:2px}
.muted{color:#6b7a8c;font-size:12px}
.login{max-width:360px;margin:80px auto}
.login label{display:block;margin:10px 0 2px}
.login input{width:100%}
svg text{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif}
"#;

/// A whole page: header with the navigation and the user, then `body`.
pub(crate) fn page(title: &str, session: Option<&Session>, body: &str) -> Html<String> {
    let nav = match session {
        Some(s) => format!(
            "<nav><a href=\"/queue\">复审队列</a><a href=\"/dashboard\">统计概览</a></nav>\
             <div class=\"user\">{}（{}）<form method=\"post\" action=\"/logout\">{}<button type=\"submit\">退出</button></form></div>",
            esc(&s.actor.name),
            esc(&s.actor.roles.iter().map(|r| r.label()).collect::<Vec<_>>().join("、")),
            csrf(s)
        ),
        None => String::new(),
    };
    Html(format!(
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · 大病保险复审工作台</title><style>{CSS}</style></head><body>\
         <header><span class=\"brand\">医保基金复审工作台</span>{nav}</header><main>{body}</main></body></html>",
        esc(title)
    ))
}

pub(crate) fn status_badge(s: crate::cases::Status) -> String {
    format!("<span class=\"badge st-{}\">{}</span>", s.as_str(), esc(s.label()))
}

pub(crate) fn severity(s: &str) -> String {
    let label = match s {
        "high" => "高",
        "medium" => "中",
        "low" => "低",
        other => other,
    };
    format!("<span class=\"sev-{}\">{}</span>", esc(s), esc(label))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_formats_money() {
        assert_eq!(esc("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert_eq!(money(Decimal::new(123456789, 2)), "1,234,567.89");
        assert_eq!(money(Decimal::new(-5, 1)), "-0.50");
        assert_eq!(money(Decimal::new(100, 0)), "100.00");
        assert_eq!(url("a b&c=中"), "a%20b%26c%3D%E4%B8%AD");
    }
}
