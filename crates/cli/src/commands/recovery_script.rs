//! `lockbox getkey --script`: the seed's batch recovery as a POSIX shell
//! script (getkey, recoverkey and mergepfx for every candidate, passwords in
//! private files).

use lockbox_engine::period::rfc3339;
use lockbox_engine::recovery::Candidate;

use crate::global::Global;
use crate::output::safe;

/// The seed's batch recovery, as a POSIX shell script.
pub fn script(g: &Global, token: &str, list: &[Candidate]) -> String {
    let ctx = cli_context(g);
    let user = file_stem(token);
    let mut s = String::new();
    s.push_str("#!/bin/sh\n");
    s.push_str(&format!(
        "# Recover every archived key of {} ({} certificate(s)) into {user}.p12.\n",
        script_comment(token),
        list.len()
    ));
    s.push_str("# Needs: KRA_PFX (the agent's PKCS#12) and its password in the file named by\n");
    s.push_str("# KRA_PASSWORD_FILE, or in KRA_PASSWORD. No password is put on a command line:\n");
    s.push_str("# each one travels in a file (mode 0600) in a private temporary directory.\n");
    s.push_str("set -eu\n: \"${KRA_PFX:?set KRA_PFX to the key recovery agent's PKCS#12}\"\n");
    s.push_str(
        "umask 077\nLOCKBOX=\"${LOCKBOX:-lockbox}\"\nwork=$(mktemp -d)\ntrap 'rm -rf \"$work\"' EXIT\n",
    );
    s.push_str("if [ -n \"${KRA_PASSWORD_FILE:-}\" ]; then\n  kra_pw=\"$KRA_PASSWORD_FILE\"\nelif [ -n \"${KRA_PASSWORD+set}\" ]; then\n  printf '%s\\n' \"$KRA_PASSWORD\" >\"$work/kra.pw\"\n  kra_pw=\"$work/kra.pw\"\nelse\n  echo \"set KRA_PASSWORD_FILE (a file holding the agent's password) or KRA_PASSWORD\" >&2\n  exit 1\nfi\n");
    s.push_str("pw() { od -An -tx1 -N18 /dev/urandom | tr -d ' \\n'; echo; }\n");
    let mut inputs = Vec::new();
    let mut pws = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let n = i + 1;
        s.push_str(&format!(
            "# {} (serial {}, {} .. {})\n",
            script_comment(&c.subject),
            c.serial,
            rfc3339(c.not_before),
            rfc3339(c.not_after)
        ));
        s.push_str(&format!(
            "\"$LOCKBOX\"{ctx} getkey {} \"$work/{n}.rec\" >/dev/null\n",
            shell_quote(&c.serial)
        ));
        s.push_str(&format!("pw >\"$work/{n}.pw\"\n"));
        s.push_str(&format!(
            "\"$LOCKBOX\"{ctx} recoverkey \"$work/{n}.rec\" \"$work/{n}.pfx\" --kra \"$KRA_PFX\" --kra-password-file \"$kra_pw\" --password-file \"$work/{n}.pw\" >/dev/null\n"
        ));
        inputs.push(format!("$work/{n}.pfx"));
        pws.push(format!("\"$work/{n}.pw\""));
    }
    s.push_str("pw >\"$work/final.pw\"\n");
    s.push_str(&format!(
        "cat {} \"$work/final.pw\" >\"$work/merge.pw\"\n",
        pws.join(" ")
    ));
    s.push_str(&format!(
        "\"$LOCKBOX\" mergepfx \"{}\" {} --password-file \"$work/merge.pw\" >/dev/null\n",
        inputs.join(","),
        shell_quote(&format!("{user}.p12")),
    ));
    s.push_str(&format!(
        "echo \"Recovered {} key(s) into {user}.p12; its password is: $(cat \"$work/final.pw\")\"\n",
        list.len()
    ));
    s
}

/// The global options the script passes on to every `lockbox` it runs.
fn cli_context(g: &Global) -> String {
    let mut ctx = String::new();
    if let Some(h) = &g.home {
        ctx.push_str(&format!(
            " --home {}",
            shell_quote(&h.display().to_string())
        ));
    }
    if let Some(s) = &g.server {
        ctx.push_str(&format!(" --server {}", shell_quote(s)));
    }
    if let Some(c) = &g.ca_cert {
        ctx.push_str(&format!(
            " --ca-cert {}",
            shell_quote(&c.display().to_string())
        ));
    }
    ctx
}

/// The output file's stem from the search token: letters, digits, `.` and
/// `-` kept, everything else `_`.
fn file_stem(token: &str) -> String {
    token
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `s` quoted for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Text for a comment line of the script: no line breaks or control characters.
fn script_comment(text: &str) -> String {
    safe(text).replace(['\n', '\r'], " ")
}
