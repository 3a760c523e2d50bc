//! Prometheus' own `promtool` (Debian package `prometheus`; `PROMTOOL` names another path),
//! which the metrics tests must have: a missing `promtool` fails the test.

use std::io::Write as _;
use std::process::{Command, Stdio};

/// `promtool`, which must be installed (Debian package `prometheus`).
pub(crate) fn promtool() -> Command {
    let path = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".to_owned());
    let found = Command::new(&path)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "promtool is required for this test: install the Debian package `prometheus` \
         (apt-get install prometheus) or set PROMTOOL to its path"
    );
    Command::new(path)
}

/// Runs `promtool check metrics` on `text`; returns its exit success and its output.
pub(crate) fn promtool_check(text: &str) -> (bool, String) {
    let mut child = promtool()
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool output");
    let mut report = String::from_utf8_lossy(&out.stdout).into_owned();
    report.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), report)
}
