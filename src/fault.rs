//! Fault injection for tests of crash safety: `MEDAUDIT_FAIL_AT=<stage>` makes the run fail
//! (or, with `MEDAUDIT_FAIL_MODE=abort`, the process abort) when it reaches that stage.

/// Whether the run should fail at `stage`. Aborts the process instead when asked to, which
/// simulates a crash that runs no clean-up code.
pub fn at(stage: &str) -> bool {
    match std::env::var("MEDAUDIT_FAIL_AT") {
        Ok(s) if s == stage => {
            if std::env::var("MEDAUDIT_FAIL_MODE").as_deref() == Ok("abort") {
                eprintln!("medaudit: fault injected at {stage}: aborting");
                std::process::abort();
            }
            true
        }
        _ => false,
    }
}
