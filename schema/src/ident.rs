//! Identifiers from a mapping: checked to be plain names, then always quoted,
//! so nothing a mapping holds is ever read by the database as SQL.

use sea_orm::DbBackend;

use crate::SchemaError;

/// The longest identifier every backend keeps whole (PostgreSQL's 63 bytes;
/// MySQL allows 64). The prefix is counted with the names it goes before.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// Checks that `value`, given under `key`, is a plain identifier: an ASCII
/// letter or `_`, then letters, digits or `_`.
pub(crate) fn check(key: &str, value: &str) -> Result<(), SchemaError> {
    let invalid = |reason: &str| SchemaError::InvalidIdentifier {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let mut chars = value.chars();
    match chars.next() {
        None => return Err(invalid("it is empty")),
        Some(c) if !(c.is_ascii_alphabetic() || c == '_') => {
            return Err(invalid("it must start with an ASCII letter or '_'"));
        }
        Some(_) => {}
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(invalid(
            "only ASCII letters, digits and '_' are allowed (no spaces, quotes, dots or SQL)",
        ));
    }
    if value.len() > MAX_IDENTIFIER_BYTES {
        return Err(invalid("it is longer than 63 bytes"));
    }
    Ok(())
}

/// `name` quoted for `backend`. Only ever called on checked identifiers,
/// which hold no quote character to escape.
pub(crate) fn quote(backend: DbBackend, name: &str) -> String {
    match backend {
        DbBackend::MySql => format!("`{name}`"),
        _ => format!("\"{name}\""),
    }
}
