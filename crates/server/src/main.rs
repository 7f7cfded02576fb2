//! The `omnistack` binary.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    return_large_allocations_to_the_system();
    omnistack::install_crypto_provider();
    omnistack::cli::run()
}

/// Password hashing allocates ~19 MiB per hash on the blocking threads. By default mimalloc
/// commits its arenas eagerly (backed by transparent huge pages) and returns freed memory only
/// while the freeing thread keeps allocating, so an idle server would keep such blocks, and
/// the RSS of a burst of sign-ups, for good. Lazy commit and immediate purging give memory
/// back as soon as it is freed, at no measurable cost to request throughput.
fn return_large_allocations_to_the_system() {
    // Indices in mimalloc's `mi_option_t` (mimalloc.h of mimalloc v3, as vendored by
    // libmimalloc-sys 0.1.49; check them when that crate is upgraded).
    const ARENA_EAGER_COMMIT: i32 = 4;
    const PURGE_DELAY: i32 = 15;
    unsafe extern "C" {
        fn mi_option_set(option: i32, value: std::ffi::c_long);
    }
    // SAFETY: mi_option_set only adjusts allocator tuning; called once before any thread starts.
    unsafe {
        mi_option_set(ARENA_EAGER_COMMIT, 0);
        mi_option_set(PURGE_DELAY, 0);
    }
}
