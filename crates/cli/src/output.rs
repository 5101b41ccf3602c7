//! Human and JSON output, error reporting and exit codes.

use std::borrow::Cow;
use std::process::ExitCode;

use lockbox_engine::{codes, Column, EngineError, ErrorKind, RequestRecord};
use serde_json::{json, Value};

use crate::global::Global;

/// Exit codes: 0 success, 1 failure, 2 usage, 3 request refused (bad input or
/// policy), 4 not found, 5 wrong state, 6 not allowed, 7 the database is
/// unavailable (retry).
pub fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<EngineError>().map(|e| e.kind()) {
        Some(ErrorKind::BadInput | ErrorKind::Denied) => 3,
        Some(ErrorKind::NotFound) => 4,
        Some(ErrorKind::Conflict) => 5,
        Some(ErrorKind::Forbidden | ErrorKind::Unauthorized | ErrorKind::Throttled) => 6,
        Some(ErrorKind::Unavailable) => 7,
        _ => 1,
    }
}

/// Prints an error (JSON on stdout with `--json`, text on stderr otherwise).
pub fn report_error(e: &anyhow::Error, json: bool) -> ExitCode {
    let code = exit_code(e);
    if let Some(ee) = e.downcast_ref::<EngineError>() {
        let c = ee.code();
        if json {
            println!(
                "{}",
                json!({ "error": { "kind": ee.kind().as_str(), "code": c, "status": format!("0x{c:08x}"), "name": codes::name(c), "message": ee.to_string() } })
            );
        } else {
            let label = if ee.kind() == ErrorKind::Denied {
                "denied"
            } else {
                "error"
            };
            eprintln!(
                "lockbox: {label}: {} (0x{c:08x} {})",
                safe_lines(&ee.to_string()),
                codes::name(c)
            );
        }
    } else if json {
        println!(
            "{}",
            json!({ "error": { "kind": "error", "message": format!("{e:#}") } })
        );
    } else {
        eprintln!("lockbox: error: {}", safe_lines(&format!("{e:#}")));
    }
    ExitCode::from(code)
}

pub use lockbox_engine::view::cell;

/// Text from certificates and requests as it may be shown on a terminal, in
/// a table or CSV: control characters (C0, DEL, C1) and Unicode bidirectional
/// controls are written escaped (`\x1b`, `\n`, `\u{202e}`), so a name cannot
/// move the cursor, recolour the terminal or disguise itself. JSON output is
/// escaped by serde instead.
pub fn safe(s: &str) -> Cow<'_, str> {
    fn hostile(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !s.chars().any(hostile) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if hostile(c) && (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if hostile(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Each line of `text` made [`safe`], keeping the line breaks.
pub fn safe_lines(text: &str) -> String {
    text.split('\n')
        .map(|l| safe(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Rows as JSON objects keyed by column name.
pub fn rows_json(rows: &[RequestRecord], cols: &[Column]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                let mut m = serde_json::Map::new();
                for c in cols {
                    let v = cell(r, *c);
                    let val =
                        if *c == Column::RequestId || (*c == Column::KeyLength && !v.is_empty()) {
                            v.parse::<i64>()
                                .map(Value::from)
                                .unwrap_or(Value::String(v))
                        } else if v.is_empty() {
                            Value::Null
                        } else {
                            Value::String(v)
                        };
                    m.insert(c.name().to_string(), val);
                }
                Value::Object(m)
            })
            .collect(),
    )
}

/// One CSV field, quoted when it holds a comma, a quote or a line break.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Rows as CSV with a header line.
pub fn rows_csv(rows: &[RequestRecord], cols: &[Column]) -> String {
    let mut out = cols.iter().map(|c| c.name()).collect::<Vec<_>>().join(",");
    out.push('\n');
    for r in rows {
        out.push_str(
            &cols
                .iter()
                .map(|c| csv_field(&safe(&cell(r, *c))))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    out
}

/// Rows as an aligned text table.
pub fn rows_table(rows: &[RequestRecord], cols: &[Column]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            cols.iter()
                .map(|c| safe(&cell(r, *c)).into_owned())
                .collect()
        })
        .collect();
    let widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
                .max(c.name().len())
        })
        .collect();
    let mut out = String::new();
    let line = |vals: Vec<&str>| -> String {
        vals.iter()
            .enumerate()
            .map(|(i, v)| format!("{:<w$}", v, w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    out.push_str(&line(cols.iter().map(|c| c.name()).collect()));
    out.push('\n');
    for row in &cells {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out.push_str(&format!("{} row(s)\n", rows.len()));
    out
}

/// Prints `v` as pretty JSON.
pub fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Prints `v` as JSON with `--json`, else `text` with names from
/// certificates and requests escaped ([`safe_lines`]).
pub fn print(g: &Global, v: Value, text: String) {
    if g.json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        // Names from certificates and requests: control characters escaped.
        println!("{}", safe_lines(&text));
    }
}

/// Plain base64 (no armour) of DER bytes.
pub fn base64(der: &[u8]) -> String {
    lockbox_codec::pem::encode_pem("X", der)
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(safe("Alice Example"), "Alice Example");
        assert_eq!(safe("CONTOSO\\max"), "CONTOSO\\max");
        assert_eq!(safe("a\u{1b}[2Jb"), "a\\x1b[2Jb");
        assert_eq!(safe("x\ny\tz\u{7f}"), "x\\ny\\tz\\x7f");
        assert_eq!(
            safe("\u{9b}31m\u{202e}gpj.exe"),
            "\\u{9b}31m\\u{202e}gpj.exe"
        );
        assert_eq!(safe_lines("a\u{1b}\nb"), "a\\x1b\nb");
    }
}
