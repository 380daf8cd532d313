//! Decision trees as flat arrays, shared by the random forest and the isolation forest.
//!
//! Nodes of every tree live in one array; a tree's children always come after their parent,
//! which is what makes a loaded model acyclic and every walk finite. Model files store the same
//! arrays with child indices local to their tree (see [`crate::model`]).

use crate::MlError;

/// A per-node column of the stored form.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Column {
    Feature,
    Threshold,
    Left,
    Right,
}

/// Trees walked at once for a single row.
const LANES: usize = 8;

/// One node: a split `x[feature] ≤ threshold → left, else right`, or a leaf.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Node {
    pub feature: u32,
    pub threshold: f32,
    pub left: u32,
    pub right: u32,
}

impl Node {
    pub const LEAF: Self = Self {
        feature: u32::MAX,
        threshold: 0.0,
        left: 0,
        right: 0,
    };

    pub const fn is_leaf(&self) -> bool {
        self.feature == u32::MAX
    }

    /// A leaf at absolute index `i` of a tree set.
    pub const fn leaf_at(i: u32) -> Self {
        Self {
            feature: 0,
            threshold: 0.0,
            left: i,
            right: i,
        }
    }
}

/// Trees with `k` leaf values per node. Inside a tree set a leaf is a node whose children are
/// itself (feature 0), so that walks need no leaf test: a lane that reached its leaf stays put.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TreeSet {
    k: usize,
    /// Start of each tree in `nodes`, plus the total at the end.
    offsets: Vec<usize>,
    /// Children are absolute indices into this array.
    nodes: Vec<Node>,
    values: Vec<f32>,
}

/// The arrays a tree set is stored as (children local to their tree, -1 for leaves).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TreeArrays {
    /// Split feature per node, -1 for a leaf.
    pub feature: Vec<i32>,
    /// Split threshold per node (0 for a leaf).
    pub threshold: Vec<f32>,
    /// Left child (index within the tree), -1 for a leaf.
    pub left: Vec<i32>,
    /// Right child (index within the tree), -1 for a leaf.
    pub right: Vec<i32>,
    /// `k` values per node.
    pub value: Vec<f32>,
    /// Start of each tree, plus the node count at the end.
    pub offsets: Vec<i64>,
}

