//! The revocation index: which tokens are no longer valid.
//!
//! Keystone scans every revocation event for every validation, so its cost
//! grows with the number of events. Here each kind of event is a hash map
//! keyed by what it revokes (an audit id, a user, a project), so a check is a
//! few lookups however many events pile up. Events older than the longest
//! token lifetime can match no live token and are pruned.

use std::collections::HashMap;

use crate::token::{audit_id_str, Payload};

/// One revocation, as stored in `revocation_events`.
#[derive(Clone, Debug, Default)]
pub struct Event {
    pub audit_id: Option<String>,
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    /// Tokens issued at or before this time (Unix µs) are revoked.
    pub issued_before: i64,
}

#[derive(Default)]
pub struct RevocationIndex {
    by_audit: HashMap<String, i64>,
    by_user: HashMap<String, i64>,
    by_project: HashMap<String, i64>,
}

impl RevocationIndex {
    /// Adds an event; true if it revoked anything not revoked before.
    pub fn add(&mut self, e: &Event) -> bool {
        let put = |m: &mut HashMap<String, i64>, k: &Option<String>| -> bool {
            let Some(k) = k else { return false };
            match m.get_mut(k) {
                Some(v) if *v >= e.issued_before => false,
                Some(v) => {
                    *v = e.issued_before;
                    true
                }
                None => {
                    m.insert(k.clone(), e.issued_before);
                    true
                }
            }
        };
        let a = put(&mut self.by_audit, &e.audit_id);
        let u = put(&mut self.by_user, &e.user_id);
        let p = put(&mut self.by_project, &e.project_id);
        a || u || p
    }

    pub fn is_revoked(&self, p: &Payload) -> bool {
        let hit = |m: &HashMap<String, i64>, k: &str| m.get(k).is_some_and(|t| p.issued_at <= *t);
        if p.audit_ids
            .iter()
            .any(|a| self.by_audit.contains_key(&audit_id_str(a)))
        {
            return true;
        }
        if hit(&self.by_user, &p.user_id) {
            return true;
        }
        if let crate::token::ScopeRef::Project(id) = &p.scope {
            if hit(&self.by_project, id) {
                return true;
            }
        }
        false
    }

    /// Drops events that can no longer match a live token.
    pub fn prune(&mut self, older_than: i64) {
        for m in [&mut self.by_audit, &mut self.by_user, &mut self.by_project] {
            m.retain(|_, t| *t >= older_than);
        }
    }

    pub fn len(&self) -> usize {
        self.by_audit.len() + self.by_user.len() + self.by_project.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{new_audit_id, ScopeRef};

    fn token(user: &str, issued_at: i64) -> Payload {
        Payload {
            methods: 1,
            user_id: user.into(),
            scope: ScopeRef::Project("p".into()),
            issued_at,
            expires_at: issued_at + 10,
            audit_ids: vec![new_audit_id()],
            app_cred_id: None,
        }
    }

    #[test]
    fn revokes_by_audit_user_and_project() {
        let mut idx = RevocationIndex::default();
        let t = token("u", 100);
        assert!(!idx.is_revoked(&t));
        idx.add(&Event {
            audit_id: Some(audit_id_str(&t.audit_ids[0])),
            issued_before: 100,
            ..Default::default()
        });
        assert!(idx.is_revoked(&t));
        let t2 = token("u", 100);
        assert!(!idx.is_revoked(&t2));
        idx.add(&Event {
            user_id: Some("u".into()),
            issued_before: 150,
            ..Default::default()
        });
        assert!(idx.is_revoked(&t2));
        assert!(
            !idx.is_revoked(&token("u", 151)),
            "tokens issued later stay valid"
        );
        idx.add(&Event {
            project_id: Some("p".into()),
            issued_before: 200,
            ..Default::default()
        });
        assert!(idx.is_revoked(&token("v", 199)));
        idx.prune(180);
        assert_eq!(
            idx.len(),
            1,
            "only the project event is recent enough to keep"
        );
    }

    #[test]
    fn many_events_do_not_change_the_answer() {
        let mut idx = RevocationIndex::default();
        for i in 0..100_000 {
            idx.add(&Event {
                audit_id: Some(format!("a{i}")),
                issued_before: i,
                ..Default::default()
            });
        }
        assert!(!idx.is_revoked(&token("u", 5)));
    }
}
