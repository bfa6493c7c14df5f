//! Where a change sits in the source's binlog: file and offset, and GTID sets.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A position, GTID set or start position that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PositionError {
    /// Not `FILE:POS`.
    #[error("`{0}` is not a binlog position: expected FILE:POS, e.g. binlog.000042:1337")]
    BadFilePos(String),
    /// Neither a MySQL GTID set nor a MariaDB GTID position.
    #[error("`{0}` is not a GTID set: expected MySQL `uuid:1-5[,uuid:…]` or MariaDB `domain-server-seq[,…]`")]
    BadGtid(String),
    /// None of the forms of a [`StartFrom`].
    #[error(
        "\"{0}\" is not a start position; write \"oldest\" (or \"earliest\"), \"current\" \
         (or \"latest\", \"now\"), a FILE:POS such as \"binlog.000042:4\", a MySQL GTID set \
         such as \"3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5\" or a MariaDB GTID position such \
         as \"0-1-100\""
    )]
    BadStart(String),
}

/// A binlog file name and a byte offset in it.
///
/// Ordered by the file's numeric suffix (so `binlog.1000000` follows `binlog.999999`), then
/// by offset. Offsets are 64-bit: a single huge transaction can push a file past 4 GiB.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BinlogPos {
    pub file: String,
    pub pos: u64,
}

impl BinlogPos {
    pub fn new(file: impl Into<String>, pos: u64) -> Self {
        BinlogPos {
            file: file.into(),
            pos,
        }
    }

    /// The numeric suffix of the file name (`binlog.000042` → 42); 0 when there is none.
    pub fn file_seq(&self) -> u64 {
        file_seq(&self.file)
    }
}

/// The numeric suffix of a binlog file name (`binlog.000042` → 42); 0 when there is none.
pub fn file_seq(file: &str) -> u64 {
    file.rsplit_once('.')
        .and_then(|(_, suffix)| suffix.parse().ok())
        .unwrap_or(0)
}

impl Ord for BinlogPos {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let stem = |f: &str| {
            f.rsplit_once('.')
                .map(|(s, _)| s.to_owned())
                .unwrap_or_default()
        };
        (stem(&self.file), self.file_seq(), self.pos)
            .cmp(&(stem(&other.file), other.file_seq(), other.pos))
            .then_with(|| self.file.cmp(&other.file))
    }
}

impl PartialOrd for BinlogPos {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for BinlogPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

impl FromStr for BinlogPos {
    type Err = PositionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (file, pos) = s
            .rsplit_once(':')
            .ok_or_else(|| PositionError::BadFilePos(s.to_owned()))?;
        let pos = pos
            .parse()
            .map_err(|_| PositionError::BadFilePos(s.to_owned()))?;
        if file.is_empty() {
            return Err(PositionError::BadFilePos(s.to_owned()));
        }
        Ok(BinlogPos::new(file, pos))
    }
}

/// A MySQL GTID set: for each source UUID (optionally with a tag, MySQL 8.4+), the
/// transaction numbers executed, as sorted disjoint half-open intervals `[start, end)`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MysqlGtidSet {
    sids: BTreeMap<String, Vec<(u64, u64)>>,
}

impl MysqlGtidSet {
    /// Adds one transaction `sid:gno` (`sid` is `uuid` or `uuid:tag`).
    pub fn add(&mut self, sid: &str, gno: u64) {
        self.add_interval(sid, gno, gno + 1);
    }

    fn add_interval(&mut self, sid: &str, start: u64, end: u64) {
        let ivs = self.sids.entry(sid.to_ascii_lowercase()).or_default();
        ivs.push((start, end));
        ivs.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ivs.len());
        for &(s, e) in ivs.iter() {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        *ivs = merged;
    }

    pub fn contains(&self, sid: &str, gno: u64) -> bool {
        self.sids
            .get(&sid.to_ascii_lowercase())
            .is_some_and(|ivs| ivs.iter().any(|&(s, e)| s <= gno && gno < e))
    }

    pub fn is_empty(&self) -> bool {
        self.sids.is_empty()
    }

    /// `(sid, intervals)` pairs, intervals half-open.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[(u64, u64)])> {
        self.sids.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

impl fmt::Display for MysqlGtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (sid, ivs) in &self.sids {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            f.write_str(sid)?;
            for &(s, e) in ivs {
                if e == s + 1 {
                    write!(f, ":{s}")?;
                } else {
                    write!(f, ":{s}-{}", e - 1)?;
                }
            }
        }
        Ok(())
    }
}

