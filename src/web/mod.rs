//! The review workbench (issue 12): `medaudit serve`, a small web application in Chinese for
//! the joint office's second-review staff, on top of the case store ([`crate::cases`]).
//!
//! Server-rendered HTML (no JavaScript), one inline style sheet, every text escaped. Every
//! page and file needs a signed-in user with the right role; the lifecycle, roles, masking
//! and the audit log are the case store's: this layer only calls [`Store`] methods, each
//! from a blocking thread (`spawn_blocking`) with a connection taken from a small pool, so
//! that several reviewers work at once while SQLite (WAL, busy timeout) serialises writes.
//!
//! - Sessions live in memory on the server (a restart signs everyone out), expire after
//!   `session_minutes` without a request and after 12 hours in any case; the cookie is
//!   `HttpOnly; SameSite=Strict`, the session id 256 random bits.
//! - Every form carries the session's CSRF token (the sign-in form a token of its own,
//!   double-submitted in a cookie); a POST without the right token is refused.
//! - A decision form carries the case's version: when another reviewer changed the case
//!   since the form was opened, the decision is refused with a conflict message
//!   ([`Store::expect_version`]).
//! - Bad input (an unknown case, a malformed amount, a bad date) is answered with a page
//!   that says what is wrong, never a crash.

mod html;
mod pages;
mod timeline;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::cases::{Actor, CaseError, Store};

/// How the workbench runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The case store folder.
    pub store: PathBuf,
    /// A session ends after this long without a request.
    pub session_idle: Duration,
    /// At most this many cases are listed on a queue page (the counts cover all).
    pub max_rows: usize,
    /// Mark the session cookie `Secure` (when served behind HTTPS).
    pub secure_cookie: bool,
}

impl Config {
    pub fn new(store: PathBuf) -> Config {
        Config { store, session_idle: Duration::from_secs(30 * 60), max_rows: 500, secure_cookie: false }
    }
}

/// A session's absolute lifetime.
const SESSION_MAX: Duration = Duration::from_secs(12 * 3600);
/// The session cookie.
const COOKIE: &str = "medaudit_session";
/// The sign-in form's double-submit cookie.
const LOGIN_COOKIE: &str = "medaudit_login";
/// Connections kept for reuse.
const POOL_MAX: usize = 8;

/// A signed-in user.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) actor: Actor,
    pub(crate) csrf: String,
    created: Instant,
    last_seen: Instant,
}

/// A rule's documentation, from the `queries/` headers or the built-in checks.
#[derive(Debug, Clone)]
pub(crate) struct RuleDoc {
    pub(crate) title_zh: String,
    pub(crate) category: String,
    pub(crate) severity: String,
    pub(crate) basis: String,
    pub(crate) what: String,
    pub(crate) why: String,
    pub(crate) example: String,
}

/// The application state shared by the handlers.
pub struct App {
    cfg: Config,
    pool: Mutex<Vec<Store>>,
    sessions: Mutex<HashMap<String, Session>>,
    pub(crate) docs: HashMap<String, RuleDoc>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves consistent data here (plain maps and vectors).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl App {
    /// Opens the store (which must exist and have users) and loads the rules' documentation.
    pub fn new(cfg: Config) -> crate::Result<Arc<App>> {
        if !cfg.store.join(crate::cases::DB_FILE).is_file() {
            return Err(crate::input_err!(
                "no case store in {}: create it with `medaudit users init --store {}` and merge a run",
                cfg.store.display(),
                cfg.store.display()
            ));
        }
        let store = Store::open(&cfg.store)?;
        if !store.has_users()? {
            return Err(crate::input_err!(
                "the case store {} has no users yet: create the first administrator with `medaudit users init`",
                cfg.store.display()
            ));
        }
        let mut docs = HashMap::new();
        for c in crate::builtin::CHECKS {
            docs.insert(
                c.id.to_string(),
                RuleDoc {
                    title_zh: c.title_zh.into(),
                    category: c.category.into(),
                    severity: c.severity.into(),
                    basis: c.basis.into(),
                    what: c.what.into(),
                    why: c.why.into(),
                    example: c.example.into(),
                },
            );
        }
        match crate::engine::RuleSet::load_default() {
            Ok(rules) => {
                for r in rules.rules {
                    docs.insert(
                        r.id.clone(),
                        RuleDoc {
                            title_zh: r.title_zh,
                            category: r.category,
                            severity: r.severity.as_str().to_string(),
                            basis: r.basis.join("；"),
                            what: r.what,
                            why: r.why,
                            example: r.example,
                        },
                    );
                }
            }
            Err(e) => eprintln!("medaudit serve: the rules' documentation is not shown: {e}"),
        }
        Ok(Arc::new(App { cfg, pool: Mutex::new(vec![store]), sessions: Mutex::new(HashMap::new()), docs }))
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Runs `f` with a store connection on a blocking thread.
    pub(crate) async fn store<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Store) -> Result<T, CaseError> + Send + 'static,
    ) -> Result<T, WebError> {
        let app = self.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let pooled = lock(&app.pool).pop();
            let mut store = match pooled {
                Some(s) => s,
                None => Store::open(&app.cfg.store)?,
            };
            let out = f(&mut store);
            store.clear_expected_version();
            let mut pool = lock(&app.pool);
            if pool.len() < POOL_MAX {
                pool.push(store);
            }
            out
        })
        .await;
        match joined {
            Ok(r) => r.map_err(WebError::Case),
            Err(e) => {
                eprintln!("medaudit serve: a request failed: {e}");
                Err(WebError::Internal)
            }
        }
    }

    fn new_session(&self, actor: Actor) -> (String, Session) {
        let now = Instant::now();
        let s = Session { actor, csrf: random_token(), created: now, last_seen: now };
        let id = random_token();
        let mut map = lock(&self.sessions);
        map.retain(|_, v| self.alive(v, now));
        map.insert(id.clone(), s.clone());
        (id, s)
    }

    fn alive(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.last_seen) < self.cfg.session_idle && now.duration_since(s.created) < SESSION_MAX
    }

    /// The session of a request, refreshed; `None` when there is none or it expired.
    pub(crate) fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, COOKIE)?;
        let now = Instant::now();
        let mut map = lock(&self.sessions);
        let alive = map.get(&id).map(|s| self.alive(s, now))?;
        if !alive {
            map.remove(&id);
            return None;
        }
        let s = map.get_mut(&id)?;
        s.last_seen = now;
        Some(s.clone())
    }

    fn end_session(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, COOKIE) {
            lock(&self.sessions).remove(&id);
        }
    }

    fn cookie_attrs(&self) -> &'static str {
        if self.cfg.secure_cookie { "; Secure" } else { "" }
    }
}

