//! Application namespaces on the dashboard, shown generically as CherryPy's cpstats does: a
//! table of scalars, then one table per collection.

use std::collections::BTreeSet;

use maud::{html, Markup};
use serde_json::Value;

use super::cells::{more_rows, text, MAX_ROWS};
use super::dashboard::namespace_head;
use super::options::{DashboardOptions, Formatting};

/// An application namespace: its scalars, then one table per collection.
pub(super) fn app_section(
    name: &str,
    enabled: bool,
    values: &serde_json::Map<String, Value>,
    options: &DashboardOptions,
    formatting: &Formatting,
    now: f64,
) -> Markup {
    let mut scalars: Vec<(&String, &Value)> = Vec::new();
    let mut collections: Vec<(&String, &Value)> = Vec::new();
    for (key, value) in values {
        if key == "enabled" || formatting.hidden(name, key) {
            continue;
        }
        match value {
            Value::Array(_) | Value::Object(_) => collections.push((key, value)),
            _ => scalars.push((key, value)),
        }
    }
    scalars.sort_by(|a, b| a.0.cmp(b.0));
    collections.sort_by(|a, b| a.0.cmp(b.0));
    html! {
        section.namespace.app {
            (namespace_head(name, enabled, options))
            @if scalars.is_empty() && collections.is_empty() {
                p.empty { "No values." }
            }
            @if !scalars.is_empty() {
                table.scalars {
                    tbody {
                        @for row in scalars.chunks(3) {
                            tr {
                                @for (key, value) in row {
                                    th { (text(key)) }
                                    td.num { (formatting.show(name, key, key, value, now)) }
                                }
                                @for _ in row.len()..3 { th {} td {} }
                            }
                        }
                    }
                }
            }
            @for (key, value) in &collections {
                h3 { (text(key)) }
                (collection_view(name, key, value, formatting, now))
            }
        }
    }
}

/// A collection: a list (rows in order) or a map (an `id` column, rows by id); columns are the
/// sorted union of the records' keys.
fn collection_view(
    namespace: &str,
    name: &str,
    value: &Value,
    formatting: &Formatting,
    now: f64,
) -> Markup {
    let rows: Vec<(Option<&str>, &Value)> = match value {
        Value::Array(items) => items.iter().map(|v| (None, v)).collect(),
        Value::Object(map) => map.iter().map(|(k, v)| (Some(k.as_str()), v)).collect(),
        _ => Vec::new(),
    };
    let keyed = matches!(value, Value::Object(_));
    let mut columns: BTreeSet<&str> = BTreeSet::new();
    let mut plain = false;
    for (_, row) in &rows {
        match row {
            Value::Object(fields) => columns.extend(fields.keys().map(String::as_str)),
            _ => plain = true,
        }
    }
    let columns: Vec<(&str, String)> = columns
        .into_iter()
        .map(|c| (c, format!("{name}.{c}")))
        .filter(|(_, rule)| !formatting.hidden(namespace, rule))
        .collect();
    // A column whose values are all numbers gets a right-aligned heading too.
    let numeric = |column: &str| {
        rows.iter()
            .filter_map(|(_, row)| row.get(column))
            .all(Value::is_number)
    };
    html! {
        @if rows.is_empty() {
            p.empty { "Empty." }
        } @else {
            table.records.collection {
                thead { tr {
                    @if keyed { th { "id" } }
                    @for (column, _) in &columns {
                        th class=[numeric(column).then_some("num")] { (text(column)) }
                    }
                    @if plain { th { "value" } }
                } }
                tbody {
                    @for (id, row) in rows.iter().take(MAX_ROWS) {
                        tr {
                            @if let Some(id) = id { td.key { (text(id)) } }
                            @for (column, rule) in &columns {
                                @let cell = match row {
                                    Value::Object(fields) => fields.get(*column),
                                    _ => None,
                                };
                                @match cell {
                                    Some(v) => td class=(cell_class(v)) { (formatting.show(namespace, rule, column, v, now)) },
                                    None => td {},
                                }
                            }
                            @if plain {
                                @match row {
                                    Value::Object(_) => td {},
                                    v => td class=(cell_class(v)) { (formatting.show(namespace, name, name, v, now)) },
                                }
                            }
                        }
                    }
                }
            }
            (more_rows(MAX_ROWS, rows.len()))
        }
    }
}

/// The class of a value's cell: numbers are right-aligned.
fn cell_class(value: &Value) -> &'static str {
    if value.is_number() {
        "num"
    } else {
        "text"
    }
}
