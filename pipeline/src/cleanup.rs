//! Clean-up that a connector starts when one of its handles is dropped (ending server
//! sessions, closing a client), which the program lets finish before its runtime stops.
//!
//! A `Drop` cannot await, so a connector spawns its clean-up with [`spawn`]; whoever owns the
//! runtime calls [`finish`] once the command is done, before shutting the runtime down.

use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;
use tokio_util::task::TaskTracker;

static PENDING: LazyLock<TaskTracker> = LazyLock::new(TaskTracker::new);

/// Run `work` in a task of the current runtime that [`finish`] waits for. Outside a runtime
/// there is nothing to run it on, and `work` is dropped.
pub fn spawn(work: impl Future<Output = ()> + Send + 'static) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        PENDING.spawn_on(work, &runtime);
    }
}

/// Wait (up to `limit`) for every clean-up task to end, including any spawned meanwhile.
pub async fn finish(limit: Duration) {
    PENDING.close();
    if tokio::time::timeout(limit, PENDING.wait()).await.is_err() {
        tracing::debug!(tasks = PENDING.len(), "clean-up still running at exit");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn finish_waits_for_clean_up_spawned_before_it() {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            flag.store(true, Ordering::SeqCst);
        });
        finish(Duration::from_secs(5)).await;
        assert!(done.load(Ordering::SeqCst));
    }
}
