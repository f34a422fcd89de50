//! A slab: records in a `Vec`, freed slots reused, each slot with a generation so that a
//! stale reference (a timer about a freed record) can be recognised.

pub struct Slab<T> {
    items: Vec<T>,
    generations: Vec<u32>,
    used: Vec<bool>,
    free: Vec<u32>,
}

/// Where a record was put.
pub struct Placed {
    pub idx: u32,
}

impl<T> Slab<T> {
    pub fn new() -> Self {
        Slab {
            items: Vec::new(),
            generations: Vec::new(),
            used: Vec::new(),
            free: Vec::new(),
        }
    }

    #[inline]
    pub fn insert(&mut self, value: T) -> Placed {
        if let Some(idx) = self.free.pop() {
            self.items[idx as usize] = value;
            self.used[idx as usize] = true;
            Placed { idx }
        } else {
            let idx =
                u32::try_from(self.items.len()).expect("slab: more than u32::MAX records alive");
            self.items.push(value);
            self.generations.push(0);
            self.used.push(true);
            Placed { idx }
        }
    }

    /// Frees a slot; its generation moves on so old references no longer match.
    #[inline]
    pub fn remove(&mut self, idx: u32) {
        debug_assert!(self.used[idx as usize], "slab: double free of slot {idx}");
        self.used[idx as usize] = false;
        self.generations[idx as usize] = self.generations[idx as usize].wrapping_add(1);
        self.free.push(idx);
    }

    #[inline]
    pub fn get(&self, idx: u32) -> &T {
        &self.items[idx as usize]
    }

    #[inline]
    pub fn get_mut(&mut self, idx: u32) -> &mut T {
        &mut self.items[idx as usize]
    }

    #[inline]
    pub fn generation(&self, idx: u32) -> u32 {
        self.generations[idx as usize]
    }

    /// The slot holds a record of this generation.
    #[inline]
    pub fn is_live(&self, idx: u32, generation: u32) -> bool {
        (idx as usize) < self.items.len()
            && self.used[idx as usize]
            && self.generations[idx as usize] == generation
    }

    /// Live records with their slots, in slot order.
    pub fn iter_live(&self) -> impl Iterator<Item = (u32, &T)> {
        self.items
            .iter()
            .enumerate()
            .filter(|(i, _)| self.used[*i])
            .map(|(i, v)| (i as u32, v))
    }

    /// Slots allocated (live or free), for memory reports.
    #[allow(dead_code)]
    pub fn capacity(&self) -> usize {
        self.items.len()
    }
}
