//! The condition AST produced by [`crate::parse::parse_condition`].
//!
//! Positions are byte offsets into the condition text the node was parsed
//! from. After macro expansion a sub-tree keeps the offsets of the macro's own
//! text, which is what error reports about a macro body want.

use std::fmt;

/// A boolean expression over checks.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Two or more children, all must hold (short-circuit left to right).
    And(Vec<Expr>),
    /// Two or more children, one must hold (short-circuit left to right).
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Check(Box<Check>),
    /// A bare identifier: a macro reference, resolved by the loader.
    MacroRef {
        name: String,
        pos: usize,
    },
}

/// Comparison operators, spelled as in conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    EqEq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    IContains,
    BContains,
    StartsWith,
    BStartsWith,
    EndsWith,
    Glob,
    IGlob,
    Regex,
    In,
    Intersects,
    PMatch,
    Exists,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::EqEq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "contains",
            Op::IContains => "icontains",
            Op::BContains => "bcontains",
            Op::StartsWith => "startswith",
            Op::BStartsWith => "bstartswith",
            Op::EndsWith => "endswith",
            Op::Glob => "glob",
            Op::IGlob => "iglob",
            Op::Regex => "regex",
            Op::In => "in",
            Op::Intersects => "intersects",
            Op::PMatch => "pmatch",
            Op::Exists => "exists",
        }
    }

    /// Parses an operator spelling (as used by exception `comps`), whitespace-trimmed.
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s.trim() {
            "=" => Op::Eq,
            "==" => Op::EqEq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "contains" => Op::Contains,
            "icontains" => Op::IContains,
            "bcontains" => Op::BContains,
            "startswith" => Op::StartsWith,
            "bstartswith" => Op::BStartsWith,
            "endswith" => Op::EndsWith,
            "glob" => Op::Glob,
            "iglob" => Op::IGlob,
            "regex" => Op::Regex,
            "in" => Op::In,
            "intersects" => Op::Intersects,
            "pmatch" => Op::PMatch,
            "exists" => Op::Exists,
            _ => return None,
        })
    }

    /// `in`, `intersects`, `pmatch`: the right-hand side is a list.
    pub fn is_list_op(self) -> bool {
        matches!(self, Op::In | Op::Intersects | Op::PMatch)
    }

    /// Operators that accept a `oneof`/`anyof`/`allof` modifier.
    pub fn accepts_modifier(self) -> bool {
        matches!(
            self,
            Op::Eq
                | Op::EqEq
                | Op::Ne
                | Op::Contains
                | Op::IContains
                | Op::BContains
                | Op::StartsWith
                | Op::BStartsWith
                | Op::EndsWith
                | Op::Glob
                | Op::IGlob
                | Op::Regex
        )
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `<op> oneof|anyof|allof (...)` modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Modifier {
    OneOf,
    AnyOf,
    AllOf,
}

impl Modifier {
    pub fn as_str(self) -> &'static str {
        match self {
            Modifier::OneOf => "oneof",
            Modifier::AnyOf => "anyof",
            Modifier::AllOf => "allof",
        }
    }
}

/// Field transformers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transformer {
    ToLower,
    ToUpper,
    B64,
    Basename,
    Len,
    Join,
    Concat,
    Getopt,
}

impl Transformer {
    pub const ALL: [Transformer; 8] = [
        Transformer::ToLower,
        Transformer::ToUpper,
        Transformer::B64,
        Transformer::Basename,
        Transformer::Len,
        Transformer::Join,
        Transformer::Concat,
        Transformer::Getopt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Transformer::ToLower => "tolower",
            Transformer::ToUpper => "toupper",
            Transformer::B64 => "b64",
            Transformer::Basename => "basename",
            Transformer::Len => "len",
            Transformer::Join => "join",
            Transformer::Concat => "concat",
            Transformer::Getopt => "getopt",
        }
    }
}

/// A field reference as written: `proc.aname[2]`, `evt.arg.flags`, `k8s.pod.label["a.b"]`.
/// `name` is the dotted name (for `evt.arg.flags` the whole text); `arg` the decoded
/// bracket content, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldExpr {
    pub name: String,
    pub arg: Option<String>,
    pub pos: usize,
}