impl TreeSet {
    pub fn new(k: usize) -> Self {
        Self {
            k,
            offsets: vec![0],
            nodes: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Appends a tree whose children are indices local to `nodes`, laid out in pre-order
    /// (each left child right after its parent, so a walk going left stays in the cache line
    /// it is already in).
    pub fn push(&mut self, nodes: &[Node], values: &[f32]) {
        let base = self.nodes.len();
        // Pre-order numbering.
        let mut order = Vec::with_capacity(nodes.len());
        let mut new_index = vec![0u32; nodes.len()];
        let mut stack = vec![0usize];
        while let Some(i) = stack.pop() {
            let Some(n) = nodes.get(i) else { continue };
            if let Some(slot) = new_index.get_mut(i) {
                *slot = u32::try_from(base + order.len()).unwrap_or(u32::MAX);
            }
            order.push(i);
            if !n.is_leaf() {
                stack.push(n.right as usize);
                stack.push(n.left as usize);
            }
        }
        let at = |i: u32| new_index.get(i as usize).copied().unwrap_or(u32::MAX);
        for &i in &order {
            let Some(n) = nodes.get(i) else { continue };
            let here = u32::try_from(self.nodes.len()).unwrap_or(u32::MAX);
            self.nodes.push(if n.is_leaf() {
                Node::leaf_at(here)
            } else {
                Node {
                    left: at(n.left),
                    right: at(n.right),
                    ..*n
                }
            });
            self.values
                .extend_from_slice(values.get(i * self.k..(i + 1) * self.k).unwrap_or_default());
        }
        self.offsets.push(self.nodes.len());
    }

    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn n_nodes(&self) -> usize {
        self.nodes.len()
    }

    fn root(&self, t: usize) -> usize {
        self.offsets.get(t).copied().unwrap_or(usize::MAX)
    }

    /// The absolute leaf index `row` reaches in tree `t`, and its depth.
    #[cfg(test)]
    pub fn walk(&self, t: usize, row: &[f32]) -> (usize, usize) {
        let mut i = self.root(t);
        let mut depth = 0;
        while let Some(n) = self.nodes.get(i) {
            if n.left as usize == i {
                break;
            }
            let x = row.get(n.feature as usize).copied().unwrap_or_default();
            i = if x <= n.threshold { n.left } else { n.right } as usize;
            depth += 1;
        }
        (i, depth)
    }

    /// Start of each tree's nodes.
    pub fn roots(&self) -> &[usize] {
        self.offsets.get(..self.len()).unwrap_or_default()
    }

    /// Walks every `(id, start node, row)` item to its leaf and calls `emit(id, leaf)`, keeping
    /// `L` walks in flight: when one lane reaches its leaf it takes the next item at once, so
    /// the memory system always has `L` independent loads to overlap (no lane idles while the
    /// deepest one finishes).
    #[inline]
    pub fn drain<'r, const L: usize>(
        &self,
        mut items: impl Iterator<Item = (usize, usize, &'r [f32])>,
        mut emit: impl FnMut(usize, usize),
    ) {
        let mut lanes: [(usize, usize, &[f32]); L] = [(0, usize::MAX, &[]); L];
        let mut live = 0;
        for lane in &mut lanes {
            match items.next() {
                Some(item) => {
                    *lane = item;
                    live += 1;
                }
                None => break,
            }
        }
        while live > 0 {
            for lane in &mut lanes {
                let (id, i, row) = *lane;
                let Some(n) = self.nodes.get(i) else { continue };
                let x = row.get(n.feature as usize).copied().unwrap_or_default();
                let next = if x <= n.threshold { n.left } else { n.right } as usize;
                if next == i {
                    emit(id, i);
                    match items.next() {
                        Some(item) => *lane = item,
                        None => {
                            lane.1 = usize::MAX;
                            live -= 1;
                        }
                    }
                } else {
                    lane.1 = next;
                }
            }
        }
    }

    /// For every row of `x` (row-major, `d` wide), the sum over trees of `f(leaf)` added into
    /// `out` (`width` values per row). Tree-major in blocks of rows, so a tree stays in cache
    /// while a block goes through it, with eight rows in flight.
    pub fn accumulate_batch(
        &self,
        x: &[f32],
        d: usize,
        out: &mut [f64],
        width: usize,
        f: impl Fn(usize, &mut [f64]),
    ) {
        let d = d.max(1);
        if x.len() / d < LANES {
            // Too few rows to fill the lanes: walk all trees of each row at once instead (one
            // row through eight trees in flight; a one-row request is latency-bound).
            let items = x
                .chunks_exact(d)
                .enumerate()
                .flat_map(|(o, row)| self.roots().iter().map(move |&root| (o, root, row)));
            self.drain::<LANES>(items, |o, leaf| {
                if let Some(slot) = out.get_mut(o * width..(o + 1) * width) {
                    f(leaf, slot);
                }
            });
            return;
        }
        for &root in self.roots() {
            let items = x
                .chunks_exact(d.max(1))
                .enumerate()
                .map(|(o, row)| (o, root, row));
            self.drain::<LANES>(items, |o, leaf| {
                if let Some(slot) = out.get_mut(o * width..(o + 1) * width) {
                    f(leaf, slot);
                }
            });
        }
    }

    /// The leaf of tree `t` that `row` reaches, as an index local to the tree.
    #[cfg(test)]
    pub fn leaf(&self, t: usize, row: &[f32]) -> usize {
        self.walk(t, row).0 - self.root(t)
    }

    /// The depth of tree `t` (root = 0).
    #[cfg(test)]
    pub fn depth(&self, t: usize) -> usize {
        let (s, e) = (self.root(t), self.root(t + 1));
        let mut depth = vec![0usize; e - s];
        let mut max = 0;
        for i in s..e {
            let n = self.nodes[i];
            if n.left as usize != i {
                let d = depth[i - s] + 1;
                depth[n.left as usize - s] = d;
                depth[n.right as usize - s] = d;
                max = max.max(d);
            }
        }
        max
    }

    /// The depth of every node (roots 0).
    pub fn depths(&self) -> Vec<u32> {
        let mut depth = vec![0u32; self.nodes.len()];
        for i in 0..self.nodes.len() {
            let (Some(n), Some(&d)) = (self.nodes.get(i), depth.get(i)) else {
                continue;
            };
            if n.left as usize != i {
                for c in [n.left, n.right] {
                    if let Some(slot) = depth.get_mut(c as usize) {
                        *slot = d + 1;
                    }
                }
            }
        }
        depth
    }

    /// The `k` values of node `i`.
    #[inline]
    pub fn value(&self, i: usize) -> &[f32] {
        self.values
            .get(i * self.k..(i + 1) * self.k)
            .unwrap_or_default()
    }

    /// The mean over trees of the leaf values `row` reaches, into `out` (`k` long).
    pub fn mean_leaf_values(&self, row: &[f32], out: &mut [f64]) {
        out.fill(0.0);
        let mut add = |leaf: usize| {
            for (o, v) in out.iter_mut().zip(self.value(leaf)) {
                *o += f64::from(*v);
            }
        };
        let items = self.roots().iter().map(|&r| (0, r, row));
        self.drain::<LANES>(items, |_, leaf| add(leaf));
        #[allow(clippy::cast_precision_loss)]
        let n = self.len().max(1) as f64;
        for o in out {
            *o /= n;
        }
    }

    /// One stored column (children local to their tree, -1 and 0 for leaves), little-endian.
    pub fn column_bytes(&self, col: Column) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.nodes.len() * 4);
        for t in 0..self.len() {
            let base = self.root(t);
            let nodes = self.nodes.get(base..self.root(t + 1)).unwrap_or_default();
            for (i, n) in nodes.iter().enumerate() {
                let leaf = n.left as usize == base + i;
                let local = |c: u32| i32::try_from(c as usize - base).unwrap_or(i32::MAX);
                let bytes = match (col, leaf) {
                    (Column::Threshold, true) => 0.0f32.to_le_bytes(),
                    (Column::Threshold, false) => n.threshold.to_le_bytes(),
                    (_, true) => (-1i32).to_le_bytes(),
                    (Column::Feature, false) => {
                        i32::try_from(n.feature).unwrap_or(i32::MAX).to_le_bytes()
                    }
                    (Column::Left, false) => local(n.left).to_le_bytes(),
                    (Column::Right, false) => local(n.right).to_le_bytes(),
                };
                out.extend_from_slice(&bytes);
            }
        }
        out
    }

