//! `tether sandbox`: run a local emulator of an outside API on 127.0.0.1 until Ctrl-C, for
//! trying tether and for driving third-party clients in tests.

use super::{CliError, Outcome};
use crate::sandbox::stack::{LatencyProfile, StackOptions};
use std::net::SocketAddr;
use std::time::Duration;
use tether_emulators::Token;
use tether_emulators::hetzner::{Config, HetznerEmulator, Latencies, RateLimit, random_token};
use tether_emulators::stripe::StripeEmulator;

/// Try tether locally with no credentials: emulated Hetzner and Tailscale on 127.0.0.1 and a
/// temporary fleet repository. `--demo` runs a narrated scenario to completion.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SandboxArgs {
    #[command(subcommand)]
    command: Option<SandboxCommand>,
    /// Run the scripted scenario (billing adds agents, plan, apply, a cancellation, drift
    /// repair, a refused mass deletion), print a summary, and exit.
    #[arg(long)]
    demo: bool,
    /// The example fleet whose fleet.yaml seeds the sandbox repository.
    #[arg(long, value_name = "PATH")]
    fleet: Option<std::path::PathBuf>,
    /// How fast the emulated cloud moves: `fast` (milliseconds) or `realistic` (Hetzner's real
    /// timings: create ~25 s, start 10 s, boot and Tailscale enrolment 30 s, delete 5 s).
    #[arg(long, value_enum)]
    latency: Option<LatencyProfile>,
    /// Multiply every emulated duration by this factor: `0.1` runs the same shape ten times
    /// faster.
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0, value_parser = time_scale)]
    time_scale: f64,
}

fn time_scale(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(f) if f > 0.0 && f <= 100.0 => Ok(f),
        _ => Err(format!(
            "`{text}` is not a factor between 0 and 100, e.g. 0.1"
        )),
    }
}

/// Which emulator to run.
#[derive(Debug, clap::Subcommand)]
pub enum SandboxCommand {
    /// Run the Hetzner Cloud API emulator. Prints `listening on <url>` first, then the
    /// HCLOUD_ENDPOINT and HCLOUD_TOKEN to use.
    Hetzner(HetznerArgs),
    /// Run the Stripe API emulator (subscriptions: retrieve and list). Prints `listening on
    /// <url>` first, then the STRIPE_API_URL and STRIPE_API_KEY to use.
    Stripe(StripeArgs),
}

/// Options of `tether sandbox stripe`.
#[derive(Debug, clap::Args)]
pub struct StripeArgs {
    /// The secret key the emulator accepts (default: a random `sk_test_…`, printed).
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// A subscription that exists from the start, `<sub_id>:<cus_id>:<lookup key>[:<status>]`
    /// (status default `active`; repeatable).
    #[arg(long = "subscription", value_name = "SPEC", value_parser = subscription_spec)]
    subscriptions: Vec<(String, String, String, String)>,
    /// Most reads a second before the API answers 429 (default: no limit).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    read_limit: Option<u32>,
}

fn subscription_spec(text: &str) -> Result<(String, String, String, String), String> {
    let parts: Vec<&str> = text.split(':').collect();
    match parts.as_slice() {
        [sub, cus, lookup] => Ok((
            (*sub).into(),
            (*cus).into(),
            (*lookup).into(),
            "active".into(),
        )),
        [sub, cus, lookup, status] => Ok((
            (*sub).into(),
            (*cus).into(),
            (*lookup).into(),
            (*status).into(),
        )),
        _ => Err(format!(
            "`{text}` is not `<sub_id>:<cus_id>:<lookup key>[:<status>]`, e.g. sub_1:cus_1:pro_monthly"
        )),
    }
}

/// Options of `tether sandbox hetzner`.
#[derive(Debug, clap::Args)]
pub struct HetznerArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// A token the emulator accepts (repeatable; default: one random token, printed).
    #[arg(long = "token", value_name = "TOKEN")]
    tokens: Vec<String>,
    /// How long every action takes, in milliseconds (default: create 40, others 20).
    #[arg(long, value_name = "N", conflicts_with = "latency")]
    action_latency_ms: Option<u64>,
    /// Hetzner's real action timings instead (`realistic`: create ~25 s, delete 5 s, …).
    #[arg(long, value_enum)]
    latency: Option<LatencyProfile>,
    /// Multiply every action latency by this factor (`0.1`: ten times faster).
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0, value_parser = time_scale)]
    time_scale: f64,
    /// Requests per hour per token (Hetzner's default is 3600).
    #[arg(long, value_name = "N", default_value_t = 3600,
          value_parser = clap::value_parser!(u32).range(1..))]
    rate_limit: u32,
    /// Most servers the project may have.
    #[arg(long, value_name = "N", default_value_t = 50)]
    server_limit: usize,
}

