//! Per-thread stripes of counters: threads that bump the same logical counter each write their
//! own cache line, so counting does not bounce one line between cores on every key.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Stripes per counter set; threads beyond this share stripes, which is still correct.
const STRIPES: usize = 8;

/// One stripe, alone on its cache line (128 bytes covers adjacent-line prefetch on x86).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// `STRIPES` copies of `T`; each thread writes the one [`Striped::local`] picks for it, readers
/// add them up.
#[derive(Debug)]
pub(super) struct Striped<T> {
    stripes: [Padded<T>; STRIPES],
}

impl<T: Default> Default for Striped<T> {
    fn default() -> Self {
        Self {
            stripes: std::array::from_fn(|_| Padded::default()),
        }
    }
}

impl<T> Striped<T> {
    /// The calling thread's stripe.
    pub(super) fn local(&self) -> &T {
        &self.stripes[stripe_of_this_thread()].0
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &T> {
        self.stripes.iter().map(|stripe| &stripe.0)
    }
}

/// Threads get stripes round-robin in the order they first count something.
fn stripe_of_this_thread() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    STRIPE.with(|stripe| *stripe)
}

#[cfg(test)]
mod tests {
    use super::{STRIPES, Striped};
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn counts_from_many_threads_add_up() {
        let counter: Striped<AtomicU64> = Striped::default();
        std::thread::scope(|scope| {
            for _ in 0..STRIPES * 2 {
                scope.spawn(|| {
                    for _ in 0..1_000 {
                        counter.local().fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        let total: u64 = counter.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        assert_eq!(total, (STRIPES * 2 * 1_000) as u64);
    }
}