impl FieldExpr {
    /// The text Falco uses as output key and in messages: `name` or `name[arg]`.
    pub fn text(&self) -> String {
        match &self.arg {
            Some(a) => format!("{}[{}]", self.name, a),
            None => self.name.clone(),
        }
    }
}

/// A transformer application: `tolower(proc.name)`, `join(",", fd.types)`.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformExpr {
    pub func: Transformer,
    pub args: Vec<TArg>,
    /// Trailing `[arg]` (only meaningful for `getopt(...)[c]`).
    pub arg: Option<String>,
    pub pos: usize,
}

/// An argument of a transformer.
#[derive(Debug, Clone, PartialEq)]
pub enum TArg {
    Field(FieldExpr),
    Transform(TransformExpr),
    /// A quoted string or a number.
    Value(Literal),
    /// `( a, b, ... )`
    List(Vec<TArg>, usize),
}

/// The left-hand side of a check, or a field-valued right-hand side.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Field(FieldExpr),
    Transform(TransformExpr),
}

impl Operand {
    /// The operand as written in messages: `proc.aname[1]`, `tolower(proc.name)`.
    pub fn text(&self) -> String {
        match self {
            Operand::Field(f) => f.text(),
            Operand::Transform(t) => t.to_string(),
        }
    }

    pub fn pos(&self) -> usize {
        match self {
            Operand::Field(f) => f.pos,
            Operand::Transform(t) => t.pos,
        }
    }
}

/// A literal value, unescaped but not yet typed (typing happens at compile time,
/// by the left-hand side's type). Bytes, since `\xHH` escapes need not be UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Literal {
    pub value: Vec<u8>,
    pub quoted: bool,
    pub pos: usize,
}

impl Literal {
    pub fn new(value: impl Into<Vec<u8>>, pos: usize) -> Self {
        Literal {
            value: value.into(),
            quoted: false,
            pos,
        }
    }
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.value)
    }
}

/// The right-hand side of a check.
#[derive(Debug, Clone, PartialEq)]
pub enum Rhs {
    /// `exists` has none.
    None,
    Value(Literal),
    List(Vec<Literal>),
    /// `val(field)` (as [`Operand::Field`]) or a transformer.
    Field(Operand),
}

/// One comparison: `lhs op rhs`.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub lhs: Operand,
    pub op: Op,
    pub modifier: Option<Modifier>,
    pub rhs: Rhs,
    /// Offset of the left-hand side.
    pub pos: usize,
}

/// A macro name that the lookup could not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Undefined macro '{name}' used in filter.")]
pub struct UndefinedMacro {
    pub name: String,
    pub pos: usize,
}

impl Expr {
    /// The offset of the first token of this node.
    pub fn pos(&self) -> usize {
        match self {
            Expr::And(c) | Expr::Or(c) => c.first().map_or(0, Expr::pos),
            Expr::Not(e) => e.pos(),
            Expr::Check(c) => c.pos,
            Expr::MacroRef { pos, .. } => *pos,
        }
    }

    /// Every macro reference, in source order (duplicates kept).
    pub fn macro_refs(&self) -> Vec<(&str, usize)> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::MacroRef { name, pos } = e {
                out.push((name.as_str(), *pos));
            }
        });
        out
    }

    /// Calls `f` on every node, parents before children.
    pub fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Expr)) {
        f(self);
        match self {
            Expr::And(c) | Expr::Or(c) => c.iter().for_each(|e| e.walk(f)),
            Expr::Not(e) => e.walk(f),
            Expr::Check(_) | Expr::MacroRef { .. } => {}
        }
    }

    /// Every check, in source order.
    pub fn checks(&self) -> Vec<&Check> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Check(c) = e {
                out.push(&**c);
            }
        });
        out
    }

    /// Replaces each macro reference by the sub-tree `lookup` returns for it.
    ///
    /// One level only: the returned trees are inserted as they are, not searched
    /// again, because the loader resolves macro bodies first (in definition order,
    /// applying Falco's visibility rule) and then hands out expanded bodies.
    /// Stops at the first name `lookup` cannot resolve.
    pub fn expand_macros(
        &mut self,
        lookup: &mut impl FnMut(&str) -> Option<Expr>,
    ) -> Result<(), UndefinedMacro> {
        match self {
            Expr::And(c) | Expr::Or(c) => {
                for e in c {
                    e.expand_macros(lookup)?;
                }
                Ok(())
            }
            Expr::Not(e) => e.expand_macros(lookup),
            Expr::Check(_) => Ok(()),
            Expr::MacroRef { name, pos } => match lookup(name) {
                Some(sub) => {
                    *self = sub;
                    Ok(())
                }
                None => Err(UndefinedMacro {
                    name: name.clone(),
                    pos: *pos,
                }),
            },
        }
    }
}

