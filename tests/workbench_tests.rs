//! The review workbench (`medaudit serve`): HTTP-level tests on the router (sign-in, roles,
//! CSRF, masking, conflicts, bad input) and end-to-end tests in headless Chromium driven
//! through chromedriver's WebDriver API.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use medaudit::cases::{Role, Status, Store};
use medaudit::web::{App, Config};
use tower::ServiceExt;

use crate::cases_tests::sample_run;
use crate::common::tempdir;

const PW: &str = "correct horse battery";

/// A store with the bundled sample merged and four users: admin, reviewers li and wang,
/// investigator zhao. (On a thread of its own: the run builds its own Tokio runtime, which
/// cannot start inside a test's.)
fn fixture(dir: &Path) {
    let dir = dir.to_path_buf();
    std::thread::spawn(move || fixture_on(&dir)).join().expect("the fixture store");
}

fn fixture_on(dir: &Path) {
    let mut store = Store::open(dir).unwrap();
    let admin = store.init_admin("admin", PW).unwrap();
    store.add_user(&admin, "li", &[Role::Reviewer], PW).unwrap();
    store.add_user(&admin, "wang", &[Role::Reviewer], PW).unwrap();
    store.add_user(&admin, "zhao", &[Role::Investigator], PW).unwrap();
    store.merge_run(&admin, sample_run()).unwrap();
}

fn one(store: &Store, sql: &str) -> i64 {
    store.connection().query_row(sql, [], |r| r.get(0)).unwrap()
}

/// A sampled settlement case, preferably one whose findings cite fee lines.
fn sampled_case(store: &Store) -> i64 {
    one(
        store,
        "SELECT c.case_id FROM cases c WHERE c.status = 'sampled' AND c.entity_type = 'settlement'
         ORDER BY EXISTS (SELECT 1 FROM findings f WHERE f.case_id = c.case_id AND COALESCE(f.feedetl_sns, '') <> '') DESC,
                  EXISTS (SELECT 1 FROM fee_lines l WHERE l.setl_id = c.entity_id) DESC,
                  c.amount_cents DESC, c.case_id LIMIT 1",
    )
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Resp {
    fn location(&self) -> &str {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, v)| *k == name && !v.is_empty())
            .map(|(_, v)| v.to_string())
    }
    /// The first value of `name="<field>" value="..."` in the page.
    fn field(&self, field: &str) -> String {
        let pat = format!("name=\"{field}\" value=\"");
        let i = self.body.find(&pat).unwrap_or_else(|| panic!("no field {field} in {}", self.body));
        let rest = &self.body[i + pat.len()..];
        rest[..rest.find('"').unwrap()].replace("&amp;", "&")
    }
}

/// Percent-encodes a form value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect::<Vec<_>>().join("&")
}

struct Client {
    router: axum::Router,
    cookie: Option<String>,
}

impl Client {
    fn new(app: Arc<App>) -> Client {
        Client { router: medaudit::web::router(app), cookie: None }
    }

