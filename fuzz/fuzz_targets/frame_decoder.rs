//! The frame decoder over arbitrary bytes in arbitrary chunks; see `wsmachine_fuzz::decoder`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| wsmachine_fuzz::decoder::run(data));
