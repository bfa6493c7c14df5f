//! GTIDs on the wire: MySQL UUIDs, PREVIOUS_GTIDS events and COM_BINLOG_DUMP_GTID sets.

use crate::error::SourceError;
use mysql_common::binlog::events::PreviousGtidsEvent;
use mysql_common::packets::Sid;
use std::str::FromStr;
use strata_core::{BinlogPos, MysqlGtidSet};

/// `3e11fa47-71ca-11e1-9e33-c80aa9429562`.
pub(crate) fn uuid_text(bytes: &[u8; 16]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

pub(crate) fn previous_gtids(event: &PreviousGtidsEvent<'_>) -> Result<MysqlGtidSet, SourceError> {
    let mut parts = Vec::new();
    for sid in event.sids() {
        if sid.intervals().is_empty() {
            continue;
        }
        let mut part = uuid_text(&sid.uuid());
        if let Some(tag) = sid.tag() {
            part.push(':');
            part.push_str(tag.as_str());
        }
        for iv in sid.intervals() {
            if iv.end() == iv.start() + 1 {
                part.push_str(&format!(":{}", iv.start()));
            } else {
                part.push_str(&format!(":{}-{}", iv.start(), iv.end() - 1));
            }
        }
        parts.push(part);
    }
    parts
        .join(",")
        .parse()
        .map_err(|e: strata_core::PositionError| SourceError::Decode {
            position: BinlogPos::new("", 0),
            reason: format!("PREVIOUS_GTIDS: {e}"),
        })
}

/// The GTID set in the form COM_BINLOG_DUMP_GTID takes.
pub(crate) fn mysql_sids(set: &MysqlGtidSet) -> Result<Vec<Sid<'static>>, SourceError> {
    set.iter()
        .map(|(sid, intervals)| {
            let mut text = sid.to_owned();
            for &(start, end) in intervals {
                text.push_str(&format!(":{start}-{}", end - 1));
            }
            Sid::from_str(&text)
                .map_err(|e| SourceError::Config(format!("GTID set `{text}` is not usable: {e}")))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn uuids_print_hyphenated() {
        let b = [
            0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42,
            0x95, 0x62,
        ];
        assert_eq!(uuid_text(&b), "3e11fa47-71ca-11e1-9e33-c80aa9429562");
    }

    #[test]
    fn gtid_sets_become_dump_sids() {
        let set: MysqlGtidSet = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7"
            .parse()
            .unwrap();
        let sids = mysql_sids(&set).unwrap();
        assert_eq!(sids.len(), 1);
        assert_eq!(
            sids[0].to_string(),
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7"
        );
    }
}
