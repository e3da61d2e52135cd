//! `liandong serve | ingest | project | demo`: see the README for the settings.

mod demo;

use clap::{Parser, Subcommand};
use liandong::{start, Config, Role};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "liandong",
    version,
    about = "联动 liandong: event-sourced analytics for WeChat Official Accounts and Mini Programs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ingestion, projectors and the query API in one process (embedded log and SQLite by default).
    Serve,
    /// Only the ingestion endpoint (needs LIANDONG_KAFKA_BROKERS); run as many as you like.
    Ingest,
    /// Only the projectors (needs LIANDONG_KAFKA_BROKERS); instances share the partitions.
    Project,
    /// liandong with a simulated OA + MP audience: backfills history, then sends live traffic.
    Demo(demo::DemoArgs),
    /// Manages the API keys kept (hashed) in the read store: create, list, revoke.
    Keys {
        #[command(subcommand)]
        command: liandong::keys::KeysCommand,
    },
    /// Rebuilds projections (all, or those named) from the start of the log. PostgreSQL:
    /// the running projectors build them beside the live tables, which keep answering, and swap
    /// them in once caught up; this command draws the progress until then. SQLite: empties them
    /// in place, rebuilt when `serve` starts (run it with `serve` stopped).
    Rebuild {
        /// Projections to rebuild (default: all).
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(liandong::projection_names()))]
        projections: Vec<String>,
        /// Register the rebuild and return, without following its progress.
        #[arg(long)]
        no_wait: bool,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let default_filter = liandong::log_filter(matches!(cli.command, Command::Demo(_)));
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
        )
        .init();
    let role = match cli.command {
        Command::Serve => Role::Serve,
        Command::Ingest => Role::Ingest,
        Command::Project => Role::Project,
        Command::Demo(args) => {
            return match demo::run(args, shutdown_signal()).await {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("liandong demo: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            };
        }
        Command::Keys { command } => return keys(command).await,
        Command::Rebuild {
            projections,
            no_wait,
        } => return rebuild(&projections, no_wait).await,
    };
    let cfg = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("liandong: configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let running = match start(role, cfg).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("liandong: cannot start: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("liandong listening on http://{}", running.addr);
    match running.run_until(shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("liandong: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `liandong keys …` against the read store the settings name (the embedded SQLite by default).
async fn keys(command: liandong::keys::KeysCommand) -> std::process::ExitCode {
    let cfg = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("liandong: configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let (mut out, mut note) = (std::io::stdout().lock(), std::io::stderr().lock());
    match liandong::keys::run(command, &cfg, &mut out, &mut note).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("liandong keys: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `liandong rebuild [PROJECTION…]` against the read store the settings name.
async fn rebuild(only: &[String], no_wait: bool) -> std::process::ExitCode {
    use liandong::rebuild::Requested;
    let cfg = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("liandong: configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let done = match liandong::rebuild::rebuild(&cfg, only).await {
        Ok(done) => done,
        Err(e) => {
            eprintln!("liandong rebuild: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut follow = Vec::new();
    for (name, version, what) in done {
        match what {
            Requested::Building => {
                println!("projection {name} (version {version}): rebuilding beside the live tables, which keep answering until it is swapped in");
                follow.push(name);
            }
            Requested::UnderWay => {
                println!("projection {name} (version {version}): a rebuild is under way already; following it");
                follow.push(name);
            }
            Requested::Emptied => println!("projection {name} (version {version}) emptied: it rebuilds from the start of the log when the projectors start"),
        }
    }
    if no_wait || follow.is_empty() {
        return std::process::ExitCode::SUCCESS;
    }
    match liandong::rebuild::follow(&cfg, &follow).await {
        Ok(()) => {
            println!("rebuilt and swapped in: {}", follow.join(", "));
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("liandong rebuild: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
