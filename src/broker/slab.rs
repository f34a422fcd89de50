//! A slab: records in one `Vec` of slots, freed slots reused (last freed, first reused, so
//! the working set stays small and hot), each slot with a generation so that a stale
//! reference (a timer about a freed record) can be recognised.

struct Slot<T> {
    value: T,
    generation: u32,
    used: bool,
}

pub struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
}

/// Where a record was put.
pub struct Placed {
    pub idx: u32,
}

impl<T> Slab<T> {
    pub fn new() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    #[inline]
    pub fn insert(&mut self, value: T) -> Placed {
        if let Some(idx) = self.free.pop() {
            let slot = &mut self.slots[idx as usize];
            slot.value = value;
            slot.used = true;
            Placed { idx }
        } else {
            let idx =
                u32::try_from(self.slots.len()).expect("slab: more than u32::MAX records alive");
            self.slots.push(Slot {
                value,
                generation: 0,
                used: true,
            });
            Placed { idx }
        }
    }

    /// Frees a slot; its generation moves on so old references no longer match.
    #[inline]
    pub fn remove(&mut self, idx: u32) {
        let slot = &mut self.slots[idx as usize];
        debug_assert!(slot.used, "slab: double free of slot {idx}");
        slot.used = false;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(idx);
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
            Some(s) if s.used && s.generation == generation => Some(&s.value),
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
            .filter(|(_, s)| s.used)
            .map(|(i, s)| (i as u32, &s.value))
    }
}
