//! Generated file trees shaped like a certificate/document store: most files log-normally
//! sized around a median of a few hundred KB, a thin tail of tens to hundreds of MB, and a
//! share of files whose content repeats an earlier file of the same account. Content is
//! pseudo-random (incompressible, like the PDFs it stands for) and reproducible from a seed.
//!
//! The tree is written under `<root>/attachments/certificate_management/<account>/`, the
//! gen3 layout the worker's default path rules resolve, with an index (`index.tsv`) the move
//! benchmark turns into work-queue messages.

use anyhow::{bail, Context, Result};
use rand::{Rng, RngCore, SeedableRng};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

pub const INDEX: &str = "index.tsv";

#[derive(Debug, Clone, clap::Args)]
pub struct TreeSpec {
    /// Number of files.
    #[arg(long, default_value_t = 2000)]
    pub files: u64,
    /// Median size of the body of the distribution, in KiB.
    #[arg(long, default_value_t = 160)]
    pub median_kib: u64,
    /// Spread of the log-normal body (sigma of ln size).
    #[arg(long, default_value_t = 1.2)]
    pub sigma: f64,
    /// Body sizes are clamped to this, in KiB.
    #[arg(long, default_value_t = 8 * 1024)]
    pub body_max_kib: u64,
    /// Share of files in the long tail (log-uniform between --tail-min-mib and --tail-max-mib).
    #[arg(long, default_value_t = 0.002)]
    pub tail_fraction: f64,
    #[arg(long, default_value_t = 20)]
    pub tail_min_mib: u64,
    #[arg(long, default_value_t = 300)]
    pub tail_max_mib: u64,
    /// Share of files whose content equals an earlier file of the same account.
    #[arg(long, default_value_t = 0.2)]
    pub dup_fraction: f64,
    /// Accounts (tenants) the files are spread over.
    #[arg(long, default_value_t = 20)]
    pub accounts: u64,
    /// One file of exactly this many bytes instead of a distribution (the memory benchmark).
    #[arg(long)]
    pub single_bytes: Option<u64>,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// One generated file as the index records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    pub id: u64,
    pub account: u64,
    /// Root-relative path.
    pub path: String,
    pub size: u64,
    /// The id of the earlier file whose content this one repeats.
    pub dup_of: Option<u64>,
}

struct Planned {
    file: TreeFile,
    /// Seed of the content; a duplicate reuses its original's.
    content_seed: u64,
}

fn plan(spec: &TreeSpec) -> Vec<Planned> {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(spec.seed);
    if let Some(bytes) = spec.single_bytes {
        let file = TreeFile { id: 1, account: 1, path: path_for(1, 1), size: bytes, dup_of: None };
        return vec![Planned { file, content_seed: spec.seed }];
    }
    let mut planned: Vec<Planned> = Vec::with_capacity(spec.files as usize);
    for id in 1..=spec.files {
        let original = (!planned.is_empty() && rng.random_bool(spec.dup_fraction.clamp(0.0, 1.0)))
            .then(|| rng.random_range(0..planned.len()));
        let planned_file = match original {
            Some(index) => {
                let orig = &planned[index];
                let account = orig.file.account;
                let file = TreeFile { id, account, path: path_for(account, id), size: orig.file.size, dup_of: Some(orig.file.id) };
                Planned { file, content_seed: orig.content_seed }
            }
            None => {
                let account = 1 + rng.random_range(0..spec.accounts.max(1));
                let size = if rng.random_bool(spec.tail_fraction.clamp(0.0, 1.0)) {
                    log_uniform(&mut rng, spec.tail_min_mib << 20, spec.tail_max_mib << 20)
                } else {
                    log_normal(&mut rng, (spec.median_kib << 10) as f64, spec.sigma).clamp(1024, spec.body_max_kib << 10)
                };
                let file = TreeFile { id, account, path: path_for(account, id), size, dup_of: None };
                Planned { file, content_seed: rng.next_u64() }
            }
        };
        planned.push(planned_file);
    }
    planned
}

fn path_for(account: u64, id: u64) -> String {
    format!("attachments/certificate_management/{account}/coi_{id}.pdf")
}

fn log_normal(rng: &mut impl Rng, median: f64, sigma: f64) -> u64 {
    // Box-Muller: one standard normal draw.
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (median * (sigma * z).exp()) as u64
}

fn log_uniform(rng: &mut impl Rng, low: u64, high: u64) -> u64 {
    let (l, h) = ((low.max(1) as f64).ln(), (high.max(low + 1) as f64).ln());
    rng.random_range(l..h).exp() as u64
}

