//! Left-deep chains of one operator (`a AND b AND c …`, `q1 UNION q2 UNION
//! …`) taken apart and rebuilt as balanced trees, for any tree type: the SQL
//! syntax tree (`statement_shape.rs`) and DataFusion's logical expressions
//! (`long_statements.rs`) both regroup this way.

/// Whether the chain at `root` has more than `limit` nodes, following
/// `next_left` (the left child when it continues the chain). Stops counting
/// past `limit`, so a short look suffices for a long chain.
pub(crate) fn chain_longer_than<T>(
    root: &T,
    limit: usize,
    next_left: impl Fn(&T) -> Option<&T>,
) -> bool {
    let mut length = 1;
    let mut current = root;
    while let Some(left) = next_left(current) {
        length += 1;
        if length > limit {
            return true;
        }
        current = left;
    }
    false
}

/// What [`unchain`]'s `split` makes of a node.
pub(crate) enum Link<T> {
    /// A node of the chain: its left and right children.
    Chain(T, T),
    /// Anything else: an operand, given back unchanged.
    Operand(T),
}

/// The operands of the chain at `root`, in order: `split` takes a node of
/// the chain apart into its children, and gives back anything else.
pub(crate) fn unchain<T>(root: T, mut split: impl FnMut(T) -> Link<T>) -> Vec<T> {
    let mut operands = Vec::new();
    let mut rest = root;
    loop {
        match split(rest) {
            Link::Chain(left, right) => {
                operands.push(right);
                rest = left;
            }
            Link::Operand(operand) => {
                operands.push(operand);
                break;
            }
        }
    }
    operands.reverse();
    operands
}

/// `operands`, in order, joined by `join` into a balanced tree.
pub(crate) fn balanced<T>(mut operands: Vec<T>, join: &mut impl FnMut(T, T) -> T) -> T {
    if operands.len() == 1 {
        return operands.pop().expect("one operand");
    }
    let right = operands.split_off(operands.len() / 2);
    let left = balanced(operands, join);
    let right = balanced(right, join);
    join(left, right)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny tree: a leaf, or a node joining two trees.
    #[derive(Debug, PartialEq)]
    enum Tree {
        Leaf(u32),
        Node(Box<Tree>, Box<Tree>),
    }

    fn depth(tree: &Tree) -> usize {
        match tree {
            Tree::Leaf(_) => 1,
            Tree::Node(l, r) => 1 + depth(l).max(depth(r)),
        }
    }

    #[test]
    fn a_left_deep_chain_comes_apart_in_order_and_rebuilds_balanced() {
        let chain = (1..1000).fold(Tree::Leaf(0), |left, i| {
            Tree::Node(Box::new(left), Box::new(Tree::Leaf(i)))
        });
        fn next_left(t: &Tree) -> Option<&Tree> {
            match t {
                Tree::Node(l, _) if matches!(**l, Tree::Node(..)) => Some(l.as_ref()),
                _ => None,
            }
        }
        assert!(chain_longer_than(&chain, 998, next_left));
        assert!(!chain_longer_than(&chain, 999, next_left));
        let operands = unchain(chain, |t| match t {
            Tree::Node(l, r) => Link::Chain(*l, *r),
            leaf => Link::Operand(leaf),
        });
        assert_eq!(operands, (0..1000).map(Tree::Leaf).collect::<Vec<_>>());
        let tree = balanced(operands, &mut |l, r| Tree::Node(Box::new(l), Box::new(r)));
        assert_eq!(depth(&tree), 11);
    }
}
