//! `dtx-bench`: the Rust side of the benchmarks in bench/*.sh. Each subcommand measures one
//! thing the scripts compare with a peer tool run in the same script.

mod hashing;
mod inventory;
mod moving;
mod tree;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "dtx-bench", about = "Benchmark drivers for bench/*.sh")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a file tree shaped like a certificate/document store, with its index.
    Tree {
        #[arg(long)]
        root: PathBuf,
        #[command(flatten)]
        spec: tree::TreeSpec,
    },
    /// SHA-256 every file of a tree through the worker's read and hash path.
    Hash(hashing::HashArgs),
    /// Move a tree with the worker handler driven by SqsEvent batches.
    Move(moving::MoveArgs),
    /// Run the inventory over a legacy database into a counting queue.
    Inventory(inventory::InventoryArgs),
}

#[tokio::main]
async fn main() -> Result<()> {
    // Warnings only (a record given back, and why): logging more would add to the CPU measured.
    let logging = tracing_subscriber::fmt().with_env_filter(shared::telemetry::filter_for("warn")).with_writer(std::io::stderr).try_init();
    if let Err(e) = logging {
        eprintln!("logging not initialised: {e}");
    }
    match Cli::parse().command {
        Command::Tree { root, spec } => {
            let files = tree::generate(&root, &spec)?;
            println!("{}", tree::describe(&files));
        }
        Command::Hash(args) => hashing::run(&args).await?,
        Command::Move(args) => moving::run(&args).await?,
        Command::Inventory(args) => inventory::run(&args).await?,
    }
    Ok(())
}
