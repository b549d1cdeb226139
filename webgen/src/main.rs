//! The `webgen` binary: everything happens in [`webgen::run`], which prints
//! at most one `webgen: ...` error line; the exit codes are in `--help`.

fn main() {
    std::process::exit(webgen::run(std::env::args_os().skip(1)));
}
