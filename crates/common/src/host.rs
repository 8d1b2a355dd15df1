//! When a compute host counts as up: the one rule behind compute's
//! services and hypervisors, the scheduler, and network's agents.

/// A host is down when its last heartbeat is older than this.
pub const DOWN_AFTER_MICROS: i64 = 50_000_000;

/// Up: not forced down, and heartbeated within `down_after` µs of `now`.
pub fn is_up(heartbeat_at: i64, forced_down: i64, now: i64, down_after: i64) -> bool {
    forced_down == 0 && now - heartbeat_at <= down_after
}
