//! MariaDB's own binlog events, which `mysql_common` does not parse.

use crate::temporal::Cursor;

/// ANNOTATE_ROWS: the statement text before row events (only sent when asked for).
pub(crate) const ANNOTATE_ROWS_EVENT: u8 = 160;
/// BINLOG_CHECKPOINT: marks binlog files still needed for crash recovery.
pub(crate) const BINLOG_CHECKPOINT_EVENT: u8 = 161;
/// GTID: starts an event group (a transaction, or one standalone statement).
pub(crate) const GTID_EVENT: u8 = 162;
/// GTID_LIST: the GTID state at the start of a binlog file.
pub(crate) const GTID_LIST_EVENT: u8 = 163;
/// START_ENCRYPTION: the binlog file is encrypted from here (the server decrypts for us).
pub(crate) const START_ENCRYPTION_EVENT: u8 = 164;
/// QUERY_COMPRESSED and the compressed rows events (`log_bin_compress=ON`).
pub(crate) const FIRST_COMPRESSED_EVENT: u8 = 165;
pub(crate) const LAST_COMPRESSED_EVENT: u8 = 171;

/// The group has no BEGIN/COMMIT around it (e.g. DDL).
const FL_STANDALONE: u8 = 1;
/// The event carries a group-commit id.
const FL_GROUP_COMMIT_ID: u8 = 2;

/// A MariaDB GTID event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MariaGtid {
    pub(crate) domain: u32,
    pub(crate) server: u32,
    pub(crate) seq: u64,
    /// True for a single statement without BEGIN/COMMIT (DDL).
    pub(crate) standalone: bool,
}

impl MariaGtid {
    /// `domain-server-seq`.
    pub(crate) fn text(&self) -> String {
        format!("{}-{}-{}", self.domain, self.server, self.seq)
    }
}

/// Parses a GTID event body (`server` is the event header's server id).
pub(crate) fn parse_gtid(data: &[u8], server: u32) -> Result<MariaGtid, String> {
    let mut c = Cursor::new(data);
    let seq = c.le(8)?;
    let domain = c.le(4)? as u32;
    let flags = c.le(1)? as u8;
    if flags & FL_GROUP_COMMIT_ID != 0 {
        c.le(8)?;
    }
    Ok(MariaGtid {
        domain,
        server,
        seq,
        standalone: flags & FL_STANDALONE != 0,
    })
}

/// Parses a GTID_LIST event body into `(domain, server, seq)` triples.
pub(crate) fn parse_gtid_list(data: &[u8]) -> Result<Vec<(u32, u32, u64)>, String> {
    let mut c = Cursor::new(data);
    // The low 28 bits are the count; the high 4 are flags.
    let count = (c.le(4)? & 0x0fff_ffff) as usize;
    let mut list = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let domain = c.le(4)? as u32;
        let server = c.le(4)? as u32;
        let seq = c.le(8)?;
        list.push((domain, server, seq));
    }
    Ok(list)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn gtid_events_parse() {
        let mut data = 42_u64.to_le_bytes().to_vec();
        data.extend(7_u32.to_le_bytes());
        data.push(FL_STANDALONE | FL_GROUP_COMMIT_ID);
        data.extend(99_u64.to_le_bytes());
        let g = parse_gtid(&data, 3).unwrap();
        assert_eq!(g.text(), "7-3-42");
        assert!(g.standalone);
    }

    #[test]
    fn gtid_lists_parse() {
        let mut data = 2_u32.to_le_bytes().to_vec();
        for (d, s, q) in [(0_u32, 1_u32, 9_u64), (1, 2, 3)] {
            data.extend(d.to_le_bytes());
            data.extend(s.to_le_bytes());
            data.extend(q.to_le_bytes());
        }
        assert_eq!(parse_gtid_list(&data).unwrap(), vec![(0, 1, 9), (1, 2, 3)]);
        assert!(parse_gtid_list(&[1, 0, 0, 0]).is_err());
    }
}
