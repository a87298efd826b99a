//! Where bytes come from. Each source lives in its own module.

pub mod files;
pub mod kubernetes;