impl FromStr for MysqlGtidSet {
    type Err = PositionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PositionError::BadGtid(s.to_owned());
        let mut set = MysqlGtidSet::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut pieces = part.split(':');
            let uuid = pieces.next().ok_or_else(bad)?.trim();
            if uuid.len() != 36 || uuid.chars().filter(|c| *c == '-').count() != 4 {
                return Err(bad());
            }
            let mut sid = uuid.to_owned();
            let mut any = false;
            for piece in pieces {
                if piece.starts_with(|c: char| c.is_ascii_digit()) {
                    let (a, b) = match piece.split_once('-') {
                        Some((a, b)) => (a, b),
                        None => (piece, piece),
                    };
                    let a: u64 = a.parse().map_err(|_| bad())?;
                    let b: u64 = b.parse().map_err(|_| bad())?;
                    if a == 0 || b < a {
                        return Err(bad());
                    }
                    set.add_interval(&sid, a, b + 1);
                    any = true;
                } else {
                    sid = format!("{uuid}:{piece}");
                }
            }
            if !any {
                return Err(bad());
            }
        }
        Ok(set)
    }
}

/// A MariaDB GTID position: for each replication domain, the last `server-seq` applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MariaGtidPos {
    domains: BTreeMap<u32, (u32, u64)>,
}

impl MariaGtidPos {
    pub fn update(&mut self, domain: u32, server: u32, seq: u64) {
        self.domains.insert(domain, (server, seq));
    }

    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// `(domain, server, seq)` triples in domain order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32, u64)> + '_ {
        self.domains.iter().map(|(d, (s, q))| (*d, *s, *q))
    }
}

impl fmt::Display for MariaGtidPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .iter()
            .map(|(d, s, q)| format!("{d}-{s}-{q}"))
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl FromStr for MariaGtidPos {
    type Err = PositionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PositionError::BadGtid(s.to_owned());
        let mut pos = MariaGtidPos::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut it = part.split('-');
            let (Some(d), Some(srv), Some(q), None) = (it.next(), it.next(), it.next(), it.next())
            else {
                return Err(bad());
            };
            pos.update(
                d.parse().map_err(|_| bad())?,
                srv.parse().map_err(|_| bad())?,
                q.parse().map_err(|_| bad())?,
            );
        }
        Ok(pos)
    }
}

/// The executed-transactions set of either server flavour.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GtidSet {
    Mysql(MysqlGtidSet),
    MariaDb(MariaGtidPos),
}

impl fmt::Display for GtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GtidSet::Mysql(s) => s.fmt(f),
            GtidSet::MariaDb(p) => p.fmt(f),
        }
    }
}

impl FromStr for GtidSet {
    type Err = PositionError;
    /// MySQL sets contain `:`, MariaDB positions are `d-s-n` triples.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            s.parse().map(GtidSet::Mysql)
        } else {
            s.parse().map(GtidSet::MariaDb)
        }
    }
}

/// Where streaming starts on a version's first run (later runs resume from the
/// checkpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartFrom {
    /// The beginning of the oldest binlog file the server still has.
    Oldest,
    /// The server's current end: only changes committed from now on.
    Current,
    /// A binlog file and offset; must be a transaction boundary (a commit position).
    FilePos(BinlogPos),
    /// After the transactions of a GTID set (MySQL `uuid:1-5`) or a MariaDB GTID position
    /// (`0-1-9`): the first transaction not in it.
    Gtid(GtidSet),
}

impl FromStr for StartFrom {
    type Err = PositionError;

    /// `oldest` (or `earliest`), `current` (or `latest`, `now`), any case; `FILE:POS`
    /// (e.g. `binlog.000042:4`); a MySQL GTID set (`uuid:1-5[,…]`); or a MariaDB GTID
    /// position (`domain-server-seq[,…]`). Surrounding whitespace is ignored; an empty GTID
    /// set is not a start position.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let s = text.trim();
        match s.to_ascii_lowercase().as_str() {
            "oldest" | "earliest" => return Ok(StartFrom::Oldest),
            "current" | "latest" | "now" => return Ok(StartFrom::Current),
            _ => {}
        }
        // A MySQL GTID set starts with a 36-character UUID; try it before FILE:POS, which
        // `uuid:5` would also look like.
        let looks_like_uuid = s.get(..36).is_some_and(|u| u.matches('-').count() == 4);
        let start = if looks_like_uuid {
            s.parse::<MysqlGtidSet>()
                .ok()
                .filter(|set| !set.is_empty())
                .map(|set| StartFrom::Gtid(GtidSet::Mysql(set)))
        } else if s.contains(':') {
            s.parse::<BinlogPos>().ok().map(StartFrom::FilePos)
        } else {
            s.parse::<MariaGtidPos>()
                .ok()
                .filter(|pos| !pos.is_empty())
                .map(|pos| StartFrom::Gtid(GtidSet::MariaDb(pos)))
        };
        start.ok_or_else(|| PositionError::BadStart(text.to_owned()))
    }
}