fn write_quoted(f: &mut fmt::Formatter<'_>, v: &[u8]) -> fmt::Result {
    f.write_str("\"")?;
    for &b in v {
        match b {
            b'"' => f.write_str("\\\"")?,
            b'\\' => f.write_str("\\\\")?,
            b'\n' => f.write_str("\\n")?,
            b'\t' => f.write_str("\\t")?,
            b'\r' => f.write_str("\\r")?,
            0x20..=0x7e => write!(f, "{}", b as char)?,
            _ => write!(f, "\\x{b:02x}")?,
        }
    }
    f.write_str("\"")
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_quoted(f, &self.value)
    }
}

impl fmt::Display for FieldExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(a) = &self.arg {
            f.write_str("[")?;
            write_quoted(f, a.as_bytes())?;
            f.write_str("]")?;
        }
        Ok(())
    }
}

impl fmt::Display for TArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TArg::Field(x) => x.fmt(f),
            TArg::Transform(x) => x.fmt(f),
            TArg::Value(x) => x.fmt(f),
            TArg::List(items, _) => {
                f.write_str("(")?;
                for (i, it) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    it.fmt(f)?;
                }
                f.write_str(")")
            }
        }
    }
}

impl fmt::Display for TransformExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.func.as_str())?;
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            a.fmt(f)?;
        }
        f.write_str(")")?;
        if let Some(a) = &self.arg {
            f.write_str("[")?;
            write_quoted(f, a.as_bytes())?;
            f.write_str("]")?;
        }
        Ok(())
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Field(x) => x.fmt(f),
            Operand::Transform(x) => x.fmt(f),
        }
    }
}

/// Prints a canonical, fully parenthesised condition that parses back to the same tree.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::And(c) | Expr::Or(c) => {
                let kw = if matches!(self, Expr::And(_)) {
                    " and "
                } else {
                    " or "
                };
                f.write_str("(")?;
                for (i, e) in c.iter().enumerate() {
                    if i > 0 {
                        f.write_str(kw)?;
                    }
                    e.fmt(f)?;
                }
                f.write_str(")")
            }
            Expr::Not(e) => write!(f, "not {e}"),
            Expr::MacroRef { name, .. } => f.write_str(name),
            Expr::Check(c) => {
                write!(f, "{} {}", c.lhs, c.op)?;
                if let Some(m) = c.modifier {
                    write!(f, " {}", m.as_str())?;
                }
                match &c.rhs {
                    Rhs::None => Ok(()),
                    // Numbers must stay bare for relational operators.
                    Rhs::Value(v) if matches!(c.op, Op::Lt | Op::Le | Op::Gt | Op::Ge) => {
                        write!(f, " {}", v.text())
                    }
                    // A single value after a list operator is written as a one-element list.
                    Rhs::Value(v) if c.op.is_list_op() || c.modifier.is_some() => {
                        write!(f, " ({v})")
                    }
                    Rhs::Value(v) => write!(f, " {v}"),
                    Rhs::List(l) => {
                        f.write_str(" (")?;
                        for (i, v) in l.iter().enumerate() {
                            if i > 0 {
                                f.write_str(", ")?;
                            }
                            v.fmt(f)?;
                        }
                        f.write_str(")")
                    }
                    Rhs::Field(Operand::Field(x)) => write!(f, " val({x})"),
                    Rhs::Field(Operand::Transform(x)) => write!(f, " {x}"),
                }
            }
        }
    }
}
