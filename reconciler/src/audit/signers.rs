//! The allowed-signers file `git verify-commit` reads (`gpg.ssh.allowedSignersFile`, the
//! format of ssh-keygen's ALLOWED SIGNERS), parsed and checked in Rust: [`AllowedSigners::check`]
//! accepts a commit signature when an entry's key made it in the `git` namespace, the entry's
//! principals match the committer's email, and the commit time lies in its
//! `valid-after`/`valid-before` window (how keys are rotated).

use super::signing::NAMESPACE;
use ssh_key::{HashAlg, PublicKey, SshSig};
use std::path::Path;

/// The allowed-signers file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SignersError {
    /// The file could not be read.
    #[error("cannot read the allowed signers `{path}`: {message}")]
    Read {
        /// The file.
        path: String,
        /// The operating system's message.
        message: String,
    },
    /// A line is not `principals [options] keytype key [comment]`.
    #[error("{path}:{line}: {message}")]
    Line {
        /// The file.
        path: String,
        /// The 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Why a signature is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The `gpgsig` header does not hold an SSH signature.
    #[error("the signature is not an SSH signature ({0})")]
    NotSsh(String),
    /// The signature was made for another namespace than `git`.
    #[error("the signature is for namespace `{0}`, not `git`")]
    Namespace(String),
    /// No entry holds the key.
    #[error("key {0} is not in the allowed signers")]
    UnknownKey(String),
    /// Entries hold the key, none for this committer.
    #[error("key {key} is not allowed to sign as {email}")]
    Principal {
        /// The key's fingerprint.
        key: String,
        /// The committer's email.
        email: String,
    },
    /// The key was not valid when the commit was made.
    #[error("key {0} was not valid at the commit's time (valid-after/valid-before)")]
    Expired(String),
    /// The signature does not match the commit.
    #[error("the signature by key {0} does not match the commit's content")]
    Mismatch(String),
}

#[derive(Debug, Clone)]
struct Entry {
    principals: Vec<String>,
    namespaces: Option<Vec<String>>,
    valid_after: Option<i64>,
    valid_before: Option<i64>,
    key: PublicKey,
}

/// The parsed allowed-signers file. `cert-authority` entries are skipped: tether signs with
/// plain keys.
#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    entries: Vec<Entry>,
}

impl AllowedSigners {
    /// Reads and parses `path`.
    ///
    /// # Errors
    /// The file cannot be read, or a line cannot be parsed (named by file and line).
    pub fn read(path: &Path) -> Result<Self, SignersError> {
        let text = std::fs::read_to_string(path).map_err(|e| SignersError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        AllowedSigners::parse(&text, &path.display().to_string())
    }

    /// Parses the text of an allowed-signers file; `path` names it in errors.
    ///
    /// # Errors
    /// A line that cannot be parsed, by line number.
    pub fn parse(text: &str, path: &str) -> Result<Self, SignersError> {
        let mut entries = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |message: String| SignersError::Line {
                path: path.to_owned(),
                line: index + 1,
                message,
            };
            if let Some(entry) = parse_line(line).map_err(bad)? {
                entries.push(entry);
            }
        }
        Ok(AllowedSigners { entries })
    }

