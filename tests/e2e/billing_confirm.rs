//! `spec.policy.confirmDeletes: stripe` end to end: the real `tether apply` against the
//! Hetzner, Tailscale and Stripe emulators. A removed spec whose subscription Stripe still
//! bills keeps its server, with the reason in the plan; once Stripe says it ended, it goes.

use crate::common::{apply_command, commit_all, example_fleet};
use tether::sandbox::stack::{Stack, StackOptions};
use tether_emulators::stripe::StripeEmulator;

const KEY: &str = "sk_test_e2e_confirm";
const SUBSCRIPTION: &str = "sub_1OaBcAcmeStage";

async fn apply(stack: &Stack, repo: &std::path::Path, stripe: &StripeEmulator) -> (i32, String) {
    let out = apply_command(stack, repo, &[])
        .env("STRIPE_API_URL", stripe.url())
        .env("STRIPE_API_KEY", KEY)
        .output()
        .await
        .expect("run tether apply");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains(KEY), "the Stripe key leaked into the output");
    (out.status.code().unwrap_or(-1), text)
}

fn has_server(stack: &Stack, name: &str) -> bool {
    stack.hetzner.servers().iter().any(|s| s.name == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_spec_is_deleted_only_once_stripe_says_its_subscription_ended() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("emulators");
    let stripe = StripeEmulator::start(tether_emulators::Token::from(KEY))
        .await
        .expect("stripe");
    stripe.seed(SUBSCRIPTION, "cus_acme", "pro_monthly");
    let repo = example_fleet();
    let fleet_file = repo.path().join("fleet.yaml");
    let fleet = std::fs::read_to_string(&fleet_file).expect("fleet.yaml");
    let fleet = fleet.replace(
        "    maxDeletionPercent: 50\n",
        "    maxDeletionPercent: 50\n    confirmDeletes: stripe\n",
    );
    std::fs::write(&fleet_file, fleet).expect("write fleet.yaml");
    commit_all(
        repo.path(),
        "main",
        "seed the example fleet, deletes confirmed by Stripe",
    );
    let (code, out) = apply(&stack, repo.path(), &stripe).await;
    assert_eq!(code, 0, "{out}");
    assert!(has_server(&stack, "acme-staging"));

    std::fs::remove_file(repo.path().join("agents/acme/acme-staging.yaml")).expect("remove");
    commit_all(repo.path(), "main", "billing removed acme-staging");
    let (code, out) = apply(&stack, repo.path(), &stripe).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("subscription sub_1OaBcAcmeStage has not ended (Stripe says it is `active`)"),
        "the plan says why the server stays:\n{out}"
    );
    assert!(has_server(&stack, "acme-staging"), "refused: still billed");

    stripe.cancel(SUBSCRIPTION).expect("known subscription");
    let (code, out) = apply(&stack, repo.path(), &stripe).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        !has_server(&stack, "acme-staging"),
        "deleted once cancelled:\n{out}"
    );
    assert!(
        has_server(&stack, "acme-prod"),
        "the rest of the fleet is untouched"
    );
}