    async fn send(&self, req: Request<Body>) -> Resp {
        let r = self.router.clone().oneshot(req).await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = axum::body::to_bytes(r.into_body(), usize::MAX).await.unwrap();
        Resp { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
    }

    async fn get(&self, path: &str) -> Resp {
        let mut b = Request::get(path);
        if let Some(c) = &self.cookie {
            b = b.header(header::COOKIE, format!("medaudit_session={c}"));
        }
        self.send(b.body(Body::empty()).unwrap()).await
    }

    async fn post(&self, path: &str, body: String) -> Resp {
        let mut b = Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(c) = &self.cookie {
            b = b.header(header::COOKIE, format!("medaudit_session={c}"));
        }
        self.send(b.body(Body::from(body)).unwrap()).await
    }

    /// Signs in through the form; returns the response of the POST.
    async fn sign_in(&mut self, name: &str, pw: &str) -> Resp {
        let page = self.get("/login").await;
        assert_eq!(page.status, StatusCode::OK);
        let token = page.cookie("medaudit_login").expect("login cookie");
        let csrf = page.field("csrf");
        let req = Request::post("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, format!("medaudit_login={token}"))
            .body(Body::from(form(&[("csrf", &csrf), ("name", name), ("password", pw)])))
            .unwrap();
        let r = self.send(req).await;
        if let Some(c) = r.cookie("medaudit_session") {
            self.cookie = Some(c);
        }
        r
    }

    /// The session's CSRF token (from any signed-in page).
    async fn csrf(&self) -> String {
        self.get("/dashboard").await.field("csrf")
    }
}

fn app(dir: &Path) -> Arc<App> {
    App::new(Config::new(dir.to_path_buf())).unwrap()
}

#[tokio::test]
async fn sign_in_sessions_and_sign_out() {
    let tmp = tempdir();
    fixture(tmp.path());
    let app = app(tmp.path());
    let mut c = Client::new(app.clone());
    // Nothing without a session.
    for p in ["/queue", "/dashboard", "/cases/1", "/cases/1/decide"] {
        let r = c.get(p).await;
        assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/login"), "{p}");
    }
    let r = c.post("/export", form(&[("format", "csv")])).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/login"));
    // A wrong password: refused, logged, no session.
    let r = c.sign_in("li", "wrong password!").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("用户名或密码错误"), "{}", r.body);
    assert!(c.cookie.is_none());
    let store = Store::open(tmp.path()).unwrap();
    assert_eq!(
        one(&store, "SELECT count(*) FROM audit_log WHERE action = 'login_failed' AND user = 'li'"),
        1
    );
    // The right one.
    let r = c.sign_in("li", PW).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/queue"));
    let set: Vec<&str> = r.headers.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect();
    let session = set.iter().find(|v| v.starts_with("medaudit_session=")).unwrap();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"), "{session}");
    let q = c.get("/queue").await;
    assert_eq!(q.status, StatusCode::OK);
    assert!(q.body.contains("复审队列") && q.body.contains("href=\"/cases/"), "{}", q.body);
    let csp = q.headers.get(header::CONTENT_SECURITY_POLICY).unwrap().to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    // Signing out ends the session on the server.
    let csrf = q.field("csrf");
    let r = c.post("/logout", form(&[("csrf", &csrf)])).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/login"));
    let r = c.get("/queue").await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/login"));
    // An unknown session id is no session.
    c.cookie = Some("0".repeat(64));
    assert_eq!(c.get("/dashboard").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn sessions_expire() {
    let tmp = tempdir();
    fixture(tmp.path());
    let mut cfg = Config::new(tmp.path().to_path_buf());
    cfg.session_idle = std::time::Duration::ZERO;
    let mut c = Client::new(App::new(cfg).unwrap());
    let r = c.sign_in("li", PW).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(c.cookie.is_some());
    let r = c.get("/queue").await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/login"), "an idle session must end");
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused() {
    let tmp = tempdir();
    fixture(tmp.path());
    let app = app(tmp.path());
    let store = Store::open(tmp.path()).unwrap();
    let id = sampled_case(&store);
    let mut c = Client::new(app.clone());
    c.sign_in("li", PW).await;
    let page = c.get(&format!("/cases/{id}/decide")).await;
    let version = page.field("version");
    for csrf in ["", "forged", &"a".repeat(64)] {
        let r = c
            .post(
                &format!("/cases/{id}/decide"),
                form(&[("csrf", csrf), ("action", "start"), ("version", &version)]),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{csrf}");
        assert!(r.body.contains("CSRF"), "{}", r.body);
    }
    let status: String = store
        .connection()
        .query_row("SELECT status FROM cases WHERE case_id = ?1", [id], |r| r.get(0))
        .unwrap();
    assert_eq!(status, "sampled", "a refused form changes nothing");
    // Export and sign-out need the token too.
    assert_eq!(c.post("/export", form(&[("format", "csv")])).await.status, StatusCode::FORBIDDEN);
    assert_eq!(c.post("/logout", String::new()).await.status, StatusCode::FORBIDDEN);
    assert_eq!(c.get("/queue").await.status, StatusCode::OK, "still signed in");
    // The sign-in form's own token: a POST without the matching cookie is refused.
    let r = c
        .send(
            Request::post("/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form(&[("csrf", "x"), ("name", "li"), ("password", PW)])))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.cookie("medaudit_session").is_none());
    // With the right token the same action goes through.
    let csrf = c.csrf().await;
    let r = c
        .post(
            &format!("/cases/{id}/decide"),
            form(&[("csrf", &csrf), ("action", "start"), ("version", &version)]),
        )
        .await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, format!("/cases/{id}?done=start").as_str()));
}

#[tokio::test]
async fn roles_are_checked_on_every_action() {
    let tmp = tempdir();
    fixture(tmp.path());
    let app = app(tmp.path());
    let store = Store::open(tmp.path()).unwrap();
    let id = sampled_case(&store);
    // The investigator sees the case but cannot decide.
    let mut inv = Client::new(app.clone());
    inv.sign_in("zhao", PW).await;
    let page = inv.get(&format!("/cases/{id}/decide")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("需要复审员角色") && !page.body.contains("id=\"do-start\""), "{}", page.body);
    let version: String = store
        .connection()
        .query_row("SELECT updated_at FROM cases WHERE case_id = ?1", [id], |r| r.get(0))
        .unwrap();
    let csrf = page.field("csrf");
    let r = inv
        .post(
            &format!("/cases/{id}/decide"),
            form(&[("csrf", &csrf), ("action", "start"), ("version", &version)]),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("无权操作"), "{}", r.body);
    // The reviewer cannot unmask, nor export unmasked.
    let mut li = Client::new(app.clone());
    li.sign_in("li", PW).await;
    let csrf = li.csrf().await;
    let r = li.post(&format!("/cases/{id}/unmask"), form(&[("csrf", &csrf), ("purpose", "核查")])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!li.get(&format!("/cases/{id}")).await.body.contains("查看未脱敏信息的用途"));
    let r = li
        .post("/export", form(&[("csrf", &csrf), ("status", "all"), ("unmask", "1"), ("purpose", "核查")]))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("无权操作"), "{}", r.body);
    // The administrator reviews nothing either (reviewer role only).
    let mut admin = Client::new(app.clone());
    admin.sign_in("admin", PW).await;
    let csrf = admin.csrf().await;
    let r = admin
        .post(
            &format!("/cases/{id}/decide"),
            form(&[("csrf", &csrf), ("action", "start"), ("version", &version)]),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let status: String = store
        .connection()
        .query_row("SELECT status FROM cases WHERE case_id = ?1", [id], |r| r.get(0))
        .unwrap();
    assert_eq!(status, "sampled");
}

#[tokio::test]
async fn personal_data_is_masked_unless_an_investigator_states_a_purpose() {
    let tmp = tempdir();
    fixture(tmp.path());
    let app = app(tmp.path());
    let store = Store::open(tmp.path()).unwrap();
    let id = sampled_case(&store);
    let (certno, name): (String, String) = store
        .connection()
        .query_row(
            "SELECT s.certno, s.psn_name FROM cases c JOIN settlements s ON s.setl_id = c.entity_id WHERE c.case_id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(certno.len() >= 15 && name.chars().count() >= 2, "{certno} {name}");
    let mut li = Client::new(app.clone());
    li.sign_in("li", PW).await;
    let every: Vec<(String, String)> = {
        let mut st = store.connection().prepare("SELECT certno, psn_name FROM settlements").unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap()
    };
    for path in ["/queue?status=all".to_string(), format!("/cases/{id}"), format!("/cases/{id}/decide")] {
        let r = li.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        for (c, n) in &every {
            assert!(!r.body.contains(c.as_str()), "{path} shows the ID number {c}");
            assert!(n.chars().count() < 2 || !r.body.contains(n.as_str()), "{path} shows the name {n}");
        }
    }
    let page = li.get(&format!("/cases/{id}")).await.body;
    assert!(page.contains(&medaudit::mask::certno(&certno)), "the masked ID number is shown");
    // The export of the current filter: masked, logged.
    let csrf = li.csrf().await;
    let r = li.post("/export", form(&[("csrf", &csrf), ("status", "all"), ("format", "csv")])).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.get(header::CONTENT_DISPOSITION).unwrap().to_str().unwrap().contains("attachment"));
    assert!(r.body.starts_with('\u{feff}'), "CSV for Excel starts with a BOM");
    assert!(r.body.lines().count() > 2 && !r.body.contains(&certno));
    assert!(r.body.contains(&medaudit::mask::certno(&certno)));
    let (n, detail): (i64, String) = store
        .connection()
        .query_row(
            "SELECT count(*), max(detail) FROM audit_log WHERE action = 'export' AND user = 'li'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(n, 1);
    assert!(detail.contains("\"masked\":true"), "{detail}");
    assert!(
        !std::fs::read_dir(tmp.path().join(".web-exports")).unwrap().any(|_| true),
        "no export file is left on the server"
    );
    // An investigator: masked by default, in full with a purpose (logged).
    let mut zhao = Client::new(app.clone());
    zhao.sign_in("zhao", PW).await;
    assert!(!zhao.get(&format!("/cases/{id}")).await.body.contains(&certno));
    let csrf = zhao.csrf().await;
    let r = zhao.post(&format!("/cases/{id}/unmask"), form(&[("csrf", &csrf), ("purpose", "")])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "a purpose is needed");
    let r = zhao
        .post(&format!("/cases/{id}/unmask"), form(&[("csrf", &csrf), ("purpose", "公安协查函 2026-17")]))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains(&certno) && r.body.contains("已记入审计日志"));
    assert_eq!(
        one(&store, "SELECT count(*) FROM audit_log WHERE action = 'show_unmasked' AND user = 'zhao'"),
        1
    );
    let r = zhao
        .post(
            "/export",
            form(&[
                ("csrf", &csrf),
                ("status", "all"),
                ("format", "csv"),
                ("unmask", "1"),
                ("purpose", "公安协查"),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains(&certno));
}

#[tokio::test]
async fn two_reviewers_deciding_the_same_case_get_a_conflict() {
    let tmp = tempdir();
    fixture(tmp.path());
    let app = app(tmp.path());
    let store = Store::open(tmp.path()).unwrap();
    let id = sampled_case(&store);
    let mut li = Client::new(app.clone());
    li.sign_in("li", PW).await;
    let mut wang = Client::new(app.clone());
    wang.sign_in("wang", PW).await;
    // Both open the form.
    let li_page = li.get(&format!("/cases/{id}/decide")).await;
    let wang_page = wang.get(&format!("/cases/{id}/decide")).await;
    let (lv, wv) = (li_page.field("version"), wang_page.field("version"));
    assert_eq!(lv, wv);
    // Wang takes the case first.
    let r = wang
        .post(
            &format!("/cases/{id}/decide"),
            form(&[("csrf", &wang_page.field("csrf")), ("action", "start"), ("version", &wv)]),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // Li's form is stale: refused with a clear message, the case stays Wang's.
    let r = li
        .post(
            &format!("/cases/{id}/decide"),
            form(&[("csrf", &li_page.field("csrf")), ("action", "start"), ("version", &lv)]),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("已有变更") && r.body.contains("wang"), "{}", r.body);
    // Both open the decision form of the case in review, Li confirms, Wang's dismissal is refused.
    let li_page = li.get(&format!("/cases/{id}/decide")).await;
    let wang_page = wang.get(&format!("/cases/{id}/decide")).await;
    assert!(li_page.body.contains("id=\"do-confirm\"") && li_page.body.contains("id=\"do-dismiss\""));
    let r = li
        .post(
            &format!("/cases/{id}/decide"),
            form(&[
                ("csrf", &li_page.field("csrf")),
                ("action", "confirm"),
                ("version", &li_page.field("version")),
                ("amount", "123.45"),
                ("note", "重复收费，已核对病历"),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = wang
        .post(
            &format!("/cases/{id}/decide"),
            form(&[
                ("csrf", &wang_page.field("csrf")),
                ("action", "dismiss"),
                ("version", &wang_page.field("version")),
                ("reason", "病历齐全"),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let (status, cents, by): (String, i64, String) = store
        .connection()
        .query_row("SELECT status, deduct_cents, decided_by FROM cases WHERE case_id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!((status.as_str(), cents, by.as_str()), ("confirmed", 12345, "li"));
    assert_eq!(
        one(&store, &format!("SELECT count(*) FROM audit_log WHERE case_id = {id} AND action = 'dismiss'")),
        0
    );
}

#[tokio::test]
async fn bad_input_gets_a_message_and_the_server_keeps_serving() {
    let tmp = tempdir();
    fixture(tmp.path());
    let app = app(tmp.path());
    let store = Store::open(tmp.path()).unwrap();
    let id = sampled_case(&store);
    let mut li = Client::new(app.clone());
    li.sign_in("li", PW).await;
    let r = li.get("/cases/abc").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("不是案件编号"), "{}", r.body);
    let r = li.get("/cases/99999999").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("未找到"), "{}", r.body);
    let r = li.get("/no/such/page").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = li.get("/queue?min_amount=lots&status=open").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("不是金额"), "{}", r.body);
    let r = li.get("/queue?status=finished").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("未知状态"), "{}", r.body);
    let r = li.get("/dashboard?month=2026-13").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // A malformed form body.
    let r = li.post(&format!("/cases/{id}/decide"), "%%%=%%%&&==".to_string()).await;
    assert!(r.status == StatusCode::BAD_REQUEST || r.status == StatusCode::FORBIDDEN, "{}", r.status);
    // Decisions with bad values: refused with the reason, nothing changed.
    let csrf = li.csrf().await;
    let v = li.get(&format!("/cases/{id}/decide")).await.field("version");
    let r = li.post(&format!("/cases/{id}/decide"), form(&[("csrf", &csrf), ("action", "start")])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "no version");
    let r = li
        .post(
            &format!("/cases/{id}/decide"),
            form(&[("csrf", &csrf), ("action", "confirm"), ("version", &v)]),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "not a number");
    assert!(r.body.contains("不是金额"), "{}", r.body);
    let r = li
        .post(
            &format!("/cases/{id}/decide"),
            form(&[("csrf", &csrf), ("action", "confirm"), ("version", &v), ("amount", "10"), ("note", "x")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "confirming before starting the review is illegal");
    assert!(r.body.contains("请先开始复审"), "{}", r.body);
    let r = li
        .post(
            &format!("/cases/{id}/decide"),
            form(&[("csrf", &csrf), ("action", "explode"), ("version", &v)]),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    li.post(&format!("/cases/{id}/decide"), form(&[("csrf", &csrf), ("action", "start"), ("version", &v)]))
        .await;
    let v = li.get(&format!("/cases/{id}/decide")).await.field("version");
    for (amount, why) in [("-5", "须大于 0"), ("1.234", "两位小数"), ("1e400", "不是金额")] {
        let r = li
            .post(
                &format!("/cases/{id}/decide"),
                form(&[
                    ("csrf", &csrf),
                    ("action", "confirm"),
                    ("version", &v),
                    ("amount", amount),
                    ("note", "x"),
                ]),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{amount}");
        assert!(r.body.contains(why), "{amount}: {}", r.body);
    }
    let r = li
        .post(
            &format!("/cases/{id}/decide"),
            form(&[
                ("csrf", &csrf),
                ("action", "confirm"),
                ("version", &v),
                ("amount", "10"),
                ("recover_from", "bank:1"),
                ("note", "x"),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("追回对象"), "{}", r.body);
    let status: String = store
        .connection()
        .query_row("SELECT status FROM cases WHERE case_id = ?1", [id], |r| r.get(0))
        .unwrap();
    assert_eq!(status, "in_review");
    // Still serving, the store still consistent.
    assert_eq!(li.get("/queue").await.status, StatusCode::OK);
    let admin = store.login("admin", PW).unwrap();
    assert!(store.verify_audit(&admin).unwrap().ok());
}

#[tokio::test]
async fn the_queue_filters_sorts_and_counts_and_the_dashboard_sums_decisions() {
    let tmp = tempdir();
    fixture(tmp.path());
    let app = app(tmp.path());
    let store = Store::open(tmp.path()).unwrap();
    let mut li = Client::new(app.clone());
    li.sign_in("li", PW).await;
    let all = li.get("/queue?status=all").await;
    let cases = one(&store, "SELECT count(*) FROM cases");
    assert!(all.body.contains(&format!("符合条件 <b>{cases}</b> 件")), "{}", all.body);
    // By rule: exactly the cases with a finding of that rule.
    let rule: String = store
        .connection()
        .query_row(
            "SELECT rule_id FROM findings GROUP BY rule_id ORDER BY count(DISTINCT case_id) DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let n = one(&store, &format!("SELECT count(DISTINCT case_id) FROM findings WHERE rule_id = '{rule}'"));
    let r = li.get(&format!("/queue?status=all&rule={rule}")).await;
    assert!(r.body.contains(&format!("符合条件 <b>{n}</b> 件")), "{}", r.body);
    // Sorted by amount, largest first (the default), or smallest first.
    let amounts = |body: &str| -> Vec<String> {
        body.split("<tr>")
            .filter(|row| row.contains("href=\"/cases/"))
            .map(|row| {
                row.split("<td class=\"num\">").nth(1).unwrap().split('<').next().unwrap().replace(',', "")
            })
            .collect()
    };
    let asc = amounts(&li.get("/queue?status=all&sort=amount&dir=asc").await.body);
    let desc = amounts(&li.get("/queue?status=all").await.body);
    let dec =
        |v: &[String]| v.iter().map(|s| s.parse::<rust_decimal::Decimal>().unwrap()).collect::<Vec<_>>();
    let (a, d) = (dec(&asc), dec(&desc));
    assert!(a.windows(2).all(|w| w[0] <= w[1]) && d.windows(2).all(|w| w[0] >= w[1]), "{a:?} {d:?}");
    assert_eq!(a.len() as i64, cases.min(500));
    // Status counts beside the filter.
    let sampled = one(&store, "SELECT count(*) FROM cases WHERE status = 'sampled'");
    assert!(all.body.contains(&format!("已抽样 {sampled}</a>")), "{}", all.body);
    // A decision shows on the dashboard.
    let id = sampled_case(&store);
    let csrf = li.csrf().await;
    let v = li.get(&format!("/cases/{id}/decide")).await.field("version");
    li.post(&format!("/cases/{id}/decide"), form(&[("csrf", &csrf), ("action", "start"), ("version", &v)]))
        .await;
    let v = li.get(&format!("/cases/{id}/decide")).await.field("version");
    let r = li
        .post(
            &format!("/cases/{id}/decide"),
            form(&[
                ("csrf", &csrf),
                ("action", "confirm"),
                ("version", &v),
                ("amount", "1,234.50"),
                ("note", "超标准收费"),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let d = li.get("/dashboard").await;
    assert_eq!(d.status, StatusCode::OK);
    assert!(d.body.contains("id=\"confirmed-month\">1,234.50 元"), "{}", d.body);
    assert!(d.body.contains("<tr><td>li</td><td class=\"num\">1</td><td class=\"num\">1</td>"), "{}", d.body);
    let st: String = store
        .connection()
        .query_row("SELECT status FROM cases WHERE case_id = ?1", [id], |r| r.get(0))
        .unwrap();
    assert_eq!(st.parse::<Status>().unwrap(), Status::Confirmed);
}

// ---------------------------------------------------------------- the browser

mod webdriver {
    //! A minimal WebDriver client over std TCP (chromedriver speaks HTTP/1.1 + JSON).

    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    use serde_json::{Value, json};

    fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value), String> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(120))).map_err(|e| e.to_string())?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        // chromedriver keeps the connection open despite `Connection: close`: read the
        // header, then exactly the body its length announces (or the chunks up to the last).
        let mut raw = Vec::new();
        let mut buf = [0u8; 16384];
        let (head, mut payload) = loop {
            let n = s.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed before the header".into());
            }
            raw.extend_from_slice(&buf[..n]);
            if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break (
                    String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase(),
                    raw[split + 4..].to_vec(),
                );
            }
        };
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:").and_then(|v| v.trim().parse::<usize>().ok()));
        let chunked =
            head.contains("transfer-encoding: chunked") || head.contains("transfer-encoding:chunked");
        loop {
            let done = match length {
                Some(n) => payload.len() >= n,
                None if chunked => payload.ends_with(b"0\r\n\r\n"),
                None => false,
            };
            if done {
                break;
            }
            let n = s.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            payload.extend_from_slice(&buf[..n]);
        }
        if let Some(n) = length {
            payload.truncate(n);
        }
        if chunked {
            let mut out = Vec::new();
            let mut rest = &payload[..];
            loop {
                let eol = rest.windows(2).position(|w| w == b"\r\n").ok_or("bad chunk")?;
                let n = usize::from_str_radix(String::from_utf8_lossy(&rest[..eol]).trim(), 16)
                    .map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&rest[eol + 2..eol + 2 + n]);
                rest = &rest[eol + 2 + n + 2..];
            }
            payload = out;
        }
        let code: u16 = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or("no status")?;
        let v = if payload.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&payload).map_err(|e| e.to_string())?
        };
        Ok((code, v))
    }

    pub struct Driver {
        pub port: u16,
        pub session: String,
    }

    impl Driver {
        /// Waits for chromedriver and opens a browser session.
        pub fn start(port: u16, chromium: &str, profile: &str) -> Driver {
            eprintln!("webdriver: waiting for chromedriver on port {port}");
            for _ in 0..200 {
                if let Ok((200, v)) = http(port, "GET", "/status", None)
                    && v["value"]["ready"] == json!(true)
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let caps = json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                             "--no-first-run", "--disable-sync", "--disable-component-update",
                             "--disable-dev-shm-usage", "--lang=zh-CN", "--window-size=1360,900",
                             "--hide-scrollbars", format!("--user-data-dir={profile}")]
                }
            }}});
            eprintln!("webdriver: new session");
            let (code, v) = http(port, "POST", "/session", Some(&caps)).expect("chromedriver answers");
            assert_eq!(code, 200, "creating a browser session: {v}");
            let session = v["value"]["sessionId"].as_str().expect("session id").to_string();
            let d = Driver { port, session };
            // Finding an element waits up to 20 s for it: a click that submits a form returns
            // before the next page is there.
            d.cmd("POST", "/timeouts", Some(json!({"implicit": 20000, "pageLoad": 60000})));
            d
        }

        pub fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
            let p = format!("/session/{}{path}", self.session);
            eprintln!("webdriver: {method} {path}");
            let (code, v) = http(self.port, method, &p, body.as_ref()).unwrap_or_else(|e| panic!("{p}: {e}"));
            assert_eq!(code, 200, "{method} {p}: {v}");
            v["value"].clone()
        }

        pub fn goto(&self, url: &str) {
            self.cmd("POST", "/url", Some(json!({ "url": url })));
        }

        pub fn url(&self) -> String {
            self.cmd("GET", "/url", None).as_str().unwrap_or("").to_string()
        }

        pub fn find(&self, css: &str) -> String {
            let v = self.cmd("POST", "/element", Some(json!({"using": "css selector", "value": css})));
            v["element-6066-11e4-a52e-4f735466cecf"]
                .as_str()
                .unwrap_or_else(|| panic!("no element {css}: {v}"))
                .to_string()
        }

        pub fn click(&self, css: &str) {
            let e = self.find(css);
            self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})));
        }

        pub fn fill(&self, css: &str, text: &str) {
            let e = self.find(css);
            self.cmd("POST", &format!("/element/{e}/clear"), Some(json!({})));
            self.cmd("POST", &format!("/element/{e}/value"), Some(json!({ "text": text })));
        }

        pub fn text(&self, css: &str) -> String {
            let e = self.find(css);
            self.cmd("GET", &format!("/element/{e}/text"), None).as_str().unwrap_or("").to_string()
        }

        pub fn resize(&self, w: u32, h: u32) {
            self.cmd("POST", "/window/rect", Some(json!({"width": w, "height": h})));
        }

        /// A PNG of the viewport.
        pub fn screenshot(&self) -> Vec<u8> {
            let b64 = self.cmd("GET", "/screenshot", None);
            super::base64_decode(b64.as_str().unwrap_or(""))
        }

        pub fn quit(&self) {
            let _ = http(self.port, "DELETE", &format!("/session/{}", self.session), None);
        }
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter_map(val) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// The browser binaries, or `None` when the test may be skipped.
fn browser() -> Option<(&'static str, &'static str)> {
    let chromium =
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().find(|p| Path::new(p).exists());
    let driver = Path::new("/usr/bin/chromedriver").exists().then_some("/usr/bin/chromedriver");
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ if std::env::var("MEDAUDIT_SKIP_BROWSER_TESTS").as_deref() == Ok("1") => {
            eprintln!("MEDAUDIT_SKIP_BROWSER_TESTS=1: the browser test is skipped");
            None
        }
        _ => panic!(
            "the browser test needs Chromium and chromedriver (apt-get install chromium chromium-driver \
             fonts-noto-cjk; .ci/run installs them); set MEDAUDIT_SKIP_BROWSER_TESTS=1 to skip it"
        ),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Kills chromedriver (and with it the browser) when the test ends, passed or not.
struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_reviewer_works_a_case_in_the_browser() {
    let Some((chromium, chromedriver)) = browser() else { return };
    let tmp = tempdir();
    fixture(tmp.path());
    let store = Store::open(tmp.path()).unwrap();
    let id = sampled_case(&store);
    // The server, on its own runtime.
    let app = app(tmp.path());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            medaudit::web::serve_on(app, l).await.unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    let base = format!("http://{addr}");
    eprintln!("workbench at {base}");
    let port = free_port();
    let _driver = Kill(
        std::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting chromedriver"),
    );
    let profile = tmp.path().join("chromium-profile");
    let b = webdriver::Driver::start(port, chromium, &profile.display().to_string());
    let shots = std::env::var_os("MEDAUDIT_SCREENSHOTS").map(std::path::PathBuf::from);
    let shot = |name: &str| {
        let png = b.screenshot();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG screenshot");
        if let Some(dir) = &shots {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
        }
    };
    let run = || {
        // Sign in.
        b.goto(&format!("{base}/queue"));
        assert!(b.url().ends_with("/login"), "{}", b.url());
        b.fill("#name", "li");
        b.fill("#password", PW);
        b.click("#signin");
        assert!(b.text("#queue-summary").contains("符合条件"));
        assert!(b.url().ends_with("/queue"), "{}", b.url());
        assert!(b.text("h1").contains("复审队列"));
        shot("queue");
        // Open the case from the queue.
        b.click(&format!("#queue a[href=\"/cases/{id}\"]"));
        assert!(!b.text("#findings").is_empty());
        assert!(b.url().ends_with(&format!("/cases/{id}")), "{}", b.url());
        assert!(b.text("h1").contains(&format!("C{id}")));
        b.resize(1360, 1400);
        shot("case");
        b.resize(1360, 900);
        // Take the case, then confirm it with an amount.
        b.click("#decide");
        b.click("#do-start");
        assert!(b.text("#flash").contains("开始复审"));
        b.click("#decide");
        b.fill("#amount", "88.80");
        b.fill("#confirm-note", "浏览器测试：重复收费，已核对病历");
        shot("decision");
        b.click("#do-confirm");
        assert!(b.text("#flash").contains("确认违规"));
        assert!(b.url().contains(&format!("/cases/{id}?done=confirm")), "{}", b.url());
        assert!(b.text("#history").contains("li"));
        b.goto(&format!("{base}/dashboard"));
        assert!(b.text("#confirmed-month").contains("88.80"));
        shot("dashboard");
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
    b.quit();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e);
    }
    // The decision is in the store and in the audit log.
    let (status, cents, by): (String, i64, String) = store
        .connection()
        .query_row("SELECT status, deduct_cents, decided_by FROM cases WHERE case_id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!((status.as_str(), cents, by.as_str()), ("confirmed", 8880, "li"));
    let actions: Vec<(String, String)> = {
        let mut st = store
            .connection()
            .prepare("SELECT user, action FROM audit_log WHERE case_id = ?1 ORDER BY seq")
            .unwrap();
        st.query_map([id], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap()
    };
    assert_eq!(
        actions,
        vec![("li".to_string(), "start_review".to_string()), ("li".to_string(), "confirm".to_string())]
    );
    let admin = store.login("admin", PW).unwrap();
    assert!(store.verify_audit(&admin).unwrap().ok());
}

#[test]
fn serving_needs_a_store_with_users() {
    let tmp = tempdir();
    let missing = App::new(Config::new(tmp.path().join("nowhere"))).err().expect("no store, no server");
    assert!(missing.to_string().contains("no case store"), "{missing}");
    assert!(!tmp.path().join("nowhere").exists(), "nothing is created");
    Store::open(&tmp.path().join("empty")).unwrap();
    let empty = App::new(Config::new(tmp.path().join("empty"))).err().expect("no users, no server");
    assert!(empty.to_string().contains("users init"), "{empty}");
}
