//! A bound on a test that blocks: it runs on a thread of its own, and fails
//! if it has not ended within [`LIMIT`].

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// The longest any test may take.
pub const LIMIT: Duration = Duration::from_secs(30);

/// Runs `test` on a thread of its own and fails if it does not end within
/// [`LIMIT`] (a thread that hangs is left behind, not joined).
pub fn bounded(test: impl FnOnce() + Send + 'static) {
    let (done, ended) = mpsc::channel();
    let handle = thread::spawn(move || {
        test();
        let _ = done.send(());
    });
    match ended.recv_timeout(LIMIT) {
        Ok(()) => handle.join().unwrap(),
        // The test panicked: its panic is the failure.
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(handle.join().unwrap_err())
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the test did not end within {LIMIT:?}"),
    }
}
