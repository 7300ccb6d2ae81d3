//! A minimal stderr logger so that what the outputs report through `tracing`
//! (delivery failures, drops, spool recovery) reaches the user. Installed only
//! if no other subscriber is: the CLI's full `log_level`/`log_stderr` logger
//! takes precedence when it is set up first.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;

/// `saker: warning: <message>`, the shape of Saker's other stderr lines.
struct Line;

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        ev: &Event<'_>,
    ) -> fmt::Result {
        let level = match *ev.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        write!(w, "saker: {level}: ")?;
        ctx.field_format().format_fields(w.by_ref(), ev)?;
        writeln!(w)
    }
}

/// Info and above on stderr (`SAKER_LOG=debug` for more); a no-op when a subscriber exists.
pub fn install() {
    let level = match std::env::var("SAKER_LOG").as_deref() {
        Ok("error") => Level::ERROR,
        Ok("warning") | Ok("warn") => Level::WARN,
        Ok("debug") => Level::DEBUG,
        Ok("trace") => Level::TRACE,
        _ => Level::INFO,
    };
    let sub = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .event_format(Line)
        .finish();
    let _ = tracing::subscriber::set_global_default(sub);
}
