//! Answers for people (aligned tables) and for scripts (`--json`, one JSON value per call).

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::UNIX_EPOCH;

use boxshell::ops::{Backend, SessionStatus};
use boxshell::{Logs, Stream};

/// `sessions` as a table, or as a JSON array (a single object for one status).
pub fn sessions(out: &mut impl Write, sessions: &[SessionStatus], json: bool) -> io::Result<()> {
    if json {
        let objects: Vec<String> = sessions.iter().map(session_json).collect();
        return writeln!(out, "[{}]", objects.join(","));
    }
    let rows: Vec<[String; 5]> = sessions
        .iter()
        .map(|s| {
            let state = match s.exit_code {
                Some(code) => format!("{} ({code})", s.state),
                None => s.state.to_string(),
            };
            let pid = s.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
            [s.name.clone(), s.backend.to_string(), state, pid, s.image.clone().unwrap_or_else(|| "-".into())]
        })
        .collect();
    let header = ["NAME", "BACKEND", "STATE", "PID", "IMAGE"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ");
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn session_json(s: &SessionStatus) -> String {
    let created = s.created.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs().to_string());
    format!(
        "{{\"name\":{},\"backend\":{},\"state\":{},\"pid\":{},\"image\":{},\"exit_code\":{},\"created\":{}}}",
        string(&s.name),
        string(&s.backend.to_string()),
        string(&s.state.to_string()),
        s.pid.map_or("null".into(), |p| p.to_string()),
        s.image.as_deref().map_or("null".into(), string),
        s.exit_code.map_or("null".into(), |c| c.to_string()),
        created.unwrap_or_else(|| "null".into()),
    )
}

/// An operation that has no answer but its success.
pub fn done(out: &mut impl Write, name: &str, what: &str, json: bool) -> io::Result<()> {
    if json {
        writeln!(out, "{{\"name\":{},\"result\":{}}}", string(name), string(what))
    } else {
        writeln!(out, "{name}: {what}")
    }
}

/// Whether a session exists, and where.
pub fn exists(out: &mut impl Write, name: &str, backend: Option<Backend>, json: bool) -> io::Result<()> {
    match (json, backend) {
        (true, _) => writeln!(
            out,
            "{{\"name\":{},\"exists\":{},\"backend\":{}}}",
            string(name),
            backend.is_some(),
            backend.map_or("null".into(), |b| string(&b.to_string()))
        ),
        (false, Some(backend)) => writeln!(out, "{name}: exists ({backend})"),
        (false, None) => writeln!(out, "{name}: does not exist"),
    }
}

/// The lines of a log in the order written, each to its own stream; or, as JSON, an array
/// of `{"stream", "line"}` (invalid UTF-8 replaced).
pub fn logs(logs: &Logs, json: bool) -> io::Result<()> {
    let (mut stdout, mut stderr) = (io::stdout().lock(), io::stderr().lock());
    if json {
        let lines: Vec<String> = logs
            .lines
            .iter()
            .map(|(stream, line)| {
                let name = if *stream == Stream::Stdout { "stdout" } else { "stderr" };
                format!("{{\"stream\":\"{name}\",\"line\":{}}}", string(&String::from_utf8_lossy(line)))
            })
            .collect();
        return writeln!(stdout, "[{}]", lines.join(","));
    }
    for (stream, line) in &logs.lines {
        // Each stream flushed before the other takes over, so a terminal shows the order.
        match stream {
            Stream::Stdout => stdout.write_all(line).and_then(|()| stdout.flush())?,
            _ => stderr.write_all(line).and_then(|()| stderr.flush())?,
        }
    }
    Ok(())
}

/// `s` as a JSON string.
fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn strings_are_escaped() {
        assert_eq!(super::string("a\"b\\c\nd\u{1}é"), "\"a\\\"b\\\\c\\nd\\u0001é\"");
    }
}
