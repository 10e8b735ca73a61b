//! Argument checks, done before any statement is sent.

use chrono::{DateTime, Datelike, SubsecRound, Utc};

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

/// A timestamp as every backend stores it: truncated to microseconds, and
/// within years 1000..=9999 (MySQL's `DATETIME` range; beyond it SQLite's text
/// order is no longer time order).
pub(crate) fn timestamp(what: &'static str, at: DateTime<Utc>) -> Result<DateTime<Utc>> {
    if !(1000..=9999).contains(&at.year()) {
        return Err(Error::InvalidArgument {
            what,
            why: format!("{at} is outside the years 1000 to 9999"),
        });
    }
    Ok(at.trunc_subsecs(6))
}
