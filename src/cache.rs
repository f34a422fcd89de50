//! Cache hints: asking the processor to bring a record into its caches ahead of use,
//! without waiting for it. A hint reads nothing the program sees and changes no state, so
//! it can only change speed; the simulator's look ahead ([`crate::broker::Stage`]) uses it.

/// Asks the processor to bring every cache line of `r` in, without waiting for them. For a
/// large record, hint the fields that will be read rather than the whole of it.
#[inline(always)]
pub fn hint<T>(r: &T) {
    let start = (r as *const T).cast::<u8>();
    let size = std::mem::size_of::<T>();
    // Every line's worth from the start, and the last byte when the record may straddle a
    // line more (a value no larger than its alignment cannot): counts known when compiling,
    // so no loop is left.
    for k in 0..size.div_ceil(LINE) {
        hint_ptr(start.wrapping_add(k * LINE));
    }
    if size > std::mem::align_of::<T>() {
        hint_ptr(start.wrapping_add(size - 1));
    }
}

/// [`hint`] for every line of a slice (its length known only when running).
#[inline(always)]
pub fn hint_slice<T>(s: &[T]) {
    let start = s.as_ptr().cast::<u8>();
    let bytes = std::mem::size_of_val(s);
    for offset in (0..bytes).step_by(LINE) {
        hint_ptr(start.wrapping_add(offset));
    }
    if bytes > 0 {
        hint_ptr(start.wrapping_add(bytes - 1));
    }
}

/// [`hint`] for the `N` values of `T` from `p`, which may lie past the end of their array: a
/// hint reads nothing and cannot fault, so a look ahead near an array's end needs no bounds
/// check, and `N` known when compiling leaves no loop. `p` is expected to start a line.
#[inline(always)]
pub fn hint_run<T, const N: usize>(p: *const T) {
    let start = p.cast::<u8>();
    for k in 0..(N * std::mem::size_of::<T>()).div_ceil(LINE) {
        hint_ptr(start.wrapping_add(k * LINE));
    }
}

/// The cache line size of the processors the simulator is tuned for.
const LINE: usize = 64;

#[inline(always)]
#[allow(unsafe_code)]
fn hint_ptr(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads no memory architecturally and cannot fault, whatever the
    // address; SSE, which it needs, is part of the x86_64 baseline.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
