//! Signing commits the way git does with `gpg.format=ssh`: an SSHSIG signature (namespace
//! `git`, SHA-512) over the commit buffer, armored into the commit's `gpgsig` header, so
//! `git verify-commit` and `git log --show-signature` check it against
//! `gpg.ssh.allowedSignersFile`. [`Signer`] holds the key; [`commit`] writes a commit object,
//! signed when given a key. The key never reaches a log line, an error or a commit.

use git2::{Oid, Repository, Signature};
use ssh_key::{HashAlg, LineEnding, PrivateKey};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// The SSHSIG namespace git signs and verifies commits in.
pub const NAMESPACE: &str = "git";
/// The environment variable that may hold the signing key itself (OpenSSH private key text).
pub const KEY_ENV: &str = "TETHER_SIGNING_KEY";
/// The environment variable that may name the signing key's file.
pub const KEY_FILE_ENV: &str = "TETHER_SIGNING_KEY_FILE";

/// A signing key could not be loaded or used. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The key file could not be read.
    #[error("cannot read the signing key `{path}`: {message}")]
    Read {
        /// The file.
        path: String,
        /// The operating system's message.
        message: String,
    },
    /// The text is not an unencrypted OpenSSH private key.
    #[error(
        "the signing key from {origin} is not an OpenSSH private key ({message}); write one with `ssh-keygen -t ed25519 -N '' -f FILE`"
    )]
    Parse {
        /// Where the key came from (a file or an environment variable).
        origin: String,
        /// What was wrong, without the key.
        message: String,
    },
    /// The key is protected by a passphrase, which tether cannot ask for.
    #[error(
        "the signing key from {origin} is encrypted; tether cannot ask for a passphrase: use a key without one, kept readable only by tether"
    )]
    Encrypted {
        /// Where the key came from.
        origin: String,
    },
    /// Signing failed (an algorithm this build cannot sign with).
    #[error("signing with key {fingerprint} failed: {message}")]
    Sign {
        /// The key's SHA-256 fingerprint.
        fingerprint: String,
        /// The library's message.
        message: String,
    },
}

/// An SSH private key that signs commits. Its `Debug` shows only the public fingerprint.
pub struct Signer {
    key: PrivateKey,
    fingerprint: String,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Signer {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint
    }
}

impl Eq for Signer {}

