//! The worker's SHA-256 path over a generated tree, one file after another like a single
//! `openssl dgst` process: the file located through the mounted source, read through its
//! reader (whole for files up to the multipart threshold, in part-sized chunks beyond), and
//! hashed on the blocking pool with the product's hashing module.

use crate::moving::message_for;
use crate::tree;
use anyhow::{anyhow, Result};
use shared::hashing::{self, StreamingSha256};
use shared::ports::FileSource;
use shared::source::MountedSource;
use shared::worker::{candidates_for, WorkerSettings};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct HashArgs {
    #[arg(long)]
    pub root: PathBuf,
    /// Print `<sha256>  <path>` per file (to compare with openssl's output).
    #[arg(long)]
    pub print: bool,
}

pub async fn run(args: &HashArgs) -> Result<()> {
    let files = tree::read_index(&args.root)?;
    let source = MountedSource::new(&args.root)?;
    let settings = WorkerSettings::default();
    let started = Instant::now();
    let mut bytes = 0u64;
    for f in &files {
        let candidates = candidates_for(&message_for(f), &settings.path_rules).map_err(|e| anyhow!("{}: {e}", f.path))?;
        let located = source.locate(&candidates).await?.map_err(|e| anyhow!("{}: {e:?}", f.path))?;
        let digest = if located.size > settings.multipart_threshold {
            let chunk = settings.part_size_for(located.size);
            let mut hasher = StreamingSha256::default();
            let mut offset = 0;
            while offset < located.size {
                let len = chunk.min(located.size - offset);
                hasher = located.reader.read_range_hashed(offset, len as usize, hasher, false).await?.1;
                offset += len;
            }
            hasher.finish()
        } else {
            located.reader.read_all_hashed(located.size as usize).await?.1
        };
        bytes += located.size;
        if args.print {
            println!("{}  {}", hashing::to_hex(&digest), args.root.join(&f.path).display());
        }
    }
    let wall = started.elapsed().as_secs_f64();
    eprintln!("{}", serde_json::json!({ "files": files.len(), "bytes": bytes, "wall_s": wall, "gb_per_s": bytes as f64 / wall / 1e9 }));
    Ok(())
}
