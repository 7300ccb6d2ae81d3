//! Token matchers of the condition language (§3.1): each takes the remaining
//! input and returns the length of the longest match at its start, or 0.

/// Blanks skipped between tokens: space, tab, backspace, CR, LF (not FF/VT).
pub fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | 0x08 | b'\r' | b'\n')
}

/// POSIX `[:space:]`: the blanks above minus backspace, plus FF and VT.
pub fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c)
}

fn is_ident_tail(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `[a-zA-Z]+[a-zA-Z0-9_]*`
pub fn identifier(s: &[u8]) -> usize {
    if s.first().is_some_and(u8::is_ascii_alphabetic) {
        1 + s[1..].iter().take_while(|&&b| is_ident_tail(b)).count()
    } else {
        0
    }
}

/// `identifier(\.identifier)+`
pub fn field_name(s: &[u8]) -> usize {
    let mut n = identifier(s);
    if n == 0 {
        return 0;
    }
    let mut segments = 0;
    while s.get(n) == Some(&b'.') {
        let seg = identifier(&s[n + 1..]);
        if seg == 0 {
            break;
        }
        n += 1 + seg;
        segments += 1;
    }
    if segments == 0 {
        0
    } else {
        n
    }
}

/// `[^][\"'[:space:]]+`
pub fn field_arg_bare(s: &[u8]) -> usize {
    s.iter()
        .take_while(|&&b| !matches!(b, b'[' | b']' | b'"' | b'\'') && !is_space(b))
        .count()
}

/// `0[xX][0-9a-fA-F]+`
pub fn hex_number(s: &[u8]) -> usize {
    if s.len() >= 3 && s[0] == b'0' && (s[1] == b'x' || s[1] == b'X') {
        let n = s[2..].iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if n > 0 {
            return 2 + n;
        }
    }
    0
}

/// `[+-]?[0-9]+\.?[0-9]*([eE][+-][0-9]+)?`
pub fn number(s: &[u8]) -> usize {
    let mut i = 0;
    if matches!(s.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    let digits = |from: usize| {
        s[from.min(s.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let d = digits(i);
    if d == 0 {
        return 0;
    }
    i += d;
    if s.get(i) == Some(&b'.') {
        i += 1;
    }
    i += digits(i);
    if matches!(s.get(i), Some(b'e' | b'E')) && matches!(s.get(i + 1), Some(b'+' | b'-')) {
        let e = digits(i + 2);
        if e > 0 {
            i += 2 + e;
        }
    }
    i
}

/// `[^()"'[:space:]=,]+`
pub fn bare_str(s: &[u8]) -> usize {
    s.iter()
        .take_while(|&&b| !matches!(b, b'(' | b')' | b'"' | b'\'' | b'=' | b',') && !is_space(b))
        .count()
}

/// A quoted string: returns the length including both delimiters. The string
/// ends at the first delimiter not immediately preceded by a backslash.
pub fn quoted(s: &[u8]) -> usize {
    let Some(&d) = s.first() else { return 0 };
    if d != b'"' && d != b'\'' {
        return 0;
    }
    let mut prev = b'\\';
    for (i, &b) in s.iter().enumerate() {
        if i > 0 && b == d && prev != b'\\' {
            return i + 1;
        }
        prev = b;
    }
    0
}

/// Decodes the escapes of a quoted string (delimiters included in `raw`).
pub fn unescape(raw: &[u8]) -> Result<Vec<u8>, String> {
    let delim = raw[0];
    let body = &raw[1..raw.len() - 1];
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let Some(&e) = body.get(i + 1) else {
            return Err("unterminated escape sequence at end of string".into());
        };
        i += 2;
        match e {
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'\\' => out.push(b'\\'),
            b'/' => out.push(b'/'),
            b' ' => out.push(b'\\'),
            b'"' | b'\'' if e == delim => out.push(e),
            b'"' | b'\'' => {
                return Err(format!(
                    "invalid \\{} escape in {}-quoted string",
                    e as char, delim as char
                ))
            }
            b'x' => {
                let hex = body
                    .get(i..i + 2)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
                let Some(h) = hex else {
                    return Err("invalid \\x escape sequence: expected two hex digits".into());
                };
                let v = u8::from_str_radix(std::str::from_utf8(h).unwrap_or("zz"), 16)
                    .map_err(|_| "invalid \\x escape sequence".to_string())?;
                out.push(v);
                i += 2;
            }
            other => {
                return Err(format!(
                    "unsupported string escape sequence: \\{}",
                    String::from_utf8_lossy(&[other])
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers() {
        assert_eq!(field_name(b"proc.name=x"), 9);
        assert_eq!(field_name(b"evt.arg.flags contains"), 13);
        assert_eq!(field_name(b"fd.name."), 7);
        assert_eq!(field_name(b"macro_name"), 0);
        assert_eq!(field_name(b"a.1b"), 0);
        assert_eq!(identifier(b"abc_1 x"), 5);
        assert_eq!(identifier(b"_a"), 0);
        assert_eq!(number(b"-12.5e+3x"), 8);
        assert_eq!(number(b"12e3"), 2);
        assert_eq!(number(b"+x"), 0);
        assert_eq!(hex_number(b"0x1Fg"), 4);
        assert_eq!(hex_number(b"0x"), 0);
        assert_eq!(bare_str(b"/etc/sh*[a]<NA>!:, x"), 17);
        assert_eq!(field_arg_bare(b"app.kubernetes/name]"), 19);
    }

    #[test]
    fn quoted_strings() {
        assert_eq!(quoted(br#""abc" x"#), 5);
        assert_eq!(quoted(br#""a\"b" x"#), 6);
        // An escaped backslash before the quote does not end the string.
        assert_eq!(quoted(br#""a\\" x"#), 0);
        assert_eq!(quoted(br#""a\\"b" "#), 7);
        assert_eq!(quoted(b"'x'"), 3);
        assert_eq!(quoted(b"'x"), 0);
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape(br#""a\tb\x41\/\\""#).unwrap(), b"a\tbA/\\");
        assert_eq!(unescape(br#"'it\'s'"#).unwrap(), b"it's");
        assert_eq!(unescape(br#""a\ b""#).unwrap(), b"a\\b");
        assert_eq!(
            unescape(br#""\q""#).unwrap_err(),
            "unsupported string escape sequence: \\q"
        );
        assert_eq!(
            unescape(br#""\'""#).unwrap_err(),
            "invalid \\' escape in \"-quoted string"
        );
    }
}