/// Runs `tether sandbox …`.
///
/// # Errors
/// The runtime cannot start, or the emulator cannot bind its port.
pub fn cmd_sandbox(args: &SandboxArgs) -> Result<Outcome, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::failed(
                format!("cannot start the runtime: {e}"),
                "report this as a bug",
            )
        })?;
    match &args.command {
        Some(SandboxCommand::Hetzner(hetzner)) => runtime.block_on(run_hetzner(hetzner)),
        Some(SandboxCommand::Stripe(stripe)) => runtime.block_on(run_stripe(stripe)),
        None if args.demo => runtime.block_on(run_demo(&fleet_dir(args.fleet.as_deref())?)),
        None => {
            let options = (args.latency.is_some() || args.time_scale != 1.0).then(|| {
                StackOptions::with_latency(
                    args.latency.unwrap_or(LatencyProfile::Fast),
                    args.time_scale,
                )
            });
            runtime.block_on(run_live(&fleet_dir(args.fleet.as_deref())?, options))
        }
    }
}

/// `--fleet`, else `./fleet`, else the example fleet of the source tree tether was built from.
fn fleet_dir(given: Option<&std::path::Path>) -> Result<std::path::PathBuf, CliError> {
    let candidates = match given {
        Some(path) => vec![path.to_owned()],
        None => vec![
            std::path::PathBuf::from("fleet"),
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fleet"),
        ],
    };
    candidates
        .into_iter()
        .find(|p| p.join("fleet.yaml").is_file())
        .ok_or_else(|| {
            CliError::failed(
                "no example fleet found (fleet/fleet.yaml)",
                "run from the tether source tree, or pass --fleet PATH",
            )
        })
}

async fn run_live(
    fleet: &std::path::Path,
    options: Option<StackOptions>,
) -> Result<Outcome, CliError> {
    super::common::init_logging(super::common::LogFormat::Text, "warn");
    let (trigger, _signal) = crate::process::shutdown::channel();
    crate::process::shutdown::on_os_signals(trigger.clone()).map_err(|e| {
        CliError::failed(
            format!("cannot listen for Ctrl-C: {e}"),
            "check the process's signal handling",
        )
    })?;
    let mut out = std::io::stdout();
    crate::sandbox::live::run(fleet, &mut out, trigger, options)
        .await
        .map(|()| Outcome::Success)
        .map_err(|e| CliError::failed(e.to_string(), "is another sandbox using the ports? each run picks free ports; report this as a bug"))
}

async fn run_demo(fleet: &std::path::Path) -> Result<Outcome, CliError> {
    let mut out = std::io::stdout();
    crate::sandbox::demo::run(
        fleet,
        &mut out,
        super::style::current().enabled_for_stdout(),
    )
    .await
    .map(|_| Outcome::Success)
    .map_err(|e| {
        CliError::failed(
            e.to_string(),
            "the sandbox demo is a self-check; report this as a bug with its output",
        )
    })
}

fn hetzner_config(args: &HetznerArgs) -> Config {
    let defaults = Config::default();
    Config {
        addr: SocketAddr::from(([127, 0, 0, 1], args.port)),
        tokens: if args.tokens.is_empty() {
            vec![random_token()]
        } else {
            args.tokens.iter().cloned().map(Token::new).collect()
        },
        latencies: match (args.action_latency_ms, args.latency) {
            (Some(ms), _) => Latencies::uniform(Duration::from_millis(ms)),
            (None, profile) => {
                StackOptions::with_latency(profile.unwrap_or(LatencyProfile::Fast), 1.0).latencies
            }
        }
        .scaled(args.time_scale),
        rate_limit: RateLimit::per_hour(args.rate_limit),
        server_limit: args.server_limit,
        ..defaults
    }
}

async fn run_hetzner(args: &HetznerArgs) -> Result<Outcome, CliError> {
    let emulator = HetznerEmulator::start(hetzner_config(args))
        .await
        .map_err(|e| {
            CliError::failed(
                format!(
                    "cannot start the Hetzner emulator on 127.0.0.1:{}: {e}",
                    args.port
                ),
                "choose another --port, or 0 for a free one",
            )
        })?;
    let url = emulator.url();
    println!("listening on {url}");
    println!("HCLOUD_ENDPOINT={url}");
    // A sandbox token, printed on purpose so clients can be pointed at the emulator.
    println!("HCLOUD_TOKEN={}", emulator.token().expose());
    println!("press Ctrl-C to stop");
    stopped().await;
    emulator.shutdown().await;
    println!("stopped");
    Ok(Outcome::Success)
}

async fn run_stripe(args: &StripeArgs) -> Result<Outcome, CliError> {
    let key = args
        .key
        .clone()
        .unwrap_or_else(|| format!("sk_test_{}", random_token().expose().to_ascii_lowercase()));
    let emulator = StripeEmulator::start(Token::new(key.clone()))
        .await
        .map_err(|e| {
            CliError::failed(
                format!("cannot start the Stripe emulator on 127.0.0.1: {e}"),
                "check that a local port is free",
            )
        })?;
    for (sub, customer, lookup, status) in &args.subscriptions {
        emulator.seed(sub, customer, lookup);
        if status != "active" {
            emulator.set_status(sub, status);
        }
    }
    emulator.set_read_limit(args.read_limit);
    let url = emulator.url();
    println!("listening on {url}");
    println!("STRIPE_API_URL={url}");
    // A sandbox key, printed on purpose so clients can be pointed at the emulator.
    println!("STRIPE_API_KEY={key}");
    println!("press Ctrl-C to stop");
    stopped().await;
    println!("stopped");
    Ok(Outcome::Success)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
