//! Work spread over every core, results in input order.
//!
//! Scoped threads and a shared cursor over chunks, no pool and no
//! dependency: a scan is one burst of CPU-bound parsing, and a slow file
//! (a large bundle, a PKCS#12 store) must not hold up the files after it,
//! so workers take small chunks as they finish.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many threads [`map`] and [`map_chunks`] use.
pub fn workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// `f` over every item, on every core; results in `items`' order.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let chunk = (items.len() / (workers() * 16)).clamp(1, 256);
    map_chunks(items, chunk, |c| c.iter().map(&f).collect::<Vec<R>>())
        .into_iter()
        .flatten()
        .collect()
}

/// `f` over consecutive chunks of at most `chunk` items, on every core;
/// one result per chunk, in order.
pub fn map_chunks<T: Sync, R: Send>(
    items: &[T],
    chunk: usize,
    f: impl Fn(&[T]) -> R + Sync,
) -> Vec<R> {
    let chunks: Vec<&[T]> = items.chunks(chunk.max(1)).collect();
    let threads = workers().min(chunks.len());
    if threads <= 1 {
        return chunks.into_iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(chunks.len()));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut local = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(c) = chunks.get(i) else { break };
                    local.push((i, f(c)));
                }
                done.lock().unwrap_or_else(|p| p.into_inner()).extend(local);
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|p| p.into_inner());
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// `f` over the items `produce` hands out, on every core, starting while
/// `produce` is still running (a directory walk feeding reads); results in
/// no particular order, one vector per worker (joined, they would be
/// copied once more while the parts are held), with what `produce` returns.
pub fn map_streamed<T: Send, R: Send, P>(
    produce: impl FnOnce(&mut dyn FnMut(T)) -> P,
    f: impl Fn(T) -> R + Sync,
) -> (Vec<Vec<R>>, P) {
    const BATCH: usize = 32;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<T>>(workers() * 4);
    let rx = Mutex::new(rx);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers())
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        // The lock is held only to take the next batch (a
                        // `while let` would hold it through the batch's work).
                        let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok(batch) = next else { break };
                        out.extend(batch.into_iter().map(&f));
                    }
                    out
                })
            })
            .collect();
        let mut batch = Vec::with_capacity(BATCH);
        let produced = produce(&mut |item| {
            batch.push(item);
            if batch.len() == BATCH {
                // Workers only stop when the sender is gone: a send fails
                // only if every worker panicked, and then the join says so.
                let _ = tx.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)));
            }
        });
        if !batch.is_empty() {
            let _ = tx.send(batch);
        }
        drop(tx);
        let mut results = Vec::with_capacity(handles.len());
        for h in handles {
            match h.join() {
                Ok(r) => results.push(r),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        (results, produced)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_keep_input_order() {
        let items: Vec<u32> = (0..10_007).collect();
        let doubled = super::map(&items, |x| x * 2);
        assert_eq!(doubled, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        let sums = super::map_chunks(&items, 1000, |c| c.iter().sum::<u32>());
        assert_eq!(sums.len(), 11);
        assert_eq!(sums[0], (0..1000).sum::<u32>());
        assert_eq!(sums[10], (10_000..10_007).sum::<u32>());
        assert!(super::map(&[] as &[u32], |x| *x).is_empty());
    }

    #[test]
    fn streamed_results_are_all_there() {
        let (squares, told) = super::map_streamed(
            |emit| {
                for i in 0..1000u64 {
                    emit(i);
                }
                "done"
            },
            |x| x * x,
        );
        assert_eq!(squares.len(), super::workers());
        let mut squares: Vec<u64> = squares.into_iter().flatten().collect();
        squares.sort_unstable();
        assert_eq!(squares, (0..1000u64).map(|x| x * x).collect::<Vec<_>>());
        assert_eq!(told, "done");
        let (none, ()) = super::map_streamed(|_: &mut dyn FnMut(u8)| {}, |x| x);
        assert!(none.iter().all(Vec::is_empty));
    }
}