    /// The node values, little-endian.
    pub fn value_bytes(&self) -> Vec<u8> {
        self.values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// The tree offsets as `i64`, little-endian.
    pub fn offset_bytes(&self) -> Vec<u8> {
        self.offsets
            .iter()
            .flat_map(|&o| i64::try_from(o).unwrap_or(i64::MAX).to_le_bytes())
            .collect()
    }

    /// Rebuilds a tree set from stored arrays, refusing anything a hostile file could use to
    /// misbehave: mismatched lengths, bad offsets, feature indices `≥ n_features`, non-finite
    /// thresholds or values, and child indices that do not point forward inside their tree.
    pub fn from_arrays(a: &TreeArrays, k: usize, n_features: usize) -> Result<Self, MlError> {
        let bad = |m: String| Err(MlError::Model(m));
        let n = a.feature.len();
        if a.threshold.len() != n || a.left.len() != n || a.right.len() != n {
            return bad(format!(
                "tree arrays disagree in length: feature {n}, threshold {}, left {}, right {}",
                a.threshold.len(),
                a.left.len(),
                a.right.len()
            ));
        }
        if n.checked_mul(k) != Some(a.value.len()) {
            return bad(format!(
                "{} leaf values for {n} nodes of {k} values each",
                a.value.len()
            ));
        }
        if let Some(i) = a.value.iter().position(|v| !v.is_finite()) {
            return bad(format!("node value {i} is not finite"));
        }
        let mut offsets = Vec::with_capacity(a.offsets.len());
        for (t, &o) in a.offsets.iter().enumerate() {
            let Ok(o) = usize::try_from(o) else {
                return bad(format!("tree offset {t} is negative"));
            };
            if offsets.last().is_some_and(|&p| o <= p) || (t == 0 && o != 0) || o > n {
                return bad(format!(
                    "tree offsets must start at 0 and rise strictly to {n}; offset {t} is {o}"
                ));
            }
            offsets.push(o);
        }
        if offsets.len() < 2 || offsets.last() != Some(&n) {
            return bad(format!("tree offsets must end at the node count {n}"));
        }
        let mut nodes = Vec::with_capacity(n);
        for w in offsets.windows(2) {
            let &[s, e] = w else { continue };
            for i in s..e {
                let (f, th, l, r) = (
                    a.feature.get(i).copied().unwrap_or(-1),
                    a.threshold.get(i).copied().unwrap_or(0.0),
                    a.left.get(i).copied().unwrap_or(-1),
                    a.right.get(i).copied().unwrap_or(-1),
                );
                if f == -1 {
                    if l != -1 || r != -1 {
                        return bad(format!("node {i} is a leaf with children"));
                    }
                    nodes.push(Node::leaf_at(u32::try_from(i).unwrap_or(u32::MAX)));
                    continue;
                }
                let feature = usize::try_from(f).ok().filter(|&f| f < n_features);
                let child = |c: i32| {
                    usize::try_from(c)
                        .ok()
                        .map(|c| c + s)
                        .filter(|&c| c > i && c < e)
                        .and_then(|c| u32::try_from(c).ok())
                };
                let (Some(feature), Some(left), Some(right)) = (feature, child(l), child(r)) else {
                    return bad(format!(
                        "node {i}: feature {f} (of {n_features}) or children {l}, {r} out of range \
                         (children must follow their parent inside the tree)"
                    ));
                };
                if !th.is_finite() {
                    return bad(format!("node {i}: threshold {th} is not finite"));
                }
                nodes.push(Node {
                    feature: u32::try_from(feature).unwrap_or(u32::MAX),
                    threshold: th,
                    left,
                    right,
                });
            }
        }
        Ok(Self {
            k,
            offsets,
            nodes,
            values: a.value.clone(),
        })
    }
}
