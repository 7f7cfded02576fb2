//! The `omnistack` binary.

#[global_allocator]
static ALLOCATOR: omnistack::allocator::Allocator = omnistack::allocator::Allocator;

fn main() -> std::process::ExitCode {
    omnistack::install_crypto_provider();
    omnistack::cli::run()
}
