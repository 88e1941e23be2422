//! `kube-bind-backend`: parse flags, build the pieces, run.

use std::process::ExitCode;

use anyhow::Context as _;
use kube_bind_backend::app;
use kube_bind_backend::options::{LogFormat, Options, OptionsError};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let options = match Options::from_args(std::env::args_os()) {
        Ok(options) => options,
        Err(OptionsError::Syntax(err)) => {
            // --help and --version land here too, with exit code 0.
            let _ = err.print();
            return exit_code(err.exit_code());
        }
        Err(OptionsError::Invalid(invalid)) => {
            eprintln!("{invalid}");
            return ExitCode::from(2);
        }
    };
    init_logging(options.log_format);
    for warning in &options.warnings {
        tracing::warn!("{warning}");
    }
    match run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: Options) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let backend = app::start(options, shutdown.clone()).await?;
        tokio::spawn(cancel_on_signal(shutdown));
        backend.wait().await?;
        Ok(())
    })
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
