//! Textual list handling, as Falco does it before parsing (§3.6, §1.8).

/// Falco's item quoting: an item with a space that does not already start
/// with a quote is wrapped in double quotes; anything else is spliced verbatim.
pub fn quote_item(v: &str) -> String {
    if v.contains(' ') && !v.starts_with('"') && !v.starts_with('\'') {
        format!("\"{v}\"")
    } else {
        v.to_string()
    }
}

const BLANKS: &[u8] = b" \t\n\r";
const DELIMS: &[u8] = b" \t\n\r(),=";

/// Replaces every delimiter-bounded occurrence of `name` in `cond` by its
/// items, joined with `, ` and padded with one space on each side. Blanks
/// around the name are swallowed; an empty list also removes one adjacent
/// comma. Returns whether at least one replacement happened.
pub fn substitute_list(cond: &mut String, name: &str, items: &[String]) -> bool {
    if name.is_empty() {
        return false;
    }
    let sub = items
        .iter()
        .map(|v| quote_item(v))
        .collect::<Vec<_>>()
        .join(", ");
    let mut used = false;
    let mut from = 0usize;
    while let Some(rel) = cond.get(from..).and_then(|s| s.find(name)) {
        let mut start = from + rel;
        let mut end = start + name.len();
        let b = cond.as_bytes();
        let before_ok = start == 0 || DELIMS.contains(&b[start - 1]);
        let after_ok = end >= b.len() || DELIMS.contains(&b[end]);
        if !(before_ok && after_ok) {
            from = start + 1;
            continue;
        }
        while start > 0 && BLANKS.contains(&b[start - 1]) {
            start -= 1;
        }
        while end < b.len() && BLANKS.contains(&b[end]) {
            end += 1;
        }
        if sub.is_empty() {
            if start > 0 && b[start - 1] == b',' {
                start -= 1;
            } else if end < b.len() && b[end] == b',' {
                end += 1;
            }
        }
        let mut next = String::with_capacity(cond.len() + sub.len() + 2);
        next.push_str(&cond[..start]);
        if start > 0 {
            next.push(' ');
        }
        next.push_str(&sub);
        next.push(' ');
        let rest_at = next.len();
        next.push_str(&cond[end..]);
        *cond = next;
        used = true;
        // Falco resumes one character further when the match was at the very start.
        from = if start == 0 { rest_at + 1 } else { rest_at };
        if from > cond.len() {
            break;
        }
        while from < cond.len() && !cond.is_char_boundary(from) {
            from += 1;
        }
    }
    used
}

/// Valid list names fully match `[^()"'[:space:]=,]+`.
pub fn is_valid_list_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| !matches!(c, '(' | ')' | '"' | '\'' | '=' | ',') && !c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(cond: &str, name: &str, items: &[&str]) -> String {
        let mut c = cond.to_string();
        let items: Vec<String> = items.iter().map(|s| s.to_string()).collect();
        substitute_list(&mut c, name, &items);
        c
    }

    #[test]
    fn replaces_inside_parentheses() {
        assert_eq!(
            sub(
                "proc.name in (shell_binaries)",
                "shell_binaries",
                &["bash", "sh"]
            ),
            "proc.name in ( bash, sh )"
        );
    }

    #[test]
    fn mixes_literals_and_quotes_items_with_spaces() {
        assert_eq!(
            sub("x in (a, l, \"b c\")", "l", &["p q", "'r s'", "t"]),
            "x in (a, \"p q\", 'r s', t , \"b c\")"
        );
    }

    #[test]
    fn empty_list_removes_one_comma() {
        // The name and its comma go; the padding spaces stay (they do not change the parse).
        assert_eq!(sub("x in (a, empty)", "empty", &[]), "x in (a  )");
        assert_eq!(sub("x in (empty, a)", "empty", &[]), "x in (   a)");
        assert_eq!(sub("x in (empty)", "empty", &[]), "x in (  )");
    }

    #[test]
    fn requires_delimiters_on_both_sides() {
        assert_eq!(
            sub("x in (mylist2, amylist)", "mylist", &["z"]),
            "x in (mylist2, amylist)"
        );
        assert_eq!(
            sub("proc.name=mylist", "mylist", &["a", "b"]),
            "proc.name= a, b "
        );
        assert_eq!(sub("mylist", "mylist", &["a"]), "a ");
    }

    #[test]
    fn every_occurrence_is_replaced() {
        assert_eq!(
            sub("a in (l) or b in (l)", "l", &["1"]),
            "a in ( 1 ) or b in ( 1 )"
        );
    }

    #[test]
    fn names_that_are_not_lists_stay() {
        let mut c = "x in (unknown_name)".to_string();
        assert!(!substitute_list(&mut c, "other", &["a".into()]));
        assert_eq!(c, "x in (unknown_name)");
    }

    #[test]
    fn list_names() {
        assert!(is_valid_list_name("my_list-1.x"));
        assert!(!is_valid_list_name("bad name"));
        assert!(!is_valid_list_name("a,b"));
    }
}
