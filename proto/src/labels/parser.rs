//! The string form of a label selector, read as Kubernetes reads it
//! (`k8s.io/apimachinery/pkg/labels`, `Parse`):
//!
//! ```text
//! selector    ::= "" | requirement ("," requirement)*
//! requirement ::= "!" KEY | KEY | KEY ("=" | "==" | "!=" | ">" | "<") VALUE?
//!               | KEY ("in" | "notin") "(" values? ")"
//! values      ::= VALUE? ("," VALUE?)*
//! ```
//!
//! Whitespace (space, tab, CR, LF) separates tokens and is otherwise ignored.
//! A token is one of `= == != ! ( ) , > <` or a run of any other characters
//! (an identifier; `in` and `notin` are keywords only where an operator may
//! stand, so they are fine as keys and values). As in Kubernetes, an omitted
//! value is the empty value: `a=` is `a` equal to `""`, `a in ()` and
//! `a in (,x)` include `""`.

use super::{Operator, Requirement, SelectorError};

/// The kinds of token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Identifier,
    In,
    NotIn,
    Equals,
    DoubleEquals,
    NotEquals,
    Bang,
    GreaterThan,
    LessThan,
    Open,
    Close,
    Comma,
    End,
}

/// A token and where it starts.
#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
    position: usize,
}

/// Whether the parser wants a key/operator or a value: in value position the
/// keywords `in` and `notin` are plain identifiers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Operator,
    Value,
}

/// Splits `text` into tokens, ending with [`Kind::End`].
fn tokenize(text: &str) -> Vec<Token<'_>> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let start = pos;
        let two = bytes.get(pos..pos + 2);
        let symbol = match (bytes[pos], two) {
            (b' ' | b'\t' | b'\r' | b'\n', _) => {
                pos += 1;
                continue;
            }
            (_, Some(b"==")) => Some((Kind::DoubleEquals, 2)),
            (_, Some(b"!=")) => Some((Kind::NotEquals, 2)),
            (b'=', _) => Some((Kind::Equals, 1)),
            (b'!', _) => Some((Kind::Bang, 1)),
            (b'>', _) => Some((Kind::GreaterThan, 1)),
            (b'<', _) => Some((Kind::LessThan, 1)),
            (b'(', _) => Some((Kind::Open, 1)),
            (b')', _) => Some((Kind::Close, 1)),
            (b',', _) => Some((Kind::Comma, 1)),
            _ => None,
        };
        let kind = match symbol {
            Some((kind, len)) => {
                pos += len;
                kind
            }
            None => {
                while pos < bytes.len() && !is_separator(bytes[pos]) {
                    pos += 1;
                }
                match &text[start..pos] {
                    "in" => Kind::In,
                    "notin" => Kind::NotIn,
                    _ => Kind::Identifier,
                }
            }
        };
        tokens.push(Token {
            kind,
            text: &text[start..pos],
            position: start,
        });
    }
    tokens.push(Token {
        kind: Kind::End,
        text: "",
        position: text.len(),
    });
    tokens
}

/// Whether `b` ends an identifier: whitespace or a symbol. Multi-byte UTF-8
/// characters never match, so identifiers split on character boundaries.
fn is_separator(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t' | b'\r' | b'\n' | b'=' | b'!' | b'>' | b'<' | b'(' | b')' | b','
    )
}

/// Reads the requirements of `text`, in the order written.
pub(super) fn parse(text: &str) -> Result<Vec<Requirement>, SelectorError> {
    Parser {
        tokens: tokenize(text),
        next: 0,
    }
    .selector()
}

struct Parser<'a> {
    tokens: Vec<Token<'a>>,
    next: usize,
}

