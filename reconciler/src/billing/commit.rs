//! The git half of billing: one spec change as one commit on a branch tip, validated (through
//! billing's index, [`super::view`]), with trailers, landed by compare-and-swap or a push that never forces, retried on a lost race; a
//! checked-out branch's work tree and index follow it ([`super::worktree`]).

use super::index::Index;
use super::view::View;
use super::{
    BillingError, Change, MAX_ATTEMPTS, TRAILER_IDEMPOTENCY, TRAILER_SUBSCRIPTION, Target, worktree,
};
use crate::source::{publish, reflock};
use git2::{Oid, Repository, Signature};

/// The shared loop: `edit` gets the current spec (path and text) of the subscription and
/// returns the path to write and its new content (empty = delete), or `None` for nothing to do.
/// The repository's [`Index`] spares reading and checking what was checked before; it is
/// saved whatever the outcome.
pub(super) fn change(
    target: &Target<'_>,
    subscription: &str,
    key: Option<&str>,
    summary: &str,
    edit: impl Fn(Option<(String, String)>) -> Result<Option<(String, String)>, BillingError>,
) -> Result<Change, BillingError> {
    let repo = Repository::open(target.repo)?;
    let mut index = Index::load(&repo);
    let result = attempts(&repo, &mut index, target, subscription, key, summary, edit);
    index.save(&repo);
    result
}

fn attempts(
    repo: &Repository,
    index: &mut Index,
    target: &Target<'_>,
    subscription: &str,
    key: Option<&str>,
    summary: &str,
    edit: impl Fn(Option<(String, String)>) -> Result<Option<(String, String)>, BillingError>,
) -> Result<Change, BillingError> {
    let checkout = worktree::of(repo, target.branch)?;
    // Nothing to commit; a fetch may still have moved a checked-out branch, which its work
    // tree then follows.
    let unchanged = |reason: String, tip: Oid| {
        if let Some(c) = &checkout {
            c.sync(repo, tip)?;
        }
        Ok(Change::Unchanged { reason })
    };
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            back_off(attempt);
        }
        let (tip, existed) = branch_tip(repo, target)?;
        if let Some(key) = key
            && let Some(done) = index.find_key(repo, tip.id(), TRAILER_IDEMPOTENCY, key)?
        {
            return unchanged(
                format!("idempotency key {key} was already applied in commit {done}"),
                tip.id(),
            );
        }
        let tree = tip.tree()?;
        let view = View::of(repo, &tree, index)?;
        let Some((path, content)) = edit(view.existing(repo, index, subscription)?)? else {
            return unchanged(
                format!("no agent spec has subscription {subscription}"),
                tip.id(),
            );
        };
        let current = view.current(repo, index, &path)?;
        if current.as_deref() == Some(content.as_bytes())
            || (content.is_empty() && current.is_none())
        {
            return unchanged(format!("{path} already says this"), tip.id());
        }
        let new_tree = with_file(repo, &tree, &path, &content)?;
        view.validate(repo, new_tree, &path, &content, index)?;
        let mut message = format!("{summary}\n\n{TRAILER_SUBSCRIPTION}: {subscription}\n");
        if let Some(key) = key {
            message.push_str(&format!("{TRAILER_IDEMPOTENCY}: {key}\n"));
        }
        let oid = commit_on(repo, target, &tip, new_tree, &message)?;
        if let Some(c) = &checkout {
            c.check(repo, tip.id(), oid)?;
        }
        if land(repo, target, &tip, existed, oid, summary)? {
            if let Some(c) = &checkout {
                c.follow(repo, oid)?;
            }
            if let Some(key) = key {
                index.add_key(key, oid, tip.id());
            }
            return Ok(Change::Committed { commit: oid, path });
        }
    }
    Err(gave_up(repo, target))
}

/// Why [`MAX_ATTEMPTS`] attempts to move the branch failed: its ref lock file, when one is
/// there (a git process killed mid-update leaves it, and it blocks every writer until it is
/// old enough to clear), else other writers that kept landing first.
pub(super) fn gave_up(repo: &Repository, target: &Target<'_>) -> BillingError {
    let lock_file = repo
        .path()
        .join(format!("refs/heads/{}.lock", target.branch));
    if target.push.is_none() && lock_file.exists() {
        return BillingError::Locked {
            branch: target.branch.to_owned(),
            lock_file,
        };
    }
    BillingError::Contended(target.branch.to_owned())
}

