//! (being written)
#![allow(missing_docs)]
pub struct Config;
