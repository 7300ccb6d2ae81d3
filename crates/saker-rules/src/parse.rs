//! Recursive-descent parser for conditions (§3.2), with Falco's error texts.

use crate::ast::{
    Check, Expr, FieldExpr, Literal, Modifier, Op, Operand, Rhs, TArg, TransformExpr, Transformer,
};
use crate::lex;

/// Falco's recursion limit for conditions.
pub const MAX_DEPTH: u32 = 1000;

/// A syntax error: `pos` is the byte offset where parsing stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub pos: usize,
    pub message: String,
}

/// Parses a whole condition.
pub fn parse_condition(text: &str) -> Result<Expr, ParseError> {
    let mut p = Parser::new(text);
    if text.is_empty() {
        return Err(p.err("filter input string is empty"));
    }
    let e = p.parse_or()?;
    if p.pos != p.s.len() {
        let msg = format!("unexpected token after '{}', expecting 'or', 'and'", p.last);
        return Err(p.err(msg));
    }
    Ok(e)
}

/// Parses a field expression on its own (`proc.aname[2]`, `tolower(proc.name)`),
/// returning it and the number of bytes consumed. Used by output formats and
/// exception field validation.
pub fn parse_operand_prefix(text: &str) -> Result<(Operand, usize), ParseError> {
    let mut p = Parser::new(text);
    let op = p.parse_field_or_transformer()?;
    Ok((op, p.pos))
}

const STR_OPS: [(&str, Op, bool); 12] = [
    ("==", Op::EqEq, false),
    ("=", Op::Eq, false),
    ("!=", Op::Ne, false),
    ("glob", Op::Glob, true),
    ("iglob", Op::IGlob, true),
    ("contains", Op::Contains, true),
    ("icontains", Op::IContains, true),
    ("bcontains", Op::BContains, true),
    ("startswith", Op::StartsWith, true),
    ("bstartswith", Op::BStartsWith, true),
    ("endswith", Op::EndsWith, true),
    ("regex", Op::Regex, true),
];
const NUM_OPS: [(&str, Op); 4] = [("<=", Op::Le), ("<", Op::Lt), (">=", Op::Ge), (">", Op::Gt)];
const LIST_OPS: [(&str, Op); 3] = [
    ("intersects", Op::Intersects),
    ("in", Op::In),
    ("pmatch", Op::PMatch),
];

fn quoted_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items
        .into_iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn all_ops() -> String {
    let mut v = vec!["exists"];
    v.extend(NUM_OPS.iter().map(|o| o.0));
    v.extend(STR_OPS.iter().map(|o| o.0));
    v.extend(LIST_OPS.iter().map(|o| o.0));
    quoted_list(v)
}

