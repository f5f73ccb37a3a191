//! The opening handshake's response parser and a client connection reading a
//! response; see `wsmachine_fuzz::handshake`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| wsmachine_fuzz::handshake::run_response(data));
