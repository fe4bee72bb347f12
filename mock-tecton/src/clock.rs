//! The mock's notion of "now": the wall clock, or a virtual clock that tests move by hand so
//! that window edges, TTL expiry and micro-batch triggers are deterministic.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A clock shared by every part of one mock instance.
#[derive(Debug, Default)]
pub struct Clock {
    virtual_now: AtomicI64,
    is_virtual: AtomicBool,
}

impl Clock {
    /// A clock that follows the system's wall clock.
    pub fn wall() -> Self {
        Self::default()
    }

    /// A virtual clock stopped at `ns` (nanoseconds since the Unix epoch).
    pub fn virtual_at(ns: i64) -> Self {
        Clock {
            virtual_now: AtomicI64::new(ns),
            is_virtual: AtomicBool::new(true),
        }
    }

    /// Now, in nanoseconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        if self.is_virtual.load(Ordering::Acquire) {
            self.virtual_now.load(Ordering::Acquire)
        } else {
            wall_now()
        }
    }

    /// Whether the clock is virtual.
    pub fn is_virtual(&self) -> bool {
        self.is_virtual.load(Ordering::Acquire)
    }

    /// Switches to a virtual clock stopped at `ns`.
    pub fn set(&self, ns: i64) {
        self.virtual_now.store(ns, Ordering::Release);
        self.is_virtual.store(true, Ordering::Release);
    }

    /// Moves a virtual clock forward by `by` nanoseconds (a wall clock becomes virtual at now+by).
    pub fn advance(&self, by: i64) -> i64 {
        if !self.is_virtual() {
            self.set(wall_now());
        }
        self.virtual_now.fetch_add(by, Ordering::AcqRel) + by
    }

    /// Returns to the wall clock.
    pub fn use_wall(&self) {
        self.is_virtual.store(false, Ordering::Release);
    }
}

/// The system's wall clock in nanoseconds since the Unix epoch.
pub fn wall_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_clock_moves_only_when_told() {
        let c = Clock::virtual_at(1_000);
        assert_eq!(c.now(), 1_000);
        assert_eq!(c.advance(500), 1_500);
        assert_eq!(c.now(), 1_500);
        c.use_wall();
        assert!(c.now() > 1_600_000_000_000_000_000);
    }
}