/// 32 random bytes from the OS, hex.
pub(crate) fn random_token() -> String {
    let mut b = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut b) {
        // Without a random source no session can be safe: stop rather than guess.
        panic!("the operating system's random source failed: {e}");
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Compares two tokens in constant time.
pub(crate) fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A cookie's value.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// What a handler can fail with.
#[derive(Debug)]
pub(crate) enum WebError {
    /// A case-store error, shown with its (Chinese) message.
    Case(CaseError),
    /// Bad input from the request.
    BadRequest(String),
    /// A form without the right CSRF token.
    Csrf,
    /// No session: sign in.
    SignIn,
    /// A worker failed (logged on the server).
    Internal,
}

impl WebError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            WebError::Case(e) => match e {
                CaseError::Login(_) => StatusCode::UNAUTHORIZED,
                CaseError::Denied(_) => StatusCode::FORBIDDEN,
                CaseError::NotFound(_) => StatusCode::NOT_FOUND,
                CaseError::IllegalTransition(_) | CaseError::Conflict(_) => StatusCode::CONFLICT,
                CaseError::Invalid(_) => StatusCode::BAD_REQUEST,
                CaseError::Db(_) | CaseError::Io(_) | CaseError::Engine(_) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            },
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Csrf => StatusCode::FORBIDDEN,
            WebError::SignIn => StatusCode::SEE_OTHER,
            WebError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message shown to the user.
    pub(crate) fn message(&self) -> String {
        match self {
            WebError::Case(e @ (CaseError::Db(_) | CaseError::Io(_) | CaseError::Engine(_))) => {
                eprintln!("medaudit serve: {e}");
                "服务器内部错误：案件库暂时无法读写，请稍后重试；如持续出现请联系管理员。".to_string()
            }
            WebError::Case(e) => e.to_string(),
            WebError::BadRequest(m) => format!("输入有误：{m}"),
            WebError::Csrf => {
                "表单已过期或来源不明（CSRF 校验失败），操作未执行。请刷新页面后重试。".to_string()
            }
            WebError::SignIn => "请先登录".to_string(),
            WebError::Internal => "服务器内部错误，操作可能未完成，请刷新后核对。".to_string(),
        }
    }
}

impl From<CaseError> for WebError {
    fn from(e: CaseError) -> Self {
        WebError::Case(e)
    }
}

/// Renders an error as a page (signing in again for a missing session).
pub(crate) fn error_page(e: &WebError, session: Option<&Session>) -> Response {
    if matches!(e, WebError::SignIn) {
        return redirect("/login");
    }
    let body = format!(
        "<div class=\"msg err\">{}</div><p><a href=\"/queue\">返回复审队列</a></p>",
        html::esc(&e.message())
    );
    (e.status(), html::page("出错了", session, &body)).into_response()
}

pub(crate) fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Security headers on every response.
async fn headers_mw(mut r: Response) -> Response {
    let h = r.headers_mut();
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    r
}

/// The workbench's routes.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(|| async { redirect("/queue") }))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/queue", get(pages::queue))
        .route("/export", post(pages::export))
        .route("/cases/{id}", get(pages::case))
        .route("/cases/{id}/unmask", post(pages::case_unmasked))
        .route("/cases/{id}/decide", get(pages::decide_form).post(pages::decide))
        .route("/dashboard", get(pages::dashboard))
        .fallback(pages::not_found)
        .layer(axum::middleware::map_response(headers_mw))
        .with_state(app)
}

/// Serves the workbench on `listener` until the process ends.
pub async fn serve_on(app: Arc<App>, listener: tokio::net::TcpListener) -> crate::Result<()> {
    axum::serve(listener, router(app)).await.map_err(|e| crate::Error::Other(format!("serving: {e}")))
}

/// `medaudit serve`: binds `bind` and serves until interrupted.
pub fn serve(cfg: Config, bind: SocketAddr) -> crate::Result<()> {
    let app = App::new(cfg)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| crate::Error::Other(format!("starting the server: {e}")))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|e| crate::Error::Other(format!("listening on {bind}: {e}")))?;
        eprintln!(
            "medaudit serve: the review workbench is at http://{} (store {})",
            listener.local_addr().unwrap_or(bind),
            app.config().store.display()
        );
        serve_on(app, listener).await
    })
}
