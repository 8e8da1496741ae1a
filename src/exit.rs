//! Exit codes: each one means one thing, for the whole tool.

use std::process::ExitCode;

/// How a command ended, as the process exit code reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything worked (and `validate` found nothing).
    Success,
    /// `validate` ran and at least one check failed.
    Findings,
    /// Bad usage or input, or specsmith itself failed.
    Error,
    /// A wait for rate-limit budget ran past its deadline (`EX_TEMPFAIL`): try again later.
    TimedOut,
    /// A shared pacing store (Redis) could not be reached and the project
    /// chose to fail closed (`EX_UNAVAILABLE`). Not 75, so a retry loop
    /// around a timed-out wait does not spin on an outage.
    StoreUnavailable,
    /// The provider said the account's quota is spent, and the model is on
    /// hold until its reset or `credits limits clear-hold` (`EX_NOPERM`):
    /// waiting in a loop cannot help.
    Held,
    /// The exit code of a command that `credits limits run` wrapped.
    Child(u8),
}

impl ExitStatus {
    /// The numeric process exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Findings => 1,
            ExitStatus::Error => 2,
            ExitStatus::TimedOut => 75,
            ExitStatus::StoreUnavailable => 69,
            ExitStatus::Held => 77,
            ExitStatus::Child(code) => code,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status.code())
    }
}
