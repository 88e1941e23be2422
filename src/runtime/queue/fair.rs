//! The ready part of the work queue: keys that may be handed out now, round-robin across groups
//! (logical clusters), FIFO within a group, with an optional cap on the keys of one group out
//! at once.

use super::{FairKey, KeyHasher};
use std::{
    collections::{HashMap, HashSet, VecDeque},
    hash::Hash,
};

/// Index of a [`Lane`] in [`FairQueue::lanes`].
type LaneId = usize;

/// The ready keys of one group, oldest first.
#[derive(Debug)]
struct Lane<G, K> {
    /// The group this lane belongs to while it is in use; stale while the lane is free.
    group: G,
    keys: VecDeque<K>,
}

/// Lanes whose queue grew past this many slots give their memory back when they empty, so one
/// burst in one cluster does not pin that memory for as long as the process runs.
const KEEP_LANE_CAPACITY: usize = 64;

/// Empty lanes are forgotten in one sweep once there are this many of them (and at least half
/// of all lanes are empty, so a sweep's cost is paid for by the pops that emptied them). A
/// cluster that goes quiet costs nothing after a while, and a cluster that is busy one key at a
/// time does not pay a map insert and remove for every key.
const SWEEP_EMPTY_LANES: usize = 1024;

/// Ready keys, handed out one group at a time in round-robin order.
///
/// A group that floods the queue gets one turn per round like every other group, so a key of
/// a quiet group waits for at most one key of every other group: O(#groups) pops.
///
/// This type does no deduplication: the caller pushes a key only when the key is not already
/// in here (the work queue's per-key state decides that).
#[derive(Debug)]
pub(super) struct FairQueue<G, K> {
    /// Lanes with at least one key, in the order they get their next turn.
    ///
    /// NOTE: `ring` is canonical for "whose turn is it": a lane is in `ring` exactly once while
    /// it has keys, and not at all while it is empty.
    ring: VecDeque<LaneId>,
    /// Lane slab; ids of free slots are in `free`.
    lanes: Vec<Lane<G, K>>,
    free: Vec<LaneId>,
    /// The lane of each group that has one (in use, possibly empty until the next sweep).
    by_group: HashMap<G, LaneId, KeyHasher>,
    /// Lanes in `by_group` that are empty (and so not in `ring`).
    empty_lanes: usize,
    /// Total keys over all lanes.
    len: usize,
    /// At most this many keys of one group are handed out and not yet [`finished`]; `None`: no
    /// cap (and `out` stays empty).
    ///
    /// [`finished`]: FairQueue::finished
    limit: Option<usize>,
    /// Keys handed out and not finished, per group (groups with none are absent).
    out: HashMap<G, usize, KeyHasher>,
    /// Lanes with keys that sit out of `ring` because their group is at its limit.
    ///
    /// NOTE: a lane with keys is in exactly one of `ring` and `held`; it moves back to the end
    /// of `ring` when a key of its group finishes.
    held: HashSet<LaneId, KeyHasher>,
}

impl<G, K> Default for FairQueue<G, K> {
    fn default() -> Self {
        Self {
            ring: VecDeque::new(),
            lanes: Vec::new(),
            free: Vec::new(),
            by_group: HashMap::default(),
            empty_lanes: 0,
            len: 0,
            limit: None,
            out: HashMap::default(),
            held: HashSet::default(),
        }
    }
}

impl<G: Clone + Eq + Hash, K: FairKey<Group = G>> FairQueue<G, K> {
    /// Number of ready keys.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Caps the keys of one group handed out at once (`None`: no cap).
    pub(super) fn set_limit(&mut self, limit: Option<usize>) {
        self.limit = limit.map(|n| n.max(1));
    }

    /// Appends `key` to its group's lane; a group that had nothing ready joins the end of the
    /// round (or waits out of it while at its limit).
    pub(super) fn push(&mut self, key: K) {
        let id = match self.by_group.get(key.group()) {
            Some(&id) => id,
            None => self.open_lane(key.group()),
        };
        let at_limit = self.at_limit(key.group());
        let lane = &mut self.lanes[id];
        if lane.keys.is_empty() {
            self.empty_lanes = self.empty_lanes.saturating_sub(1);
            if at_limit {
                self.held.insert(id);
            } else {
                self.ring.push_back(id);
            }
        }
        lane.keys.push_back(key);
        self.len += 1;
    }

    /// Takes the oldest key of the group whose turn it is, and moves that group to the end of
    /// the round if it has more. Groups at their limit are skipped (and held) on the way.
    pub(super) fn pop(&mut self) -> Option<K> {
        let id = loop {
            let id = self.ring.pop_front()?;
            if self.at_limit(&self.lanes[id].group) {
                self.held.insert(id);
                continue;
            }
            break id;
        };
        let lane = &mut self.lanes[id];
        let key = lane.keys.pop_front();
        if self.limit.is_some() {
            *self.out.entry(lane.group.clone()).or_default() += 1;
        }
        if lane.keys.is_empty() {
            if lane.keys.capacity() > KEEP_LANE_CAPACITY {
                lane.keys = VecDeque::new();
            }
            self.empty_lanes += 1;
            if self.empty_lanes >= SWEEP_EMPTY_LANES.max(self.by_group.len() / 2) {
                self.sweep_empty_lanes();
            }
        } else {
            self.ring.push_back(id);
        }
        // Every lane in `ring` has a key (see `ring`), so this is always `Some`.
        if key.is_some() {
            self.len -= 1;
        }
        key
    }

