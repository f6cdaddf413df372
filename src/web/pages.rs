//! The pages: sign-in, queue, case, decision form, dashboard, export.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::html::{
    category_label, csrf, entity_label, esc, money, opt, opt_money, page, severity, status_badge, url,
};
use super::{
    App, COOKIE, LOGIN_COOKIE, Session, WebError, error_page, random_token, redirect, same_token, timeline,
};
use crate::cases::{
    AppealOutcome, CaseDetail, CaseError, CaseRef, CaseRow, Confirmation, ExportFormat, Filter, Party,
    Permission, RecoverFrom, Status, Unmask,
};

type Pairs = Vec<(String, String)>;

/// Form or query fields.
struct Fields(Pairs);

impl Fields {
    fn get(&self, k: &str) -> &str {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim()).unwrap_or("")
    }
}

fn form_fields(f: Result<Form<Pairs>, FormRejection>) -> Result<Fields, WebError> {
    f.map(|Form(p)| Fields(p)).map_err(|e| WebError::BadRequest(format!("无法读取表单（{}）", e.body_text())))
}

fn query_fields(q: Result<Query<Pairs>, QueryRejection>) -> Result<Fields, WebError> {
    q.map(|Query(p)| Fields(p))
        .map_err(|e| WebError::BadRequest(format!("无法读取查询参数（{}）", e.body_text())))
}

fn check_csrf(s: &Session, f: &Fields) -> Result<(), WebError> {
    if same_token(f.get("csrf"), &s.csrf) { Ok(()) } else { Err(WebError::Csrf) }
}

fn case_id(raw: &str) -> Result<i64, WebError> {
    let t = raw.trim();
    t.strip_prefix(['C', 'c'])
        .unwrap_or(t)
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| WebError::BadRequest(format!("`{t}` 不是案件编号（例如 C12）")))
}

/// Runs a handler body; errors become error pages.
fn respond(r: Result<Response, WebError>, session: Option<&Session>) -> Response {
    r.unwrap_or_else(|e| error_page(&e, session))
}

// ---------------------------------------------------------------- sign-in

fn login_page(msg: Option<&str>, name: &str) -> Response {
    let token = random_token();
    let body = format!(
        "<div class=\"login card\"><h1>登录复审工作台</h1>{}\
         <form method=\"post\" action=\"/login\"><input type=\"hidden\" name=\"csrf\" value=\"{token}\">\
         <label for=\"name\">用户名</label><input id=\"name\" name=\"name\" value=\"{}\" autocomplete=\"username\" required>\
         <label for=\"password\">密码</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <p><button type=\"submit\" id=\"signin\">登录</button></p></form>\
         <p class=\"muted\">账户由管理员在案件库中创建（medaudit users add）。会话闲置超时后需重新登录。</p></div>",
        msg.map(|m| format!("<div class=\"msg err\">{}</div>", esc(m))).unwrap_or_default(),
        esc(name)
    );
    let status = if msg.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
    let mut r = (status, page("登录", None, &body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LOGIN_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600"
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

pub(crate) async fn login_form(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if app.session(&headers).is_some() {
        return redirect("/queue");
    }
    login_page(None, "")
}

pub(crate) async fn login(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let f = match form_fields(form) {
        Ok(f) => f,
        Err(e) => return login_page(Some(&e.message()), ""),
    };
    let name = f.get("name").to_string();
    let token = super::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if token.is_empty() || !same_token(&token, f.get("csrf")) {
        let mut r = login_page(Some(&WebError::Csrf.message()), &name);
        *r.status_mut() = StatusCode::FORBIDDEN;
        return r;
    }
    if name.is_empty() || f.get("password").is_empty() {
        return login_page(Some("请输入用户名和密码"), &name);
    }
    let password = f.0.iter().find(|(k, _)| k == "password").map(|(_, v)| v.clone()).unwrap_or_default();
    let who = name.clone();
    match app.store(move |s| s.login(&who, &password)).await {
        Ok(actor) => {
            let (id, _) = app.new_session(actor);
            let mut r = redirect("/queue");
            let h = r.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict{}",
                app.cookie_attrs()
            )) {
                h.append(header::SET_COOKIE, v);
            }
            h.append(
                header::SET_COOKIE,
                HeaderValue::from_static(
                    "medaudit_login=; Path=/login; HttpOnly; SameSite=Strict; Max-Age=0",
                ),
            );
            r
        }
        Err(e) => login_page(Some(&e.message()), &name),
    }
}

pub(crate) async fn logout(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let s = app.session(&headers);
    let r = (|| -> Result<Response, WebError> {
        let s = s.as_ref().ok_or(WebError::SignIn)?;
        check_csrf(s, &form_fields(form)?)?;
        app.end_session(&headers);
        let mut r = redirect("/login");
        r.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_static("medaudit_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
        );
        Ok(r)
    })();
    respond(r, s.as_ref())
}

pub(crate) async fn not_found(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let s = app.session(&headers);
    let body = "<div class=\"msg err\">未找到该页面。</div><p><a href=\"/queue\">返回复审队列</a></p>";
    (StatusCode::NOT_FOUND, page("未找到", s.as_ref(), body)).into_response()
}

// ---------------------------------------------------------------- queue

/// The queue's filter and order, from the query string (or the export form).
#[derive(Debug, Clone, Default)]
struct QueueQuery {
    status: String,
    rule: String,
    category: String,
    facility: String,
    locality: String,
    entity: String,
    min_amount: String,
    min_risk: String,
    sort: String,
    dir: String,
}

const QUERY_KEYS: [&str; 10] =
    ["status", "rule", "category", "facility", "locality", "entity", "min_amount", "min_risk", "sort", "dir"];

impl QueueQuery {
    fn from(f: &Fields) -> QueueQuery {
        let g = |k: &str| f.get(k).to_string();
        QueueQuery {
            status: g("status"),
            rule: g("rule"),
            category: g("category"),
            facility: g("facility"),
            locality: g("locality"),
            entity: g("entity"),
            min_amount: g("min_amount"),
            min_risk: g("min_risk"),
            sort: g("sort"),
            dir: g("dir"),
        }
    }

    fn value(&self, k: &str) -> &str {
        match k {
            "status" => &self.status,
            "rule" => &self.rule,
            "category" => &self.category,
            "facility" => &self.facility,
            "locality" => &self.locality,
            "entity" => &self.entity,
            "min_amount" => &self.min_amount,
            "min_risk" => &self.min_risk,
            "sort" => &self.sort,
            _ => &self.dir,
        }
    }

    /// `/queue?...` with `k` set to `v`.
    fn link(&self, k: &str, v: &str) -> String {
        let parts: Vec<String> = QUERY_KEYS
            .iter()
            .filter_map(|key| {
                let val = if *key == k { v } else { self.value(key) };
                (!val.is_empty()).then(|| format!("{key}={}", url(val)))
            })
            .collect();
        format!("/queue?{}", parts.join("&"))
    }

    fn hidden(&self) -> String {
        QUERY_KEYS
            .iter()
            .filter(|k| !matches!(**k, "sort" | "dir"))
            .map(|k| format!("<input type=\"hidden\" name=\"{k}\" value=\"{}\">", esc(self.value(k))))
            .collect()
    }

    /// The case-store filter, or what is wrong with the input.
    fn filter(&self) -> Result<Filter, String> {
        let list = |s: &str| -> Vec<String> {
            s.split([',', '，', ' ', ';'])
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect()
        };
        let status = match self.status.as_str() {
            "" | "open" => vec![Status::Flagged, Status::Sampled, Status::InReview],
            "all" => vec![],
            s => vec![s.parse::<Status>().map_err(|e| e.to_string())?],
        };
        let entity_type = match self.entity.as_str() {
            "" => vec![],
            e @ ("settlement" | "person" | "facility") => vec![e.to_string()],
            e => return Err(format!("未知案件类型 `{e}`")),
        };
        let min_amount = match self.min_amount.as_str() {
            "" => None,
            m => Some(
                m.parse::<Decimal>()
                    .ok()
                    .filter(|d| !d.is_sign_negative())
                    .ok_or_else(|| format!("最低风险金额 `{m}` 不是金额（元）"))?,
            ),
        };
        let min_risk = match self.min_risk.as_str() {
            "" => None,
            m => Some(
                m.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| format!("最低风险评分 `{m}` 不是数字"))?,
            ),
        };
        Ok(Filter {
            rule: list(&self.rule).into_iter().map(|r| r.to_ascii_uppercase()).collect(),
            category: list(&self.category),
            facility: list(&self.facility),
            locality: list(&self.locality),
            status,
            entity_type,
            min_amount,
            min_risk,
            ..Default::default()
        })
    }
}

