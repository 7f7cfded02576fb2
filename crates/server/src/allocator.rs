//! The binary's global allocator: mimalloc for everything a request allocates, and the
//! kernel's own pages for large blocks, handed back the moment they are freed.
//!
//! Password hashing takes ~19 MiB per hash on the blocking threads. mimalloc keeps freed memory
//! for reuse and returns it only while the freeing thread keeps allocating, so an idle server
//! would keep a burst of sign-ups' memory for good; telling mimalloc to return every freed page
//! at once instead costs every request a page fault and the other core a TLB shootdown (about a
//! tenth of the server's CPU per request under load). Blocks of [`LARGE`] bytes or more are
//! therefore mapped and unmapped directly: they are rare, large enough that a system call is
//! nothing beside the work done with them, and their memory is back with the system as soon as
//! they are dropped.

use std::alloc::{GlobalAlloc, Layout};
use std::ptr;

use mimalloc::MiMalloc;

/// The size from which a block gets its own mapping.
pub const LARGE: usize = 1 << 20;

/// The largest alignment a fresh mapping is sure to have (the smallest page size).
const PAGE: usize = 4096;

/// mimalloc, with blocks of [`LARGE`] bytes or more mapped from the kernel.
pub struct Allocator;

fn is_large(layout: Layout) -> bool {
    layout.size() >= LARGE && layout.align() <= PAGE
}

/// A fresh anonymous mapping of `size` bytes: zeroed, page-aligned; null if the kernel refuses.
unsafe fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping touches no existing memory.
    let address = unsafe {
        libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if address == libc::MAP_FAILED { ptr::null_mut() } else { address.cast() }
}

// SAFETY: every block is served whole by exactly one of mimalloc or the kernel, decided by its
// layout alone, and `dealloc` and `realloc` are given the layout it was allocated with.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(layout) { unsafe { map(layout.size()) } } else { unsafe { MiMalloc.alloc(layout) } }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(layout) {
            // A new mapping is zeroed by the kernel, page by page as it is first touched.
            unsafe { map(layout.size()) }
        } else {
            unsafe { MiMalloc.alloc_zeroed(layout) }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        if is_large(layout) {
            // SAFETY: the block is a mapping of exactly this size, made by `map` or `mremap`.
            unsafe { libc::munmap(block.cast(), layout.size()) };
        } else {
            unsafe { MiMalloc.dealloc(block, layout) }
        }
    }

    #[inline]
    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY (all branches): the caller guarantees `new_size` makes a valid layout with
        // the same alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (is_large(layout), is_large(new_layout)) {
            (false, false) => unsafe { MiMalloc.realloc(block, layout, new_size) },
            (true, true) => {
                // The kernel moves the pages rather than copying them.
                let moved = unsafe { libc::mremap(block.cast(), layout.size(), new_size, libc::MREMAP_MAYMOVE) };
                if moved == libc::MAP_FAILED { ptr::null_mut() } else { moved.cast() }
            }
            _ => {
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    unsafe {
                        ptr::copy_nonoverlapping(block, new, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                }
                new
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether every page of the range is mapped and resident; false when any is unmapped.
    fn resident(block: *mut u8, size: usize) -> bool {
        let mut pages = vec![0u8; size.div_ceil(PAGE)];
        // SAFETY: mincore only reads the page tables; an unmapped range makes it fail.
        let mapped = unsafe { libc::mincore(block.cast(), size, pages.as_mut_ptr()) } == 0;
        mapped && pages.iter().all(|page| page & 1 == 1)
    }

    #[test]
    fn large_blocks_are_zeroed_grow_keep_their_bytes_and_go_back_to_the_system() {
        const SIZE: usize = 64 << 20;
        unsafe {
            let layout = Layout::from_size_align(SIZE, 64).unwrap();
            let block = Allocator.alloc_zeroed(layout);
            assert!(!block.is_null());
            assert_eq!(block as usize % PAGE, 0);
            let bytes = std::slice::from_raw_parts_mut(block, SIZE);
            assert!(bytes.iter().all(|&byte| byte == 0));
            bytes.fill(7);
            assert!(resident(block, SIZE), "the block's pages are resident while used");

            let grown = Allocator.realloc(block, layout, 2 * SIZE);
            assert!(!grown.is_null());
            assert!(std::slice::from_raw_parts(grown, SIZE).iter().all(|&byte| byte == 7));
            let grown_layout = Layout::from_size_align(2 * SIZE, 64).unwrap();

            // Shrunk below the threshold: moved back to mimalloc, bytes kept, and the large
            // block's pages are no longer the process's.
            let small = Allocator.realloc(grown, grown_layout, 4096);
            assert!(std::slice::from_raw_parts(small, 4096).iter().all(|&byte| byte == 7));
            assert!(!resident(grown, PAGE), "a freed large block is unmapped at once");
            Allocator.dealloc(small, Layout::from_size_align(4096, 64).unwrap());
        }
    }

    #[test]
    fn small_blocks_grow_into_large_ones_with_their_bytes() {
        unsafe {
            let layout = Layout::from_size_align(1000, 8).unwrap();
            let block = Allocator.alloc(layout);
            std::slice::from_raw_parts_mut(block, 1000).fill(3);
            let grown = Allocator.realloc(block, layout, LARGE);
            assert!(std::slice::from_raw_parts(grown, 1000).iter().all(|&byte| byte == 3));
            Allocator.dealloc(grown, Layout::from_size_align(LARGE, 8).unwrap());
            // An alignment no mapping promises stays with mimalloc.
            let odd = Layout::from_size_align(LARGE, 2 * PAGE).unwrap();
            let aligned = Allocator.alloc(odd);
            assert_eq!(aligned as usize % (2 * PAGE), 0);
            Allocator.dealloc(aligned, odd);
        }
    }
}
