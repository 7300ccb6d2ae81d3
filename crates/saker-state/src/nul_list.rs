//! [`NulList`]: a list of byte strings (args, env, cgroups) kept in one buffer.

use std::fmt;

/// Byte-string items in one buffer, joined by NUL (no trailing NUL).
///
/// Events carry these lists NUL-separated, so building one is a single copy and cloning
/// (fork copies the parent's env) a single allocation. The count is kept because the
/// buffer alone cannot tell an empty list from a list of one empty item. Items never
/// contain NUL.
#[derive(Default, PartialEq, Eq)]
pub struct NulList {
    buf: Vec<u8>,
    len: usize,
}

impl NulList {
    pub const fn new() -> NulList {
        NulList {
            buf: Vec::new(),
            len: 0,
        }
    }

    /// From the NUL-separated bytes of an event parameter: one trailing NUL is a
    /// terminator, not an empty last item; empty input is an empty list.
    pub fn from_raw(raw: &[u8]) -> NulList {
        let mut l = NulList::new();
        l.set_raw(raw);
        l
    }

    /// Like [`NulList::from_raw`], reusing this list's buffer.
    pub fn set_raw(&mut self, raw: &[u8]) {
        let raw = raw.strip_suffix(b"\0").unwrap_or(raw);
        self.buf.clear();
        self.buf.extend_from_slice(raw);
        self.len = if raw.is_empty() {
            0
        } else {
            memchr::memchr_iter(0, raw).count() + 1
        };
    }

    pub fn push(&mut self, item: &[u8]) {
        debug_assert!(!item.contains(&0), "NulList item with a NUL");
        if self.len > 0 {
            self.buf.push(0);
        }
        self.buf.extend_from_slice(item);
        self.len += 1;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The items joined by NUL: as long as the items joined by any one-byte separator.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter {
            rest: &self.buf,
            left: self.len,
        }
    }

    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.iter().nth(i)
    }

    pub fn first(&self) -> Option<&[u8]> {
        self.iter().next()
    }

    /// Removes the first item (argv[0] of a cmdline) in place.
    pub fn remove_first(&mut self) -> Option<Vec<u8>> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        Some(match memchr::memchr(0, &self.buf) {
            Some(i) => {
                let first = self.buf[..i].to_vec();
                self.buf.drain(..=i);
                first
            }
            None => std::mem::take(&mut self.buf),
        })
    }
}

impl Clone for NulList {
    fn clone(&self) -> NulList {
        NulList {
            buf: self.buf.clone(),
            len: self.len,
        }
    }

    fn clone_from(&mut self, src: &NulList) {
        self.buf.clone_from(&src.buf);
        self.len = src.len;
    }
}

impl<T: AsRef<[u8]>> FromIterator<T> for NulList {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> NulList {
        let mut l = NulList::new();
        for i in items {
            l.push(i.as_ref());
        }
        l
    }
}

impl fmt::Debug for NulList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Esc<'a>(&'a [u8]);
        impl fmt::Debug for Esc<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "\"{}\"", self.0.escape_ascii())
            }
        }
        f.debug_list().entries(self.iter().map(Esc)).finish()
    }
}

/// Items of a [`NulList`].
#[derive(Clone)]
pub struct Iter<'a> {
    rest: &'a [u8],
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let (item, rest) = match memchr::memchr(0, self.rest) {
            Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
            None => (self.rest, &b""[..]),
        };
        self.rest = rest;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a NulList {
    type Item = &'a [u8];
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::NulList;

    fn items(l: &NulList) -> Vec<&[u8]> {
        l.iter().collect()
    }

    #[test]
    fn raw_strips_one_terminator() {
        assert!(NulList::from_raw(b"").is_empty());
        assert!(NulList::from_raw(b"\0").is_empty());
        assert_eq!(items(&NulList::from_raw(b"\0\0")), [b"", b""]);
        let one_empty: NulList = [""].iter().collect();
        assert_eq!((items(&one_empty), one_empty.len()), (vec![&b""[..]], 1));
        assert_ne!(one_empty, NulList::new());
        let l = NulList::from_raw(b"a\0\0bc\0");
        assert_eq!(items(&l), [&b"a"[..], b"", b"bc"]);
        assert_eq!(l, NulList::from_raw(b"a\0\0bc"));
        assert_eq!(l, ["a", "", "bc"].iter().collect());
        assert_eq!((l.len(), l.get(2), l.get(3)), (3, Some(&b"bc"[..]), None));
        assert_eq!(l.first(), Some(&b"a"[..]));
        assert_eq!(NulList::new().first(), None);
        assert_eq!(l.as_bytes().len(), 5);
    }

    #[test]
    fn remove_first_and_set_raw() {
        let mut l: NulList = ["x", "y"].iter().collect();
        assert_eq!(l.remove_first(), Some(b"x".to_vec()));
        assert_eq!(items(&l), [b"y"]);
        assert_eq!(l.remove_first(), Some(b"y".to_vec()));
        assert!(l.is_empty());
        assert_eq!(l.remove_first(), None);
        let mut e: NulList = [""].iter().collect();
        assert_eq!(e.remove_first(), Some(Vec::new()));
        assert_eq!(e, NulList::new());
        l.set_raw(b"p\0q\0");
        let mut c = NulList::from_raw(b"zzz");
        c.clone_from(&l);
        assert_eq!((c.clone(), c.len()), (l, 2));
    }

    #[test]
    fn debug_escapes_items() {
        let l: NulList = [&b"a\"b"[..], b"\xff\n"].into_iter().collect();
        assert_eq!(format!("{l:?}"), r#"["a\"b", "\xff\n"]"#);
    }
}
