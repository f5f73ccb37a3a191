//! A client connection over arbitrary bytes from a server; see `wsmachine_fuzz::conn`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsmachine::frame::Role;

fuzz_target!(|data: &[u8]| wsmachine_fuzz::conn::run(Role::Client, data));
