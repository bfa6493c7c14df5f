//! Counters of what the source read, decoded and skipped, shared with its consumer.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Live counters of one [`crate::BinlogSource`]; cheap to read at any time.
#[derive(Debug, Default)]
pub struct SourceStats {
    events: AtomicU64,
    binlog_bytes: AtomicU64,
    rows_decoded: AtomicU64,
    rows_events_skipped: AtomicU64,
    transactions: AtomicU64,
    json_diffs_applied: AtomicU64,
    in_flight: AtomicUsize,
    in_flight_high_water: AtomicUsize,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceCounters {
    /// Binlog events received (events inside compressed transactions included).
    pub events: u64,
    /// Bytes of binlog received (compressed transactions count their compressed size).
    pub binlog_bytes: u64,
    /// Row changes decoded and handed to the channel.
    pub rows_decoded: u64,
    /// Rows events skipped without decoding because their table is not wanted.
    pub rows_events_skipped: u64,
    /// Transactions committed (Commit events emitted).
    pub transactions: u64,
    /// MySQL partial JSON updates applied to a before image.
    pub json_diffs_applied: u64,
    /// Row changes decoded but not yet taken by the consumer.
    pub in_flight: usize,
    /// The most row changes ever decoded but not yet consumed at once; stays within
    /// `channel_capacity + 1` (see [`crate::BinlogSource`]).
    pub in_flight_high_water: usize,
}

impl SourceStats {
    /// The counters now.
    pub fn snapshot(&self) -> SourceCounters {
        SourceCounters {
            events: self.events.load(Ordering::Relaxed),
            binlog_bytes: self.binlog_bytes.load(Ordering::Relaxed),
            rows_decoded: self.rows_decoded.load(Ordering::Relaxed),
            rows_events_skipped: self.rows_events_skipped.load(Ordering::Relaxed),
            transactions: self.transactions.load(Ordering::Relaxed),
            json_diffs_applied: self.json_diffs_applied.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            in_flight_high_water: self.in_flight_high_water.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn event(&self, binlog_bytes: u64) {
        self.events.fetch_add(1, Ordering::Relaxed);
        self.binlog_bytes.fetch_add(binlog_bytes, Ordering::Relaxed);
    }

    pub(crate) fn rows_event_skipped(&self) {
        self.rows_events_skipped.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn transaction(&self) {
        self.transactions.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn json_diff_applied(&self) {
        self.json_diffs_applied.fetch_add(1, Ordering::Relaxed);
    }

    /// A change was decoded and is about to be handed over.
    pub(crate) fn change_decoded(&self) {
        self.rows_decoded.fetch_add(1, Ordering::Relaxed);
        let now = self.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        self.in_flight_high_water.fetch_max(now, Ordering::AcqRel);
    }

    /// The consumer took a change (or the change was dropped with the channel).
    pub(crate) fn change_consumed(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}