fn sort_rows(rows: &mut [CaseRow], sort: &str, asc: bool) {
    use std::cmp::Ordering;
    let risk = |r: &CaseRow| r.risk_score.unwrap_or(f64::NEG_INFINITY);
    rows.sort_by(|a, b| {
        let o = match sort {
            "risk" => risk(a).partial_cmp(&risk(b)).unwrap_or(Ordering::Equal),
            "date" => a.first_date.cmp(&b.first_date),
            "case" => a.case_id.cmp(&b.case_id),
            "facility" => a.fixmedins_code.cmp(&b.fixmedins_code),
            "locality" => a.insu_admdvs.cmp(&b.insu_admdvs),
            _ => a.amount_at_risk.cmp(&b.amount_at_risk),
        };
        let o = if asc { o } else { o.reverse() };
        o.then(a.case_id.cmp(&b.case_id))
    });
}

pub(crate) async fn queue(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    q: Result<Query<Pairs>, QueryRejection>,
) -> Response {
    let s = app.session(&headers);
    let r: Result<Response, WebError> = async {
        let s = s.clone().ok_or(WebError::SignIn)?;
        s.actor.require(Permission::ViewCases)?;
        let q = QueueQuery::from(&query_fields(q)?);
        Ok(queue_page(&app, &s, q).await)
    }
    .await;
    respond(r, s.as_ref())
}

