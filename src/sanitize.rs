//! Caps and cleans strings that come from requests or from the application before they are stored.

/// Returns `s` with control characters replaced by U+FFFD and at most `cap` characters,
/// ending in `…` when it was cut.
pub(crate) fn clean(s: &str, cap: usize) -> String {
    let mut out = String::with_capacity(s.len().min(cap.saturating_mul(4)));
    for (n, c) in s.chars().enumerate() {
        if n >= cap {
            out.push('…');
            return out;
        }
        out.push(if c.is_control() { '\u{FFFD}' } else { c });
    }
    out
}

/// Applies [`clean`] to every string (and every object key) inside a JSON value, in place.
pub(crate) fn clean_value(value: &mut serde_json::Value, cap: usize) {
    match value {
        serde_json::Value::String(s) if needs_cleaning(s, cap) => *s = clean(s, cap),
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| clean_value(v, cap)),
        serde_json::Value::Object(map) => {
            if map.keys().any(|k| needs_cleaning(k, cap)) {
                let old = std::mem::take(map);
                for (k, mut v) in old {
                    clean_value(&mut v, cap);
                    map.insert(clean(&k, cap), v);
                }
            } else {
                map.values_mut().for_each(|v| clean_value(v, cap));
            }
        }
        _ => {}
    }
}

pub(crate) fn needs_cleaning(s: &str, cap: usize) -> bool {
    s.len() > cap || s.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_control_characters() {
        assert_eq!(clean("a\nb\u{1b}[0m", 100), "a\u{FFFD}b\u{FFFD}[0m");
    }

    #[test]
    fn caps_on_character_boundaries() {
        assert_eq!(clean("ééééé", 3), "ééé…");
        assert_eq!(clean("abc", 3), "abc");
        assert_eq!(clean("", 0), "");
    }

    #[test]
    fn cleans_nested_values() {
        let mut v = serde_json::json!({"k\u{7}": ["x\ty", {"z": "long string"}]});
        clean_value(&mut v, 4);
        assert_eq!(
            v,
            serde_json::json!({"k\u{FFFD}": ["x\u{FFFD}y", {"z": "long…"}]})
        );
    }
}
