//! How events are framed on the wire: event kinds, positions past 4 GiB, checksums and
//! column bitmaps.

use mysql_common::binlog::consts::EventType;
use mysql_common::binlog::events::Event;

/// MySQL 8.0.26+ heartbeat, used for positions past 4 GiB; not parsed by `mysql_common`.
pub(crate) const HEARTBEAT_V2_EVENT: u8 = 41;

/// HEARTBEAT or HEARTBEAT_V2: the server is idle.
pub(crate) fn is_heartbeat(t: u8) -> bool {
    t == EventType::HEARTBEAT_EVENT as u8 || t == HEARTBEAT_V2_EVENT
}

/// WRITE/UPDATE/DELETE rows events, v1 and v2, and MySQL's PARTIAL_UPDATE_ROWS.
pub(crate) fn is_rows_event(t: u8) -> bool {
    [
        EventType::WRITE_ROWS_EVENT_V1,
        EventType::UPDATE_ROWS_EVENT_V1,
        EventType::DELETE_ROWS_EVENT_V1,
        EventType::WRITE_ROWS_EVENT,
        EventType::UPDATE_ROWS_EVENT,
        EventType::DELETE_ROWS_EVENT,
        EventType::PARTIAL_UPDATE_ROWS_EVENT,
    ]
    .iter()
    .any(|e| *e as u8 == t)
}

/// Packs a column bitmap back into bytes (bit `i` of the table's columns at byte `i / 8`).
pub(crate) fn bitmap_bytes<B: std::ops::Deref<Target = bool>>(
    bits: impl Iterator<Item = B>,
) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, b) in bits.enumerate() {
        if i % 8 == 0 {
            out.push(0);
        }
        if *b {
            out[i / 8] |= 1 << (i % 8);
        }
    }
    out
}

/// True when the last 4 bytes of the event's data are the CRC32 of everything before them
/// (the event reader did not know checksums were on, so it left them in the data).
pub(crate) fn ends_with_crc32(event: &Event) -> bool {
    use mysql_common::proto::MySerialize;
    let data = event.data();
    if data.len() < 4 {
        return false;
    }
    let (body, tail) = data.split_at(data.len() - 4);
    let mut bytes = Vec::with_capacity(19 + data.len());
    event.header().serialize(&mut bytes);
    bytes.extend_from_slice(body);
    crc32(&bytes).to_le_bytes() == tail
}

/// CRC-32 (IEEE 802.3), as binlog checksums use.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0_u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A 32-bit `log_pos` widened to 64 bits near `reference` (the previous position): files
/// past 4 GiB wrap the header field, never the real offset.
pub(crate) fn widen(log_pos: u32, reference: u64) -> u64 {
    let candidate = (reference & !0xFFFF_FFFF) | u64::from(log_pos);
    if candidate.saturating_add(1 << 31) < reference {
        candidate + (1 << 32)
    } else {
        candidate
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn log_positions_widen_past_4_gib() {
        assert_eq!(widen(1000, 4), 1000);
        assert_eq!(widen(100, (1 << 32) - 50), (1 << 32) + 100);
        assert_eq!(widen(200, (1 << 32) + 100), (1 << 32) + 200);
    }

    #[test]
    fn crc32_matches_the_reference() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn bitmaps_pack_lsb_first() {
        let bits = [true, false, false, false, false, false, false, false, true];
        assert_eq!(bitmap_bytes(bits.iter()), vec![1, 1]);
    }
}
