#![no_std]

extern crate alloc;

use core::alloc::{GlobalAlloc, Layout};
use wsmachine::{Config, Connection, Event};

struct NoAlloc;

// SAFETY: returning null is how an allocator reports failure.
unsafe impl GlobalAlloc for NoAlloc {
    unsafe fn alloc(&self, _: Layout) -> *mut u8 {
        core::ptr::null_mut()
    }
    unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
}

#[global_allocator]
static ALLOC: NoAlloc = NoAlloc;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// Uses the core so that it is linked in.
#[unsafe(no_mangle)]
pub extern "C" fn ws_feed(ptr: *const u8, len: usize) -> usize {
    // SAFETY: the caller passes a valid buffer.
    let bytes = unsafe { core::slice::from_raw_parts(ptr, len) };
    let mut conn = Connection::open_server(Config::default());
    conn.handle_read(bytes);
    let mut n = 0;
    while let Some(event) = conn.poll_event() {
        n += matches!(event, Event::Text(_)) as usize;
    }
    n
}
