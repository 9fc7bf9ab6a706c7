//! How glibc's allocator hands memory back to the system.
//!
//! glibc serves large blocks with their own `mmap`, returned to the system when freed, but it
//! raises that threshold each time such a block is freed (up to 32 MiB on 64-bit), so later large
//! blocks, the decoded row groups of a Parquet read among them, come from the heap, and the
//! heap keeps what is freed there. `ascqr cohort` decodes one shard after another and frees each:
//! on the one-year national synthetic extract (20 shards) ASC-12 peaked at 1.96 GB with glibc's
//! default and at 0.82 GB with the threshold fixed, taking 22.2 s instead of 19.2 s
//! (`benches/results/cohort_by_years.md`).
//!
//! `ascqr run` leaves the default: on the dense demo year its peak fell from 1.27 to 0.66 GB with
//! the threshold fixed but its time rose from 23.2 to 29.3 s, and its national peak is under the
//! 4 GiB target without it (`benches/results/density.md`). A user short of memory sets
//! `MALLOC_MMAP_THRESHOLD_=131072` for any command.

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