/// Commits `tree` on `tip` with `message` as `target.identity` (signed with its key, when it
/// has one), moving no ref.
pub(super) fn commit_on(
    repo: &Repository,
    target: &Target<'_>,
    tip: &git2::Commit<'_>,
    tree: Oid,
    message: &str,
) -> Result<Oid, git2::Error> {
    let who = Signature::now(&target.identity.name, &target.identity.email)?;
    let signer = target.identity.signer.as_deref();
    let tree = repo.find_tree(tree)?;
    crate::audit::signing::commit(repo, &who, signer, message, &tree, &[tip])
}

/// After a lost race: a jittered pause growing with `attempt`, so racers spread out.
pub(super) fn back_off(attempt: usize) {
    let ms = rand::random_range(1..=20u64) * attempt as u64;
    std::thread::sleep(std::time::Duration::from_millis(ms));
}

/// Moves `target.branch` from `tip` to `oid`: a compare-and-swap on the local ref, or a push
/// that never forces (then the local ref follows). False when the branch moved meanwhile.
///
/// # Errors
/// libgit2 or the push failed for another reason than a lost race.
pub(super) fn land(
    repo: &Repository,
    target: &Target<'_>,
    tip: &git2::Commit<'_>,
    existed: bool,
    oid: Oid,
    summary: &str,
) -> Result<bool, BillingError> {
    let refname = format!("refs/heads/{}", target.branch);
    reflock::clear_stale(repo, &refname, std::time::SystemTime::now());
    let landed = match target.push {
        None if existed => repo
            .reference_matching(&refname, oid, true, tip.id(), summary)
            .is_ok(),
        None => repo.reference(&refname, oid, false, summary).is_ok(),
        Some(remote) => publish::fast_forward(repo, remote, oid, target.branch)?,
    };
    if landed && target.push.is_some() {
        repo.reference(&refname, oid, true, summary)?;
    }
    Ok(landed)
}

/// The commit to build on: the tip of `target.branch` (fetched first when pushing), or of
/// `target.base` when the branch does not exist yet; and whether the branch existed.
pub(super) fn branch_tip<'r>(
    repo: &'r Repository,
    target: &Target<'_>,
) -> Result<(git2::Commit<'r>, bool), BillingError> {
    let local = |branch: &str| {
        repo.find_reference(&format!("refs/heads/{branch}"))
            .and_then(|r| r.peel_to_commit())
            .ok()
    };
    let mut exists = local(target.branch).is_some();
    if let Some(remote) = target.push {
        exists = publish::fetch_branch(repo, remote, target.branch)?;
        if !exists && target.base.is_some() {
            // A stale local copy of a branch the remote no longer has (a merged pull request
            // whose branch was deleted) must not be built on.
            if let Ok(mut stale) = repo.find_reference(&format!("refs/heads/{}", target.branch)) {
                stale.delete()?;
            }
        }
    }
    if exists && let Some(tip) = local(target.branch) {
        return Ok((tip, true));
    }
    let Some(base) = target.base else {
        return Err(BillingError::NoBranch(target.branch.to_owned()));
    };
    if let Some(remote) = target.push
        && !publish::fetch_branch(repo, remote, base)?
    {
        return Err(BillingError::NoBranch(base.to_owned()));
    }
    local(base)
        .map(|tip| (tip, false))
        .ok_or_else(|| BillingError::NoBranch(base.to_owned()))
}

/// `tree` with the file at `path` set to `content` (removed when empty).
pub(super) fn with_file(
    repo: &Repository,
    tree: &git2::Tree<'_>,
    path: &str,
    content: &str,
) -> Result<Oid, git2::Error> {
    match path.split_once('/') {
        None => {
            let mut b = repo.treebuilder(Some(tree))?;
            if content.is_empty() {
                if b.get(path)?.is_some() {
                    b.remove(path)?;
                }
            } else {
                b.insert(path, repo.blob(content.as_bytes())?, 0o100_644)?;
            }
            b.write()
        }
        Some((dir, rest)) => {
            let sub = match tree.get_name(dir) {
                Some(entry) => repo.find_tree(entry.id())?,
                None => repo.find_tree(repo.treebuilder(None)?.write()?)?,
            };
            let new_sub = with_file(repo, &sub, rest, content)?;
            let mut b = repo.treebuilder(Some(tree))?;
            if repo.find_tree(new_sub)?.is_empty() {
                if b.get(dir)?.is_some() {
                    b.remove(dir)?;
                }
            } else {
                b.insert(dir, new_sub, 0o040_000)?;
            }
            b.write()
        }
    }
}
