//! Caps and cleans strings that come from requests or from the application before they are stored.

/// Returns `s` with control characters replaced by U+FFFD and at most `cap` characters,
/// ending in `…` when it was cut.
///
/// Control characters are those of [`char::is_control`], plus the characters that change
/// how the text around them is shown: the bidirectional formatting characters (U+061C,
/// U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), which can make `/x/\u{202E}gnp.exe` read
/// as `/x/exe.png`, and the line and paragraph separators (U+2028, U+2029).
pub(crate) fn clean(s: &str, cap: usize) -> String {
    let mut out = String::with_capacity(s.len().min(cap.saturating_mul(4)));
    for (n, c) in s.chars().enumerate() {
        if n >= cap {
            out.push('…');
            return out;
        }
        out.push(if is_hidden(c) { '\u{FFFD}' } else { c });
    }
    out
}

/// Whether `c` is replaced by [`clean`].
#[inline]
pub(crate) fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
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
    s.len() > cap || s.chars().any(is_hidden)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_control_characters() {
        assert_eq!(clean("a\nb\u{1b}[0m", 100), "a\u{FFFD}b\u{FFFD}[0m");
    }

    #[test]
    fn replaces_bidi_controls_and_separators() {
        assert_eq!(clean("/x/\u{202E}gnp.exe", 100), "/x/\u{FFFD}gnp.exe");
        let hidden = "\u{200E}\u{200F}\u{2028}\u{2029}\u{202A}\u{202B}\u{202C}\u{202D}\u{202E}\
                      \u{2066}\u{2067}\u{2068}\u{2069}\u{061C}";
        assert!(needs_cleaning(hidden, 100));
        assert_eq!(clean(hidden, 100), "\u{FFFD}".repeat(14));
        // Neighbours that only change spacing or joining are kept.
        for kept in ["\u{200D}", "\u{202F}", "\u{2065}", "\u{206A}", "\u{2027}"] {
            assert!(!needs_cleaning(kept, 100), "{kept:?}");
            assert_eq!(clean(kept, 100), kept);
        }
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