async fn queue_page(app: &Arc<App>, s: &Session, q: QueueQuery) -> Response {
    let (filter, input_err) = match q.filter() {
        Ok(f) => (Some(f), None),
        Err(e) => (None, Some(e)),
    };
    let actor = s.actor.clone();
    let f2 = filter.clone();
    let data = match f2 {
        Some(f) => app
            .store(move |st| {
                let rows = st.list(&actor, &f)?;
                let counts = st.count_by_status(&actor, &f)?;
                let mut rules: Vec<String> = st
                    .connection()
                    .prepare("SELECT DISTINCT rule_id FROM findings ORDER BY rule_id")?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                rules.dedup();
                Ok(Some((rows, counts, rules)))
            })
            .await
            .map_err(|e| e.message()),
        None => Ok(None),
    };
    let (mut rows, counts, all_rules, err) = match data {
        Ok(Some((r, c, ru))) => (r, c, ru, input_err),
        Ok(None) => (vec![], vec![], vec![], input_err),
        Err(e) => (vec![], vec![], vec![], Some(e)),
    };
    let asc = q.dir == "asc";
    sort_rows(&mut rows, &q.sort, asc);
    let mut b = String::new();
    b.push_str("<h1>复审队列</h1>");
    if let Some(e) = &err {
        b.push_str(&format!("<div class=\"msg err\">输入有误：{}</div>", esc(e)));
    }
    // Filters.
    let status_opts = std::iter::once(("open", "待复审（已标记、已抽样、复审中）".to_string()))
        .chain(std::iter::once(("all", "全部状态".to_string())))
        .chain(Status::ALL.iter().map(|s| (s.as_str(), s.label().to_string())))
        .map(|(v, l)| {
            let sel = q.status == v || (q.status.is_empty() && v == "open");
            format!("<option value=\"{v}\"{}>{}</option>", if sel { " selected" } else { "" }, esc(&l))
        })
        .collect::<String>();
    let entity_opts = [("", "全部"), ("settlement", "结算"), ("person", "人员"), ("facility", "机构")]
        .iter()
        .map(|(v, l)| {
            format!("<option value=\"{v}\"{}>{l}</option>", if q.entity == *v { " selected" } else { "" })
        })
        .collect::<String>();
    let rule_list = all_rules.iter().map(|r| format!("<option value=\"{}\">", esc(r))).collect::<String>();
    b.push_str(&format!(
        "<div class=\"card\"><form class=\"filters\" method=\"get\" action=\"/queue\">\
         <label>状态<select name=\"status\" id=\"f-status\">{status_opts}</select></label>\
         <label>预警规则<input name=\"rule\" id=\"f-rule\" list=\"rules\" size=\"10\" value=\"{}\" placeholder=\"如 DUP001\"><datalist id=\"rules\">{rule_list}</datalist></label>\
         <label>预警类别<input name=\"category\" size=\"14\" value=\"{}\" placeholder=\"如 duplicate_billing\"></label>\
         <label>定点机构编号<input name=\"facility\" size=\"12\" value=\"{}\"></label>\
         <label>参保地区划（前缀）<input name=\"locality\" size=\"8\" value=\"{}\" placeholder=\"如 4111\"></label>\
         <label>案件类型<select name=\"entity\">{entity_opts}</select></label>\
         <label>最低风险金额（元）<input name=\"min_amount\" id=\"f-min-amount\" size=\"9\" value=\"{}\"></label>\
         <label>最低风险评分<input name=\"min_risk\" size=\"6\" value=\"{}\"></label>\
         <input type=\"hidden\" name=\"sort\" value=\"{}\"><input type=\"hidden\" name=\"dir\" value=\"{}\">\
         <button type=\"submit\" id=\"f-apply\">筛选</button> <a href=\"/queue\">清除</a></form></div>",
        esc(&q.rule),
        esc(&q.category),
        esc(&q.facility),
        esc(&q.locality),
        esc(&q.min_amount),
        esc(&q.min_risk),
        esc(&q.sort),
        esc(&q.dir),
    ));
    // Counts by status (the filter without its status condition).
    if filter.is_some() && err.is_none() {
        let total: i64 = counts.iter().map(|c| c.1).sum();
        let mut chips = format!(
            "<a href=\"{}\"{}>全部 {total}</a>",
            esc(&q.link("status", "all")),
            if q.status == "all" { " class=\"on\"" } else { "" }
        );
        for (st, n, _) in &counts {
            chips.push_str(&format!(
                "<a href=\"{}\"{}>{} {n}</a>",
                esc(&q.link("status", st.as_str())),
                if q.status == st.as_str() { " class=\"on\"" } else { "" },
                esc(st.label())
            ));
        }
        b.push_str(&format!("<div class=\"chips\">按状态：{chips}</div>"));
        // Facets of the listed cases.
        let mut by_rule: BTreeMap<&str, usize> = BTreeMap::new();
        let mut by_cat: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &rows {
            r.rules.iter().for_each(|x| *by_rule.entry(x.as_str()).or_default() += 1);
            r.categories.iter().for_each(|x| *by_cat.entry(x.as_str()).or_default() += 1);
        }
        let facet = |m: &BTreeMap<&str, usize>, key: &str, label: &dyn Fn(&str) -> String| -> String {
            m.iter()
                .map(|(k, n)| {
                    format!(
                        "<a href=\"{}\"{}>{} {n}</a>",
                        esc(&q.link(key, k)),
                        if q.value(key) == *k { " class=\"on\"" } else { "" },
                        esc(&label(k))
                    )
                })
                .collect()
        };
        b.push_str(&format!(
            "<div class=\"chips\">按规则：{}</div><div class=\"chips\">按类别：{}</div>",
            facet(&by_rule, "rule", &|k| k.to_string()),
            facet(&by_cat, "category", &|k| category_label(k).to_string())
        ));
        let sum: Decimal = rows.iter().map(|r| r.amount_at_risk).sum();
        let sampled = rows.iter().filter(|r| r.risk_score.is_some()).count();
        b.push_str(&format!(
            "<p id=\"queue-summary\">符合条件 <b>{}</b> 件（其中复审抽样 {sampled} 件），风险金额合计 <b>{}</b> 元{}</p>",
            rows.len(),
            money(sum),
            if rows.len() > app.cfg.max_rows {
                format!("；仅显示排序后的前 {} 件，请缩小筛选范围", app.cfg.max_rows)
            } else {
                String::new()
            }
        ));
    }
    // The table.
    let th = |key: &str, label: &str, num: bool| -> String {
        let cur = q.sort == key || (q.sort.is_empty() && key == "amount");
        let next_dir = if cur && !asc { "asc" } else { "desc" };
        let link = format!(
            "{}&dir={next_dir}",
            q.link("sort", key).replace("&dir=asc", "").replace("&dir=desc", "")
        );
        format!(
            "<th{}><a href=\"{}\">{label}{}</a></th>",
            if num { " class=\"num\"" } else { "" },
            esc(&link),
            if cur { if asc { " ▲" } else { " ▼" } } else { "" }
        )
    };
    b.push_str(&format!(
        "<table id=\"queue\"><thead><tr>{}<th>类型</th><th>状态</th><th>结算ID / 对象</th><th>参保人</th>{}{}<th>预警规则</th><th>类别</th>{}{}{}<th>复审员</th></tr></thead><tbody>",
        th("case", "案件", false),
        th("facility", "定点机构", false),
        th("locality", "参保地", false),
        th("amount", "风险金额", true),
        th("risk", "风险评分", true),
        th("date", "结算日期", false),
    ));
    for r in rows.iter().take(app.cfg.max_rows) {
        b.push_str(&format!(
            "<tr><td><a href=\"/cases/{id}\">C{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            entity_label(&r.entity_type),
            status_badge(r.status),
            esc(r.setl_id.as_deref().unwrap_or(&r.entity_id)),
            opt(r.psn_name.as_deref()),
            opt(r.fixmedins_code.as_deref()),
            r.fixmedins_name.as_deref().map(|n| format!("<br><span class=\"muted\">{}</span>", esc(n))).unwrap_or_default(),
            opt(r.insu_admdvs.as_deref()),
            esc(&r.rules.join("、")),
            esc(&r.categories.iter().map(|c| category_label(c)).collect::<Vec<_>>().join("、")),
            money(r.amount_at_risk),
            r.risk_score.map(|x| format!("{x:.3}")).unwrap_or_else(|| "—".into()),
            opt(r.first_date.as_deref()),
            opt(r.reviewer.as_deref()),
            id = r.case_id
        ));
    }
    if rows.is_empty() {
        b.push_str("<tr><td colspan=\"13\" class=\"muted\">没有符合条件的案件</td></tr>");
    }
    b.push_str("</tbody></table>");
    // Export of the current filter.
    if s.actor.require(Permission::Export).is_ok() && filter.is_some() {
        let unmask = if s.actor.require(Permission::Unmask).is_ok() {
            "<label><input type=\"checkbox\" name=\"unmask\" value=\"1\"> 不脱敏（须填写用途，记入审计日志）</label>\
             <label>用途<input name=\"purpose\" size=\"24\"></label>"
        } else {
            ""
        };
        b.push_str(&format!(
            "<div class=\"card\"><form class=\"filters\" method=\"post\" action=\"/export\">{}{}\
             <label>格式<select name=\"format\"><option value=\"csv\">CSV（Excel 可打开）</option><option value=\"xlsx\">Excel (.xlsx)</option></select></label>\
             {unmask}<button type=\"submit\" class=\"secondary\" id=\"export\">导出当前筛选结果</button>\
             <span class=\"muted\">证件号码和姓名默认脱敏；每次导出记入审计日志。</span></form></div>",
            csrf(s),
            q.hidden()
        ));
    }
    let status = if err.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    (status, page("复审队列", Some(s), &b)).into_response()
}

