//! Helpers shared by the end-to-end tests of the `lockbox` binary.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// The `lockbox` binary with no LOCKBOX_* variables from the caller's environment.
pub fn lockbox_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lockbox"));
    for (k, _) in std::env::vars() {
        if k.starts_with("LOCKBOX_") {
            c.env_remove(k);
        }
    }
    c.args(args);
    c
}

/// Runs `lockbox` with `args`.
pub fn lockbox(args: &[&str]) -> Output {
    lockbox_cmd(args).output().expect("run lockbox")
}

/// Asserts success and returns stdout.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A path as &str.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
