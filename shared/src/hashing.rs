//! SHA-256 helpers. Hashing runs on the blocking pool so a 64 MiB digest never stalls the
//! async workers that keep uploads in flight.
//!
//! The digest is AWS-LC's (already linked for TLS): its assembly uses the CPU's SHA
//! extensions as OpenSSL does, and hashing is most of the worker's CPU, which is what Lambda
//! bills. Benchmark 1 (`bench/hash.sh`) compares it with OpenSSL.

use aws_lc_rs::digest::{Context, SHA256};
use base64::Engine;

pub type Sha256Digest = [u8; 32];

pub fn sha256(bytes: &[u8]) -> Sha256Digest {
    let mut h = Sha256::new();
    h.update(bytes);
    h.finish()
}

/// A running SHA-256, fed synchronously.
#[derive(Clone)]
pub struct Sha256(Context);

impl Sha256 {
    pub fn new() -> Self {
        Self(Context::new(&SHA256))
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> Sha256Digest {
        self.0.finish().as_ref().try_into().expect("a SHA-256 digest is 32 bytes")
    }
}

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

pub fn to_hex(d: &Sha256Digest) -> String {
    hex::encode(d)
}

pub fn to_b64(d: &Sha256Digest) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

/// A base64 SHA-256 as S3 returns it (a whole-object one: no `-<parts>` suffix).
pub fn from_b64(b64: &str) -> Option<Sha256Digest> {
    base64::engine::general_purpose::STANDARD.decode(b64).ok()?.try_into().ok()
}

/// S3's composite checksum of a multipart object: SHA-256 over the concatenated part digests,
/// suffixed with the part count.
pub fn composite_b64(part_digests: &[Sha256Digest]) -> String {
    let mut h = Sha256::new();
    for d in part_digests {
        h.update(d);
    }
    let whole = h.finish();
    format!("{}-{}", to_b64(&whole), part_digests.len())
}

/// Hashes `bytes` on the blocking pool and hands the buffer back.
pub async fn sha256_owned(bytes: Vec<u8>) -> (Vec<u8>, Sha256Digest) {
    tokio::task::spawn_blocking(move || {
        let d = sha256(&bytes);
        (bytes, d)
    })
    .await
    .expect("hashing task does not panic")
}

/// A running whole-file hash that can be fed on the blocking pool chunk by chunk.
#[derive(Default)]
pub struct StreamingSha256(pub(crate) Sha256);

impl StreamingSha256 {
    /// Feeds a chunk and also returns the chunk's own digest (a multipart part checksum)
    /// when `part_digest` is set.
    pub async fn update(mut self, chunk: Vec<u8>, part_digest: bool) -> (Self, Vec<u8>, Option<Sha256Digest>) {
        tokio::task::spawn_blocking(move || {
            self.0.update(&chunk);
            let part = part_digest.then(|| sha256(&chunk));
            (self, chunk, part)
        })
        .await
        .expect("hashing task does not panic")
    }

    /// Feeds `bytes` on the calling thread (for a reader already on the blocking pool).
    pub fn update_blocking(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> Sha256Digest {
        self.0.finish()
    }
}

/// Reads `buf.len()` bytes at `offset` with `read_at` in cache-sized slices, feeding each slice
/// to every hasher in `hashers` right after reading it.
/// Choice: hashing a slice while it is still in the CPU cache, instead of the whole buffer
/// after reading it, spares a second trip of every byte through memory.
pub fn read_hashing(
    mut read_at: impl FnMut(&mut [u8], u64) -> std::io::Result<()>,
    buf: &mut [u8],
    offset: u64,
    hashers: &mut [&mut Sha256],
) -> std::io::Result<()> {
    for (i, slice) in buf.chunks_mut(HASH_SLICE).enumerate() {
        read_at(slice, offset + (i * HASH_SLICE) as u64)?;
        for h in hashers.iter_mut() {
            h.update(slice);
        }
    }
    Ok(())
}

/// Bytes read and hashed at a time by [`read_hashing`]: well inside a core's L2 cache.
pub const HASH_SLICE: usize = 256 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(to_hex(&sha256(b"")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(to_b64(&sha256(b"abc")), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
        assert_eq!(from_b64("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="), Some(sha256(b"abc")));
        assert_eq!(from_b64("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=-2"), None, "a composite is no whole-object digest");
        assert_eq!(from_b64("AAAA"), None);
    }

    /// AWS-LC's digest agrees with an independent implementation (RustCrypto's) on every
    /// length around the 64-byte block and buffer boundaries, fed whole and in pieces.
    #[test]
    fn agrees_with_rustcrypto_on_block_boundaries() {
        use sha2::Digest;
        let data: Vec<u8> = (0..70_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for len in (0..200).chain([4095, 4096, 4097, 65_535, 65_536, 65_537, 70_000]) {
            let expected: Sha256Digest = sha2::Sha256::digest(&data[..len]).into();
            assert_eq!(sha256(&data[..len]), expected, "length {len}");
            let mut h = Sha256::new();
            for piece in data[..len].chunks(61) {
                h.update(piece);
            }
            assert_eq!(h.finish(), expected, "length {len} in 61-byte pieces");
        }
    }

    #[tokio::test]
    async fn streaming_equals_one_shot_and_composite_has_part_count() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut h = StreamingSha256::default();
        let mut parts = Vec::new();
        for chunk in data.chunks(3000) {
            let (next, _, part) = h.update(chunk.to_vec(), true).await;
            h = next;
            parts.push(part.unwrap());
        }
        assert_eq!(h.finish(), sha256(&data));
        assert_eq!(parts[0], sha256(&data[..3000]));
        assert!(composite_b64(&parts).ends_with("-4"));
    }
}