pub(crate) async fn export(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let s = app.session(&headers);
    let r: Result<Response, WebError> = async {
        let s = s.clone().ok_or(WebError::SignIn)?;
        let f = form_fields(form)?;
        check_csrf(&s, &f)?;
        s.actor.require(Permission::Export)?;
        let filter = QueueQuery::from(&f).filter().map_err(WebError::BadRequest)?;
        let format = match f.get("format") {
            "" | "csv" => ExportFormat::Csv,
            "xlsx" => ExportFormat::Xlsx,
            other => return Err(WebError::BadRequest(format!("未知导出格式 `{other}`"))),
        };
        let unmask = match f.get("unmask") {
            "" => None,
            _ => Some(Unmask { purpose: f.get("purpose").to_string() }),
        };
        let dir = app.cfg.store.join(".web-exports");
        let file = dir.join(format!("{}.{}", random_token(), format.as_str()));
        let actor = s.actor.clone();
        let (bytes, rows) = app
            .store(move |st| {
                let rep = st.export(&actor, &filter, &file, format, unmask.as_ref())?;
                let bytes = std::fs::read(&file);
                let _ = std::fs::remove_file(&file);
                let bytes = bytes.map_err(|e| CaseError::Io(format!("reading {}: {e}", file.display())))?;
                Ok((bytes, rep.rows))
            })
            .await?;
        let name = format!(
            "medaudit-cases-{}-{rows}.{}",
            chrono::Local::now().format("%Y%m%d-%H%M%S"),
            format.as_str()
        );
        let ctype = match format {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ExportFormat::Parquet => "application/octet-stream",
        };
        let mut r = bytes.into_response();
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        Ok(r)
    }
    .await;
    respond(r, s.as_ref())
}

// ---------------------------------------------------------------- case

pub(crate) async fn case(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: Result<Query<Pairs>, QueryRejection>,
) -> Response {
    let s = app.session(&headers);
    let r: Result<Response, WebError> = async {
        let s = s.clone().ok_or(WebError::SignIn)?;
        s.actor.require(Permission::ViewCases)?;
        let id = case_id(&id)?;
        let q = query_fields(q)?;
        let actor = s.actor.clone();
        let d = app.store(move |st| st.show(&actor, &CaseRef::Id(id), None)).await?;
        let flash = match q.get("done") {
            "" => None,
            a => Some(format!("已保存：{}", action_label(a))),
        };
        Ok(page(&format!("案件 C{id}"), Some(&s), &case_body(&app, &s, &d, flash.as_deref())).into_response())
    }
    .await;
    respond(r, s.as_ref())
}

pub(crate) async fn case_unmasked(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let s = app.session(&headers);
    let r: Result<Response, WebError> = async {
        let s = s.clone().ok_or(WebError::SignIn)?;
        let f = form_fields(form)?;
        check_csrf(&s, &f)?;
        s.actor.require(Permission::Unmask)?;
        let id = case_id(&id)?;
        let purpose = f.get("purpose").to_string();
        let actor = s.actor.clone();
        let d = app.store(move |st| st.show(&actor, &CaseRef::Id(id), Some(&purpose))).await?;
        Ok(page(&format!("案件 C{id}"), Some(&s), &case_body(&app, &s, &d, None)).into_response())
    }
    .await;
    respond(r, s.as_ref())
}

fn field_label(table: &crate::schema::TableSpec, name: &str) -> String {
    table.field(name).map(|f| f.label.to_string()).unwrap_or_else(|| name.to_string())
}

fn case_header(d: &CaseDetail) -> String {
    let Some(c) = &d.case else { return String::new() };
    let r = &c.row;
    format!(
        "<h1>案件 C{} {} <span class=\"muted\">{}：{}</span></h1><div class=\"card grid kv\">\
         <div><span>风险金额</span><b>{}</b> 元</div><div><span>确认扣款</span>{}</div>\
         <div><span>定点机构</span>{} {}</div><div><span>参保人</span>{} {}</div>\
         <div><span>参保地</span>{}</div><div><span>复审员</span>{}</div>\
         <div><span>结论</span>{} {}</div><div><span>追回对象</span>{}</div>\
         <div><span>风险评分</span>{}</div><div><span>版本</span><span class=\"muted\">{}</span></div></div>",
        r.case_id,
        status_badge(r.status),
        entity_label(&r.entity_type),
        esc(&r.entity_id),
        money(r.amount_at_risk),
        opt_money(r.deduct_amount),
        opt(r.fixmedins_code.as_deref()),
        opt(r.fixmedins_name.as_deref()),
        opt(r.psn_name.as_deref()),
        opt(r.certno.as_deref()),
        opt(r.insu_admdvs.as_deref()),
        opt(r.reviewer.as_deref()),
        opt(r.decided_by.as_deref()),
        opt(r.decided_on.as_deref()),
        opt(r.recover_party.as_deref()),
        r.risk_score.map(|x| format!("{x:.3}")).unwrap_or_else(|| "—".into()),
        esc(&r.version),
    )
}

