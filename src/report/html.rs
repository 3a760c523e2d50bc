//! The `/stats` page: every namespace rendered generically, every string escaped.

use std::fmt::Write as _;

use serde_json::Value;

use crate::Snapshot;

/// The `Content-Security-Policy` the page is served with: no script, no style, no framing.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Escapes `s` for HTML text and double-quoted attribute values.
#[must_use]
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '`' => out.push_str("&#96;"),
            c => out.push(c),
        }
    }
    out
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => escape(s),
        other => escape(&other.to_string()),
    }
}

/// Renders the page. `base` is the last segment of the router prefix (`stats`), used for the
/// relative form actions so the page works wherever the router is nested.
#[must_use]
pub fn render(snapshot: &Snapshot, base: &str, controls: bool) -> String {
    let mut page = String::with_capacity(16 * 1024);
    let base = escape(base);
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    page.push_str("<title>Statistics</title></head><body>\n<h1>Statistics</h1>\n");
    let _ = writeln!(
        page,
        "<p>{} on {}, up {:.0} s</p>",
        escape(&snapshot.server.version),
        escape(&snapshot.server.instance),
        snapshot.server.uptime_seconds
    );
    for (name, enabled, values) in snapshot.namespace_values() {
        let ns = escape(&name);
        let _ = writeln!(page, "<section><h2>{ns}</h2>");
        if controls {
            for (action, disabled) in [("pause", !enabled), ("resume", enabled), ("reset", false)] {
                let _ = writeln!(
                    page,
                    "<form method=\"post\" action=\"{base}/{action}\"><input type=\"hidden\" \
                     name=\"namespace\" value=\"{ns}\"><button type=\"submit\"{}>{action}</button></form>",
                    if disabled { " disabled" } else { "" }
                );
            }
        }
        page.push_str("<table><tr><th>statistic</th><th>value</th></tr>\n");
        let mut collections = Vec::new();
        for (key, value) in &values {
            match value {
                Value::Array(_) | Value::Object(_) => collections.push((key, value)),
                scalar => {
                    let _ = writeln!(
                        page,
                        "<tr><th>{}</th><td>{}</td></tr>",
                        escape(key),
                        cell(scalar)
                    );
                }
            }
        }
        page.push_str("</table>\n");
        for (key, value) in collections {
            let _ = writeln!(page, "<h3>{}</h3>", escape(key));
            render_collection(&mut page, value);
        }
        page.push_str("</section>\n");
    }
    page.push_str("</body></html>\n");
    page
}

fn render_collection(page: &mut String, value: &Value) {
    let rows: Vec<(Option<&str>, &Value)> = match value {
        Value::Array(items) => items.iter().map(|v| (None, v)).collect(),
        Value::Object(map) => map.iter().map(|(k, v)| (Some(k.as_str()), v)).collect(),
        _ => return,
    };
    let keyed = matches!(value, Value::Object(_));
    let mut columns: Vec<&str> = Vec::new();
    for (_, row) in &rows {
        if let Value::Object(fields) = row {
            for k in fields.keys() {
                if !columns.contains(&k.as_str()) {
                    columns.push(k);
                }
            }
        }
    }
    page.push_str("<table><tr>");
    if keyed {
        page.push_str("<th>id</th>");
    }
    if columns.is_empty() {
        page.push_str("<th>value</th>");
    }
    for c in &columns {
        let _ = write!(page, "<th>{}</th>", escape(c));
    }
    page.push_str("</tr>\n");
    for (id, row) in rows {
        page.push_str("<tr>");
        if let Some(id) = id {
            let _ = write!(page, "<td>{}</td>", escape(id));
        }
        match row {
            Value::Object(fields) => {
                for c in &columns {
                    let _ = write!(
                        page,
                        "<td>{}</td>",
                        fields.get(*c).map(cell).unwrap_or_default()
                    );
                }
            }
            other => {
                let _ = write!(page, "<td>{}</td>", cell(other));
            }
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_special_character() {
        assert_eq!(
            escape("<script>\"x\"&'y'`</script>"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&#96;&lt;/script&gt;"
        );
    }
}
