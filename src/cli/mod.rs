//! The command line (INTERFACE.md section 1): `serve` (the default), `migrate`,
//! `check-config` and `verify`.

mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, LogFormat, Logging};

#[derive(Debug, Parser)]
#[command(name = "pushgate", version, about = "Receives, verifies and stores the security data clouds push")]
pub struct Cli {
    /// TOML configuration file (also PUSHGATE_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate the database, then serve push routes, the admin API and probes (default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Validate the configuration and print it with secrets redacted.
    CheckConfig,
    /// Check one captured push offline, as the push route would.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The body you would POST to /v1/connections (source and config, secrets included).
    #[arg(long, value_name = "C.json")]
    pub connection: PathBuf,
    /// Overrides the connection's `source`.
    #[arg(long)]
    pub source: Option<String>,
    /// The clock of the check, RFC 3339 (default: now).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// A request header, `Name: value`; repeat for several.
    #[arg(long = "header", value_name = "N: V")]
    pub headers: Vec<String>,
    /// The request's query string, without `?`.
    #[arg(long, value_name = "Q")]
    pub query: Option<String>,
    /// The push URL the request was sent to.
    #[arg(long, value_name = "U")]
    pub url: Option<String>,
    /// The captured body.
    pub file: PathBuf,
}

/// Runs the parsed command line and returns the process exit code.
pub async fn main(cli: Cli) -> ExitCode {
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Verify(args) = &command {
        return verify::run(args, cli.config.as_deref()).await;
    }
    let config = match Config::from_env(cli.config.as_deref()) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("pushgate: {errors}");
            return ExitCode::FAILURE;
        }
    };
    match command {
        Command::CheckConfig => {
            match toml::to_string(&config) {
                Ok(text) => print!("{text}"),
                Err(e) => eprintln!("pushgate: cannot print the configuration: {e}"),
            }
            ExitCode::SUCCESS
        }
        Command::Migrate => {
            init_tracing(&config.log);
            match crate::open_store(&config.database).await {
                Ok(store) => {
                    tracing::info!(database = store.backend(), "migrations applied");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("pushgate: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve => {
            init_tracing(&config.log);
            let stop = shutdown_signal();
            let addr = config.listen;
            let listener = match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("pushgate: cannot listen on {addr}: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match crate::run(config, listener, stop).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("pushgate: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Verify(_) => unreachable!("handled above"),
    }
}

fn init_tracing(log: &Logging) {
    let filter = tracing_subscriber::EnvFilter::try_new(&log.filter).unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Installs the SIGINT and SIGTERM handlers now (so a signal that arrives while the
/// server starts is not lost to the default action) and completes on either.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt()).expect("installing a SIGINT handler cannot fail on unix");
    let mut terminate = signal(SignalKind::terminate()).expect("installing a SIGTERM handler cannot fail on unix");
    async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
    }
}
