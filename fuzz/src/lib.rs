//! Fuzz harnesses for `wsmachine`, shared by the libFuzzer targets in
//! `fuzz_targets/`, the seed generator in `examples/make_seeds.rs`, and the
//! seed replay test below (which runs on stable, without libFuzzer).

pub mod conn;
pub mod decoder;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use wsmachine::frame::Role;

    /// Runs every committed seed through its harness.
    fn replay(target: &str, run: impl Fn(&[u8])) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("seeds")
            .join(target);
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            run(&std::fs::read(&path).unwrap());
            count += 1;
        }
        assert!(count > 0, "no seeds in {}", dir.display());
    }

    #[test]
    fn frame_decoder_seeds() {
        replay("frame_decoder", crate::decoder::run);
    }

    #[test]
    fn server_connection_seeds() {
        replay("server_connection", |data| {
            crate::conn::run(Role::Server, data)
        });
    }

    #[test]
    fn client_connection_seeds() {
        replay("client_connection", |data| {
            crate::conn::run(Role::Client, data)
        });
    }

    #[test]
    fn short_and_empty_inputs() {
        for len in 0..12 {
            let data: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37)).collect();
            crate::decoder::run(&data);
            crate::conn::run(Role::Server, &data);
            crate::conn::run(Role::Client, &data);
        }
    }
}
