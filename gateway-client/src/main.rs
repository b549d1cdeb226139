//! The `gateway-client` binary: everything happens in [`gateway_client::run::run`].

fn main() {
    std::process::exit(gateway_client::run::run(std::env::args_os().skip(1)));
}
