//! `liandong serve | ingest | project | demo | keys | rebuild | dead-letter`: every setting is an
//! option of the command (`--help` lists them) read from its `LIANDONG_…` variable when not given.

mod demo;

use clap::{Parser, Subcommand};
use liandong::config::Settings;
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
    Serve(RunArgs),
    /// Only the ingestion endpoint (needs LIANDONG_KAFKA_BROKERS); run as many as you like.
    Ingest(RunArgs),
    /// Only the projectors (needs LIANDONG_KAFKA_BROKERS); instances share the partitions.
    Project(RunArgs),
    /// liandong with a simulated OA + MP audience: backfills history, then sends live traffic.
    Demo(demo::DemoArgs),
    /// Manages the API keys kept (hashed) in the read store: create, list, revoke.
    Keys {
        #[command(subcommand)]
        command: liandong::keys::KeysCommand,
        #[command(flatten)]
        settings: Settings,
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
        #[command(flatten)]
        settings: Settings,
    },
    /// Lists the dead-letter stream's rejected events, or replays them through today's
    /// validation once the sender's bug is fixed. With the embedded log, stop `serve` first.
    DeadLetter {
        #[command(subcommand)]
        command: liandong::dead_letter::DeadLetterCommand,
        #[command(flatten)]
        settings: Settings,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    settings: Settings,
}

/// The typed configuration of `settings`, or the exit code of a configuration error.
fn config(settings: &Settings) -> Result<Config, std::process::ExitCode> {
    Config::from_settings(settings).map_err(|e| {
        eprintln!("liandong: configuration error: {e}");
        std::process::ExitCode::from(2)
    })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let default_filter = liandong::log_filter(matches!(cli.command, Command::Demo(_)));
    let filter = match &cli.command {
        Command::Serve(a) | Command::Ingest(a) | Command::Project(a) => a.settings.get("RUST_LOG"),
        Command::Keys { settings, .. }
        | Command::Rebuild { settings, .. }
        | Command::DeadLetter { settings, .. } => settings.get("RUST_LOG"),
        Command::Demo(_) => std::env::var("RUST_LOG").ok(),
    };
    let filter = match filter.map(|f| EnvFilter::try_new(&f).map_err(|e| (f, e))) {
        None => EnvFilter::new(default_filter),
        Some(Ok(f)) => f,
        Some(Err((f, e))) => {
            eprintln!("liandong: configuration error: RUST_LOG: expected a log filter such as info or info,sqlx=warn, got {f:?}: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    // The commands' stdout is their answer (a table, JSON, a key): their logs go to stderr.
    let command_line = matches!(
        cli.command,
        Command::Keys { .. } | Command::Rebuild { .. } | Command::DeadLetter { .. }
    );
    if command_line {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let (role, settings) = match cli.command {
        Command::Serve(a) => (Role::Serve, a.settings),
        Command::Ingest(a) => (Role::Ingest, a.settings),
        Command::Project(a) => (Role::Project, a.settings),
        Command::Demo(args) => {
            return match demo::run(args, shutdown_signal()).await {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("liandong demo: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            };
        }
        Command::Keys { command, settings } => return keys(command, &settings).await,
        Command::Rebuild {
            projections,
            no_wait,
            settings,
        } => return rebuild(&projections, no_wait, &settings).await,
        Command::DeadLetter { command, settings } => return dead_letter(command, &settings).await,
    };
    let cfg = match config(&settings) {
        Ok(c) => c,
        Err(code) => return code,
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
async fn keys(command: liandong::keys::KeysCommand, settings: &Settings) -> std::process::ExitCode {
    let cfg = match config(settings) {
        Ok(c) => c,
        Err(code) => return code,
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
async fn rebuild(only: &[String], no_wait: bool, settings: &Settings) -> std::process::ExitCode {
    use liandong::rebuild::Requested;
    let cfg = match config(settings) {
        Ok(c) => c,
        Err(code) => return code,
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

/// `liandong dead-letter list | replay` against the log and read store the settings name.
async fn dead_letter(
    command: liandong::dead_letter::DeadLetterCommand,
    settings: &Settings,
) -> std::process::ExitCode {
    let cfg = match config(settings) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut out = std::io::stdout().lock();
    match liandong::dead_letter::run(command, cfg, &mut out).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("liandong dead-letter: {e:#}");
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
