//! Users, roles and login.
//!
//! Passwords are stored as argon2id hashes (PHC strings with their own salt and parameters,
//! RustCrypto's `argon2` with its default, OWASP-recommended parameters: 19 MiB, 2 passes).
//! Every store call takes the acting [`Actor`]; [`Store::login`] is the only way to get one
//! from a name and password, and each failed attempt goes to the audit log.

use std::fmt;
use std::str::FromStr;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{CaseError, CaseResult, Store, audit, db};

/// Minimum password length.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// A role. A user may have several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// 复审员: reviews cases and records decisions, confirmations and deductions.
    Reviewer,
    /// 调查员: follows cases up, exports them, unmasked with a stated purpose.
    Investigator,
    /// 管理员: manages users, merges runs, reads the audit log.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Reviewer, Role::Investigator, Role::Admin];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reviewer => "reviewer",
            Role::Investigator => "investigator",
            Role::Admin => "admin",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Role::Reviewer => "复审员",
            Role::Investigator => "调查员",
            Role::Admin => "管理员",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = CaseError;
    fn from_str(s: &str) -> Result<Role, CaseError> {
        let s = s.trim();
        Role::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s || r.label() == s || (s == "administrator" && *r == Role::Admin))
            .ok_or_else(|| {
                CaseError::Invalid(format!("未知角色 `{s}`（可用：reviewer、investigator、admin）"))
            })
    }
}

/// What an action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// List and show cases (masked), see estimates and deduction lists.
    ViewCases,
    /// Record review decisions, confirmations, appeals.
    Review,
    /// Record deductions and recoveries.
    Deduct,
    /// Export masked.
    Export,
    /// See or export ID numbers and names unmasked (with a purpose).
    Unmask,
    /// Merge run outputs.
    Merge,
    /// Add and disable users.
    ManageUsers,
    /// Read and verify the audit log.
    Audit,
}

impl Permission {
    /// The roles that have the permission.
    pub fn roles(self) -> &'static [Role] {
        match self {
            Permission::ViewCases | Permission::Export => &[Role::Reviewer, Role::Investigator, Role::Admin],
            Permission::Review => &[Role::Reviewer],
            Permission::Deduct => &[Role::Reviewer, Role::Admin],
            Permission::Unmask => &[Role::Investigator],
            Permission::Merge | Permission::ManageUsers => &[Role::Admin],
            Permission::Audit => &[Role::Admin, Role::Investigator],
        }
    }
    fn label(self) -> &'static str {
        match self {
            Permission::ViewCases => "查看案件",
            Permission::Review => "记录复审结论",
            Permission::Deduct => "登记扣款或追回",
            Permission::Export => "导出案件",
            Permission::Unmask => "查看或导出未脱敏的证件号码和姓名",
            Permission::Merge => "合并审核结果",
            Permission::ManageUsers => "管理用户",
            Permission::Audit => "查看审计日志",
        }
    }
}

/// The user acting, with their roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub roles: Vec<Role>,
}

impl Actor {
    /// An actor for a job the operator started in-process (the nightly audit), recorded in
    /// the audit log as `system:<name>`. The library is not a security boundary: whoever can
    /// run code can open the database; people act through [`Store::login`].
    pub fn system(name: &str, roles: &[Role]) -> Actor {
        Actor { name: format!("system:{name}"), roles: roles.to_vec() }
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Refuses when none of the actor's roles has the permission.
    pub fn require(&self, p: Permission) -> CaseResult<()> {
        if p.roles().iter().any(|r| self.has(*r)) {
            return Ok(());
        }
        Err(CaseError::Denied(format!(
            "用户 {}（{}）不能{}：需要{}角色",
            self.name,
            if self.roles.is_empty() {
                "无角色".to_string()
            } else {
                self.roles.iter().map(|r| r.label()).collect::<Vec<_>>().join("、")
            },
            p.label(),
            p.roles().iter().map(|r| r.label()).collect::<Vec<_>>().join("或")
        )))
    }
}

/// A user as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserInfo {
    pub name: String,
    pub roles: Vec<Role>,
    pub active: bool,
    pub created_at: String,
    pub created_by: String,
}