fn transformers_with_val() -> String {
    quoted_list(std::iter::once("val").chain(Transformer::ALL.iter().map(|t| t.as_str())))
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: u32,
    /// The last token lexed (not blanks), for "unexpected token after '...'".
    last: String,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            s: text.as_bytes(),
            pos: 0,
            depth: 0,
            last: String::new(),
        }
    }

    fn err(&self, msg: impl Into<String>) -> ParseError {
        ParseError {
            pos: self.pos,
            message: msg.into(),
        }
    }

    fn rest(&self) -> &'a [u8] {
        &self.s[self.pos..]
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth >= MAX_DEPTH {
            return Err(self.err(format!("exceeded max depth limit of {MAX_DEPTH}")));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn blank(&mut self) -> bool {
        let n = self
            .rest()
            .iter()
            .take_while(|&&b| lex::is_blank(b))
            .count();
        self.pos += n;
        n > 0
    }

    fn take(&mut self, n: usize) -> &'a str {
        let tok = &self.s[self.pos..self.pos + n];
        self.pos += n;
        // Token boundaries are ASCII bytes, so the slice is valid UTF-8.
        let t = std::str::from_utf8(tok).unwrap_or("");
        self.last = t.to_string();
        t
    }

    fn lit(&mut self, word: &str) -> bool {
        if self.rest().starts_with(word.as_bytes()) {
            self.take(word.len());
            true
        } else {
            false
        }
    }

    fn lex_with(&mut self, f: fn(&[u8]) -> usize) -> Option<&'a str> {
        let n = f(self.rest());
        (n > 0).then(|| self.take(n))
    }

    /// A quoted string, unescaped.
    fn quoted(&mut self) -> Result<Option<Vec<u8>>, ParseError> {
        let n = lex::quoted(self.rest());
        if n == 0 {
            return Ok(None);
        }
        let raw = &self.s[self.pos..self.pos + n];
        let v = lex::unescape(raw).map_err(|m| self.err(m))?;
        self.take(n);
        Ok(Some(v))
    }

    fn parse_or(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        self.blank();
        let mut children = vec![self.parse_and()?];
        self.blank();
        while self.lit("or") {
            let child = if self.blank() {
                self.parse_and()?
            } else if self.lit("(") {
                self.parse_embedded()?
            } else {
                return Err(self.err("expected blank or '(' after 'or'"));
            };
            children.push(child);
            self.blank();
        }
        self.leave();
        Ok(if children.len() == 1 {
            children.pop().unwrap_or(Expr::And(vec![]))
        } else {
            Expr::Or(children)
        })
    }

    fn parse_and(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        self.blank();
        let mut children = vec![self.parse_not()?];
        self.blank();
        while self.lit("and") {
            let child = if self.blank() {
                self.parse_not()?
            } else if self.lit("(") {
                self.parse_embedded()?
            } else {
                return Err(self.err("expected blank or '(' after 'and'"));
            };
            children.push(child);
            self.blank();
        }
        self.leave();
        Ok(if children.len() == 1 {
            children.pop().unwrap_or(Expr::And(vec![]))
        } else {
            Expr::And(children)
        })
    }

    /// `not` followed by POSIX space, as many times as written (each toggles).
    fn not_blank(&mut self) -> bool {
        let r = self.rest();
        if r.starts_with(b"not") {
            let n = r[3..].iter().take_while(|&&b| lex::is_space(b)).count();
            if n > 0 {
                self.take(3 + n);
                return true;
            }
        }
        false
    }

    fn parse_not(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        self.blank();
        let mut negate = false;
        while self.not_blank() {
            negate = !negate;
        }
        let child = if self.lit("not(") {
            negate = !negate;
            self.parse_embedded()?
        } else {
            self.parse_check()?
        };
        self.leave();
        Ok(if negate {
            Expr::Not(Box::new(child))
        } else {
            child
        })
    }

    /// After a `(`: an or-expression and the closing `)`.
    fn parse_embedded(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        self.blank();
        let e = self.parse_or()?;
        self.blank();
        if !self.lit(")") {
            return Err(self.err("expected a ')' token"));
        }
        self.leave();
        Ok(e)
    }

    fn parse_check(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        self.blank();
        let pos = self.pos;
        if self.lit("(") {
            let e = self.parse_embedded()?;
            self.leave();
            return Ok(e);
        }
        let lhs = if let Some(name) = self.lex_with(lex::field_name) {
            Operand::Field(self.parse_field_rest(name, pos)?)
        } else if let Some(t) = self.lex_transformer() {
            Operand::Transform(self.parse_transformer_rest(t, pos)?)
        } else if let Some(name) = self.lex_with(lex::identifier) {
            self.leave();
            return Ok(Expr::MacroRef {
                name: name.to_string(),
                pos,
            });
        } else {
            return Err(self.err("expected a '(' token, a field check, or an identifier"));
        };
        let e = self.parse_condition(lhs, pos)?;
        self.leave();
        Ok(e)
    }

    fn parse_field_or_transformer(&mut self) -> Result<Operand, ParseError> {
        let pos = self.pos;
        if let Some(name) = self.lex_with(lex::field_name) {
            return Ok(Operand::Field(self.parse_field_rest(name, pos)?));
        }
        if let Some(t) = self.lex_transformer() {
            return Ok(Operand::Transform(self.parse_transformer_rest(t, pos)?));
        }
        Err(self.err(format!("unexpected token after '{}'", self.last)))
    }

    /// `[arg]` after a field name.
    fn parse_field_arg(&mut self) -> Result<Option<String>, ParseError> {
        if !self.lit("[") {
            return Ok(None);
        }
        let arg = if let Some(q) = self.quoted()? {
            String::from_utf8_lossy(&q).into_owned()
        } else if let Some(b) = self.lex_with(lex::field_arg_bare) {
            b.to_string()
        } else {
            return Err(
                self.err("expected a valid field argument: a quoted string or a bare string")
            );
        };
        if !self.lit("]") {
            return Err(self.err("expected a ']' token"));
        }
        Ok(Some(arg))
    }

    fn parse_field_rest(&mut self, name: &str, pos: usize) -> Result<FieldExpr, ParseError> {
        let arg = self.parse_field_arg()?;
        Ok(FieldExpr {
            name: name.to_string(),
            arg,
            pos,
        })
    }

    /// A transformer name immediately followed by `(` (consumed).
    fn lex_transformer(&mut self) -> Option<Transformer> {
        for t in Transformer::ALL {
            let name = t.as_str();
            let r = self.rest();
            if r.starts_with(name.as_bytes()) && r.get(name.len()) == Some(&b'(') {
                self.take(name.len() + 1);
                return Some(t);
            }
        }
        None
    }

    /// After `name(`: arguments, `)` and an optional `[arg]`.
    fn parse_transformer_rest(
        &mut self,
        func: Transformer,
        pos: usize,
    ) -> Result<TransformExpr, ParseError> {
        self.enter()?;
        self.blank();
        let mut args = Vec::new();
        loop {
            args.push(self.parse_targ()?);
            self.blank();
            if !self.lit(",") {
                break;
            }
            self.blank();
        }
        if !self.lit(")") {
            return Err(self.err("expected a ')' token closing the transformer"));
        }
        let arg = self.parse_field_arg()?;
        self.leave();
        Ok(TransformExpr {
            func,
            args,
            arg,
            pos,
        })
    }

    fn parse_targ(&mut self) -> Result<TArg, ParseError> {
        self.enter()?;
        self.blank();
        let pos = self.pos;
        let a = if let Some(n) = self
            .lex_with(lex::hex_number)
            .or_else(|| self.lex_with(lex::number))
        {
            TArg::Value(Literal {
                value: n.as_bytes().to_vec(),
                quoted: false,
                pos,
            })
        } else if let Some(q) = self.quoted()? {
            TArg::Value(Literal {
                value: q,
                quoted: true,
                pos,
            })
        } else if self.lit("(") {
            let mut items = Vec::new();
            self.blank();
            if !self.lit(")") {
                loop {
                    self.blank();
                    let p = self.pos;
                    let item = if let Some(name) = self.lex_with(lex::field_name) {
                        TArg::Field(self.parse_field_rest(name, p)?)
                    } else if let Some(t) = self.lex_transformer() {
                        TArg::Transform(self.parse_transformer_rest(t, p)?)
                    } else if let Some(q) = self.quoted()? {
                        TArg::Value(Literal {
                            value: q,
                            quoted: true,
                            pos: p,
                        })
                    } else if let Some(n) = self
                        .lex_with(lex::hex_number)
                        .or_else(|| self.lex_with(lex::number))
                    {
                        TArg::Value(Literal {
                            value: n.as_bytes().to_vec(),
                            quoted: false,
                            pos: p,
                        })
                    } else {
                        return Err(self.err(
                            "expected transformer list argument: field, transformer, quoted string, or number",
                        ));
                    };
                    items.push(item);
                    self.blank();
                    if !self.lit(",") {
                        break;
                    }
                }
                if !self.lit(")") {
                    return Err(self.err("expected ')'"));
                }
            }
            TArg::List(items, pos)
        } else if let Some(t) = self.lex_transformer() {
            TArg::Transform(self.parse_transformer_rest(t, pos)?)
        } else if let Some(name) = self.lex_with(lex::field_name) {
            TArg::Field(self.parse_field_rest(name, pos)?)
        } else {
            return Err(self.err(
                "expected field transformer argument: field, transformer, quoted string, number, or transformer list",
            ));
        };
        self.leave();
        Ok(a)
    }

    fn lex_op(&mut self) -> Option<Op> {
        if self.lit("exists") {
            return Some(Op::Exists);
        }
        for (s, op) in NUM_OPS {
            if self.lit(s) {
                return Some(op);
            }
        }
        for (s, op, needs_blank) in STR_OPS {
            if self.lit(s) {
                if needs_blank && !self.blank() {
                    // Falco's lexer keeps the consumed word and tries the next operators
                    // from there; we simply reject.
                    return None;
                }
                return Some(op);
            }
        }
        for (s, op) in LIST_OPS {
            if self.lit(s) {
                return Some(op);
            }
        }
        None
    }

    fn parse_condition(&mut self, lhs: Operand, pos: usize) -> Result<Expr, ParseError> {
        self.enter()?;
        self.blank();
        let Some(op) = self.lex_op() else {
            return Err(self.err(format!(
                "expected a valid check operator: one of {}",
                all_ops()
            )));
        };
        let mut modifier = None;
        let rhs = match op {
            Op::Exists => Rhs::None,
            Op::Lt | Op::Le | Op::Gt | Op::Ge => self.parse_num_value()?,
            Op::In | Op::Intersects | Op::PMatch => self.parse_list_value()?,
            _ => {
                if let Some((m, rhs)) = self.try_modifier()? {
                    modifier = Some(m);
                    rhs
                } else {
                    self.parse_str_value()?
                }
            }
        };
        self.leave();
        Ok(Expr::Check(Box::new(Check {
            lhs,
            op,
            modifier,
            rhs,
            pos,
        })))
    }

    /// `val(field)` or a transformer, as a right-hand side.
    fn try_rhs_field(&mut self) -> Result<Option<Rhs>, ParseError> {
        self.blank();
        let pos = self.pos;
        if self.lit("val(") {
            self.blank();
            let fpos = self.pos;
            let Some(name) = self.lex_with(lex::field_name) else {
                return Err(self.err("expected a field within 'val' transformer"));
            };
            let f = self.parse_field_rest(name, fpos)?;
            self.blank();
            if !self.lit(")") {
                return Err(self.err("expected a ')' token closing the transformer"));
            }
            return Ok(Some(Rhs::Field(Operand::Field(f))));
        }
        if let Some(t) = self.lex_transformer() {
            let t = self.parse_transformer_rest(t, pos)?;
            return Ok(Some(Rhs::Field(Operand::Transform(t))));
        }
        Ok(None)
    }

    fn parse_num_value(&mut self) -> Result<Rhs, ParseError> {
        if let Some(r) = self.try_rhs_field()? {
            return Ok(r);
        }
        let pos = self.pos;
        if let Some(n) = self
            .lex_with(lex::hex_number)
            .or_else(|| self.lex_with(lex::number))
        {
            return Ok(Rhs::Value(Literal {
                value: n.as_bytes().to_vec(),
                quoted: false,
                pos,
            }));
        }
        Err(self.err(format!(
            "expected a number value or a field with a valid transformer: {}",
            transformers_with_val()
        )))
    }

    fn str_literal(&mut self) -> Result<Option<Literal>, ParseError> {
        let pos = self.pos;
        if let Some(q) = self.quoted()? {
            return Ok(Some(Literal {
                value: q,
                quoted: true,
                pos,
            }));
        }
        Ok(self.lex_with(lex::bare_str).map(|b| Literal {
            value: b.as_bytes().to_vec(),
            quoted: false,
            pos,
        }))
    }

    fn parse_str_value(&mut self) -> Result<Rhs, ParseError> {
        if let Some(r) = self.try_rhs_field()? {
            return Ok(r);
        }
        if let Some(l) = self.str_literal()? {
            return Ok(Rhs::Value(l));
        }
        Err(self.err(format!(
            "expected a string value or a field with a valid transformer: {}",
            transformers_with_val()
        )))
    }

    /// After `(`: comma-separated string values and `)`.
    fn parse_list_items(&mut self) -> Result<Vec<Literal>, ParseError> {
        let mut items = Vec::new();
        self.blank();
        if let Some(first) = self.str_literal()? {
            items.push(first);
            self.blank();
            while self.lit(",") {
                self.blank();
                match self.str_literal()? {
                    Some(l) => items.push(l),
                    None => return Err(self.err("expected a string value")),
                }
                self.blank();
            }
        }
        if !self.lit(")") {
            return Err(self.err("expected a ')' token"));
        }
        Ok(items)
    }

    fn parse_list_value(&mut self) -> Result<Rhs, ParseError> {
        self.blank();
        if self.lit("(") {
            return Ok(Rhs::List(self.parse_list_items()?));
        }
        if let Some(r) = self.try_rhs_field()? {
            return Ok(r);
        }
        let pos = self.pos;
        if let Some(id) = self.lex_with(lex::identifier) {
            return Ok(Rhs::Value(Literal {
                value: id.as_bytes().to_vec(),
                quoted: false,
                pos,
            }));
        }
        Err(self.err(format!(
            "expected a list, an identifier, or a field with a valid transformer: {}",
            transformers_with_val()
        )))
    }

    /// `oneof|anyof|allof` followed by a list or an identifier that is not a keyword;
    /// otherwise nothing is consumed and the word is an ordinary value.
    fn try_modifier(&mut self) -> Result<Option<(Modifier, Rhs)>, ParseError> {
        let save = (self.pos, self.last.clone());
        self.blank();
        let m = if self.lit("oneof") {
            Modifier::OneOf
        } else if self.lit("anyof") {
            Modifier::AnyOf
        } else if self.lit("allof") {
            Modifier::AllOf
        } else {
            (self.pos, self.last) = save;
            return Ok(None);
        };
        let blanks = self.blank();
        if self.lit("(") {
            return Ok(Some((m, Rhs::List(self.parse_list_items()?))));
        }
        if blanks {
            let pos = self.pos;
            let n = lex::identifier(self.rest());
            if n > 0 {
                let word = &self.rest()[..n];
                if !matches!(word, b"and" | b"or" | b"not") {
                    let id = self.take(n);
                    return Ok(Some((m, Rhs::Value(Literal::new(id.as_bytes(), pos)))));
                }
            }
        }
        (self.pos, self.last) = save;
        Ok(None)
    }
}