fn case_body(app: &App, s: &Session, d: &CaseDetail, flash: Option<&str>) -> String {
    let mut b = String::new();
    if let Some(f) = flash {
        b.push_str(&format!("<div class=\"msg ok\" id=\"flash\">{}</div>", esc(f)));
    }
    if d.unmasked {
        b.push_str("<div class=\"msg warn\">本页显示未脱敏的证件号码和姓名，本次查看已记入审计日志。请勿截屏或外传。</div>");
    }
    b.push_str(&case_header(d));
    let Some(c) = &d.case else { return b };
    let id = c.row.case_id;
    b.push_str(&format!(
        "<p><a class=\"button\" id=\"decide\" href=\"/cases/{id}/decide\">记录复审结论 / 三方确认</a> <a href=\"/queue\">返回队列</a></p>"
    ));
    if s.actor.require(Permission::Unmask).is_ok() && !d.unmasked {
        b.push_str(&format!(
            "<form method=\"post\" action=\"/cases/{id}/unmask\" class=\"filters\">{}<label>查看未脱敏信息的用途<input name=\"purpose\" size=\"30\" required></label><button type=\"submit\" class=\"secondary\">查看未脱敏信息</button></form>",
            csrf(s)
        ));
    }
    // The settlement.
    if let Some(st) = &d.settlement {
        b.push_str("<h2>结算信息</h2><div class=\"card grid kv\" id=\"settlement\">");
        for (k, v) in &st.fields {
            b.push_str(&format!(
                "<div><span>{}</span>{}</div>",
                esc(&field_label(&crate::schema::SETL, k)),
                esc(v)
            ));
        }
        if let Some(n) = &st.fixmedins_name {
            b.push_str(&format!("<div><span>定点机构名称</span>{}</div>", esc(n)));
        }
        b.push_str("</div>");
    }
    // Findings with their rules' documentation.
    b.push_str("<h2>预警发现</h2><table id=\"findings\"><thead><tr><th>规则</th><th>结算ID</th><th>类别</th><th>严重程度</th><th class=\"num\">风险金额</th><th>详情与证据</th><th>状态</th></tr></thead><tbody>");
    for f in &d.findings {
        let doc = app.docs.get(&f.rule_id);
        let title = doc.map(|d| d.title_zh.as_str()).unwrap_or("");
        let docs = match doc {
            Some(d) => format!(
                "<details class=\"doc\"><summary>规则说明</summary><p><b>检查内容</b>{}</p><p><b>为何重要</b>{}</p><p><b>依据</b>{}</p><p><b>示例</b>{}</p><p class=\"muted\">类别 {} · 默认严重程度 {}</p></details>",
                esc(&d.what),
                esc(&d.why),
                esc(&d.basis),
                esc(&d.example),
                esc(category_label(&d.category)),
                severity(&d.severity)
            ),
            None => "<span class=\"muted\">（无该规则的说明）</span>".into(),
        };
        b.push_str(&format!(
            "<tr><td><b>{}</b><br>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}{}{}</td><td>{}</td></tr>",
            esc(&f.rule_id),
            esc(title),
            esc(&f.setl_id),
            esc(category_label(&f.category)),
            severity(&f.severity),
            money(f.amount_at_risk),
            esc(&f.detail),
            f.feedetl_sns
                .as_deref()
                .filter(|x| !x.is_empty())
                .map(|x| format!("<br><span class=\"muted\">依据费用明细：{}</span>", esc(x)))
                .unwrap_or_default(),
            docs,
            if f.status == "active" { "有效".to_string() } else { format!("最近一次审核未再标记（{}）", esc(&f.status_run_id)) }
        ));
    }
    if d.findings.is_empty() {
        b.push_str("<tr><td colspan=\"7\" class=\"muted\">无</td></tr>");
    }
    b.push_str("</tbody></table>");
    // Fee lines, the cited ones highlighted.
    if !d.fee_lines.is_empty() {
        let mut cites: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for f in &d.findings {
            for sn in
                f.feedetl_sns.as_deref().unwrap_or("").split(';').map(str::trim).filter(|x| !x.is_empty())
            {
                cites.entry(sn).or_default().push(f.rule_id.as_str());
            }
        }
        let cols = [
            "feedetl_sn",
            "fee_ocur_time",
            "med_list_codg",
            "med_list_name",
            "med_chrgitm_type",
            "chrgitm_lv",
            "cnt",
            "pric",
            "det_item_fee_sumamt",
            "lmt_used_flag",
            "bilg_dept_codg",
        ];
        let n_cited = d.fee_lines.iter().filter(|l| l.cited).count();
        b.push_str(&format!(
            "<h2>费用明细</h2><p class=\"muted\">共 {} 行，其中 {n_cited} 行为预警依据（黄色标出，排在最前）</p><div style=\"overflow-x:auto\"><table id=\"fees\"><thead><tr>",
            d.fee_lines.len()
        ));
        for c in cols {
            let num = matches!(c, "cnt" | "pric" | "det_item_fee_sumamt");
            b.push_str(&format!(
                "<th{}>{}</th>",
                if num { " class=\"num\"" } else { "" },
                esc(&field_label(&crate::schema::FEE, c))
            ));
        }
        b.push_str("<th>预警依据</th></tr></thead><tbody>");
        let lines = d.fee_lines.iter().filter(|l| l.cited).chain(d.fee_lines.iter().filter(|l| !l.cited));
        for l in lines {
            b.push_str(&format!("<tr{}>", if l.cited { " class=\"cited\"" } else { "" }));
            for c in cols {
                let v = l.fields.iter().find(|(k, _)| k == c).map(|(_, v)| v.as_str()).unwrap_or("");
                let num = matches!(c, "cnt" | "pric" | "det_item_fee_sumamt");
                b.push_str(&format!("<td{}>{}</td>", if num { " class=\"num\"" } else { "" }, esc(v)));
            }
            b.push_str(&format!(
                "<td>{}</td></tr>",
                cites.get(l.feedetl_sn.as_str()).map(|r| esc(&r.join("、"))).unwrap_or_default()
            ));
        }
        b.push_str("</tbody></table></div>");
    }
    // The settlements of a person or facility case.
    if !d.case_settlements.is_empty() {
        b.push_str("<h2>案件涉及的结算</h2><table><thead><tr><th>结算ID</th><th>结算日期</th><th>开始</th><th>结束</th><th>医疗类别</th><th>定点机构</th><th>参保人</th><th class=\"num\">医疗费总额</th><th class=\"num\">基金支付</th></tr></thead><tbody>");
        for st in &d.case_settlements {
            b.push_str(&settlement_tr(st));
        }
        b.push_str("</tbody></table>");
    }
    // Timeline.
    let own: Vec<&crate::cases::SettlementRow> =
        d.settlement.iter().chain(d.case_settlements.iter()).collect();
    if let Some(svg) = timeline::svg(&own, &d.other_settlements) {
        b.push_str(&format!(
            "<h2>同年结算时间轴</h2><div class=\"card\" id=\"timeline\" style=\"overflow-x:auto\">{svg}</div>"
        ));
    }
    if !d.other_settlements.is_empty() {
        b.push_str("<details><summary>同一参保人当年其他结算（");
        b.push_str(&d.other_settlements.len().to_string());
        b.push_str(" 笔）</summary><table><thead><tr><th>结算ID</th><th>结算日期</th><th>开始</th><th>结束</th><th>医疗类别</th><th>定点机构</th><th>参保人</th><th class=\"num\">医疗费总额</th><th class=\"num\">基金支付</th></tr></thead><tbody>");
        for st in &d.other_settlements {
            b.push_str(&settlement_tr(st));
        }
        b.push_str("</tbody></table></details>");
    }
    // Benefit recalculation.
    b.push_str("<h2>待遇重算</h2>");
    if d.benefit.is_empty() {
        b.push_str("<p class=\"muted\">无待遇重算结果（非大病保险或大额补助结算，或审核未重算）。</p>");
    } else {
        b.push_str("<table id=\"benefit\"><thead><tr><th>结算ID</th><th>基金</th><th class=\"num\">实际支付</th><th class=\"num\">按政策重算</th><th class=\"num\">差额</th><th>结论</th></tr></thead><tbody>");
        for x in &d.benefit {
            let fund = match x.fund.as_str() {
                "hifmi" => "居民大病保险",
                "hifob" => "职工大额医疗费用补助",
                "hifp" => "统筹基金",
                other => other,
            };
            b.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                esc(&x.setl_id),
                esc(fund),
                money(x.recorded),
                money(x.expected),
                money(x.diff),
                esc(&x.status)
            ));
        }
        b.push_str("</tbody></table>");
    }
    // Sample and history.
    if !d.samples.is_empty() {
        b.push_str("<h2>复审抽样</h2><table><thead><tr><th>审核批次</th><th>层</th><th class=\"num\">入样概率</th><th class=\"num\">风险评分</th><th>抽样原因</th></tr></thead><tbody>");
        for (run, stratum, p, score, reason) in &d.samples {
            b.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{p:.4}</td><td class=\"num\">{score:.3}</td><td>{}</td></tr>",
                esc(run),
                esc(stratum),
                esc(reason)
            ));
        }
        b.push_str("</tbody></table>");
    }
    b.push_str("<h2>处理记录</h2><table id=\"history\"><thead><tr><th>时间（UTC）</th><th>用户</th><th>操作</th><th>内容</th></tr></thead><tbody>");
    for h in &d.history {
        b.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"muted\">{}</td></tr>",
            esc(h.at.get(..19).unwrap_or(&h.at)),
            esc(&h.user),
            esc(action_label(&h.action)),
            esc(&h.detail)
        ));
    }
    if d.history.is_empty() {
        b.push_str("<tr><td colspan=\"4\" class=\"muted\">尚无处理记录</td></tr>");
    }
    b.push_str("</tbody></table>");
    b
}

