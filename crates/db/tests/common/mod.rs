//! A deterministic clock and random source for the store's tests and
//! benchmark: each instance counts milliseconds up from its start and draws
//! bytes from a 64-bit LCG seeded per instance (distinct seeds, distinct
//! Automerge actors).
#![allow(dead_code, unreachable_pub)]

use std::cell::Cell;

use sealbase_db::Env;

pub struct TestEnv {
    now: Cell<i64>,
    state: Cell<u64>,
}

impl TestEnv {
    pub fn new(start_ms: i64, seed: u64) -> Self {
        Self {
            now: Cell::new(start_ms),
            state: Cell::new(seed),
        }
    }
}

impl Env for TestEnv {
    fn now_ms(&self) -> i64 {
        let t = self.now.get();
        self.now.set(t + 1);
        t
    }

    fn fill_random(&self, buf: &mut [u8]) {
        for b in buf.iter_mut() {
            let s = self
                .state
                .get()
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.state.set(s);
            *b = (s >> 33) as u8;
        }
    }
}
