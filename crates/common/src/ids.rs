//! Resource ids.
//!
//! Keystone uses 32 lowercase hex characters (a UUID4 without dashes); Nova,
//! Neutron, Glance and Cinder use dashed UUIDs. Both forms come from here so
//! every service generates ids the same way.

/// A Keystone-style id: 32 lowercase hex characters.
pub fn hex_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A dashed UUID, as Nova, Neutron, Glance and Cinder use.
pub fn uuid_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// True when `s` looks like a Keystone id (32 hex characters).
pub fn is_hex_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids_are_32_hex_and_unique() {
        let a = hex_id();
        let b = hex_id();
        assert!(is_hex_id(&a));
        assert_ne!(a, b);
        assert!(!is_hex_id("admin"));
        assert_eq!(uuid_id().len(), 36);
    }
}
