//! The case store's error: typed, so that a web layer can map each kind to a status code
//! (login → 401, denied → 403, not found → 404, illegal transition and conflict → 409,
//! invalid → 400).
//! Messages are in Chinese: reviewers read them.

/// What went wrong in the case store.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// Unknown user, wrong password or disabled account (the attempt is logged).
    #[error("登录失败：{0}")]
    Login(String),
    /// The acting user lacks the role the action needs.
    #[error("无权操作：{0}")]
    Denied(String),
    /// No such case, settlement, run or user.
    #[error("未找到：{0}")]
    NotFound(String),
    /// The action is not allowed in the case's current status.
    #[error("不允许的状态变更：{0}")]
    IllegalTransition(String),
    /// The case changed since the caller read it (another reviewer decided it meanwhile):
    /// see [`super::Store::expect_version`].
    #[error("案件已被他人修改：{0}")]
    Conflict(String),
    /// A wrong argument (amount, month, party, missing purpose, ...).
    #[error("参数错误：{0}")]
    Invalid(String),
    /// The store's database failed.
    #[error("case store database: {0}")]
    Db(String),
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// The run output being merged is unreadable or inconsistent.
    #[error("{0}")]
    Engine(#[from] crate::Error),
}

impl From<rusqlite::Error> for CaseError {
    fn from(e: rusqlite::Error) -> Self {
        CaseError::Db(e.to_string())
    }
}

impl From<CaseError> for crate::Error {
    fn from(e: CaseError) -> Self {
        match e {
            CaseError::Engine(e) => e,
            other => crate::Error::Other(other.to_string()),
        }
    }
}
