//! Rust source as the checker needs it: identifiers, `::`, string literals and punctuation,
//! each with its line; comments, numbers, characters and lifetimes dropped.

/// One token of Rust source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// An identifier or keyword (`r#` raw identifiers without the prefix).
    Ident(String),
    /// A string literal's contents, escapes left as written.
    Str(String),
    /// `::`.
    PathSep,
    /// Any other single punctuation character.
    Punct(char),
}

/// A token and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub line: u32,
}

/// Splits `source` into tokens. Malformed input (an unclosed string or comment) ends the token
/// stream where it breaks; the compiler, not this checker, reports it.
pub fn tokens(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut lexer = Lexer {
        chars: &chars,
        at: 0,
        line: 1,
        out: Vec::new(),
    };
    lexer.run();
    lexer.out
}

struct Lexer<'a> {
    chars: &'a [char],
    at: usize,
    line: u32,
    out: Vec<Token>,
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.at += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn push(&mut self, tok: Tok, line: u32) {
        self.out.push(Token { tok, line });
    }

    fn run(&mut self) {
        while let Some(c) = self.peek(0) {
            let line = self.line;
            match c {
                c if c.is_whitespace() => {
                    self.bump();
                }
                '/' if self.peek(1) == Some('/') => self.line_comment(),
                '/' if self.peek(1) == Some('*') => self.block_comment(),
                '"' => {
                    let text = self.quoted();
                    self.push(Tok::Str(text), line);
                }
                '\'' => self.char_or_lifetime(),
                ':' if self.peek(1) == Some(':') => {
                    self.at += 2;
                    self.push(Tok::PathSep, line);
                }
                c if c.is_ascii_digit() => self.skip_while(|c| c.is_alphanumeric() || c == '_'),
                c if c.is_alphabetic() || c == '_' => self.word(),
                c => {
                    self.bump();
                    self.push(Tok::Punct(c), line);
                }
            }
        }
    }

    fn skip_while(&mut self, keep: impl Fn(char) -> bool) {
        while self.peek(0).is_some_and(&keep) {
            self.bump();
        }
    }

    fn line_comment(&mut self) {
        self.skip_while(|c| c != '\n');
    }

    fn block_comment(&mut self) {
        let mut depth = 0usize;
        while let Some(c) = self.bump() {
            match (c, self.peek(0)) {
                ('/', Some('*')) => {
                    self.bump();
                    depth += 1;
                }
                ('*', Some('/')) => {
                    self.bump();
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    /// A `"…"` literal from its opening quote; returns its contents.
    fn quoted(&mut self) -> String {
        self.bump();
        let mut text = String::new();
        while let Some(c) = self.bump() {
            match c {
                '\\' => {
                    text.push(c);
                    if let Some(next) = self.bump() {
                        text.push(next);
                    }
                }
                '"' => break,
                c => text.push(c),
            }
        }
        text
    }

    /// A raw string from after its `r`: `#…#"…"#…#`.
    fn raw_string(&mut self, line: u32) {
        let mut hashes = 0;
        while self.peek(0) == Some('#') {
            self.bump();
            hashes += 1;
        }
        self.bump();
        let mut text = String::new();
        while let Some(c) = self.bump() {
            if c == '"' && (0..hashes).all(|i| self.peek(i) == Some('#')) {
                self.at += hashes;
                break;
            }
            text.push(c);
        }
        self.push(Tok::Str(text), line);
    }

    fn char_or_lifetime(&mut self) {
        self.bump();
        match (self.peek(0), self.peek(1)) {
            (Some('\\'), _) => {
                while let Some(c) = self.bump() {
                    if c == '\\' {
                        self.bump();
                    } else if c == '\'' {
                        break;
                    }
                }
            }
            (Some(_), Some('\'')) => {
                self.at += 2;
            }
            _ => self.skip_while(|c| c.is_alphanumeric() || c == '_'),
        }
    }

    /// An identifier, or the prefix of a raw identifier, raw string, byte or C string.
    fn word(&mut self) {
        let line = self.line;
        let start = self.at;
        self.skip_while(|c| c.is_alphanumeric() || c == '_');
        let word: String = self.chars[start..self.at].iter().collect();
        match (word.as_str(), self.peek(0), self.peek(1)) {
            ("r", Some('#'), Some(c)) if c.is_alphabetic() || c == '_' => {
                self.bump();
                let start = self.at;
                self.skip_while(|c| c.is_alphanumeric() || c == '_');
                let word = self.chars[start..self.at].iter().collect();
                self.push(Tok::Ident(word), line);
            }
            ("r" | "br" | "cr", Some('#' | '"'), _) => self.raw_string(line),
            ("b" | "c", Some('"'), _) => {
                let text = self.quoted();
                self.push(Tok::Str(text), line);
            }
            ("b", Some('\''), _) => self.char_or_lifetime(),
            _ => self.push(Tok::Ident(word), line),
        }
    }
}