/// Writes the tree and its index; returns the files.
pub fn generate(root: &Path, spec: &TreeSpec) -> Result<Vec<TreeFile>> {
    if root.exists() {
        bail!("{} exists; the generator writes into a new directory only", root.display());
    }
    let planned = plan(spec);
    let mut buffer = vec![0u8; 1 << 20];
    for p in &planned {
        let path = root.join(&p.file.path);
        std::fs::create_dir_all(path.parent().expect("generated paths have a directory"))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
        let mut content = rand::rngs::SmallRng::seed_from_u64(p.content_seed);
        let mut left = p.file.size;
        while left > 0 {
            let n = left.min(buffer.len() as u64) as usize;
            content.fill_bytes(&mut buffer[..n]);
            out.write_all(&buffer[..n])?;
            left -= n as u64;
        }
        out.flush().with_context(|| format!("writing {}", path.display()))?;
    }
    let files: Vec<TreeFile> = planned.into_iter().map(|p| p.file).collect();
    let mut index = std::io::BufWriter::new(std::fs::File::create(root.join(INDEX))?);
    for f in &files {
        let dup = f.dup_of.map(|d| d.to_string()).unwrap_or_else(|| "-".into());
        writeln!(index, "{}\t{}\t{}\t{}\t{}", f.id, f.account, f.path, f.size, dup)?;
    }
    index.flush()?;
    Ok(files)
}

pub fn read_index(root: &Path) -> Result<Vec<TreeFile>> {
    let path: PathBuf = root.join(INDEX);
    let file = std::fs::File::open(&path).with_context(|| format!("{} (generate the tree first)", path.display()))?;
    let mut files = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        let cols: Vec<&str> = line.split('\t').collect();
        let bad = || anyhow::anyhow!("{}:{}: not an index line: {line:?}", path.display(), n + 1);
        if cols.len() != 5 {
            return Err(bad());
        }
        files.push(TreeFile {
            id: cols[0].parse().map_err(|_| bad())?,
            account: cols[1].parse().map_err(|_| bad())?,
            path: cols[2].to_string(),
            size: cols[3].parse().map_err(|_| bad())?,
            dup_of: if cols[4] == "-" { None } else { Some(cols[4].parse().map_err(|_| bad())?) },
        });
    }
    Ok(files)
}

/// Distinct contents per account: what the worker should store with account-scoped dedup.
pub fn distinct_contents(files: &[TreeFile]) -> u64 {
    files.iter().filter(|f| f.dup_of.is_none()).count() as u64
}

pub fn describe(files: &[TreeFile]) -> String {
    let mut sizes: Vec<u64> = files.iter().map(|f| f.size).collect();
    sizes.sort_unstable();
    let total: u64 = sizes.iter().sum();
    let median = sizes.get(sizes.len() / 2).copied().unwrap_or(0);
    let largest = sizes.last().copied().unwrap_or(0);
    let dups = files.iter().filter(|f| f.dup_of.is_some()).count();
    format!(
        "{} files, {:.3} GiB, median {} KiB, largest {:.1} MiB, {} duplicates ({:.0}%)",
        files.len(),
        total as f64 / (1u64 << 30) as f64,
        median >> 10,
        largest as f64 / (1u64 << 20) as f64,
        dups,
        100.0 * dups as f64 / files.len().max(1) as f64
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(files: u64) -> TreeSpec {
        TreeSpec {
            files,
            median_kib: 16,
            sigma: 1.0,
            body_max_kib: 256,
            tail_fraction: 0.0,
            tail_min_mib: 1,
            tail_max_mib: 2,
            dup_fraction: 0.25,
            accounts: 3,
            single_bytes: None,
            seed: 1,
        }
    }

    #[test]
    fn the_tree_matches_its_index_and_duplicates_repeat_content_within_an_account() {
        let dir = std::env::temp_dir().join(format!("dtx-bench-tree-{}", std::process::id()));
        let files = generate(&dir, &spec(60)).unwrap();
        assert_eq!(read_index(&dir).unwrap(), files);
        let dups: Vec<&TreeFile> = files.iter().filter(|f| f.dup_of.is_some()).collect();
        assert!(dups.len() > 3 && dups.len() < 30, "{} duplicates of 60 at 25%", dups.len());
        for d in dups {
            let original = files.iter().find(|f| Some(f.id) == d.dup_of).unwrap();
            assert_eq!(original.account, d.account);
            assert_eq!(std::fs::read(dir.join(&d.path)).unwrap(), std::fs::read(dir.join(&original.path)).unwrap());
        }
        for f in &files {
            assert_eq!(std::fs::metadata(dir.join(&f.path)).unwrap().len(), f.size);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_body_has_the_asked_median_and_the_same_seed_gives_the_same_plan() {
        let s = spec(4001);
        let a: Vec<u64> = plan(&s).iter().filter(|p| p.file.dup_of.is_none()).map(|p| p.file.size).collect();
        let mut sorted = a.clone();
        sorted.sort_unstable();
        let median = sorted[sorted.len() / 2] as f64;
        assert!((median / (16.0 * 1024.0) - 1.0).abs() < 0.1, "median {median}");
        let b: Vec<u64> = plan(&s).iter().filter(|p| p.file.dup_of.is_none()).map(|p| p.file.size).collect();
        assert_eq!(a, b);
    }
}
