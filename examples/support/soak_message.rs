//! The soaks' messages (`tests/soak.rs`, `benches/peers/src/bin/soak.rs`):
//! JSON-like texts from a deterministic generator, so a run is reproducible.

/// A small deterministic generator (SplitMix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A JSON-like text of 16 B to 4 KiB, so that deflate has something to compress.
pub fn json_message(rng: &mut Rng, conn: usize, seq: u64) -> String {
    use std::fmt::Write as _;
    const TAGS: [&str; 6] = ["alpha", "beta", "gamma", "delta", "sale", "new"];
    let target = 16 + rng.below(4096 - 16 + 1) as usize;
    let mut text = format!("{{\"conn\":{conn},\"seq\":{seq},\"items\":[");
    let mut id = 0;
    while text.len() < target {
        let v = rng.next();
        let _ = write!(
            text,
            "{{\"id\":{id},\"name\":\"item-{}\",\"price\":{}.{:02},\"tags\":[\"{}\",\"soak\"],\"ok\":{}}},",
            v % 1000,
            (v >> 10) % 500,
            (v >> 20) % 100,
            TAGS[((v >> 30) % TAGS.len() as u64) as usize],
            v & 1 == 0
        );
        id += 1;
    }
    text.truncate(target);
    text
}