fn settlement_tr(st: &crate::cases::SettlementRow) -> String {
    format!(
        "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
        esc(&st.setl_id),
        st.case
            .map(|(id, s)| format!(" <a href=\"/cases/{id}\">C{id}</a> {}", status_badge(s)))
            .unwrap_or_default(),
        esc(&st.setl_date),
        esc(&st.begndate),
        esc(&st.enddate),
        esc(&st.med_type),
        esc(&st.fixmedins_code),
        esc(&st.psn_name),
        opt_money(st.medfee_sumamt),
        opt_money(st.fund_pay)
    )
}

fn action_label(a: &str) -> &str {
    match a {
        "sample" => "纳入复审抽样",
        "start_review" | "start" => "开始复审",
        "confirm" => "确认违规",
        "dismiss" => "排除",
        "confirmation" => "登记三方确认",
        "appeal" => "登记申诉",
        "resolve_appeal" => "申诉处理",
        "deduct" => "扣款",
        "recover" => "追回",
        "reopen" => "重新复审",
        "show_unmasked" => "查看未脱敏信息",
        "merge_run" => "合并审核结果",
        other => other,
    }
}

// ---------------------------------------------------------------- decision form

pub(crate) async fn decide_form(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let s = app.session(&headers);
    let r: Result<Response, WebError> = async {
        let s = s.clone().ok_or(WebError::SignIn)?;
        s.actor.require(Permission::ViewCases)?;
        let id = case_id(&id)?;
        decide_page(&app, &s, id, None, StatusCode::OK).await
    }
    .await;
    respond(r, s.as_ref())
}

