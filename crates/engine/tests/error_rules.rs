//! Source rules for errors across the workspace (issue 13, Errors): AD CS
//! status codes are defined only in `lockbox_engine::codes` (no other
//! `const ...: u32 = 0x8...`, no bare HRESULT literals in library or binary
//! code), and error kinds are matched as `ErrorKind`, never compared as
//! strings. The sources are read at run time, so a change merged later that
//! breaks a rule fails here.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::fs;
use std::path::{Path, PathBuf};

/// The workspace's `crates/` directory.
fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crates/")
        .to_path_buf()
}

/// Every `.rs` file under `dir`, recursively, sorted.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The `.rs` files of every crate's `sub` folder (`src`, `tests`).
fn files_in(sub: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut crates: Vec<PathBuf> = fs::read_dir(crates_dir())
        .expect("read crates/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    crates.sort();
    for c in crates {
        rust_files(&c.join(sub), &mut out);
    }
    out
}

/// The source without comments: `(with string contents, with every string
/// literal emptied to "")`. Line breaks are kept so that line numbers hold.
fn strip(src: &str) -> (String, String) {
    let c: Vec<char> = src.chars().collect();
    let (mut keep, mut blank) = (String::new(), String::new());
    let mut i = 0;
    let push_both = |k: &mut String, b: &mut String, ch: char| {
        k.push(ch);
        b.push(ch);
    };
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            i += 2;
            while i < c.len() && !(c[i] == '*' && c.get(i + 1) == Some(&'/')) {
                if c[i] == '\n' {
                    push_both(&mut keep, &mut blank, '\n');
                }
                i += 1;
            }
            i += 2;
        } else if ch == 'r'
            && (next == Some('"') || next == Some('#'))
            && (i == 0 || !(c[i - 1].is_alphanumeric() || c[i - 1] == '_'))
        {
            // raw string r"..." or r#"..."#
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                push_both(&mut keep, &mut blank, ch);
                i += 1;
                continue;
            }
            j += 1;
            keep.push('"');
            blank.push_str("\"\"");
            while j < c.len() {
                if c[j] == '"' && (1..=hashes).all(|k| c.get(j + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                keep.push(c[j]);
                if c[j] == '\n' {
                    blank.push('\n');
                }
                j += 1;
            }
            keep.push('"');
            i = j;
        } else if ch == '"' {
            keep.push('"');
            blank.push_str("\"\"");
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    keep.push(c[i]);
                    i += 1;
                }
                if let Some(&x) = c.get(i) {
                    keep.push(x);
                    if x == '\n' {
                        blank.push('\n');
                    }
                }
                i += 1;
            }
            keep.push('"');
            i += 1;
        } else if ch == '\'' {
            // a char literal ('x', '\n', '"', '\u{..}') or a lifetime
            let end = if next == Some('\\') {
                (i + 3..c.len().min(i + 12)).find(|&k| c[k] == '\'')
            } else if c.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(e) => {
                    push_both(&mut keep, &mut blank, '\'');
                    push_both(&mut keep, &mut blank, 'c');
                    push_both(&mut keep, &mut blank, '\'');
                    i = e + 1;
                }
                None => {
                    push_both(&mut keep, &mut blank, ch);
                    i += 1;
                }
            }
        } else {
            push_both(&mut keep, &mut blank, ch);
            i += 1;
        }
    }
    (keep, blank)
}

/// `path:line` of byte offset `at` in `text`.
fn place(path: &Path, text: &str, at: usize) -> String {
    let line = text[..at].matches('\n').count() + 1;
    let rel = path.strip_prefix(crates_dir()).unwrap_or(path);
    format!("crates/{}:{line}", rel.display())
}

fn is_error_table(path: &Path) -> bool {
    path.ends_with("engine/src/error.rs")
}

#[test]
fn status_codes_are_defined_only_in_the_codes_table() {
    let mut found = Vec::new();
    for path in files_in("src") {
        if is_error_table(&path) {
            continue;
        }
        let src = fs::read_to_string(&path).expect("read source");
        let (_, code) = strip(&src);
        // named constants holding an HRESULT
        for (at, _) in code.match_indices("const ") {
            let decl: String = code[at..].chars().take_while(|&ch| ch != ';').collect();
            let compact: String = decl.split_whitespace().collect();
            if compact.contains(":u32=0x8") {
                found.push(format!("{}: {}", place(&path, &code, at), decl.trim()));
            }
        }
        // bare HRESULT literals (0x8xxxxxxx) in code
        let bytes = code.as_bytes();
        for (at, _) in code.match_indices("0x8") {
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            let lit: String = code[at + 2..]
                .chars()
                .take_while(|ch| ch.is_ascii_hexdigit() || *ch == '_')
                .filter(|ch| *ch != '_')
                .collect();
            if lit.len() == 8 {
                found.push(format!("{}: 0x{lit}", place(&path, &code, at)));
            }
        }
    }
    assert!(
        found.is_empty(),
        "status codes outside lockbox_engine::codes (name them there and use the constant):\n{}",
        found.join("\n")
    );
}

#[test]
fn error_kinds_are_never_compared_as_strings() {
    const KINDS: [&str; 9] = [
        "bad_input",
        "denied",
        "not_found",
        "conflict",
        "forbidden",
        "unauthorized",
        "config",
        "throttled",
        "internal",
    ];
    let mut found = Vec::new();
    let mut files = files_in("src");
    files.extend(files_in("tests"));
    for path in files {
        let src = fs::read_to_string(&path).expect("read source");
        let (text, _) = strip(&src);
        // one space for every run of whitespace, remembering where each
        // character came from
        let mut flat = String::new();
        let mut origin = Vec::new();
        let mut last_space = false;
        for (at, ch) in text.char_indices() {
            if ch.is_whitespace() {
                if !last_space {
                    flat.push(' ');
                    origin.push(at);
                }
                last_space = true;
            } else {
                flat.push(ch);
                origin.extend(std::iter::repeat_n(at, ch.len_utf8()));
                last_space = false;
            }
        }
        let mut patterns = vec![
            "kind() == \"".to_string(),
            "kind() != \"".to_string(),
            "kind() { \"".to_string(),
            "kind().as_str() == \"".to_string(),
            "kind().as_str() != \"".to_string(),
            "kind().as_str() { \"".to_string(),
        ];
        for k in KINDS {
            patterns.push(format!("kind()) {{ Some(\"{k}\")"));
            patterns.push(format!("\"{k}\" == e.kind()"));
            patterns.push(format!("kind(), \"{k}\""));
            patterns.push(format!("kind().as_str(), \"{k}\""));
        }
        for p in &patterns {
            for (at, _) in flat.match_indices(p.as_str()) {
                found.push(format!("{}: {p}", place(&path, &text, origin[at])));
            }
        }
    }
    assert!(
        found.is_empty(),
        "error kinds compared as strings (match on lockbox_engine::ErrorKind instead):\n{}",
        found.join("\n")
    );
}
