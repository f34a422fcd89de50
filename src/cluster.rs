//! Broker nodes on a consistent-hash ring: which node leads each partition and which follow.
//!
//! Each node has `vnodes` points on a ring of `u64`; a partition's position is the hash of
//! `"<topic>/<partition>"`. Its replicas are the first `replication` distinct nodes met
//! walking clockwise from there, among the nodes that are in the ring and up; the first is the
//! leader. The hash is FNV-1a 64 followed by the SplitMix64 finaliser (FNV alone spreads short,
//! similar strings such as `n1#0`, `n1#1` poorly), so placement is the same on every platform.
//! This module is pure bookkeeping: the broker decides what a change of leader means for the
//! messages (see `broker/durability.rs`).

use crate::config::ClusterConfig;

/// The placement hash: FNV-1a 64, then the SplitMix64 finaliser.
pub fn ring_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// A node's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeState {
    /// In the ring (joined and not left).
    pub member: bool,
    /// Running (not crashed).
    pub up: bool,
}

/// The ring and the nodes' states.
#[derive(Clone, Debug)]
pub struct Ring {
    /// (position, node), sorted by position then node.
    points: Vec<(u64, u32)>,
    /// Per node.
    pub nodes: Vec<NodeState>,
    replication: usize,
}

impl Ring {
    /// The ring of `cfg` at t = 0 (standby nodes outside it).
    pub fn new(cfg: &ClusterConfig) -> Ring {
        let mut points = Vec::with_capacity(cfg.nodes.len() * cfg.vnodes as usize);
        for (n, name) in cfg.nodes.iter().enumerate() {
            for v in 0..cfg.vnodes {
                points.push((ring_hash(&format!("{name}#{v}")), n as u32));
            }
        }
        points.sort_unstable();
        let active = cfg.nodes.len() - cfg.standby as usize;
        Ring {
            points,
            nodes: (0..cfg.nodes.len())
                .map(|n| NodeState {
                    member: n < active,
                    up: true,
                })
                .collect(),
            replication: cfg.replication as usize,
        }
    }

    /// The replicas of the partition at `key` (leader first) among the nodes that are in
    /// the ring and up: at most `replication`, fewer when fewer nodes are available.
    pub fn replicas(&self, key: u64, out: &mut Vec<u32>) {
        out.clear();
        if self.points.is_empty() {
            return;
        }
        let start = self.points.partition_point(|&(h, _)| h < key);
        for i in 0..self.points.len() {
            let node = self.points[(start + i) % self.points.len()].1;
            let s = self.nodes[node as usize];
            if s.member && s.up && !out.contains(&node) {
                out.push(node);
                if out.len() == self.replication {
                    return;
                }
            }
        }
    }

    /// The position of a partition on the ring.
    pub fn key(topic: &str, partition: u32) -> u64 {
        ring_hash(&format!("{topic}/{partition}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(n: usize, r: u32) -> ClusterConfig {
        ClusterConfig {
            nodes: (1..=n).map(|i| format!("n{i}")).collect(),
            replication: r,
            ..ClusterConfig::single()
        }
    }

    fn leaders(ring: &Ring, parts: u32) -> Vec<Option<u32>> {
        let mut out = Vec::new();
        (0..parts)
            .map(|p| {
                ring.replicas(Ring::key("t", p), &mut out);
                out.first().copied()
            })
            .collect()
    }

    #[test]
    fn hash_is_fixed() {
        // Placement must not change between versions or platforms: values computed by an
        // independent implementation (a few lines of Python, in the README's recipe).
        assert_eq!(ring_hash(""), 0xf52a_15e9_a9b5_e89b);
        assert_eq!(ring_hash("orders/0"), 0xb185_139b_bb81_992a);
        assert_eq!(ring_hash("n1#0"), 0xe73b_9b96_754f_50a4);
    }

    #[test]
    fn replicas_are_distinct_and_leader_first() {
        let ring = Ring::new(&cfg(5, 3));
        let mut out = Vec::new();
        for p in 0..100 {
            ring.replicas(Ring::key("orders", p), &mut out);
            assert_eq!(out.len(), 3);
            let mut sorted = out.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), 3);
        }
    }

    #[test]
    fn a_join_moves_about_one_in_n() {
        // 4 nodes in the ring, a fifth joins: about 1/5 of the partitions change leader, and
        // every one that moves goes to the new node.
        let mut c = cfg(5, 1);
        c.standby = 1;
        let mut ring = Ring::new(&c);
        let before = leaders(&ring, 2000);
        ring.nodes[4].member = true;
        let after = leaders(&ring, 2000);
        let moved: Vec<_> = (0..2000).filter(|&i| before[i] != after[i]).collect();
        assert!(moved.iter().all(|&i| after[i] == Some(4)));
        let fraction = moved.len() as f64 / 2000.0;
        assert!((0.12..0.28).contains(&fraction), "moved {fraction}");
    }

    #[test]
    fn a_down_node_hands_its_partitions_to_the_next() {
        let mut ring = Ring::new(&cfg(3, 2));
        let mut out = Vec::new();
        ring.replicas(Ring::key("t", 7), &mut out);
        let (leader, follower) = (out[0], out[1]);
        ring.nodes[leader as usize].up = false;
        ring.replicas(Ring::key("t", 7), &mut out);
        assert_eq!(out[0], follower);
        assert!(!out.contains(&leader));
    }
}
