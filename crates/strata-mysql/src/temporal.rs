//! MySQL's binary temporal formats (binlog row images) → exact values.
//!
//! Decoded here rather than by `mysql_common` because its TIME(1)/TIME(2) decoder
//! underflows on negative fractional values, and because TIMESTAMP must become an instant
//! in UTC without any server or client time zone in between.

use strata_core::{Date, DateTime, Time, Value};

/// A reader over the bytes of one row image.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.buf.len() < n {
            return Err(format!(
                "row image ends early: {n} bytes needed, {} left",
                self.buf.len()
            ));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// An unsigned little-endian integer of `n` (1–8) bytes.
    pub(crate) fn le(&mut self, n: usize) -> Result<u64, String> {
        let bytes = self.take(n)?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0_u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// An unsigned big-endian integer of `n` (1–8) bytes.
    pub(crate) fn be(&mut self, n: usize) -> Result<u64, String> {
        let bytes = self.take(n)?;
        Ok(bytes
            .iter()
            .fold(0_u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// A MySQL length-encoded integer.
    pub(crate) fn lenenc(&mut self) -> Result<u64, String> {
        match self.le(1)? {
            x @ 0..=0xfa => Ok(x),
            0xfc => self.le(2),
            0xfd => self.le(3),
            0xfe => self.le(8),
            other => Err(format!("invalid length-encoded integer prefix {other:#x}")),
        }
    }
}

/// Bytes taken by the fractional part of a DATETIME2/TIMESTAMP2/TIME2 of precision `fsp`.
fn frac_bytes(fsp: u8) -> usize {
    usize::from(fsp).div_ceil(2)
}

/// Sign-extends the low `bits` bits of `v`.
fn sign_extend(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// DATE: 3 bytes little-endian, `day | month << 5 | year << 9`.
pub(crate) fn date(c: &mut Cursor<'_>) -> Result<Value, String> {
    let v = c.le(3)?;
    Ok(Value::Date(Date {
        year: (v >> 9) as u16,
        month: ((v >> 5) & 15) as u8,
        day: (v & 31) as u8,
    }))
}

/// DATETIME2(fsp): 5 bytes big-endian with a sign bit, then the fraction.
pub(crate) fn datetime2(c: &mut Cursor<'_>, fsp: u8) -> Result<Value, String> {
    const DATETIMEF_INT_OFS: i64 = 0x80_0000_0000;
    let int_part = c.be(5)? as i64 - DATETIMEF_INT_OFS;
    let micros = fraction(c, fsp)?;
    // Valid DATETIMEs are never negative; take the magnitude as the server does.
    let int_part = int_part.unsigned_abs();
    let ymd = int_part >> 17;
    let ym = ymd >> 5;
    let hms = int_part & 0x1_FFFF;
    Ok(Value::DateTime(DateTime {
        date: Date {
            year: (ym / 13) as u16,
            month: (ym % 13) as u8,
            day: (ymd & 31) as u8,
        },
        hour: (hms >> 12) as u8,
        minute: ((hms >> 6) & 63) as u8,
        second: (hms & 63) as u8,
        micros: micros.unsigned_abs() as u32,
    }))
}

/// The fraction of DATETIME2/TIMESTAMP2 in microseconds (big-endian, signed as stored).
fn fraction(c: &mut Cursor<'_>, fsp: u8) -> Result<i64, String> {
    Ok(match frac_bytes(fsp) {
        0 => 0,
        1 => c.be(1)? as i64 * 10_000,
        2 => sign_extend(c.be(2)?, 16) * 100,
        _ => sign_extend(c.be(3)?, 24),
    })
}

/// TIMESTAMP2(fsp): seconds since the epoch (4 bytes big-endian), then the fraction. The
/// instant is in UTC whatever the server's time zone; 0 is MySQL's zero timestamp.
pub(crate) fn timestamp2(c: &mut Cursor<'_>, fsp: u8) -> Result<Value, String> {
    let secs = c.be(4)? as i64;
    let micros = match frac_bytes(fsp) {
        0 => 0,
        1 => c.be(1)? as i64 * 10_000,
        2 => c.be(2)? as i64 * 100,
        _ => c.be(3)? as i64,
    };
    Ok(timestamp_value(secs, micros))
}

/// Old TIMESTAMP: 4 bytes little-endian seconds.
pub(crate) fn timestamp_old(c: &mut Cursor<'_>) -> Result<Value, String> {
    let secs = c.le(4)? as i64;
    Ok(timestamp_value(secs, 0))
}

fn timestamp_value(secs: i64, micros: i64) -> Value {
    if secs == 0 && micros == 0 {
        Value::Timestamp(None)
    } else {
        Value::Timestamp(Some(secs * 1_000_000 + micros))
    }
}

/// TIME2(fsp): a signed packed duration. Mirrors `my_time_packed_from_binary`, including
/// the borrow for negative values with a fraction of 1–4 digits.
pub(crate) fn time2(c: &mut Cursor<'_>, fsp: u8) -> Result<Value, String> {
    const TIMEF_INT_OFS: i64 = 0x80_0000;
    const TIMEF_OFS: i64 = 0x8000_0000_0000;
    let packed: i64 = match frac_bytes(fsp) {
        0 => (c.be(3)? as i64 - TIMEF_INT_OFS) << 24,
        1 => {
            let mut int_part = c.be(3)? as i64 - TIMEF_INT_OFS;
            let mut frac = c.be(1)? as i64;
            if int_part < 0 && frac > 0 {
                int_part += 1;
                frac -= 0x100;
            }
            (int_part << 24) + frac * 10_000
        }
        2 => {
            let mut int_part = c.be(3)? as i64 - TIMEF_INT_OFS;
            let mut frac = c.be(2)? as i64;
            if int_part < 0 && frac > 0 {
                int_part += 1;
                frac -= 0x1_0000;
            }
            (int_part << 24) + frac * 100
        }
        _ => c.be(6)? as i64 - TIMEF_OFS,
    };
    Ok(Value::Time(time_from_packed(packed)))
}

fn time_from_packed(packed: i64) -> Time {
    let negative = packed < 0;
    let abs = packed.unsigned_abs();
    let hms = abs >> 24;
    Time {
        negative,
        hours: ((hms >> 12) % 1024) as u16,
        minutes: ((hms >> 6) % 64) as u8,
        seconds: (hms % 64) as u8,
        micros: (abs % (1 << 24)) as u32,
    }
}

/// Old TIME: 3 bytes little-endian, signed `HHMMSS`.
pub(crate) fn time_old(c: &mut Cursor<'_>) -> Result<Value, String> {
    let v = sign_extend(c.le(3)?, 24);
    let abs = v.unsigned_abs();
    Ok(Value::Time(Time {
        negative: v < 0,
        hours: (abs / 10_000) as u16,
        minutes: (abs / 100 % 100) as u8,
        seconds: (abs % 100) as u8,
        micros: 0,
    }))
}

/// Old DATETIME: 8 bytes little-endian `YYYYMMDDHHMMSS`.
pub(crate) fn datetime_old(c: &mut Cursor<'_>) -> Result<Value, String> {
    let v = c.le(8)?;
    let (d, t) = (v / 1_000_000, v % 1_000_000);
    Ok(Value::DateTime(DateTime {
        date: Date {
            year: (d / 10_000) as u16,
            month: (d / 100 % 100) as u8,
            day: (d % 100) as u8,
        },
        hour: (t / 10_000) as u8,
        minute: (t / 100 % 100) as u8,
        second: (t % 100) as u8,
        micros: 0,
    }))
}

/// YEAR: one byte, 0 for `0000`, else the year minus 1900.
pub(crate) fn year(c: &mut Cursor<'_>) -> Result<Value, String> {
    let v = c.le(1)? as u16;
    Ok(Value::Year(if v == 0 { 0 } else { 1900 + v }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn t(negative: bool, hours: u16, minutes: u8, seconds: u8, micros: u32) -> Value {
        Value::Time(Time {
            negative,
            hours,
            minutes,
            seconds,
            micros,
        })
    }

    /// MySQL's `TIME_to_longlong_time_packed` + `my_time_packed_to_binary`, for round trips.
    fn encode_time2(negative: bool, h: i64, m: i64, s: i64, us: i64, fsp: u8) -> Vec<u8> {
        let hms = (h << 12) | (m << 6) | s;
        let mut packed = (hms << 24) + us;
        if negative {
            packed = -packed;
        }
        let int_part = packed >> 24;
        // C's `%` truncates toward zero.
        let frac_part = packed - ((packed / (1 << 24)) * (1 << 24));
        let mut out = Vec::new();
        let int3 = |v: i64| {
            let u = (v + 0x80_0000) as u32;
            vec![(u >> 16) as u8, (u >> 8) as u8, u as u8]
        };
        match frac_bytes(fsp) {
            0 => out.extend(int3(int_part)),
            1 => {
                out.extend(int3(int_part));
                out.push((frac_part / 10_000) as i8 as u8);
            }
            2 => {
                out.extend(int3(int_part));
                let f = (frac_part / 100) as i16 as u16;
                out.extend([(f >> 8) as u8, f as u8]);
            }
            _ => {
                let u = (packed + 0x8000_0000_0000) as u64;
                out.extend((0..6).rev().map(|i| (u >> (8 * i)) as u8));
            }
        }
        out
    }

    #[test]
    fn negative_fractional_times_decode_at_every_precision() {
        for fsp in 0..=6_u8 {
            let scale = 10_i64.pow(6 - u32::from(fsp));
            let us = if fsp == 0 { 0 } else { 500_000 / scale * scale };
            for (neg, h, m, s) in [(true, 0, 0, 1), (true, 838, 59, 58), (false, 12, 34, 56)] {
                let bytes = encode_time2(neg, h, m, s, us, fsp);
                let v = time2(&mut Cursor::new(&bytes), fsp).unwrap();
                assert_eq!(
                    v,
                    t(neg, h as u16, m as u8, s as u8, us as u32),
                    "fsp {fsp}"
                );
            }
        }
    }

    #[test]
    fn zero_timestamp_has_no_instant() {
        let v = timestamp2(&mut Cursor::new(&[0, 0, 0, 0]), 0).unwrap();
        assert_eq!(v, Value::Timestamp(None));
        let v = timestamp2(&mut Cursor::new(&[0, 0, 0, 1, 0x01, 0x86, 0x9f]), 6).unwrap();
        assert_eq!(v, Value::Timestamp(Some(1_099_999)));
    }

    #[test]
    fn dates_keep_zero_parts() {
        let v = date(&mut Cursor::new(&[0, 0, 0])).unwrap();
        assert_eq!(
            v,
            Value::Date(Date {
                year: 0,
                month: 0,
                day: 0
            })
        );
    }

    #[test]
    fn short_images_are_errors_not_panics() {
        assert!(datetime2(&mut Cursor::new(&[1, 2]), 6).is_err());
        assert!(Cursor::new(&[0xfb]).lenenc().is_err());
    }
}
