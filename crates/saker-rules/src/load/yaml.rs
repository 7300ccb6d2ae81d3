//! A small YAML document tree that keeps the position of every node.
//!
//! Built from `saphyr-parser` events. Scalars stay raw strings, as yaml-cpp
//! hands them to Falco's loader; conversion to bool/uint happens per key.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;

/// A position in a rules file. `line` and `column` are 0-based like yaml-cpp
/// marks (Falco's JSON `position`); `column` and `offset` count bytes, as
/// yaml-cpp does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
    pub offset: usize,
}

/// Converts saphyr's character-based markers to yaml-cpp's byte-based marks.
struct Positions<'t> {
    text: &'t str,
    /// Byte offset of every character, when the text is not pure ASCII.
    char_bytes: Option<Vec<usize>>,
}

impl<'t> Positions<'t> {
    fn new(text: &'t str) -> Self {
        let char_bytes = (!text.is_ascii()).then(|| {
            let mut v: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
            v.push(text.len());
            v
        });
        Positions { text, char_bytes }
    }

    fn byte_offset(&self, char_index: usize) -> usize {
        match &self.char_bytes {
            None => char_index.min(self.text.len()),
            Some(v) => v.get(char_index).copied().unwrap_or(self.text.len()),
        }
    }

    fn at_byte(&self, offset: usize, line: usize) -> Pos {
        let start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        Pos {
            line,
            column: offset - start,
            offset,
        }
    }

    fn marker(&self, m: &saphyr_parser::Marker) -> Pos {
        self.at_byte(self.byte_offset(m.index()), m.line().saturating_sub(1))
    }

    fn span(&self, span: &Span) -> Pos {
        self.marker(&span.start)
    }

    /// yaml-cpp marks a block scalar at its `|`/`>` indicator; saphyr at the
    /// first content character. Walks back from the content to the header line,
    /// over the blank lines a block scalar may start with.
    fn block_header(&self, content: Pos) -> Pos {
        let b = self.text.as_bytes();
        let mut end = content.offset.min(b.len());
        let mut line = content.line;
        loop {
            let start = self.text[..end].rfind('\n').map_or(0, |i| i + 1);
            if let Some(p) = header_in_line(&b[start..end]) {
                return self.at_byte(start + p, line);
            }
            if start == 0
                || (end != content.offset && !b[start..end].iter().all(u8::is_ascii_whitespace))
            {
                return content;
            }
            end = start - 1;
            line = line.saturating_sub(1);
        }
    }
}

/// The offset of a block scalar header (`|`, `>-`, `|2+` ...) ending `line`
/// (before an optional comment).
fn header_in_line(line: &[u8]) -> Option<usize> {
    let end = match line
        .windows(2)
        .position(|w| w[1] == b'#' && (w[0] == b' ' || w[0] == b'\t'))
    {
        Some(i) => i,
        None => line.len(),
    };
    let body = &line[..end];
    let trimmed = body.len()
        - body
            .iter()
            .rev()
            .take_while(|c| c.is_ascii_whitespace())
            .count();
    let body = &body[..trimmed];
    let ind_len = body
        .iter()
        .rev()
        .take_while(|c| c.is_ascii_digit() || **c == b'+' || **c == b'-')
        .count();
    let at = body.len().checked_sub(ind_len + 1)?;
    if !matches!(body[at], b'|' | b'>') {
        return None;
    }
    match at.checked_sub(1).map(|i| body[i]) {
        None | Some(b' ' | b'\t' | b':' | b'-') => Some(at),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Null,
    /// A scalar, with whether it was quoted (quoted scalars are never null).
    Scalar(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub pos: Pos,
}

impl Node {
    /// The value of `key` in a mapping (first occurrence), with the key's node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.get_entry(key).map(|(_, v)| v)
    }

    pub fn get_entry(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.kind {
            NodeKind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_scalar() == Some(key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.get_entry(key).is_some()
    }

    pub fn as_scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, NodeKind::Null)
    }

    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Null => "null",
            NodeKind::Scalar(_) => "scalar",
            NodeKind::Seq(_) => "sequence",
            NodeKind::Map(_) => "mapping",
        }
    }
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    pub message: String,
    pub pos: Pos,
}

/// Parses every document of `text`. A document with no content is `Null`.
///
/// yaml-cpp (Falco's parser) accepts flow collections whose continuation
/// lines are not indented deeper than their key (upstream rules close
/// `items: [` with `]` aligned with `items`); saphyr rejects them with
/// "invalid indentation". We accept such files by indenting the reported
/// line and retrying, a bounded number of times.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, YamlError> {
    let mut first_err = match parse_strict(text) {
        Ok(d) => return Ok(d),
        Err(e) => e,
    };
    if !first_err.message.contains("invalid indentation") {
        return Err(first_err);
    }
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    // Two-space indents inserted per line, to map positions back to `text`.
    let mut added = vec![0usize; lines.len()];
    let mut err_line = first_err.pos.line;
    for _ in 0..256 {
        let Some(l) = lines.get_mut(err_line) else {
            break;
        };
        l.insert_str(0, "  ");
        added[err_line] += 2;
        match parse_strict(&lines.join("\n")) {
            Ok(mut d) => {
                let mut before = Vec::with_capacity(added.len());
                let mut sum = 0;
                for a in &added {
                    before.push(sum);
                    sum += a;
                }
                for n in &mut d {
                    unshift(n, &added, &before);
                }
                return Ok(d);
            }
            Err(e) if e.message.contains("invalid indentation") => err_line = e.pos.line,
            Err(e) => {
                first_err = e;
                break;
            }
        }
    }
    Err(first_err)
}

