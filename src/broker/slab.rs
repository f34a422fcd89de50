//! A slab: records in one `Vec` of slots, freed slots reused (last freed, first reused, so
//! the working set stays small and hot), each slot with a generation so that a stale
//! reference (a timer about a freed record) can be recognised.

/// Not over-aligned: aligned to 32 bytes, a delivery's slot never straddled two cache lines,
/// but no run measured faster, and a `Vec` of a type aligned beyond 16 bytes cannot grow in
/// place (the allocator's `realloc` is replaced by a new block and a copy): 10⁶ waiting
/// messages with drop-oldest ran 8% slower with a 9% higher peak.
struct Slot<T> {
    value: T,
    generation: u32,
    /// [`USED`] while the slot holds a record; else the next free slot ([`NIL`] for none):
    /// the free slots are a list through the slots themselves, so taking and freeing one
    /// touches only the slot and the list's head.
    next_free: u32,
}

/// `next_free` of a slot in use.
const USED: u32 = u32::MAX;
/// The end of the free list.
const NIL: u32 = u32::MAX - 1;

pub struct Slab<T> {
    slots: Vec<Slot<T>>,
    /// The last slot freed (`NIL`: none).
    free: u32,
}

/// Where a record was put, and the slot's generation (for references to it).
pub struct Placed {
    pub idx: u32,
    pub generation: u32,
}

impl<T> Slab<T> {
    pub fn new() -> Self {
        Slab {
            slots: Vec::new(),
            free: NIL,
        }
    }

    // Always inlined: as a call, the caller builds the record on the stack and the call
    // copies it from there in wider pieces than it was written in (a store-forwarding stall
    // at every insert; the compiler stopped inlining it once `push` was inlined into it).
    #[inline(always)]
    pub fn insert(&mut self, value: T) -> Placed {
        let idx = self.free;
        if let Some(slot) = self.slots.get_mut(idx as usize) {
            self.free = slot.next_free;
            slot.next_free = USED;
            slot.value = value;
            Placed {
                idx,
                generation: slot.generation,
            }
        } else {
            self.push(value)
        }
    }

    /// A new slot at the end (no slot is free). Inlined like the reuse of a free slot: as a
    /// call it needs the value in memory, and the compiler then built it on the stack for
    /// both ways, and the reuse copied it from there in wider pieces than it was written in
    /// (a store-forwarding stall at every insert: perf, W1 5% slower).
    #[inline(always)]
    fn push(&mut self, value: T) -> Placed {
        let idx = u32::try_from(self.slots.len())
            .ok()
            .filter(|&i| i < NIL)
            .expect("slab: more than 2^32 - 2 records alive");
        self.slots.push(Slot {
            value,
            generation: 0,
            next_free: USED,
        });
        Placed { idx, generation: 0 }
    }

    /// Frees a slot; its generation moves on so old references no longer match.
    #[inline]
    pub fn remove(&mut self, idx: u32) {
        let slot = &mut self.slots[idx as usize];
        debug_assert!(slot.next_free == USED, "slab: double free of slot {idx}");
        slot.next_free = self.free;
        slot.generation = slot.generation.wrapping_add(1);
        self.free = idx;
    }

    #[inline]
    pub fn get(&self, idx: u32) -> &T {
        &self.slots[idx as usize].value
    }

    #[inline]
    pub fn get_mut(&mut self, idx: u32) -> &mut T {
        &mut self.slots[idx as usize].value
    }

    #[inline]
    pub fn generation(&self, idx: u32) -> u32 {
        self.slots[idx as usize].generation
    }

    /// The slot holds a record of this generation; returns it.
    #[inline]
    pub fn live(&self, idx: u32, generation: u32) -> Option<&T> {
        match self.slots.get(idx as usize) {
            Some(s) if s.next_free == USED && s.generation == generation => Some(&s.value),
            _ => None,
        }
    }

    /// Whatever slot `idx` holds, live or freed: only for cache hints, which may be stale.
    #[inline(always)]
    pub fn any(&self, idx: u32) -> Option<&T> {
        self.slots.get(idx as usize).map(|s| &s.value)
    }

    /// The slot holds a record of this generation.
    #[inline]
    pub fn is_live(&self, idx: u32, generation: u32) -> bool {
        self.live(idx, generation).is_some()
    }

    /// Live records with their slots, in slot order.
    pub fn iter_live(&self) -> impl Iterator<Item = (u32, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.next_free == USED)
            .map(|(i, s)| (i as u32, &s.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_slot_of_24_bytes_is_half_a_line() {
        assert_eq!(std::mem::size_of::<Slot<[u32; 6]>>(), 32);
    }

    proptest! {
        /// Against a model: slots reused last freed first, live records and generations as
        /// kept by hand.
        #[test]
        fn matches_a_model(ops in prop::collection::vec((any::<bool>(), 0usize..64), 1..300)) {
            let mut slab = Slab::new();
            // (value, generation, live) per slot, and the freed slots, last freed last.
            let mut model: Vec<(u32, u32, bool)> = Vec::new();
            let mut freed: Vec<u32> = Vec::new();
            for (n, (add, pick)) in ops.into_iter().enumerate() {
                let live: Vec<u32> = (0..model.len() as u32).filter(|&i| model[i as usize].2).collect();
                if add || live.is_empty() {
                    let idx = slab.insert(n as u32).idx;
                    match freed.pop() {
                        Some(f) => {
                            prop_assert_eq!(idx, f);
                            model[f as usize] = (n as u32, model[f as usize].1, true);
                        }
                        None => {
                            prop_assert_eq!(idx as usize, model.len());
                            model.push((n as u32, 0, true));
                        }
                    }
                } else {
                    let idx = live[pick % live.len()];
                    slab.remove(idx);
                    let m = &mut model[idx as usize];
                    *m = (m.0, m.1.wrapping_add(1), false);
                    freed.push(idx);
                }
                for (i, &(value, generation, live)) in model.iter().enumerate() {
                    let i = i as u32;
                    prop_assert_eq!(slab.generation(i), generation);
                    prop_assert_eq!(slab.live(i, generation).copied(), live.then_some(value));
                    prop_assert!(!slab.is_live(i, generation.wrapping_sub(1)));
                }
                let listed: Vec<(u32, u32)> = slab.iter_live().map(|(i, v)| (i, *v)).collect();
                let expected: Vec<(u32, u32)> = model
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| m.2)
                    .map(|(i, m)| (i as u32, m.0))
                    .collect();
                prop_assert_eq!(listed, expected);
            }
        }
    }
}
