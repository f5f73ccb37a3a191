//! permessage-deflate inflating: the codec alone, and a server connection
//! receiving compressed messages; see `wsmachine_fuzz::inflate`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| wsmachine_fuzz::inflate::run(data));
