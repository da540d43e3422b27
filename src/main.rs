//! The `pushgate` binary: parses the command line and hands over to the library.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    pushgate::cli::main(pushgate::cli::Cli::parse()).await
}
