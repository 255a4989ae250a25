//! `sealbase-sync`: see `sealbase-sync --help`.

fn main() {}
