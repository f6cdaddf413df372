//! The case lifecycle.
//!
//! ```text
//! flagged 已标记 ──sample──► sampled 已抽样 ──start──► in_review 复审中 ──confirm──► confirmed 确认违规
//!                                                          │  ▲                       │   ▲      │
//!                                                   dismiss│  │reopen (admin)   appeal│   │upheld/adjusted
//!                                                          ▼  │                       ▼   │      │
//!                                                   dismissed 已排除 ◄──accepted── appealed 申诉中
//!                                                                                             │
//!            confirmed ──deduct (three confirmations, next monthly payment)──► deducted 已扣款
//!            confirmed ──recover (manual reimbursement: from the person)────► recovered 已追回
//! ```
//!
//! A settlement drawn into a run's sample starts at `sampled`; one with findings only at
//! `flagged`. A reviewer may put a flagged case into review by sampling it by hand (it then
//! has no inclusion probability and does not enter the estimates).

use std::fmt;
use std::str::FromStr;

use super::CaseError;

/// The status of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Flagged,
    Sampled,
    InReview,
    Confirmed,
    Appealed,
    Dismissed,
    Deducted,
    Recovered,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Flagged,
        Status::Sampled,
        Status::InReview,
        Status::Confirmed,
        Status::Appealed,
        Status::Dismissed,
        Status::Deducted,
        Status::Recovered,
    ];

    /// The code stored and accepted on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Flagged => "flagged",
            Status::Sampled => "sampled",
            Status::InReview => "in_review",
            Status::Confirmed => "confirmed",
            Status::Appealed => "appealed",
            Status::Dismissed => "dismissed",
            Status::Deducted => "deducted",
            Status::Recovered => "recovered",
        }
    }

    /// The Chinese name shown to users.
    pub fn label(self) -> &'static str {
        match self {
            Status::Flagged => "已标记",
            Status::Sampled => "已抽样",
            Status::InReview => "复审中",
            Status::Confirmed => "确认违规",
            Status::Appealed => "申诉中",
            Status::Dismissed => "已排除",
            Status::Deducted => "已扣款",
            Status::Recovered => "已追回",
        }
    }

    /// Whether the review found a violation (the outcome `y = 1` of the estimates).
    pub fn is_violation(self) -> bool {
        matches!(self, Status::Confirmed | Status::Appealed | Status::Deducted | Status::Recovered)
    }

    /// Whether the review reached a decision (violation or dismissed).
    pub fn is_decided(self) -> bool {
        self.is_violation() || self == Status::Dismissed
    }

    pub(crate) fn parse_stored(s: &str) -> Result<Status, CaseError> {
        s.parse()
    }
}

impl serde::Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl FromStr for Status {
    type Err = CaseError;
    /// Accepts the code (`in_review`) or the Chinese name (`复审中`).
    fn from_str(s: &str) -> Result<Status, CaseError> {
        let s = s.trim();
        Status::ALL.iter().copied().find(|x| x.as_str() == s || x.label() == s).ok_or_else(|| {
            CaseError::Invalid(format!(
                "未知状态 `{s}`（可用：{}）",
                Status::ALL
                    .iter()
                    .map(|x| format!("{}={}", x.as_str(), x.label()))
                    .collect::<Vec<_>>()
                    .join("，")
            ))
        })
    }
}

/// An action that changes a case's status, with the statuses it is allowed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Sample,
    StartReview,
    Confirm,
    Dismiss,
    RecordConfirmation,
    Appeal,
    ResolveAppeal,
    Deduct,
    Recover,
    Reopen,
}

impl Action {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Action::Sample => "纳入复审抽样",
            Action::StartReview => "开始复审",
            Action::Confirm => "确认违规",
            Action::Dismiss => "排除",
            Action::RecordConfirmation => "登记三方确认",
            Action::Appeal => "登记申诉",
            Action::ResolveAppeal => "申诉处理",
            Action::Deduct => "扣款",
            Action::Recover => "追回",
            Action::Reopen => "重新复审",
        }
    }

    /// The statuses the action is allowed from.
    pub(crate) fn from(self) -> &'static [Status] {
        match self {
            Action::Sample => &[Status::Flagged],
            Action::StartReview => &[Status::Sampled],
            Action::Confirm | Action::Dismiss => &[Status::InReview],
            Action::RecordConfirmation | Action::Appeal | Action::Deduct | Action::Recover => {
                &[Status::Confirmed]
            }
            Action::ResolveAppeal => &[Status::Appealed],
            Action::Reopen => &[Status::Dismissed],
        }
    }

    /// Refuses the action when the case is not in a status it is allowed from.
    pub(crate) fn check(self, case: &str, current: Status) -> Result<(), CaseError> {
        if self.from().contains(&current) {
            return Ok(());
        }
        let allowed: Vec<&str> = self.from().iter().map(|s| s.label()).collect();
        let hint = match (self, current) {
            (
                Action::Appeal | Action::Deduct | Action::Recover | Action::RecordConfirmation,
                Status::Deducted,
            ) => "，已扣款的案件不能再申诉或变更",
            (Action::Deduct | Action::Recover, Status::Appealed) => "，申诉处理完毕前不能扣款",
            (Action::Confirm | Action::Dismiss, Status::Sampled) => "，请先开始复审",
            (Action::Confirm | Action::Dismiss | Action::StartReview, Status::Flagged) => {
                "，请先纳入抽样（review sample）再开始复审"
            }
            _ => "",
        };
        Err(CaseError::IllegalTransition(format!(
            "案件 {case} 当前状态为「{}」，不能{}（须为「{}」）{hint}",
            current.label(),
            self.label(),
            allowed.join("」或「")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_by_code_and_chinese_name() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
            assert_eq!(s.label().parse::<Status>().unwrap(), s);
        }
        assert!("done".parse::<Status>().is_err());
    }

    #[test]
    fn deducted_cases_cannot_be_appealed() {
        let e = Action::Appeal.check("C1", Status::Deducted).unwrap_err();
        assert!(e.to_string().contains("已扣款"), "{e}");
        assert!(Action::Appeal.check("C1", Status::Confirmed).is_ok());
    }
}