    /// Accepts `armored` (a commit's `gpgsig` header) over `data` (the commit without it) when
    /// an entry allows its key for `email` at `time` (Unix seconds, the committer's time, as
    /// git passes it to ssh-keygen). Returns the key's fingerprint.
    ///
    /// # Errors
    /// The [`Rejection`].
    pub fn check(
        &self,
        email: &str,
        time: i64,
        armored: &str,
        data: &[u8],
    ) -> Result<String, Rejection> {
        let sig = SshSig::from_pem(armored.trim()).map_err(|e| Rejection::NotSsh(e.to_string()))?;
        if sig.namespace() != NAMESPACE {
            return Err(Rejection::Namespace(sig.namespace().to_owned()));
        }
        let fingerprint = sig.public_key().fingerprint(HashAlg::Sha256).to_string();
        let holding: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.key.key_data() == sig.public_key())
            .collect();
        if holding.is_empty() {
            return Err(Rejection::UnknownKey(fingerprint));
        }
        let for_email: Vec<&&Entry> = holding
            .iter()
            .filter(|e| principal_matches(&e.principals, email))
            .filter(|e| {
                e.namespaces
                    .as_ref()
                    .is_none_or(|n| n.iter().any(|n| n == NAMESPACE))
            })
            .collect();
        if for_email.is_empty() {
            return Err(Rejection::Principal {
                key: fingerprint,
                email: email.to_owned(),
            });
        }
        let valid = for_email.iter().any(|e| {
            e.valid_after.is_none_or(|t| time >= t) && e.valid_before.is_none_or(|t| time < t)
        });
        if !valid {
            return Err(Rejection::Expired(fingerprint));
        }
        for_email[0]
            .key
            .verify(NAMESPACE, data, &sig)
            .map_err(|_| Rejection::Mismatch(fingerprint.clone()))?;
        Ok(fingerprint)
    }
}

/// One line: principals, then options unless the next word is a key type, then the key.
fn parse_line(line: &str) -> Result<Option<Entry>, String> {
    let words = split_words(line)?;
    let mut words = words.iter().map(String::as_str);
    let principals = words.next().ok_or("no principals")?;
    let mut next = words.next().ok_or("no key")?;
    let mut options = "";
    if !is_key_type(next) {
        options = next;
        next = words.next().ok_or("no key after the options")?;
    }
    let key_text = format!(
        "{next} {}",
        words.next().ok_or("no key after the key type")?
    );
    let key = PublicKey::from_openssh(&key_text).map_err(|e| format!("bad key: {e}"))?;
    let mut entry = Entry {
        principals: principals.split(',').map(str::to_owned).collect(),
        namespaces: None,
        valid_after: None,
        valid_before: None,
        key,
    };
    for option in split_options(options) {
        let (name, value) = option.split_once('=').unwrap_or((option.as_str(), ""));
        let value = value.trim_matches('"');
        match name.to_ascii_lowercase().as_str() {
            "cert-authority" => return Ok(None),
            "namespaces" => {
                entry.namespaces = Some(value.split(',').map(str::to_owned).collect());
            }
            "valid-after" => entry.valid_after = Some(parse_time(value)?),
            "valid-before" => entry.valid_before = Some(parse_time(value)?),
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    Ok(Some(entry))
}

fn is_key_type(word: &str) -> bool {
    ["ssh-", "ecdsa-", "sk-"]
        .iter()
        .any(|p| word.starts_with(p))
}

/// Splits on blanks outside double quotes.
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let (mut words, mut word, mut quoted) = (Vec::new(), String::new(), false);
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                word.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote".to_owned());
    }
    if !word.is_empty() {
        words.push(word);
    }
    Ok(words)
}

/// Splits options on commas outside double quotes.
fn split_options(options: &str) -> Vec<String> {
    let (mut out, mut option, mut quoted) = (Vec::new(), String::new(), false);
    for c in options.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                option.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut option)),
            c => option.push(c),
        }
    }
    if !option.is_empty() {
        out.push(option);
    }
    out
}

/// `YYYYMMDD[HHMM[SS]][Z]` as Unix seconds. ssh-keygen reads a time without `Z` in local time;
/// tether reads every time as UTC, so write the `Z`.
fn parse_time(text: &str) -> Result<i64, String> {
    let digits = text.strip_suffix(['Z', 'z']).unwrap_or(text);
    let bad = || format!("`{text}` is not a time (YYYYMMDD[HHMM[SS]][Z])");
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| digits.get(r).map_or(Ok(0), str::parse::<u32>);
    let field = |r| num(r).map_err(|_| bad());
    let month =
        time::Month::try_from(u8::try_from(field(4..6)?).map_err(|_| bad())?).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(
        i32::try_from(field(0..4)?).map_err(|_| bad())?,
        month,
        u8::try_from(field(6..8)?).map_err(|_| bad())?,
    )
    .map_err(|_| bad())?;
    let hms = |r| u8::try_from(field(r)?).map_err(|_| bad());
    let clock = time::Time::from_hms(hms(8..10)?, hms(10..12)?, hms(12..14)?).map_err(|_| bad())?;
    Ok(date.with_time(clock).assume_utc().unix_timestamp())
}