async fn decide_page(
    app: &Arc<App>,
    s: &Session,
    id: i64,
    err: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let actor = s.actor.clone();
    let d = app.store(move |st| st.show(&actor, &CaseRef::Id(id), None)).await?;
    let Some(c) = &d.case else { return Err(WebError::Case(CaseError::NotFound(format!("案件 C{id}")))) };
    let mut b = String::new();
    if let Some(e) = &err {
        b.push_str(&format!("<div class=\"msg err\" id=\"error\">{}</div>", esc(e)));
    }
    b.push_str(&case_header(&d));
    b.push_str(&format!(
        "<p><a href=\"/cases/{id}\">查看案件全部证据</a> · <a href=\"/queue\">返回队列</a></p>"
    ));
    // What the decision rests on, in short.
    b.push_str("<h2>预警摘要</h2><ul>");
    for f in d.findings.iter().filter(|f| f.status == "active") {
        b.push_str(&format!(
            "<li><b>{}</b> {}：{}（{} 元）</li>",
            esc(&f.rule_id),
            esc(app.docs.get(&f.rule_id).map(|d| d.title_zh.as_str()).unwrap_or("")),
            esc(&f.detail),
            money(f.amount_at_risk)
        ));
    }
    b.push_str("</ul>");
    let review = s.actor.require(Permission::Review).is_ok();
    let deduct = s.actor.require(Permission::Deduct).is_ok();
    let r = &c.row;
    let hidden = |action: &str| {
        format!(
            "{}<input type=\"hidden\" name=\"action\" value=\"{action}\"><input type=\"hidden\" name=\"version\" value=\"{}\">",
            csrf(s),
            esc(&r.version)
        )
    };
    let form = |title: &str, action: &str, inner: &str, button: &str, class: &str| {
        format!(
            "<div class=\"card\"><h3>{title}</h3><form method=\"post\" action=\"/cases/{id}/decide\" id=\"form-{action}\">{}{inner}<p><button type=\"submit\" class=\"{class}\" id=\"do-{action}\">{button}</button></p></form></div>",
            hidden(action)
        )
    };
    let today = chrono::Local::now().date_naive().to_string();
    let mut forms = Vec::new();
    if review {
        match r.status {
            Status::Flagged => forms.push(form(
                "纳入复审",
                "sample",
                "<label for=\"note\">纳入复审的理由</label><textarea id=\"note\" name=\"note\" required></textarea>",
                "纳入复审",
                "",
            )),
            Status::Sampled => forms.push(form(
                "开始复审",
                "start",
                "<p class=\"muted\">由您承接本案的复审。</p>",
                "开始复审",
                "",
            )),
            Status::InReview => {
                forms.push(form(
                    "确认违规",
                    "confirm",
                    &format!(
                        "<label for=\"amount\">扣款金额（元）</label><input id=\"amount\" name=\"amount\" value=\"{}\" required>\
                         <label for=\"confirm-note\">违规事实说明</label><textarea id=\"confirm-note\" name=\"note\" required></textarea>\
                         <label for=\"recover_from\">追回对象（留空则直接结算向机构扣款、手工报销向参保人追回）</label>\
                         <input id=\"recover_from\" name=\"recover_from\" size=\"36\" placeholder=\"facility:机构编号 或 person:人员编号\">",
                        esc(&r.amount_at_risk.to_string())
                    ),
                    "确认违规",
                    "danger",
                ));
                forms.push(form(
                    "排除",
                    "dismiss",
                    "<label for=\"reason\">排除理由</label><textarea id=\"reason\" name=\"reason\" required></textarea>",
                    "排除（不属违规）",
                    "",
                ));
            }
            Status::Confirmed => {
                let done: Vec<String> = c
                    .confirmations
                    .iter()
                    .filter_map(|(p, on, by, rf)| {
                        on.as_ref().map(|on| {
                            let label = p.parse::<Party>().map(|p| p.label()).unwrap_or("");
                            format!(
                                "<li>{}：{} {} {}</li>",
                                esc(label),
                                esc(on),
                                opt(by.as_deref()),
                                opt(rf.as_deref())
                            )
                        })
                    })
                    .collect();
                let options: String = c
                    .confirmations
                    .iter()
                    .filter(|(_, on, _, _)| on.is_none())
                    .filter_map(|(p, _, _, _)| p.parse::<Party>().ok())
                    .filter(|p| r.recover_from.as_deref() != Some("person") || *p != Party::Facility)
                    .map(|p| format!("<option value=\"{}\">{}</option>", p.as_str(), esc(p.label())))
                    .collect();
                if !options.is_empty() {
                    forms.push(form(
                        "三方确认",
                        "confirmation",
                        &format!(
                            "<ul>{}</ul><label for=\"party\">确认方</label><select id=\"party\" name=\"party\">{options}</select>\
                             <label for=\"date\">确认日期</label><input id=\"date\" name=\"date\" type=\"date\" value=\"{today}\">\
                             <label for=\"reference\">确认文书（函号、会议纪要等）</label><input id=\"reference\" name=\"reference\" size=\"30\">\
                             <p class=\"muted\">保险公司的确认须由作出结论以外的复审员登记。</p>",
                            done.join("")
                        ),
                        "登记确认",
                        "",
                    ));
                }
                if r.recover_from.as_deref() != Some("person") {
                    forms.push(form(
                        "定点医疗机构申诉",
                        "appeal",
                        "<label for=\"appeal-reason\">申诉理由</label><textarea id=\"appeal-reason\" name=\"reason\" required></textarea>",
                        "登记申诉",
                        "secondary",
                    ));
                }
            }
            Status::Appealed => forms.push(form(
                "申诉处理",
                "resolve_appeal",
                "<label for=\"outcome\">处理结果</label><select id=\"outcome\" name=\"outcome\"><option value=\"upheld\">维持原结论</option><option value=\"accepted\">申诉成立（排除）</option><option value=\"adjusted\">部分成立（调整金额）</option></select>\
                 <label for=\"new-amount\">调整后的扣款金额（仅部分成立时填写）</label><input id=\"new-amount\" name=\"amount\">\
                 <label for=\"resolve-note\">处理意见</label><textarea id=\"resolve-note\" name=\"note\" required></textarea>",
                "保存申诉处理",
                "",
            )),
            Status::Dismissed => forms.push(form(
                "重新复审",
                "reopen",
                "<label for=\"reopen-reason\">重新复审的理由（如新证据）</label><textarea id=\"reopen-reason\" name=\"reason\" required></textarea>",
                "重新复审",
                "secondary",
            )),
            _ => {}
        }
    }
    if deduct && r.status == Status::Confirmed {
        if r.recover_from.as_deref() == Some("person") {
            forms.push(form(
                "向参保人追回",
                "recover",
                &format!(
                    "<label for=\"recover-date\">追回日期</label><input id=\"recover-date\" name=\"date\" type=\"date\" value=\"{today}\">\
                     <label for=\"recover-note\">说明</label><input id=\"recover-note\" name=\"note\" size=\"30\">"
                ),
                "登记追回",
                "",
            ));
        } else {
            forms.push(form(
                "扣款",
                "deduct",
                "<label for=\"month\">从哪个月的结算资金中扣除（YYYY-MM，须晚于三方确认完成的月份）</label><input id=\"month\" name=\"month\" placeholder=\"2026-12\" required>",
                "登记扣款",
                "",
            ));
        }
    }
    if forms.is_empty() {
        let why = if !review && !deduct {
            "您的角色不能记录复审结论（需要复审员角色）。".to_string()
        } else {
            format!("案件当前状态为「{}」，没有可执行的操作。", r.status.label())
        };
        b.push_str(&format!("<div class=\"msg warn\">{}</div>", esc(&why)));
    } else {
        b.push_str(&format!("<h2>复审操作</h2><div class=\"forms\">{}</div>", forms.join("")));
    }
    Ok((status, page(&format!("复审结论 C{id}"), Some(s), &b)).into_response())
}

fn parse_date(s: &str, what: &str) -> Result<Option<NaiveDate>, CaseError> {
    match s.trim() {
        "" => Ok(None),
        t => NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| CaseError::Invalid(format!("{what} `{t}` 不是日期（YYYY-MM-DD）"))),
    }
}

fn parse_amount(s: &str) -> Result<Decimal, CaseError> {
    let t = s.trim().replace([',', '，'], "");
    t.parse::<Decimal>()
        .map_err(|_| CaseError::Invalid(format!("`{}` 不是金额（元，最多两位小数）", s.trim())))
}

