//! Application statistics: the namespaces an application registers with
//! [`Stats::namespace`](crate::Stats::namespace), and their values.

mod namespace;
mod value;

pub use self::namespace::{Namespace, NamespaceView};
pub use self::value::{
    Collection, CollectionError, Combine, Computed, Counter, Gauge, Text, ValueKind,
};

pub(crate) use self::namespace::NamespaceInner;

use std::fmt;

/// Why a namespace or value could not be registered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryError {
    /// The name is empty, too long (over 64 bytes), contains control characters, or is reserved
    /// (`http` for namespaces, `enabled` for values).
    InvalidName(String),
    /// A value of another kind is already registered under this name.
    KindMismatch {
        /// The name in question.
        name: String,
        /// The kind already registered.
        existing: &'static str,
    },
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidName(name) => write!(
                f,
                "invalid statistics name {name:?}: names are 1 to 64 bytes without control \
                 characters, and `http` (namespace) and `enabled` (value) are reserved"
            ),
            Self::KindMismatch { name, existing } => {
                write!(
                    f,
                    "statistic {name:?} is already registered as a {existing}"
                )
            }
        }
    }
}

impl std::error::Error for RegistryError {}

pub(crate) fn check_name(name: &str, reserved: &str) -> Result<(), RegistryError> {
    if name.is_empty()
        || name.len() > 64
        || name.chars().any(crate::sanitize::is_hidden)
        || name == reserved
    {
        return Err(RegistryError::InvalidName(name.to_owned()));
    }
    Ok(())
}
