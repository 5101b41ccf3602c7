//! Process start: quiet exit on a broken pipe, logging to stderr, the async runtime.

/// Exit status when the reader of stdout or stderr went away (128 + SIGPIPE, as a shell reports it).
const BROKEN_PIPE_EXIT: i32 = 141;

/// `lockbox view | head -1`: when the reader of stdout (or stderr) has gone,
/// `print!` fails with EPIPE and panics; exit quietly instead, as Unix tools
/// do. Every other panic keeps the default report.
pub fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to std")
            && msg.to_ascii_lowercase().contains("broken pipe")
        {
            std::process::exit(BROKEN_PIPE_EXIT);
        }
        default(info);
    }));
}

/// Colour on stderr only for a terminal, and never when `NO_COLOR` is set (https://no-color.org).
fn stderr_colour() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Logs to stderr, filtered by `LOCKBOX_LOG` (default `warn`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOCKBOX_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(stderr_colour())
        .init();
}

/// The multi-threaded runtime the commands run on.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
