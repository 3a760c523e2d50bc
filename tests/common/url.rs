//! URL helpers shared by the integration tests (`mod common;`, then `common::url`).

/// Resolves a relative reference against an absolute path, as a browser does (RFC 3986 §5.2).
pub(crate) fn resolve(base: &str, reference: &str) -> String {
    if reference.starts_with('/') {
        return reference.to_owned();
    }
    let dir = &base[..=base.rfind('/').expect("absolute base")];
    let mut out: Vec<&str> = Vec::new();
    let merged = format!("{dir}{reference}");
    let segments: Vec<&str> = merged.split('/').skip(1).collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}