fn hash_password(pw: &str) -> CaseResult<String> {
    if pw.chars().count() < MIN_PASSWORD_CHARS {
        return Err(CaseError::Invalid(format!("密码至少 {MIN_PASSWORD_CHARS} 个字符")));
    }
    Argon2::default()
        .hash_password(pw.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| CaseError::Invalid(format!("hashing the password: {e}")))
}

fn verify_password(pw: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(h) => Argon2::default().verify_password(pw.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

fn parse_roles(s: &str) -> Vec<Role> {
    s.split(',').filter_map(|r| r.parse().ok()).collect()
}

fn roles_text(roles: &[Role]) -> CaseResult<String> {
    if roles.is_empty() {
        return Err(CaseError::Invalid("至少指定一个角色".into()));
    }
    let mut v: Vec<Role> = roles.to_vec();
    v.sort();
    v.dedup();
    Ok(v.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(","))
}

fn check_name(name: &str) -> CaseResult<()> {
    let ok = !name.is_empty()
        && name.chars().count() <= 64
        && !name.starts_with("system:")
        && name.chars().all(|c| !c.is_control() && !c.is_whitespace());
    if ok { Ok(()) } else { Err(CaseError::Invalid(format!("用户名 `{name}` 不可用"))) }
}

impl Store {
    /// Whether the store has any user yet.
    pub fn has_users(&self) -> CaseResult<bool> {
        Ok(self.conn.query_row("SELECT EXISTS (SELECT 1 FROM users)", [], |r| r.get(0))?)
    }

    /// Creates the first administrator; refused once any user exists.
    pub fn init_admin(&mut self, name: &str, password: &str) -> CaseResult<Actor> {
        check_name(name)?;
        let hash = hash_password(password)?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let any: bool = tx.query_row("SELECT EXISTS (SELECT 1 FROM users)", [], |r| r.get(0))?;
        if any {
            return Err(CaseError::Denied(
                "案件库已有用户：首位管理员只能创建一次，其余用户由管理员添加（users add）".into(),
            ));
        }
        tx.execute(
            "INSERT INTO users (name, roles, pw_hash, active, created_at, created_by) VALUES (?1, 'admin', ?2, 1, ?3, ?1)",
            params![name, hash, db::now()],
        )?;
        audit::append(
            &tx,
            name,
            "user_init",
            None,
            &serde_json::json!({ "user": name, "roles": ["admin"] }),
        )?;
        tx.commit()?;
        Ok(Actor { name: name.to_string(), roles: vec![Role::Admin] })
    }

    /// Checks a name and password. A failure is logged (who tried, why) and refused with the
    /// same message whatever the reason, so that it does not tell which names exist.
    pub fn login(&self, name: &str, password: &str) -> CaseResult<Actor> {
        let row: Option<(String, String, bool)> = self
            .conn
            .query_row("SELECT roles, pw_hash, active FROM users WHERE name = ?1", [name], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let why = match &row {
            None => Some("unknown user"),
            Some((_, hash, active)) => {
                if !verify_password(password, hash) {
                    Some("wrong password")
                } else if !active {
                    Some("account disabled")
                } else {
                    None
                }
            }
        };
        match (why, row) {
            (None, Some((roles, _, _))) => Ok(Actor { name: name.to_string(), roles: parse_roles(&roles) }),
            (reason, _) => {
                let reason = reason.unwrap_or("unknown user");
                // A new connection-level transaction: the failure must be recorded even though
                // the caller gets an error.
                let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
                audit::append(&tx, name, "login_failed", None, &serde_json::json!({ "reason": reason }))?;
                tx.commit()?;
                Err(CaseError::Login(format!("用户名或密码错误，或账户已停用（{name}）")))
            }
        }
    }

    /// Adds a user (administrators only).
    pub fn add_user(&mut self, actor: &Actor, name: &str, roles: &[Role], password: &str) -> CaseResult<()> {
        actor.require(Permission::ManageUsers)?;
        check_name(name)?;
        let roles = roles_text(roles)?;
        let hash = hash_password(password)?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: bool =
            tx.query_row("SELECT EXISTS (SELECT 1 FROM users WHERE name = ?1)", [name], |r| r.get(0))?;
        if exists {
            return Err(CaseError::Invalid(format!("用户 {name} 已存在")));
        }
        tx.execute(
            "INSERT INTO users (name, roles, pw_hash, active, created_at, created_by) VALUES (?1, ?2, ?3, 1, ?4, ?5)",
            params![name, roles, hash, db::now(), actor.name],
        )?;
        audit::append(
            &tx,
            &actor.name,
            "user_add",
            None,
            &serde_json::json!({ "user": name, "roles": roles }),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Changes a user's roles (administrators only).
    pub fn set_roles(&mut self, actor: &Actor, name: &str, roles: &[Role]) -> CaseResult<()> {
        actor.require(Permission::ManageUsers)?;
        let roles = roles_text(roles)?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if tx.execute("UPDATE users SET roles = ?2 WHERE name = ?1", params![name, roles])? == 0 {
            return Err(CaseError::NotFound(format!("用户 {name}")));
        }
        audit::append(
            &tx,
            &actor.name,
            "user_roles",
            None,
            &serde_json::json!({ "user": name, "roles": roles }),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Disables or enables a user (administrators only; an administrator cannot disable
    /// themself, so that the store keeps one).
    pub fn set_active(&mut self, actor: &Actor, name: &str, active: bool) -> CaseResult<()> {
        actor.require(Permission::ManageUsers)?;
        if !active && name == actor.name {
            return Err(CaseError::Invalid("不能停用自己的账户".into()));
        }
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if tx.execute("UPDATE users SET active = ?2 WHERE name = ?1", params![name, active])? == 0 {
            return Err(CaseError::NotFound(format!("用户 {name}")));
        }
        let action = if active { "user_enable" } else { "user_disable" };
        audit::append(&tx, &actor.name, action, None, &serde_json::json!({ "user": name }))?;
        tx.commit()?;
        Ok(())
    }

    /// Sets a password: one's own, or anyone's for an administrator.
    pub fn set_password(&mut self, actor: &Actor, name: &str, password: &str) -> CaseResult<()> {
        if name != actor.name {
            actor.require(Permission::ManageUsers)?;
        }
        let hash = hash_password(password)?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if tx.execute("UPDATE users SET pw_hash = ?2 WHERE name = ?1", params![name, hash])? == 0 {
            return Err(CaseError::NotFound(format!("用户 {name}")));
        }
        audit::append(&tx, &actor.name, "user_password", None, &serde_json::json!({ "user": name }))?;
        tx.commit()?;
        Ok(())
    }

    /// Every user (administrators only).
    pub fn users(&self, actor: &Actor) -> CaseResult<Vec<UserInfo>> {
        actor.require(Permission::ManageUsers)?;
        let mut st = self
            .conn
            .prepare("SELECT name, roles, active, created_at, created_by FROM users ORDER BY name")?;
        let rows = st.query_map([], |r| {
            Ok(UserInfo {
                name: r.get(0)?,
                roles: parse_roles(&r.get::<_, String>(1)?),
                active: r.get(2)?,
                created_at: r.get(3)?,
                created_by: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hashed_and_verified() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse!", &h));
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn roles_grant_permissions() {
        let r = Actor { name: "r".into(), roles: vec![Role::Reviewer] };
        assert!(r.require(Permission::Review).is_ok());
        assert!(matches!(r.require(Permission::Unmask), Err(CaseError::Denied(_))));
        let i = Actor { name: "i".into(), roles: vec![Role::Investigator] };
        assert!(i.require(Permission::Unmask).is_ok());
        assert!(i.require(Permission::Review).is_err());
    }
}
