//! `pmatch`: component-wise path-prefix matching against a set of paths,
//! compiled into a trie (literal components hashed, glob components scanned).

use super::glob::Glob;
use rustc_hash::FxHashMap as HashMap;

#[derive(Default)]
struct Node {
    /// Some RHS path ends here: every LHS path below matches.
    terminal: bool,
    literal: HashMap<Vec<u8>, Node>,
    globbed: Vec<(Glob, Node)>,
}

/// Sorted, components as escaped text: the memo key of a `pmatch` check (see
/// `ValueSet`'s `Debug`).
impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut lit: Vec<(&Vec<u8>, &Node)> = self.literal.iter().collect();
        lit.sort_unstable_by(|a, b| a.0.cmp(b.0));
        write!(f, "{{{}", if self.terminal { "$" } else { "" })?;
        for (k, n) in lit {
            write!(f, "\"{}\": {n:?}, ", k.escape_ascii())?;
        }
        for (g, n) in &self.globbed {
            write!(f, "{g:?}: {n:?}, ")?;
        }
        f.write_str("}")
    }
}

/// A set of path prefixes.
#[derive(Debug, Default)]
pub struct PathSet {
    root: Node,
}

fn components(p: &[u8]) -> impl Iterator<Item = &[u8]> {
    p.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

impl PathSet {
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a [u8]>) -> PathSet {
        let mut set = PathSet::default();
        for p in paths {
            let mut node = &mut set.root;
            for c in components(p) {
                node = if Glob::is_pattern(c) {
                    let g = Glob::new(c, false);
                    let idx = match node.globbed.iter().position(|(x, _)| *x == g) {
                        Some(i) => i,
                        None => {
                            node.globbed.push((g, Node::default()));
                            node.globbed.len() - 1
                        }
                    };
                    &mut node.globbed[idx].1
                } else {
                    node.literal.entry(c.to_vec()).or_default()
                };
            }
            node.terminal = true;
        }
        set
    }

    pub fn matches(&self, path: &[u8]) -> bool {
        let comps: Vec<&[u8]> = components(path).collect();
        Self::walk(&self.root, &comps)
    }

    fn walk(node: &Node, rest: &[&[u8]]) -> bool {
        if node.terminal {
            return true;
        }
        let Some((first, tail)) = rest.split_first() else {
            return false;
        };
        if let Some(n) = node.literal.get(*first) {
            if Self::walk(n, tail) {
                return true;
            }
        }
        node.globbed
            .iter()
            .any(|(g, n)| g.matches(first) && Self::walk(n, tail))
    }
}

#[cfg(test)]
mod tests {
    use super::PathSet;

    #[test]
    fn prefix_semantics() {
        let s = PathSet::new([&b"/etc"[..], b"usr//lib/", b"/opt/*/bin", b"/var/log/x"]);
        assert!(s.matches(b"/etc"));
        assert!(s.matches(b"/etc/passwd"));
        assert!(s.matches(b"etc/a/b"));
        assert!(!s.matches(b"/etcx"));
        assert!(s.matches(b"/usr/lib/x.so"));
        assert!(!s.matches(b"/usr/libx"));
        assert!(s.matches(b"/opt/app/bin/run"));
        assert!(!s.matches(b"/opt/app/sbin"));
        assert!(!s.matches(b"/var/log"));
        assert!(!s.matches(b"/"));
        assert!(PathSet::new([&b"/"[..]]).matches(b"/anything"));
    }
}
