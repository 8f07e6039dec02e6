//! One SDK client per process. After `fork()` the child holds a copy of the parent's
//! client whose runtime threads do not exist in the child and whose connections belong
//! to the parent; the child must neither use nor drop it. So every client remembers the
//! process that built it, and a client used in another process is rebuilt there, lazily
//! on first use. The only fork hook stores the new process id.

use promptos_sdk::blocking;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;

static PID: AtomicU32 = AtomicU32::new(0);

extern "C" fn after_fork_in_child() {
    // Async-signal-safe: one system call and one store.
    PID.store(unsafe { libc::getpid() } as u32, Ordering::Relaxed);
}

/// Starts tracking this process's id across `fork()`; called when the module loads.
pub fn watch_forks() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        PID.store(std::process::id(), Ordering::Relaxed);
        // SAFETY: registers a handler that only calls getpid() and stores an integer.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    });
}

/// The id of the running process (one atomic load).
pub fn pid() -> u32 {
    match PID.load(Ordering::Relaxed) {
        0 => std::process::id(),
        pid => pid,
    }
}

/// An SDK client and the process it belongs to; `None` once closed.
pub struct Instance {
    pid: u32,
    client: ManuallyDrop<Option<blocking::Prompts>>,
}

impl Instance {
    pub fn new(client: Option<blocking::Prompts>) -> Self {
        Self { pid: pid(), client: ManuallyDrop::new(client) }
    }

    /// Built by this process (not inherited through `fork()`).
    pub fn is_current(&self) -> bool {
        self.pid == pid()
    }

    /// The client, if not closed.
    pub fn client(&self) -> Option<&blocking::Prompts> {
        self.client.as_ref()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if self.is_current() {
            // SAFETY: dropped once, here, and never used again.
            unsafe { ManuallyDrop::drop(&mut self.client) }
        }
        // Otherwise it was inherited from the parent process: shutting its runtime down
        // would wait forever for threads that exist only in the parent, and its sockets
        // are the parent's. It is left untouched.
    }
}
