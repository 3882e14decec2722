//! `tether apply` over a fleet spread across three Hetzner projects: one emulator per project,
//! each with its own token, endpoint and id range; the tokens come from
//! `HCLOUD_TOKEN_<PROJECT>` and never from the repository.

use crate::common::{apply_command, commit_all, example_fleet, tether_bin, without_quarantine};
use tether::sandbox::stack::{Stack, StackOptions};
use tether_emulators::hetzner::{self as emu, HetznerEmulator};

const PROJECTS: [&str; 3] = ["eu-1", "eu-2", "eu-3"];

struct Bed {
    stack: Stack,
    /// eu-2 and eu-3; eu-1 is the stack's own emulator.
    others: Vec<HetznerEmulator>,
    repo: tempfile::TempDir,
}

impl Bed {
    async fn new() -> Bed {
        let stack = Stack::start(StackOptions::default())
            .await
            .expect("emulators");
        let mut others = Vec::new();
        for i in 1..PROJECTS.len() as u64 {
            let e = HetznerEmulator::start(emu::Config {
                id_offset: 1_000_000 * i,
                ..emu::Config::default()
            })
            .await
            .expect("hetzner emulator");
            e.set_hooks(stack.agents.clone());
            others.push(e);
        }
        let repo = example_fleet();
        without_quarantine(repo.path());
        let path = repo.path().join("fleet.yaml");
        let mut text = std::fs::read_to_string(&path).expect("fleet.yaml");
        text.push_str("  projects:\n");
        for p in PROJECTS {
            text.push_str(&format!("  - {{name: {p}, capacity: 3}}\n"));
        }
        std::fs::write(&path, text).expect("write fleet.yaml");
        commit_all(repo.path(), "main", "three projects");
        Bed {
            stack,
            others,
            repo,
        }
    }

    fn emulator(&self, project: usize) -> &HetznerEmulator {
        match project {
            0 => &self.stack.hetzner,
            n => &self.others[n - 1],
        }
    }

    /// `tether apply` with the tokens of the projects in `with_tokens`: its exit code, and its
    /// stdout followed by its stderr.
    async fn apply(&self, with_tokens: &[usize]) -> (i32, String) {
        let mut cmd = apply_command(&self.stack, self.repo.path(), &[]);
        self.project_env(&mut cmd, with_tokens);
        let out = cmd.output().await.expect("run tether apply");
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// The token and endpoint of each project in `with_tokens`, as `HCLOUD_TOKEN_<PROJECT>`.
    fn project_env(&self, cmd: &mut tokio::process::Command, with_tokens: &[usize]) {
        for i in with_tokens {
            let e = self.emulator(*i);
            let suffix = PROJECTS[*i].to_uppercase().replace('-', "_");
            cmd.env(format!("HCLOUD_TOKEN_{suffix}"), e.token().expose());
            cmd.env(format!("HCLOUD_ENDPOINT_{suffix}"), e.url());
        }
    }

    /// `tether status --live --format json` with every project's token: exit code and stdout.
    async fn status_live(&self) -> (i32, String, String) {
        let repo = self.repo.path();
        let mut cmd = tokio::process::Command::new(tether_bin());
        cmd.current_dir(repo)
            .arg("status")
            .arg("--git")
            .arg(repo)
            .args(["--live", "--format", "json"])
            .env_remove("RUST_LOG");
        for (k, v) in self.stack.env() {
            cmd.env(k, v);
        }
        self.project_env(&mut cmd, &[0, 1, 2]);
        let out = cmd.output().await.expect("run tether status --live");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `(project, server name, tether/project label)` of every server.
    fn servers(&self) -> Vec<(String, String, Option<String>)> {
        (0..PROJECTS.len())
            .flat_map(|i| {
                self.emulator(i).servers().into_iter().map(move |s| {
                    (
                        PROJECTS[i].to_owned(),
                        s.name,
                        s.labels.get("tether/project").cloned(),
                    )
                })
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_spreads_the_fleet_over_its_projects_and_refuses_a_project_without_a_token() {
    let bed = Bed::new().await;

    let (code, output) = bed.apply(&[0, 1]).await;
    assert_ne!(code, 0, "{output}");
    assert!(output.contains("HCLOUD_TOKEN_EU_3"), "{output}");
    assert!(
        bed.servers().is_empty(),
        "nothing is created without every token"
    );

    let (code, output) = bed.apply(&[0, 1, 2]).await;
    assert_eq!(code, 0, "{output}");
    let servers = bed.servers();
    assert_eq!(servers.len(), 6, "{servers:?}");
    for (project, name, label) in &servers {
        assert_eq!(label.as_deref(), Some(project.as_str()), "{name}");
    }
    for (i, project) in PROJECTS.iter().enumerate() {
        let n = servers.iter().filter(|(p, ..)| p == project).count();
        assert!(n <= 3, "{project} holds {n}, over its capacity");
        let token = bed.emulator(i).token();
        assert!(!output.contains(token.expose()), "a token leaked");
        assert!(output.contains(project), "the plan names {project}");
    }
    let (code, output) = bed.apply(&[0, 1, 2]).await;
    assert_eq!(code, 0, "{output}");
    let creates: usize = (0..PROJECTS.len())
        .map(|i| {
            bed.emulator(i)
                .action_commands()
                .iter()
                .filter(|(c, _)| *c == "create_server")
                .count()
        })
        .sum();
    assert_eq!(creates, 6, "the second apply creates nothing");

    let (code, stdout, stderr) = bed.status_live().await;
    assert_eq!(code, 0, "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(
        doc["disagreements"].as_array().map(Vec::len),
        Some(0),
        "status --live reads every project, so no server is missing:\n{stdout}"
    );
    for i in 0..PROJECTS.len() {
        let token = bed.emulator(i).token();
        assert!(
            !stdout.contains(token.expose()) && !stderr.contains(token.expose()),
            "a token leaked"
        );
    }
}
