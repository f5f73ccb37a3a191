//! A server connection over arbitrary bytes from a client; see `wsmachine_fuzz::conn`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsmachine::frame::Role;

fuzz_target!(|data: &[u8]| wsmachine_fuzz::conn::run(Role::Server, data));
