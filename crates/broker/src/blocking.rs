//! Running long synchronous work without stalling the runtime: the worker
//! thread hands its other tasks to a fresh thread while the work runs.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `work` on this thread, first moving the runtime's other tasks off
/// it when called from a multi-thread runtime's worker.
pub(crate) fn off_runtime<R>(work: impl FnOnce() -> R) -> R {
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}
