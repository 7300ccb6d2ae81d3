//! fnmatch(3)-style globs without flags (`*` also crosses `/`), compiled once.

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Byte(u8),
    Any,
    Star,
    /// Bracket expression: negated?, ranges (inclusive).
    Class(bool, Vec<(u8, u8)>),
}

/// A compiled glob pattern; `fold` makes it ASCII case-insensitive (`iglob`).
#[derive(Debug, Clone, PartialEq)]
pub struct Glob {
    toks: Vec<Tok>,
    fold: bool,
}

fn fold_byte(b: u8, fold: bool) -> u8 {
    if fold {
        b.to_ascii_lowercase()
    } else {
        b
    }
}

impl Glob {
    pub fn new(pat: &[u8], fold: bool) -> Glob {
        let mut toks = Vec::new();
        let mut i = 0;
        while i < pat.len() {
            let b = pat[i];
            match b {
                b'*' => {
                    if toks.last() != Some(&Tok::Star) {
                        toks.push(Tok::Star);
                    }
                    i += 1;
                }
                b'?' => {
                    toks.push(Tok::Any);
                    i += 1;
                }
                b'\\' if i + 1 < pat.len() => {
                    toks.push(Tok::Byte(fold_byte(pat[i + 1], fold)));
                    i += 2;
                }
                b'[' => match Self::class(pat, i + 1, fold) {
                    Some((tok, next)) => {
                        toks.push(tok);
                        i = next;
                    }
                    // An unterminated bracket is a literal '['.
                    None => {
                        toks.push(Tok::Byte(b'['));
                        i += 1;
                    }
                },
                _ => {
                    toks.push(Tok::Byte(fold_byte(b, fold)));
                    i += 1;
                }
            }
        }
        Glob { toks, fold }
    }

    fn class(pat: &[u8], mut i: usize, fold: bool) -> Option<(Tok, usize)> {
        let neg = matches!(pat.get(i), Some(b'!' | b'^'));
        if neg {
            i += 1;
        }
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let mut c = *pat.get(i)?;
            if c == b']' && !first {
                return Some((Tok::Class(neg, ranges), i + 1));
            }
            first = false;
            if c == b'\\' {
                i += 1;
                c = *pat.get(i)?;
            }
            i += 1;
            let mut hi = c;
            if pat.get(i) == Some(&b'-') && pat.get(i + 1).is_some_and(|&n| n != b']') {
                hi = pat[i + 1];
                if hi == b'\\' {
                    hi = *pat.get(i + 2)?;
                    i += 1;
                }
                i += 2;
            }
            if fold && c.is_ascii_alphabetic() && hi.is_ascii_alphabetic() {
                ranges.push((c.to_ascii_lowercase(), hi.to_ascii_lowercase()));
                ranges.push((c.to_ascii_uppercase(), hi.to_ascii_uppercase()));
            } else {
                ranges.push((c, hi));
            }
        }
    }

    fn tok_matches(&self, t: &Tok, b: u8) -> bool {
        match t {
            Tok::Byte(x) => *x == fold_byte(b, self.fold),
            Tok::Any => true,
            Tok::Class(neg, ranges) => {
                let hit = ranges.iter().any(|&(lo, hi)| lo <= b && b <= hi);
                hit != *neg
            }
            Tok::Star => false,
        }
    }

    /// Whole-string match; iterative with single-star backtracking (linear per star).
    pub fn matches(&self, s: &[u8]) -> bool {
        let (mut p, mut i) = (0, 0);
        let mut back: Option<(usize, usize)> = None;
        while i < s.len() {
            if p < self.toks.len() {
                if self.toks[p] == Tok::Star {
                    back = Some((p, i));
                    p += 1;
                    continue;
                }
                if self.tok_matches(&self.toks[p], s[i]) {
                    p += 1;
                    i += 1;
                    continue;
                }
            }
            match back {
                Some((bp, bi)) => {
                    p = bp + 1;
                    i = bi + 1;
                    back = Some((bp, bi + 1));
                }
                None => return false,
            }
        }
        self.toks[p..].iter().all(|t| *t == Tok::Star)
    }

    /// True if the pattern has glob metacharacters (pmatch uses this per component).
    pub fn is_pattern(s: &[u8]) -> bool {
        s.iter().any(|b| matches!(b, b'*' | b'?' | b'['))
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    fn g(p: &str, s: &str) -> bool {
        Glob::new(p.as_bytes(), false).matches(s.as_bytes())
    }

    #[test]
    fn glob_semantics() {
        assert!(g("/etc/*", "/etc/a/b"));
        assert!(g("*.sh", "x.sh"));
        assert!(!g("*.sh", "x.shx"));
        assert!(g("a?c", "abc"));
        assert!(!g("a?c", "ac"));
        assert!(g("[a-c]x", "bx"));
        assert!(!g("[!a-c]x", "bx"));
        assert!(g("[]]", "]"));
        assert!(g("a\\*", "a*"));
        assert!(!g("a\\*", "ab"));
        assert!(g("*a*b*", "xxaybzz"));
        assert!(g("", ""));
        assert!(!g("", "a"));
        assert!(g("[abc", "[abc"));
        assert!(Glob::new(b"/ETC/*", true).matches(b"/etc/Passwd"));
        assert!(Glob::new(b"[A-C]", true).matches(b"b"));
    }
}
