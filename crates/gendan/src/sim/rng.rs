//! A small repeatable generator: the same seed makes the same world.

#[derive(Debug, Clone)]
pub(crate) struct Lcg(u64);

impl Lcg {
    pub(crate) fn new(seed: u64) -> Self {
        // One warm-up step so nearby seeds do not start alike.
        let mut lcg = Lcg(seed ^ 0x9E37_79B9_7F4A_7C15);
        lcg.step();
        lcg
    }

    /// A seed for `key` (an order id) under `seed`.
    pub(crate) fn for_key(seed: u64, key: &str) -> Self {
        Lcg::new(seed ^ fnv1a(key))
    }

    fn step(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    /// A number in `0..below` (0 when `below` is 0).
    pub(crate) fn below(&mut self, below: u64) -> u64 {
        self.step() % below.max(1)
    }

    /// A number in `low..=high`.
    pub(crate) fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high.saturating_sub(low) + 1)
    }
}

/// FNV-1a, 64 bits: a stable hash (std's is randomised per process).
pub(crate) fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
