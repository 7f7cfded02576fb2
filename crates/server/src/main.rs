//! The `omnistack` binary.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    return_large_allocations_to_the_system();
    omnistack::install_crypto_provider();
    omnistack::cli::run()
}

/// Password hashing allocates ~19 MiB per hash on the blocking threads. glibc's adaptive
/// mmap threshold would otherwise rise past that after the first free and keep every such
/// block in per-thread heaps forever (hundreds of MiB after a burst of sign-ups). A fixed
/// threshold keeps large blocks mmapped, so they go back to the system when freed.
fn return_large_allocations_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator tuning; called once before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}