impl fmt::Display for StartFrom {
    /// The canonical form, which parses back to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartFrom::Oldest => f.write_str("oldest"),
            StartFrom::Current => f.write_str("current"),
            StartFrom::FilePos(p) => p.fmt(f),
            StartFrom::Gtid(g) => g.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_positions_order_across_rotation_and_suffix_width() {
        let a: BinlogPos = "binlog.999999:4000000000".parse().unwrap();
        let b: BinlogPos = "binlog.1000000:4".parse().unwrap();
        assert!(a < b);
        let big = BinlogPos::new("binlog.000001", 5_000_000_000);
        let small = BinlogPos::new("binlog.000001", 4_000_000_000);
        assert!(small < big);
        assert_eq!(big.to_string(), "binlog.000001:5000000000");
        assert!("nocolon".parse::<BinlogPos>().is_err());
    }

    #[test]
    fn mysql_gtid_sets_merge_and_print() {
        let uuid = "3E11FA47-71CA-11E1-9E33-C80AA9429562";
        let mut set: MysqlGtidSet = format!("{uuid}:1-5:7").parse().unwrap();
        set.add(uuid, 6);
        assert_eq!(set.to_string(), format!("{}:1-7", uuid.to_lowercase()));
        assert!(set.contains(uuid, 7));
        assert!(!set.contains(uuid, 8));
        let tagged: MysqlGtidSet = format!("{uuid}:1-2:blue:1-3").parse().unwrap();
        assert_eq!(
            tagged.to_string(),
            format!("{u}:1-2,{u}:blue:1-3", u = uuid.to_lowercase())
        );
        assert!("nope:1".parse::<MysqlGtidSet>().is_err());
    }

    #[test]
    fn mariadb_positions_parse_and_print() {
        let p: GtidSet = "0-1-9,1-2-3".parse().unwrap();
        assert_eq!(p.to_string(), "0-1-9,1-2-3");
        assert!(matches!(p, GtidSet::MariaDb(_)));
        assert!("0-1".parse::<GtidSet>().is_err());
    }

    #[test]
    fn start_positions_parse_every_form() {
        let start = |s: &str| s.parse::<StartFrom>();
        assert_eq!(start("current"), Ok(StartFrom::Current));
        assert_eq!(start(" Latest "), Ok(StartFrom::Current));
        assert_eq!(start("now"), Ok(StartFrom::Current));
        assert_eq!(start("oldest"), Ok(StartFrom::Oldest));
        assert_eq!(start("EARLIEST"), Ok(StartFrom::Oldest));
        assert!(matches!(
            start("binlog.000042:4"),
            Ok(StartFrom::FilePos(p)) if p.pos == 4 && p.file == "binlog.000042"
        ));
        assert!(matches!(
            start("3e11fa47-71ca-11e1-9e33-c80aa9429562:5"),
            Ok(StartFrom::Gtid(GtidSet::Mysql(_)))
        ));
        assert!(matches!(
            start("0-1-100"),
            Ok(StartFrom::Gtid(GtidSet::MariaDb(_)))
        ));
        let err = start("yesterday").unwrap_err();
        assert_eq!(err, PositionError::BadStart("yesterday".into()));
        let msg = err.to_string();
        for form in [
            "\"current\"",
            "\"oldest\"",
            "FILE:POS",
            "MySQL GTID",
            "MariaDB GTID",
        ] {
            assert!(msg.contains(form), "{msg}");
        }
        for bad in [
            "",
            " ",
            ",",
            "binlog.000042:",
            ":4",
            "binlog:x",
            "0-1",
            "3e11fa47-71ca-11e1-9e33-c80aa9429562",
        ] {
            assert!(start(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn start_positions_print_as_they_parse() {
        for text in [
            "oldest",
            "current",
            "binlog.000042:4",
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5",
            "0-1-100,1-2-3",
        ] {
            let start: StartFrom = text.parse().unwrap();
            assert_eq!(start.to_string(), text);
            assert_eq!(start.to_string().parse::<StartFrom>().unwrap(), start);
        }
    }
}