pub(crate) async fn decide(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<Pairs>, FormRejection>,
) -> Response {
    let s = app.session(&headers);
    let r: Result<Response, WebError> = async {
        let s = s.clone().ok_or(WebError::SignIn)?;
        let f = form_fields(form)?;
        check_csrf(&s, &f)?;
        let id = case_id(&id)?;
        let version = f.get("version").to_string();
        if version.is_empty() {
            return Err(WebError::BadRequest("表单缺少案件版本，请从案件页面重新打开表单".into()));
        }
        let action = f.get("action").to_string();
        let g = |k: &str| f.get(k).to_string();
        let (note, reason, amount, recover, party, date, reference, month, outcome) = (
            g("note"),
            g("reason"),
            g("amount"),
            g("recover_from"),
            g("party"),
            g("date"),
            g("reference"),
            g("month"),
            g("outcome"),
        );
        let actor = s.actor.clone();
        let act = action.clone();
        let done = app
            .store(move |st| {
                st.expect_version(id, &version);
                match act.as_str() {
                    "sample" => st.sample_case(&actor, id, &note),
                    "start" => st.start_review(&actor, id),
                    "confirm" => {
                        let amount = parse_amount(&amount)?;
                        let rf = match recover.trim() {
                            "" => None,
                            t => Some(match t.split_once(':') {
                                Some(("facility", c)) if !c.trim().is_empty() => {
                                    RecoverFrom::Facility(c.trim().to_string())
                                }
                                Some(("person", p)) if !p.trim().is_empty() => {
                                    RecoverFrom::Person(p.trim().to_string())
                                }
                                _ => {
                                    return Err(CaseError::Invalid(format!(
                                        "追回对象 `{t}` 应为 facility:机构编号 或 person:人员编号"
                                    )));
                                }
                            }),
                        };
                        st.confirm(&actor, id, amount, &note, rf, None)
                    }
                    "dismiss" => st.dismiss(&actor, id, &reason),
                    "confirmation" => {
                        let c = Confirmation {
                            party: party.parse()?,
                            date: parse_date(&date, "确认日期")?,
                            reference: reference.clone(),
                        };
                        st.record_confirmation(&actor, id, &c)
                    }
                    "appeal" => st.appeal(&actor, id, &reason, None),
                    "resolve_appeal" => {
                        let o = match outcome.as_str() {
                            "upheld" => AppealOutcome::Upheld,
                            "accepted" => AppealOutcome::Accepted,
                            "adjusted" => AppealOutcome::Adjusted(parse_amount(&amount)?),
                            other => return Err(CaseError::Invalid(format!("未知申诉处理结果 `{other}`"))),
                        };
                        st.resolve_appeal(&actor, id, o, &note)
                    }
                    "reopen" => st.reopen(&actor, id, &reason),
                    "deduct" => st.deduct(&actor, id, &month),
                    "recover" => st.recover(&actor, id, parse_date(&date, "追回日期")?, &note),
                    other => Err(CaseError::Invalid(format!("未知操作 `{other}`"))),
                }
            })
            .await;
        match done {
            Ok(_) => Ok(redirect(&format!("/cases/{id}?done={}", url(&action)))),
            Err(e @ (WebError::Case(_) | WebError::BadRequest(_))) => {
                decide_page(&app, &s, id, Some(e.message()), e.status()).await
            }
            Err(e) => Err(e),
        }
    }
    .await;
    respond(r, s.as_ref())
}

// ---------------------------------------------------------------- dashboard

pub(crate) async fn dashboard(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    q: Result<Query<Pairs>, QueryRejection>,
) -> Response {
    let s = app.session(&headers);
    let r: Result<Response, WebError> = async {
        let s = s.clone().ok_or(WebError::SignIn)?;
        s.actor.require(Permission::ViewCases)?;
        let q = query_fields(q)?;
        let month = match q.get("month") {
            "" => chrono::Local::now().format("%Y-%m").to_string(),
            m => m.to_string(),
        };
        let actor = s.actor.clone();
        let d = app.store(move |st| st.dashboard(&actor, &month)).await?;
        let mut b = format!(
            "<h1>统计概览 <span class=\"muted\">{}</span></h1><form class=\"filters\" method=\"get\" action=\"/dashboard\"><label>月份<input name=\"month\" value=\"{}\" size=\"8\" placeholder=\"YYYY-MM\"></label><button type=\"submit\">查看</button></form>",
            esc(&d.month),
            esc(&d.month)
        );
        b.push_str(&format!(
            "<div class=\"grid\" style=\"margin:12px 0\"><div class=\"card\"><div class=\"muted\">本月确认违规</div><div style=\"font-size:22px\" id=\"confirmed-month\">{} 元</div><div class=\"muted\">{} 件</div></div>\
             <div class=\"card\"><div class=\"muted\">本月扣款</div><div style=\"font-size:22px\">{} 元</div><div class=\"muted\">{} 件</div></div>\
             <div class=\"card\"><div class=\"muted\">本月向参保人追回</div><div style=\"font-size:22px\">{} 元</div><div class=\"muted\">{} 件</div></div></div>",
            money(d.confirmed_amount),
            d.confirmed_cases,
            money(d.deducted_amount),
            d.deducted_cases,
            money(d.recovered_amount),
            d.recovered_cases
        ));
        let max = d.by_status.iter().map(|l| l.cases).max().unwrap_or(0).max(1);
        b.push_str("<h2>案件状态</h2><table id=\"by-status\"><thead><tr><th>状态</th><th class=\"num\">案件数</th><th style=\"width:40%\"></th><th class=\"num\">风险金额</th></tr></thead><tbody>");
        for l in &d.by_status {
            b.push_str(&format!(
                "<tr><td><a href=\"/queue?status={}\">{}</a></td><td class=\"num\">{}</td><td><div class=\"bar\" style=\"width:{}%\"></div></td><td class=\"num\">{}</td></tr>",
                l.status.as_str(),
                status_badge(l.status),
                l.cases,
                l.cases * 100 / max,
                money(l.amount_at_risk)
            ));
        }
        b.push_str("</tbody></table>");
        b.push_str("<h2>确认违规金额最多的规则</h2><table id=\"top-rules\"><thead><tr><th>规则</th><th>名称</th><th class=\"num\">案件数</th><th class=\"num\">确认金额</th></tr></thead><tbody>");
        for l in &d.top_rules {
            b.push_str(&format!(
                "<tr><td><a href=\"/queue?status=all&amp;rule={}\">{}</a></td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                url(&l.rule_id),
                esc(&l.rule_id),
                esc(app.docs.get(&l.rule_id).map(|d| d.title_zh.as_str()).unwrap_or("")),
                l.cases,
                money(l.confirmed)
            ));
        }
        if d.top_rules.is_empty() {
            b.push_str("<tr><td colspan=\"4\" class=\"muted\">尚无确认违规的案件</td></tr>");
        }
        b.push_str("</tbody></table><p class=\"muted\">一个案件可能有多条规则预警，各规则金额会重复计算，不可相加。</p>");
        b.push_str("<h2>复审员工作量（本月）</h2><table id=\"reviewers\"><thead><tr><th>复审员</th><th class=\"num\">作出结论</th><th class=\"num\">确认违规</th><th class=\"num\">排除</th><th class=\"num\">确认金额</th><th class=\"num\">复审中</th></tr></thead><tbody>");
        for l in &d.reviewers {
            b.push_str(&format!(
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&l.reviewer),
                l.decided,
                l.confirmed,
                l.dismissed,
                money(l.confirmed_amount),
                l.in_review
            ));
        }
        if d.reviewers.is_empty() {
            b.push_str("<tr><td colspan=\"6\" class=\"muted\">尚无复审记录</td></tr>");
        }
        b.push_str("</tbody></table>");
        Ok(page("统计概览", Some(&s), &b).into_response())
    }
    .await;
    respond(r, s.as_ref())
}
