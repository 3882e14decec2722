//! [`Token`]: a credential the emulators hold (API tokens, OAuth secrets, auth keys, signing
//! secrets, `user_data` that embeds an auth key). `Debug` and `Display` print `[redacted]`; the
//! only way to the value is the deliberately named [`Token::expose`].

use std::fmt;

/// A credential that is never printed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Token(String);

impl Token {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Token(value.into())
    }

    /// The value itself: call only where it is compared with a request or handed to a client.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token([redacted])")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for Token {
    fn from(value: String) -> Self {
        Token(value)
    }
}

impl From<&str> for Token {
    fn from(value: &str) -> Self {
        Token(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_prints_redacted_and_exposes_its_value_on_request() {
        let token = Token::from("hcloud-s3cret");
        assert_eq!(format!("{token} {token:?}"), "[redacted] Token([redacted])");
        assert_eq!(token.expose(), "hcloud-s3cret");
    }
}