impl<'a> Parser<'a> {
    /// The next token, without consuming it.
    fn peek(&self, context: Context) -> Token<'a> {
        let mut token = self.tokens[self.next];
        if context == Context::Value && matches!(token.kind, Kind::In | Kind::NotIn) {
            token.kind = Kind::Identifier;
        }
        token
    }

    /// The next token, consumed (the final `End` is never passed).
    fn take(&mut self, context: Context) -> Token<'a> {
        let token = self.peek(context);
        if token.kind != Kind::End {
            self.next += 1;
        }
        token
    }

    fn selector(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut requirements = Vec::new();
        let first = self.peek(Context::Value);
        match first.kind {
            Kind::End => return Ok(requirements),
            Kind::Identifier | Kind::Bang => {}
            _ => {
                return Err(unexpected(
                    first,
                    "'!', a label key or the end of the string",
                ));
            }
        }
        loop {
            requirements.push(self.requirement()?);
            let after = self.take(Context::Value);
            match after.kind {
                Kind::End => return Ok(requirements),
                Kind::Comma => {
                    let next = self.peek(Context::Value);
                    if !matches!(next.kind, Kind::Identifier | Kind::Bang) {
                        return Err(unexpected(next, "'!' or a label key after ','"));
                    }
                }
                _ => return Err(unexpected(after, "',' or the end of the string")),
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        let mut token = self.take(Context::Value);
        let negated = token.kind == Kind::Bang;
        if negated {
            token = self.take(Context::Value);
        }
        if token.kind != Kind::Identifier {
            return Err(unexpected(token, "a label key"));
        }
        let key = token.text.to_owned();
        let position = Some(token.position);
        let next = self.peek(Context::Value).kind;
        if negated {
            return Requirement::new_at(key, Operator::DoesNotExist, None::<String>, position);
        }
        if matches!(next, Kind::End | Kind::Comma) {
            return Requirement::new_at(key, Operator::Exists, None::<String>, position);
        }
        let operator = self.take(Context::Operator);
        let (operator, values) = match operator.kind {
            Kind::In => (Operator::In, self.value_set()?),
            Kind::NotIn => (Operator::NotIn, self.value_set()?),
            Kind::Equals | Kind::DoubleEquals => (Operator::Equals, self.exact_value()?),
            Kind::NotEquals => (Operator::NotEquals, self.exact_value()?),
            Kind::GreaterThan => (Operator::GreaterThan, self.exact_value()?),
            Kind::LessThan => (Operator::LessThan, self.exact_value()?),
            _ => {
                return Err(unexpected(
                    operator,
                    "an operator (=, ==, !=, in, notin, >, <), ',' or the end of the string",
                ));
            }
        };
        Requirement::new_at(key, operator, values, position)
    }

    /// The value after `=`, `!=`, `>` or `<`; omitted means empty.
    fn exact_value(&mut self) -> Result<Vec<String>, SelectorError> {
        let token = self.peek(Context::Value);
        match token.kind {
            Kind::End | Kind::Comma => Ok(vec![String::new()]),
            Kind::Identifier => {
                self.take(Context::Value);
                Ok(vec![token.text.to_owned()])
            }
            _ => Err(unexpected(token, "a label value")),
        }
    }

    /// `( values )` after `in` or `notin`; an omitted value is empty.
    fn value_set(&mut self) -> Result<Vec<String>, SelectorError> {
        let open = self.take(Context::Value);
        if open.kind != Kind::Open {
            return Err(unexpected(open, "'('"));
        }
        let mut values = Vec::new();
        // Whether a value (possibly empty) may come next.
        let mut want_value = true;
        loop {
            let token = self.take(Context::Value);
            match token.kind {
                Kind::Identifier if want_value => {
                    values.push(token.text.to_owned());
                    want_value = false;
                }
                Kind::Comma => {
                    if want_value {
                        values.push(String::new());
                    }
                    want_value = true;
                }
                Kind::Close => {
                    if want_value {
                        values.push(String::new());
                    }
                    return Ok(values);
                }
                _ if want_value => {
                    return Err(unexpected(token, "a label value, ',' or ')'"));
                }
                _ => return Err(unexpected(token, "',' or ')'")),
            }
        }
    }
}

/// A syntax error at `token`.
fn unexpected(token: Token<'_>, expected: &'static str) -> SelectorError {
    let found = if token.kind == Kind::End {
        "the end of the string".to_owned()
    } else {
        format!("'{}'", token.text)
    };
    SelectorError::Syntax {
        position: token.position,
        found,
        expected,
    }
}
