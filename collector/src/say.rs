//! One line on stderr that can never panic or abort the collector.
//!
//! `eprintln!` panics when the write fails: stderr a pipe whose reader is
//! gone (`EPIPE`), or a file on a full disk (`ENOSPC`, the shipped crontab
//! appends to `collector.log` on the disk of the logs). A log line is worth
//! less than the collector that writes it, so [`say!`] writes the line with
//! one `write_all` and ignores any error: the collector goes on receiving,
//! writing and acking, and `/metrics` still counts what the line would have
//! said.

/// `say!("...", args)`: like `eprintln!("collector: ...")`, but a failed
/// write is ignored.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::say::line(::std::format_args!($($arg)*))
    };
}
pub(crate) use say;

/// Writes `collector: ARGS\n` to stderr in one write, ignoring errors.
pub(crate) fn line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let text = format!("collector: {args}\n");
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_without_panicking() {
        // stderr in tests is captured or a terminal; the point is that the
        // macro builds and never returns an error to handle.
        say!("test line {}", 1);
    }
}