/// Whether `email` matches one of the patterns (`*` and `?` wildcards; a `!` pattern that
/// matches excludes it).
fn principal_matches(patterns: &[String], email: &str) -> bool {
    let mut matched = false;
    for pattern in patterns {
        match pattern.strip_prefix('!') {
            Some(negated) if glob(negated.as_bytes(), email.as_bytes()) => return false,
            Some(_) => {}
            None => matched |= glob(pattern.as_bytes(), email.as_bytes()),
        }
    }
    matched
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.split_first(), text.split_first()) {
        (None, None) => true,
        (Some((b'*', rest)), _) => {
            glob(rest, text) || text.split_first().is_some_and(|(_, t)| glob(pattern, t))
        }
        (Some((b'?', rest)), Some((_, t))) => glob(rest, t),
        (Some((p, rest)), Some((c, t))) if p.eq_ignore_ascii_case(c) => glob(rest, t),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::signing::tests::signer;

    fn signed(seed: u8, data: &[u8]) -> String {
        signer(seed).sign(data).expect("sign")
    }

    fn signers(text: &str) -> AllowedSigners {
        AllowedSigners::parse(text, "allowed_signers").expect("parses")
    }

    #[test]
    fn a_signature_by_an_allowed_key_for_the_committer_is_accepted() {
        let line = format!("tether@* {}\n", signer(1).public_key());
        let fingerprint = signers(&line)
            .check("tether@fleet", 0, &signed(1, b"commit"), b"commit")
            .expect("accepted");
        assert_eq!(fingerprint, signer(1).fingerprint());
    }

    #[test]
    fn another_key_another_principal_or_other_content_are_each_rejected() {
        let line = format!("tether@fleet {}\n", signer(1).public_key());
        let allowed = signers(&line);
        assert!(matches!(
            allowed.check("tether@fleet", 0, &signed(2, b"commit"), b"commit"),
            Err(Rejection::UnknownKey(_))
        ));
        assert!(matches!(
            allowed.check("billing@fleet", 0, &signed(1, b"commit"), b"commit"),
            Err(Rejection::Principal { .. })
        ));
        assert!(matches!(
            allowed.check("tether@fleet", 0, &signed(1, b"commit"), b"forged"),
            Err(Rejection::Mismatch(_))
        ));
    }

    #[test]
    fn a_rotated_key_is_valid_only_inside_its_window() {
        let text = format!(
            "tether@fleet valid-before=\"20261201Z\" {}\ntether@fleet valid-after=\"20261201Z\",namespaces=\"git\" {}\n",
            signer(1).public_key(),
            signer(2).public_key()
        );
        let allowed = signers(&text);
        let before = 1_764_000_000; // 2025-11-24
        let after = 1_798_000_000; // 2026-12-23
        assert!(
            allowed
                .check("tether@fleet", before, &signed(1, b"c"), b"c")
                .is_ok()
        );
        assert!(matches!(
            allowed.check("tether@fleet", after, &signed(1, b"c"), b"c"),
            Err(Rejection::Expired(_))
        ));
        assert!(
            allowed
                .check("tether@fleet", after, &signed(2, b"c"), b"c")
                .is_ok()
        );
    }

    #[test]
    fn a_bad_line_is_named_by_file_and_line() {
        let err = AllowedSigners::parse("# keys\n\ntether@fleet ssh-ed25519 !!!\n", "signers")
            .expect_err("bad key");
        assert!(err.to_string().starts_with("signers:3: bad key"), "{err}");
    }

    #[test]
    fn negated_and_wildcard_principals_follow_ssh_keygen() {
        let patterns = ["*@fleet".to_owned(), "!billing@fleet".to_owned()];
        assert!(principal_matches(&patterns, "tether@fleet"));
        assert!(!principal_matches(&patterns, "billing@fleet"));
        assert!(!principal_matches(&patterns, "tether@other"));
    }
}
