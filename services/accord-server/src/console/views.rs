//! The console's views, each an HTML fragment.

pub(crate) mod agreements;
pub(crate) mod countries;
pub(crate) mod log;
pub(crate) mod operations;
