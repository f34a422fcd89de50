//! A FIFO ring of `Copy` entries for a consumer's queue parts: a push and a pop inlined at the
//! call site, growing (rare) out of line. `VecDeque::push_back` stays a call in the hot path
//! (about one per delivery attempt), which is what this replaces; the order of entries is the
//! same.

/// Entries in `buf[head..]` then `buf[..]`, wrapping; `buf.len()` is the capacity, zero or a
/// power of two.
#[derive(Debug)]
pub(super) struct Ring<T> {
    buf: Vec<T>,
    head: usize,
    len: usize,
}

impl<T> Default for Ring<T> {
    fn default() -> Self {
        Ring {
            buf: Vec::new(),
            head: 0,
            len: 0,
        }
    }
}

impl<T: Copy + Default> Ring<T> {
    #[inline(always)]
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    fn mask(&self) -> usize {
        self.buf.len().wrapping_sub(1)
    }

    #[inline(always)]
    pub(super) fn push_back(&mut self, x: T) {
        if self.len == self.buf.len() {
            self.grow();
        }
        let i = (self.head + self.len) & self.mask();
        self.buf[i] = x;
        self.len += 1;
    }

    #[inline(always)]
    pub(super) fn push_front(&mut self, x: T) {
        if self.len == self.buf.len() {
            self.grow();
        }
        self.head = self.head.wrapping_sub(1) & self.mask();
        self.buf[self.head] = x;
        self.len += 1;
    }

    /// The slot `push_back` would write, when it needs no growth.
    #[inline(always)]
    pub(super) fn next_slot(&self) -> Option<&T> {
        self.buf.get((self.head + self.len) & self.mask())
    }

    /// The entry `pop_front` would return, without taking it.
    #[inline(always)]
    pub(super) fn front(&self) -> Option<&T> {
        (self.len > 0).then(|| &self.buf[self.head])
    }

    #[inline(always)]
    pub(super) fn pop_front(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let x = self.buf[self.head];
        self.head = (self.head + 1) & self.mask();
        self.len -= 1;
        Some(x)
    }

    /// Moves every entry of `self`, in order, to the back of `to`.
    pub(super) fn move_to(&mut self, to: &mut Ring<T>) {
        while let Some(x) = self.pop_front() {
            to.push_back(x);
        }
    }

    /// Doubles the capacity (4 at first), entries moved to the front in order.
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let cap = (self.buf.len() * 2).max(4);
        let mut buf = Vec::with_capacity(cap);
        let mask = self.mask();
        buf.extend((0..self.len).map(|k| self.buf[(self.head + k) & mask]));
        buf.resize(cap, T::default());
        self.buf = buf;
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::Ring;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    proptest! {
        /// The same entries in the same order as a `VecDeque` under any mix of operations.
        #[test]
        fn ring_is_a_deque(ops in prop::collection::vec(0u8..4, 0..400)) {
            let mut r = Ring::<u32>::default();
            let mut d = VecDeque::new();
            for (n, op) in ops.into_iter().enumerate() {
                let n = n as u32;
                match op {
                    0 | 1 => { r.push_back(n); d.push_back(n); }
                    2 => { r.push_front(n); d.push_front(n); }
                    _ => prop_assert_eq!(r.pop_front(), d.pop_front()),
                }
                prop_assert_eq!(r.len(), d.len());
                prop_assert_eq!(r.is_empty(), d.is_empty());
            }
            let mut other = Ring::default();
            other.push_back(u32::MAX);
            r.move_to(&mut other);
            prop_assert!(r.is_empty());
            prop_assert_eq!(other.pop_front(), Some(u32::MAX));
            while let Some(x) = other.pop_front() {
                prop_assert_eq!(Some(x), d.pop_front());
            }
            prop_assert!(d.is_empty());
        }
    }
}
