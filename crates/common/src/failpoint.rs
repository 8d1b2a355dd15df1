//! Failpoints: named places in multi-step operations where a test can make
//! the process die, to prove that a restarted controller finishes or undoes
//! what was half done.
//!
//! `FERRO_FAILPOINTS=name[,name…]` in the environment arms them; reaching an
//! armed one logs it and aborts the process at once (no destructors, no
//! flushing of anything not yet committed), as a power cut or a SIGKILL
//! would. Unarmed, a failpoint costs one look at a set read once.

use std::collections::HashSet;
use std::sync::OnceLock;

fn armed() -> &'static HashSet<String> {
    static ARMED: OnceLock<HashSet<String>> = OnceLock::new();
    ARMED.get_or_init(|| {
        std::env::var("FERRO_FAILPOINTS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

/// Dies here if the failpoint `name` is armed.
pub fn hit(name: &str) {
    if armed().contains(name) {
        tracing::error!(failpoint = name, "failpoint reached: aborting the process");
        eprintln!("ferrostack: failpoint {name} reached: aborting");
        std::process::abort();
    }
}