/// Maps positions in the re-indented text back to the original text.
fn unshift(n: &mut Node, added: &[usize], before: &[usize]) {
    let line = n.pos.line.min(added.len().saturating_sub(1));
    let here = added.get(line).map_or(0, |&a| a.min(n.pos.column));
    n.pos.column -= here;
    n.pos.offset = n
        .pos
        .offset
        .saturating_sub(before.get(line).copied().unwrap_or(0) + here);
    match &mut n.kind {
        NodeKind::Seq(items) => items.iter_mut().for_each(|i| unshift(i, added, before)),
        NodeKind::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            unshift(k, added, before);
            unshift(v, added, before);
        }),
        NodeKind::Null | NodeKind::Scalar(_) => {}
    }
}

fn parse_strict(text: &str) -> Result<Vec<Node>, YamlError> {
    let mut b = Builder {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        last_pos: Pos::default(),
        positions: Positions::new(text),
    };
    let mut docs = Vec::new();
    loop {
        let (ev, span) = b.next()?;
        match ev {
            Event::StreamEnd => break,
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
            Event::DocumentStart(_) => {
                let (ev, span) = b.next()?;
                if matches!(ev, Event::DocumentEnd) {
                    docs.push(Node {
                        kind: NodeKind::Null,
                        pos: b.positions.span(&span),
                    });
                } else {
                    docs.push(b.node(ev, span)?);
                }
            }
            other => {
                return Err(YamlError {
                    message: format!("unexpected YAML event {other:?}"),
                    pos: b.positions.span(&span),
                })
            }
        }
    }
    Ok(docs)
}

struct Builder<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    anchors: HashMap<usize, Node>,
    last_pos: Pos,
    positions: Positions<'a>,
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span), YamlError> {
        match self.parser.next_event() {
            Some(Ok((ev, span))) => {
                self.last_pos = self.positions.span(&span);
                Ok((ev, span))
            }
            Some(Err(e)) => {
                let pos = self.positions.marker(e.marker());
                Err(YamlError {
                    message: e.info().to_string(),
                    pos,
                })
            }
            None => Err(YamlError {
                message: "unexpected end of YAML stream".into(),
                pos: self.last_pos,
            }),
        }
    }

    fn node(&mut self, ev: Event<'a>, span: Span) -> Result<Node, YamlError> {
        let mut pos = self.positions.span(&span);
        let (node, anchor) = match ev {
            Event::Scalar(v, style, anchor, _tag) => {
                if matches!(style, ScalarStyle::Literal | ScalarStyle::Folded) {
                    pos = self.positions.block_header(pos);
                }
                let null = style == ScalarStyle::Plain
                    && matches!(v.as_ref(), "" | "~" | "null" | "Null" | "NULL");
                let kind = if null {
                    NodeKind::Null
                } else {
                    NodeKind::Scalar(v.into_owned())
                };
                (Node { kind, pos }, anchor)
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (ev, span) = self.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(ev, span)?);
                }
                (
                    Node {
                        kind: NodeKind::Seq(items),
                        pos,
                    },
                    anchor,
                )
            }
            Event::MappingStart(anchor, _) => {
                let mut entries = Vec::new();
                loop {
                    let (ev, span) = self.next()?;
                    if matches!(ev, Event::MappingEnd) {
                        break;
                    }
                    let k = self.node(ev, span)?;
                    let (ev, span) = self.next()?;
                    let v = self.node(ev, span)?;
                    entries.push((k, v));
                }
                (
                    Node {
                        kind: NodeKind::Map(entries),
                        pos,
                    },
                    anchor,
                )
            }
            Event::Alias(id) => {
                let mut n = self.anchors.get(&id).cloned().ok_or_else(|| YamlError {
                    message: "unknown anchor".into(),
                    pos,
                })?;
                n.pos = pos;
                return Ok(n);
            }
            other => {
                return Err(YamlError {
                    message: format!("unexpected YAML event {other:?}"),
                    pos,
                })
            }
        };
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }
}

/// yaml-cpp's boolean spellings.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "y" | "Y" => {
            Some(true)
        }
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "n" | "N" => {
            Some(false)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_documents() {
        let docs = parse_documents("- rule: a\n  desc: b\n---\n- list: l\n  items: []\n").unwrap();
        assert_eq!(docs.len(), 2);
        let NodeKind::Seq(items) = &docs[0].kind else {
            panic!("not a seq")
        };
        let (k, v) = items[0].get_entry("desc").unwrap();
        assert_eq!((k.pos.line, k.pos.column), (1, 2));
        assert_eq!(v.as_scalar(), Some("b"));
        assert_eq!(docs[1].get("items"), None);
    }

    #[test]
    fn null_and_quoted() {
        let docs = parse_documents("a: \nb: ''\nc: ~\n").unwrap();
        assert!(docs[0].get("a").unwrap().is_null());
        assert_eq!(docs[0].get("b").unwrap().as_scalar(), Some(""));
        assert!(docs[0].get("c").unwrap().is_null());
    }

    #[test]
    fn syntax_error_has_position() {
        let e = parse_documents("- rule: x\n    desc: y\n").unwrap_err();
        assert_eq!(e.pos.line, 1, "{e:?}");
    }
}
