//! The `omnistack` binary.

fn main() -> std::process::ExitCode {
    omnistack::install_crypto_provider();
    omnistack::cli::run()
}
