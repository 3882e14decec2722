//! Safety rules a plan must pass to be applied, enforced here and re-checked by the executor:
//! the deletion budget and the shrink circuit breaker.

use super::{Action, Context, Refusal};
use tether_schema::Fleet;

/// How many servers one run may delete out of `managed`: `maxDeletionsPerRun`, and
/// `maxDeletionPercent` of `managed` (rounded down, but at least one).
pub fn deletion_budget(fleet: &Fleet, managed: usize) -> usize {
    let policy = fleet.settings.policy;
    let by_percent = (managed * policy.max_deletion_percent as usize / 100).max(1);
    by_percent.min(policy.max_deletions_per_run as usize)
}

/// Every safety rule `actions` break, or `None`.
pub fn check(actions: &[Action], fleet: &Fleet, managed: usize, ctx: &Context) -> Option<Refusal> {
    let policy = fleet.settings.policy;
    let mut reasons = Vec::new();
    let deletions = actions.iter().filter(|a| a.deletes_server()).count();
    let budget = deletion_budget(fleet, managed);
    if deletions > budget {
        reasons.push(format!(
            "the plan deletes {deletions} servers; the policy allows {budget} per run (maxDeletionsPerRun {}, maxDeletionPercent {}% of {managed} managed servers)",
            policy.max_deletions_per_run, policy.max_deletion_percent
        ));
    }
    let desired = fleet.agents.len();
    if let Some(previous) = ctx.previous_agents.filter(|_| !ctx.allow_shrink) {
        let removed = previous.saturating_sub(desired);
        if desired == 0 && previous > 0 {
            reasons.push(format!("the fleet shrank from {previous} agents to none; a fleet that loads empty is almost always a mistake"));
        } else if removed > deletion_budget(fleet, previous) {
            reasons.push(format!(
                "the fleet shrank from {previous} to {desired} agents since the last applied revision, more than the policy allows in one step ({})",
                deletion_budget(fleet, previous)
            ));
        }
    }
    if reasons.is_empty() {
        return None;
    }
    Some(Refusal {
        reasons,
        how_to_proceed: "check that the removed specs were meant to go, then remove them in smaller commits, raise `spec.policy` in fleet.yaml, or re-run with `--allow-shrink` if the shrink is intended".to_owned(),
    })
}
