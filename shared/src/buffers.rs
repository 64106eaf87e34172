//! Read buffers recycled between files: the worker reads every small file whole into memory
//! and every large one part by part, and a fresh buffer each time costs the kernel's page
//! faults and the allocator's zeroing on every byte (measured with `perf`: zeroing alone was
//! 7.6% of benchmark 1's samples, besides the faults). A buffer comes back when the request
//! that sent it is done ([`into_bytes`]) or when the caller is done with it ([`recycle`]).
//!
//! Choice: a recycled buffer is handed out with its old bytes (only growth is zeroed): every
//! reader fills the whole length or fails, and a failed read's buffer is never returned to a
//! caller, so no byte of another file is ever seen. The pool keeps at most
//! [`MAX_POOLED`] buffers and [`MAX_POOLED_BYTES`] in all, beside the worker's in-flight
//! memory budget.

use std::sync::Mutex;

/// Buffers kept for reuse, at most.
pub const MAX_POOLED: usize = 16;
/// Capacity kept for reuse, at most, in all.
pub const MAX_POOLED_BYTES: usize = 128 * 1024 * 1024;
/// Smaller buffers are not worth keeping (the allocator reuses them cheaply).
pub const MIN_POOLED: usize = 64 * 1024;

static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// A buffer of exactly `len` bytes to read into: the smallest pooled one that holds `len`, or a
/// new zeroed one.
pub fn take(len: usize) -> Vec<u8> {
    let reused = {
        let mut pool = POOL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let best = pool.iter().enumerate().filter(|(_, b)| b.capacity() >= len).min_by_key(|(_, b)| b.capacity()).map(|(i, _)| i);
        best.map(|i| pool.swap_remove(i))
    };
    match reused {
        Some(mut buf) => {
            if buf.len() >= len {
                buf.truncate(len);
            } else {
                buf.resize(len, 0);
            }
            buf
        }
        None => vec![0u8; len],
    }
}

/// Gives a buffer back for reuse (dropped instead when it is small or the pool is full).
pub fn recycle(buf: Vec<u8>) {
    if buf.capacity() < MIN_POOLED {
        return;
    }
    let mut pool = POOL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let pooled: usize = pool.iter().map(Vec::capacity).sum();
    if pool.len() < MAX_POOLED && pooled + buf.capacity() <= MAX_POOLED_BYTES {
        pool.push(buf);
    }
}

/// `buf` as a request body that returns to the pool when the last reference is dropped.
pub fn into_bytes(buf: Vec<u8>) -> bytes::Bytes {
    bytes::Bytes::from_owner(Recycled(buf))
}

struct Recycled(Vec<u8>);

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        recycle(std::mem::take(&mut self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pool is global, so its checks run as one test, in order (nextest runs each test in its
    /// own process).
    #[test]
    fn buffers_are_reused_best_fit_sized_exactly_and_bounded() {
        // Best fit: of a 1 MiB and a 4 MiB buffer, a 900 KiB read gets the 1 MiB one.
        let small = vec![7u8; 1024 * 1024];
        let large = vec![9u8; 4 * 1024 * 1024];
        let (small_at, large_at) = (small.as_ptr(), large.as_ptr());
        recycle(large);
        recycle(small);
        let a = take(900 * 1024);
        assert_eq!((a.as_ptr(), a.len()), (small_at, 900 * 1024));
        // Growing a reused buffer zeroes only the growth; the rest is overwritten by the reader.
        let b = take(4 * 1024 * 1024 - 10);
        assert_eq!(b.as_ptr(), large_at);
        assert_eq!(b.len(), 4 * 1024 * 1024 - 10);
        recycle(a);
        let mut short = take(100 * 1024);
        assert_eq!(short.as_ptr(), small_at);
        short.truncate(10);
        recycle(short);
        let grown = take(1024 * 1024);
        assert_eq!(grown.as_ptr(), small_at);
        assert!(grown[..10].iter().all(|&x| x == 7) && grown[10..].iter().all(|&x| x == 0), "only the growth is zeroed");

        // A body handed to a request comes back when the last reference is dropped.
        let body = into_bytes(grown);
        let clone = body.clone();
        drop(body);
        let fresh = take(1024 * 1024);
        assert_ne!(fresh.as_ptr(), small_at, "still referenced by the clone");
        drop(clone);
        let back = take(1024 * 1024);
        assert_eq!(back.as_ptr(), small_at);

        // Small buffers are not kept; the pool holds at most MAX_POOLED_BYTES.
        recycle(vec![0u8; 1024]);
        assert!(POOL.lock().unwrap().is_empty(), "a 1 KiB buffer is not kept");
        drop(b);
        for _ in 0..MAX_POOLED {
            recycle(vec![0u8; MAX_POOLED_BYTES / 4]);
        }
        let pool = POOL.lock().unwrap();
        assert!(pool.len() <= MAX_POOLED && pool.iter().map(Vec::capacity).sum::<usize>() <= MAX_POOLED_BYTES, "{}", pool.len());
    }
}