    /// A key of `group` handed out by [`Self::pop`] is done with. Returns whether that let a
    /// held lane back into the round (a worker may have something to take).
    pub(super) fn finished(&mut self, group: &G) -> bool {
        if self.limit.is_none() {
            return false;
        }
        if let Some(out) = self.out.get_mut(group) {
            *out -= 1;
            if *out == 0 {
                self.out.remove(group);
            }
        }
        let Some(&id) = self.by_group.get(group) else {
            return false;
        };
        if !self.at_limit(group) && self.held.remove(&id) {
            self.ring.push_back(id);
            return true;
        }
        false
    }

    fn at_limit(&self, group: &G) -> bool {
        self.limit
            .is_some_and(|limit| self.out.get(group).is_some_and(|&out| out >= limit))
    }

    /// Gives `group` a lane: a free slot if there is one.
    ///
    /// The new lane is empty and counted in `empty_lanes`, as `push` expects.
    fn open_lane(&mut self, group: &G) -> LaneId {
        let id = match self.free.pop() {
            Some(id) => {
                self.lanes[id].group = group.clone();
                id
            }
            None => {
                self.lanes.push(Lane {
                    group: group.clone(),
                    keys: VecDeque::new(),
                });
                self.lanes.len() - 1
            }
        };
        self.by_group.insert(group.clone(), id);
        self.empty_lanes += 1;
        id
    }

    /// Frees every empty lane at once: O(lanes), at most once per `lanes / 2` pops.
    fn sweep_empty_lanes(&mut self) {
        let lanes = &self.lanes;
        let free = &mut self.free;
        self.by_group.retain(|_, id| {
            let keep = !lanes[*id].keys.is_empty();
            if !keep {
                free.push(*id);
            }
            keep
        });
        self.empty_lanes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::{FairKey, FairQueue, SWEEP_EMPTY_LANES};

    /// (group, id)
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Key(u32, i32);

    impl FairKey for Key {
        type Group = u32;
        fn group(&self) -> &u32 {
            &self.0
        }
    }

    fn ids(queue: &mut FairQueue<u32, Key>) -> Vec<i32> {
        std::iter::from_fn(|| queue.pop())
            .map(|key| key.1)
            .collect()
    }

    #[test]
    fn round_robin_across_groups_fifo_within_a_group() {
        let mut queue = FairQueue::default();
        for id in [1, 2, 3] {
            queue.push(Key(0, id));
        }
        queue.push(Key(1, 10));
        queue.push(Key(2, 20));
        queue.push(Key(2, 21));
        assert_eq!(queue.len(), 6);

        assert_eq!(ids(&mut queue), [1, 10, 20, 2, 21, 3]);
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn a_flooding_group_does_not_delay_a_newcomer_past_one_round() {
        let mut queue = FairQueue::default();
        for id in 0..100_000 {
            queue.push(Key(0, id));
        }
        for _ in 0..10 {
            queue.pop();
        }
        queue.push(Key(1, -1));
        // Two groups: the newcomer is at most the second key handed out.
        let first_two = [queue.pop(), queue.pop()];
        assert!(first_two.contains(&Some(Key(1, -1))), "{first_two:?}");
    }

    #[test]
    fn a_group_that_empties_and_comes_back_joins_the_end_of_the_round() {
        let mut queue = FairQueue::default();
        queue.push(Key(0, 1));
        queue.push(Key(1, 2));
        assert_eq!(queue.pop(), Some(Key(0, 1)));
        queue.push(Key(0, 3));
        queue.push(Key(1, 4));
        assert_eq!(ids(&mut queue), [2, 3, 4]);
    }

    #[test]
    fn a_group_at_its_limit_waits_while_the_others_go_on() {
        let mut queue = FairQueue::default();
        queue.set_limit(Some(1));
        for id in [1, 2, 3] {
            queue.push(Key(0, id));
        }
        queue.push(Key(1, 10));
        queue.push(Key(1, 11));
        assert_eq!(queue.pop(), Some(Key(0, 1)));
        assert_eq!(queue.pop(), Some(Key(1, 10)));
        assert_eq!(queue.pop(), None, "both groups have their one key out");
        assert_eq!(queue.len(), 3, "held keys are still ready keys");
        assert!(queue.finished(&1), "group 1 may go on");
        assert_eq!(queue.pop(), Some(Key(1, 11)));
        assert_eq!(queue.pop(), None);
        queue.push(Key(0, 4));
        assert_eq!(queue.pop(), None, "a key pushed to a held group waits too");
        assert!(queue.finished(&0));
        assert_eq!(ids(&mut queue), [2]);
        assert!(queue.finished(&0));
        assert!(!queue.finished(&1), "nothing held in group 1");
        assert_eq!(ids(&mut queue), [3]);
        assert!(queue.finished(&0));
        assert_eq!(ids(&mut queue), [4]);
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn lanes_of_groups_that_went_quiet_are_reused() {
        let mut queue = FairQueue::default();
        let groups = u32::try_from(SWEEP_EMPTY_LANES * 2).unwrap_or(u32::MAX);
        for round in 0..3 {
            for group in 0..groups {
                queue.push(Key(round * groups + group, 0));
            }
            while queue.pop().is_some() {}
        }
        assert!(
            queue.lanes.len() <= SWEEP_EMPTY_LANES * 3,
            "{} lanes",
            queue.lanes.len()
        );
        assert!(queue.by_group.len() < SWEEP_EMPTY_LANES);
        assert_eq!(queue.len(), 0);
    }
}
