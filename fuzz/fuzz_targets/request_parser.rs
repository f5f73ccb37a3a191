//! The opening handshake's request parser and a server connection reading a
//! request; see `wsmachine_fuzz::handshake`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| wsmachine_fuzz::handshake::run_request(data));
