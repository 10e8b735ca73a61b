//! Argument checks, done before any statement is sent.

use chrono::{DateTime, Datelike, SubsecRound, TimeZone, Utc};

use crate::error::{Error, Result};

/// The largest `limit` a read accepts.
pub const MAX_LIMIT: u32 = 1000;

/// The longest uid, in bytes (the column is `VARCHAR(255)`).
pub const MAX_UID_BYTES: usize = 255;

pub(crate) fn limit(limit: u32) -> Result<u32> {
    if limit == 0 || limit > MAX_LIMIT {
        return Err(Error::InvalidLimit {
            got: limit.into(),
            max: MAX_LIMIT,
        });
    }
    Ok(limit)
}

pub(crate) fn uid(uid: &str) -> Result<&str> {
    if uid.is_empty() {
        Err(Error::InvalidUid("empty"))
    } else if uid.len() > MAX_UID_BYTES {
        Err(Error::InvalidUid("longer than 255 bytes"))
    } else if uid.contains('\0') {
        Err(Error::InvalidUid("contains a NUL byte"))
    } else {
        Ok(uid)
    }
}

/// A uid as history may hold it, written by the backend's own code: `''`
/// is allowed there (it counts for the workspace only), NUL and over-long
/// values are not, on any backend.
pub(crate) fn stored_uid(uid: &str) -> Result<&str> {
    if uid.is_empty() {
        Ok(uid)
    } else {
        self::uid(uid)
    }
}

pub(crate) fn text<'a>(what: &'static str, value: &'a str, max_bytes: usize) -> Result<&'a str> {
    if value.len() > max_bytes {
        Err(Error::InvalidArgument {
            what,
            why: format!("longer than {max_bytes} bytes"),
        })
    } else if value.contains('\0') {
        Err(Error::InvalidArgument {
            what,
            why: "contains a NUL byte".into(),
        })
    } else {
        Ok(value)
    }
}

/// The first year of the times every backend stores (MySQL's `DATETIME`
/// range; beyond it SQLite's text order is no longer time order).
pub const MIN_YEAR: i32 = 1000;

/// The last year of that range.
pub const MAX_YEAR: i32 = 9999;

/// 1000-01-01T00:00:00Z, the earliest time recents stores.
pub(crate) fn earliest() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(MIN_YEAR, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date")
}

/// 9999-12-31T23:59:59.999999Z, the latest time recents stores.
pub(crate) fn latest() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(MAX_YEAR, 12, 31, 23, 59, 59)
        .single()
        .expect("a valid date")
        + chrono::Duration::microseconds(999_999)
}

/// A timestamp as every backend stores it: truncated to microseconds, and
/// within years [`MIN_YEAR`]..=[`MAX_YEAR`].
pub(crate) fn timestamp(what: &'static str, at: DateTime<Utc>) -> Result<DateTime<Utc>> {
    if !(MIN_YEAR..=MAX_YEAR).contains(&at.year()) {
        return Err(Error::InvalidArgument {
            what,
            why: format!("{at} is outside the years 1000 to 9999"),
        });
    }
    Ok(at.trunc_subsecs(6))
}
