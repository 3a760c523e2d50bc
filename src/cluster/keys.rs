//! The Redis keys of one service, all under the hash tag `{service}`.

/// The keys of one service.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    /// The keys of `service` (already checked: letters, digits, `-`, `_`, `.`).
    pub(crate) fn new(service: &str) -> Self {
        Self {
            prefix: format!("tower-stats:{{{service}}}"),
        }
    }

    /// The sorted set of boot ids by the Redis time of their last publish.
    pub(crate) fn instances(&self) -> String {
        format!("{}:instances", self.prefix)
    }

    /// The last publish of the instance `boot_id`.
    pub(crate) fn snapshot(&self, boot_id: &str) -> String {
        format!("{}:snapshot:{boot_id}", self.prefix)
    }

    /// The stream of control commands.
    pub(crate) fn control(&self) -> String {
        format!("{}:control", self.prefix)
    }
}

/// Whether `member` of the instances set can be a boot id (16 hex digits): anything else in
/// that set was not written by an instance and is ignored.
pub(crate) fn is_boot_id(member: &str) -> bool {
    member.len() == 16 && member.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_service_shares_its_hash_tag() {
        let keys = Keys::new("shop");
        for key in [
            keys.instances(),
            keys.snapshot("0123456789abcdef"),
            keys.control(),
        ] {
            assert!(key.starts_with("tower-stats:{shop}:"), "{key}");
        }
        assert!(is_boot_id("0123456789abcdef"));
        assert!(!is_boot_id("../../etc"));
        assert!(!is_boot_id("0123456789abcdeg"));
    }
}
