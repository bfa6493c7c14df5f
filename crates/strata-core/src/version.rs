//! Write versions: the order that decides which of two writes to a row wins.
//!
//! A target keeps a write only when its version is greater than the stored one; equal is a
//! no-op. The version is the change's binlog order (see [`binlog_order`]) or, for tables with
//! a guard column, that column's value first and the binlog order second.

use std::fmt;

/// Bits of the binlog order taken by the offset inside a file (times [`SLOTS_PER_BYTE`]).
const IN_FILE_BITS: u32 = 44;
/// Version slots per binlog byte: a row image takes at least one byte of its event, so the
/// changes of one event never run into the next event's slots.
pub const SLOTS_PER_BYTE: u64 = 2048;

/// The total order of a change in the binlog, as one `u64` below 2^63 (so every store can
/// hold it as a signed 64-bit integer, and Elasticsearch as an external version).
///
/// `file_seq` (the file name's numeric suffix, < 2^19) takes the high bits; then the
/// event's byte offset in the file (< 8 GiB) times 2048; then `index`, the change's ordinal
/// inside the event. The sum saturates inside the file's range instead of wrapping.
pub fn binlog_order(file_seq: u64, event_pos: u64, index: u64) -> u64 {
    let in_file = event_pos
        .saturating_mul(SLOTS_PER_BYTE)
        .saturating_add(index)
        .min((1 << IN_FILE_BITS) - 1);
    (file_seq.min((1 << 19) - 1) << IN_FILE_BITS) | in_file
}

/// The version a write carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// The guard column's value (microseconds for temporal columns, the number for integer
    /// ones), when the table has a guard. Compared first.
    pub guard: Option<i64>,
    /// The binlog order ([`binlog_order`]).
    pub order: u64,
}

impl Version {
    pub fn from_order(order: u64) -> Self {
        Version { guard: None, order }
    }

    /// A fixed-width text form whose byte order is the version order, for stores that
    /// compare versions as strings (Redis scripts use doubles, which cannot hold 63 bits).
    pub fn sortable(&self) -> String {
        // Map i64 onto u64 preserving order by flipping the sign bit.
        let guard = self.guard.map_or(0, |g| (g as u64) ^ (1 << 63));
        format!(
            "{}{:020}{:020}",
            u8::from(self.guard.is_some()),
            guard,
            self.order
        )
    }

    /// The single integer a store with one signed 64-bit version slot keeps
    /// (Elasticsearch `external_gte`): the guard when there is one, else the order.
    pub fn as_external(&self) -> i64 {
        match self.guard {
            Some(g) => g.max(0),
            None => self.order as i64,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.guard {
            Some(g) => write!(f, "{g}/{}", self.order),
            None => write!(f, "{}", self.order),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_monotonic_across_rotation_and_events() {
        let a = binlog_order(1, 4_000_000_000, 7);
        let b = binlog_order(1, 4_000_000_001, 0);
        let c = binlog_order(2, 4, 0);
        assert!(a < b && b < c);
        assert!(binlog_order(999_999, 8_000_000_000, 5000) < 1 << 63);
    }

    #[test]
    fn sortable_text_orders_like_versions() {
        let vs = [
            Version {
                guard: None,
                order: 5,
            },
            Version {
                guard: None,
                order: 60,
            },
            Version {
                guard: Some(-3),
                order: 1,
            },
            Version {
                guard: Some(2),
                order: 0,
            },
            Version {
                guard: Some(2),
                order: 9,
            },
        ];
        for w in vs.windows(2) {
            assert!(w[0] < w[1]);
            assert!(w[0].sortable() < w[1].sortable(), "{:?} {:?}", w[0], w[1]);
        }
    }
}
