//! How glibc's allocator hands memory back to the system.
//!
//! glibc serves large blocks with their own `mmap`, returned to the system when freed, but it
//! raises that threshold each time such a block is freed (up to 32 MiB on 64-bit), so later large
//! blocks, the decoded row groups of a Parquet read among them, come from the heap, and the
//! heap keeps what is freed there. On the national synthetic extracts this retention, not the data
//! held, made the cohort's peak grow with the years: ASC-12 peaked at 0.58, 0.66 and 0.92 GiB for
//! 1, 2 and 3 years, and at 0.29, 0.29 and 0.31 GiB with the threshold fixed, taking about a third
//! longer (README, "Memory against years").

/// Fixes glibc's mmap threshold at its initial 128 KiB, so large blocks go back to the system when
/// freed. Left alone when the user set `MALLOC_MMAP_THRESHOLD_` (glibc reads it at start-up), and a
/// no-op on other platforms. Process-wide: `ascqr cohort` calls it, `ascqr run` does not.
pub fn return_large_blocks_to_the_system() {
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt changes an allocator setting; it touches no memory of ours. It returns 0 if
    // the setting was refused, which leaves glibc's default in place.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
