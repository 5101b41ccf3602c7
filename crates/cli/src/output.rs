//! Human and JSON output, error reporting and exit codes.

use std::process::ExitCode;

use lockbox_engine::{codes, Column, EngineError, RequestRecord};
use serde_json::{json, Value};

/// Exit codes: 0 success, 1 failure, 2 usage, 3 request refused (bad input or
/// policy), 4 not found, 5 wrong state.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<EngineError>().map(|e| e.kind()) {
        Some("bad_input") | Some("denied") => 3,
        Some("not_found") => 4,
        Some("conflict") => 5,
        Some("forbidden") | Some("throttled") => 6,
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
                json!({ "error": { "kind": ee.kind(), "code": c, "status": format!("0x{c:08x}"), "name": codes::name(c), "message": ee.to_string() } })
            );
        } else {
            let label = if ee.kind() == "denied" {
                "denied"
            } else {
                "error"
            };
            eprintln!("lockbox: {label}: {ee} (0x{c:08x} {})", codes::name(c));
        }
    } else if json {
        println!(
            "{}",
            json!({ "error": { "kind": "error", "message": format!("{e:#}") } })
        );
    } else {
        eprintln!("lockbox: error: {e:#}");
    }
    ExitCode::from(code)
}

pub use lockbox_engine::view::cell;

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

fn csv_field(s: &str) -> String {
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
                .map(|c| csv_field(&cell(r, *c)))
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
        .map(|r| cols.iter().map(|c| cell(r, *c)).collect())
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

/// Plain base64 (no armour) of DER bytes.
pub fn base64(der: &[u8]) -> String {
    lockbox_codec::pem::encode_pem("X", der)
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect()
}