impl Signer {
    /// Parses an unencrypted OpenSSH private key; `origin` names where it came from in errors.
    ///
    /// # Errors
    /// [`SigningError::Parse`] or [`SigningError::Encrypted`].
    pub fn from_openssh(text: &str, origin: &str) -> Result<Self, SigningError> {
        let key = PrivateKey::from_openssh(text.trim()).map_err(|e| SigningError::Parse {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        if key.is_encrypted() {
            return Err(SigningError::Encrypted {
                origin: origin.to_owned(),
            });
        }
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        Ok(Signer { key, fingerprint })
    }

    /// Reads the key from `path`.
    ///
    /// # Errors
    /// The file cannot be read, or [`Signer::from_openssh`]'s.
    pub fn read(path: &Path) -> Result<Self, SigningError> {
        let text = std::fs::read_to_string(path).map_err(|e| SigningError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Signer::from_openssh(&text, &format!("`{}`", path.display()))
    }

    /// The key configured: `path` (a command-line flag or a configuration key) first, else
    /// [`KEY_ENV`] holding the key, else [`KEY_FILE_ENV`] naming its file, as `env` reads them.
    /// `None` when none is given: commits are then unsigned.
    ///
    /// # Errors
    /// The key given cannot be read or parsed.
    pub fn configured(
        path: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Arc<Self>>, SigningError> {
        let signer = if let Some(path) = path {
            Signer::read(path)?
        } else if let Some(text) = env(KEY_ENV).filter(|t| !t.trim().is_empty()) {
            Signer::from_openssh(&text, KEY_ENV)?
        } else if let Some(path) = env(KEY_FILE_ENV).filter(|p| !p.trim().is_empty()) {
            Signer::read(Path::new(&path))?
        } else {
            return Ok(None);
        };
        tracing::info!(key = signer.fingerprint(), "signing commits");
        Ok(Some(Arc::new(signer)))
    }

    /// The public key's SHA-256 fingerprint, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The public key in OpenSSH form (`ssh-ed25519 AAAA…`), for an allowed-signers line.
    pub fn public_key(&self) -> String {
        self.key.public_key().to_openssh().unwrap_or_default()
    }

    /// The armored SSHSIG signature of `data` in git's namespace.
    ///
    /// # Errors
    /// [`SigningError::Sign`].
    pub fn sign(&self, data: &[u8]) -> Result<String, SigningError> {
        let failed = |e: ssh_key::Error| SigningError::Sign {
            fingerprint: self.fingerprint.clone(),
            message: e.to_string(),
        };
        self.key
            .sign(NAMESPACE, HashAlg::Sha512, data)
            .map_err(failed)?
            .to_pem(LineEnding::LF)
            .map_err(failed)
    }
}

/// Writes a commit object of `tree` on `parents` with `message`, authored and committed by
/// `who`, signed with `signer` when given. Moves no ref.
///
/// # Errors
/// libgit2's, or signing's (as a libgit2 error naming the key's fingerprint).
pub fn commit(
    repo: &Repository,
    who: &Signature<'_>,
    signer: Option<&Signer>,
    message: &str,
    tree: &git2::Tree<'_>,
    parents: &[&git2::Commit<'_>],
) -> Result<Oid, git2::Error> {
    let Some(signer) = signer else {
        return repo.commit(None, who, who, message, tree, parents);
    };
    let buffer = repo.commit_create_buffer(who, who, message, tree, parents)?;
    let content = buffer
        .as_str()
        .ok_or_else(|| git2::Error::from_str("the commit buffer is not UTF-8"))?;
    let armored = signer
        .sign(content.as_bytes())
        .map_err(|e| git2::Error::from_str(&e.to_string()))?;
    repo.commit_signed(content, &armored, None)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An ed25519 signer from a fixed seed, for tests only.
    pub(crate) fn signer(seed: u8) -> Signer {
        let key = PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[seed; 32]));
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        Signer { key, fingerprint }
    }

    impl Signer {
        /// The private key in OpenSSH form, for writing test key files.
        pub(crate) fn private_openssh(&self) -> String {
            self.key
                .to_openssh(LineEnding::LF)
                .expect("encode")
                .to_string()
        }
    }

    #[test]
    fn an_openssh_key_parses_into_the_same_signer() {
        let text = signer(1).private_openssh();
        assert_eq!(Signer::from_openssh(&text, "test").expect("key"), signer(1));
    }

    #[test]
    fn a_signers_debug_output_shows_its_fingerprint_and_no_key() {
        let signer = signer(1);
        assert_eq!(
            format!("{signer:?}"),
            format!("Signer {{ fingerprint: {:?}, .. }}", signer.fingerprint())
        );
        assert!(signer.fingerprint().starts_with("SHA256:"));
    }

    #[test]
    fn garbage_is_refused_without_echoing_it() {
        let err =
            Signer::from_openssh("hunter2-not-a-key", "TETHER_SIGNING_KEY").expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("TETHER_SIGNING_KEY"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn a_signed_commit_carries_an_ssh_signature_over_its_buffer() {
        let dir = tempfile::tempdir().expect("tmp");
        let repo = Repository::init_bare(dir.path()).expect("init");
        let who = Signature::now("tether", "tether@localhost").expect("signature");
        let tree = repo
            .find_tree(repo.treebuilder(None).expect("tb").write().expect("tree"))
            .expect("tree");
        let oid = commit(&repo, &who, Some(&signer(1)), "signed\n", &tree, &[]).expect("commit");
        let (armored, data) = repo.extract_signature(&oid, None).expect("signed");
        let sig = ssh_key::SshSig::from_pem(armored.as_ref()).expect("sshsig");
        let public = signer(1).key.public_key().clone();
        public.verify(NAMESPACE, &data, &sig).expect("verifies");
        assert_eq!(
            repo.find_commit(oid).expect("commit").message(),
            Some("signed\n")
        );
    }
}
