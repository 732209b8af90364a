//! The engine's thread pool, safe across `fork`.
//!
//! rayon's global pool does not survive `fork()`: a child (a `multiprocessing` worker, gunicorn
//! `--preload`, PyTorch `DataLoader` workers) inherits the pool's state but not its threads, and its
//! first parallel call waits forever. So the engine never uses the global pool: every core call runs
//! in a pool owned by the current process, made on first use and remembered with the process id;
//! a process that finds a pool made by another process id (its parent, before the fork) builds its
//! own and leaks the inherited one (its threads do not exist here, so it must not be dropped).
//! Threads: `RAYON_NUM_THREADS` when set, else one per available core.
use std::sync::{Arc, Mutex};

use rayon::{ThreadPool, ThreadPoolBuilder};

static POOL: Mutex<Option<(u32, Arc<ThreadPool>)>> = Mutex::new(None);

/// The pool of this process (built on first use, and again in a forked child); an error when no
/// thread can be started.
pub fn pool() -> Result<Arc<ThreadPool>, String> {
    let pid = std::process::id();
    // A poisoned lock only means a panic elsewhere while holding it; the value is still usable.
    let mut slot = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((owner, pool)) = slot.as_ref() {
        if *owner == pid {
            return Ok(pool.clone());
        }
    }
    let fresh = Arc::new(
        ThreadPoolBuilder::new()
            .thread_name(|i| format!("qama-rs-{i}"))
            .build()
            .map_err(|e| format!("cannot start the engine's threads: {e}"))?,
    );
    if let Some((_, inherited)) = slot.replace((pid, fresh.clone())) {
        // The parent's pool: its threads are gone in this process; never run its destructor.
        std::mem::forget(inherited);
    }
    Ok(fresh)
}

thread_local! {
    /// A one-thread pool whose only worker is this thread (made on first use).
    static LOCAL: std::cell::RefCell<Option<Arc<ThreadPool>>> = const { std::cell::RefCell::new(None) };
}

/// A pool running its work on the calling thread: small calls (one query over less than about 2 MB
/// of codes, encoding a handful of vectors) skip the hop to another thread, whose wake-up costs more than the
/// work. Parallel iterators inside it run serially; a few queries searched alone (a flat scan's
/// tiles, a partition's lists) still take help from the process pool's threads that are free to
/// join (`qama_core::share`). It survives `fork` as it is: the only thread a
/// child keeps is the forking one, and if that thread had a local pool it is still its worker
/// (rayon refuses to make a second pool on a thread that is already a worker of one).
pub fn local() -> Result<Arc<ThreadPool>, String> {
    LOCAL.with(|slot| {
        let mut slot = slot.borrow_mut();
        if let Some(pool) = slot.as_ref() {
            return Ok(pool.clone());
        }
        let fresh = Arc::new(
            ThreadPoolBuilder::new()
                .num_threads(1)
                .use_current_thread()
                .build()
                .map_err(|e| format!("cannot make the engine's local pool: {e}"))?,
        );
        *slot = Some(fresh.clone());
        Ok(fresh)
    })
}
