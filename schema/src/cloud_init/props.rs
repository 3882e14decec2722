//! Property tests: whatever the agent's env holds, the rendered cloud-config parses (with a real
//! YAML parser) to exactly tether's structure, and the env file reads back to exactly the env.

use super::{AUTH_KEY_PATH, ENV_FILE_PATH, env_file, render};
use crate::names::EnvName;
use crate::{Agent, Content, Fleet, SourceFile, load_fleet};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use proptest::prelude::*;
use std::collections::BTreeMap;
use yaml_rust2::{Yaml, YamlLoader};

const FLEET: &str = "apiVersion: tether/v1\nkind: Fleet\nmetadata: {name: f}\nspec:\n  defaults: {server: {type: cpx21, location: fsn1, image: ubuntu-24.04}}\n  tailscale: {tags: [\"tag:agent\", \"tag:eu\"]}\n  catalog: {serverTypes: [cpx21], locations: [fsn1], images: [ubuntu-24.04]}\n";
const AGENT: &str = "apiVersion: tether/v1\nkind: Agent\nmetadata: {name: a1}\nspec:\n  subscription: sub_1\n  tailscale: {tags: [\"tag:agent\", \"tag:eu\"]}\n  runtime: {version: \"1.0\"}\n";

fn fleet() -> Fleet {
    let file = |path: &str, text: &str| SourceFile {
        path: path.into(),
        content: Content::Bytes(text.as_bytes().to_vec()),
    };
    load_fleet(&[file("fleet.yaml", FLEET), file("agents/a1.yaml", AGENT)]).expect("valid base")
}

fn with_env(fleet: &Fleet, env: &BTreeMap<String, String>) -> Agent {
    let mut agent = fleet.agents.values().next().expect("one agent").clone();
    agent.runtime.env = env
        .iter()
        .map(|(k, v)| {
            (
                EnvName::parse(k).expect("generated names are valid"),
                v.clone(),
            )
        })
        .collect();
    agent
}

/// Reads an env file as systemd does for double-quoted values: `\` before `"`, `\`, `$` or
/// `` ` `` yields that character, `\` before a newline joins lines, any other `\` stays.
fn read_env_file(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut vars = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once("=\"")
            .ok_or("an assignment without `=\"`")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().ok_or("an unterminated value")? {
                (_, '\\') => match chars.next().ok_or("a trailing backslash")?.1 {
                    c @ ('"' | '\\' | '$' | '`') => value.push(c),
                    '\n' => {}
                    c => {
                        value.push('\\');
                        value.push(c);
                    }
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        rest = after[end + 1..]
            .strip_prefix('\n')
            .ok_or("a value not followed by a newline")?;
        vars.insert(name.to_owned(), value);
    }
    Ok(vars)
}

fn decoded(entry: &Yaml) -> String {
    let content = entry["content"].as_str().expect("content is a string");
    String::from_utf8(BASE64.decode(content).expect("base64")).expect("utf-8")
}

/// Checks `doc` is exactly tether's cloud-config for `agent` and `key`, and returns the env file.
fn check_structure(doc: &str, agent: &Agent, key: &str) -> Result<String, TestCaseError> {
    prop_assert!(
        doc.bytes()
            .all(|b| b == b'\n' || (b' '..=b'~').contains(&b)),
        "the document is printable ASCII and LF only"
    );
    prop_assert!(doc.starts_with("#cloud-config\n"));
    let docs = YamlLoader::load_from_str(doc).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(docs.len(), 1);
    let root = docs[0].as_hash().expect("a mapping");
    let keys: Vec<&str> = root.keys().filter_map(Yaml::as_str).collect();
    prop_assert_eq!(
        keys,
        vec![
            "hostname",
            "package_update",
            "packages",
            "write_files",
            "runcmd"
        ]
    );
    let top = &docs[0];
    prop_assert_eq!(top["hostname"].as_str(), Some(agent.name.as_str()));
    prop_assert_eq!(top["package_update"].as_bool(), Some(true));
    let packages: Vec<&str> = top["packages"]
        .as_vec()
        .expect("packages")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    prop_assert_eq!(packages, vec!["curl", "ca-certificates"]);
    let files = top["write_files"].as_vec().expect("write_files");
    prop_assert_eq!(files.len(), 2);
    for (entry, path) in files.iter().zip([AUTH_KEY_PATH, ENV_FILE_PATH]) {
        let fields: Vec<(&str, &str)> = entry
            .as_hash()
            .expect("an entry is a mapping")
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?, v.as_str()?)))
            .collect();
        let names: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
        prop_assert_eq!(
            names,
            vec!["path", "owner", "permissions", "encoding", "content"]
        );
        prop_assert_eq!(
            &fields[..4],
            &[
                ("path", path),
                ("owner", "root:root"),
                ("permissions", "0600"),
                ("encoding", "b64")
            ]
        );
    }
    prop_assert_eq!(decoded(&files[0]), key);
    let runcmd: Vec<Vec<String>> = top["runcmd"]
        .as_vec()
        .expect("runcmd")
        .iter()
        .map(|c| {
            c.as_vec()
                .expect("argv")
                .iter()
                .map(|w| w.as_str().expect("word").to_owned())
                .collect()
        })
        .collect();
    let join = vec![
        "tailscale".to_owned(),
        "up".to_owned(),
        "--auth-key=file:/run/tether/tailscale-authkey".to_owned(),
        format!("--hostname={}", agent.name),
        "--advertise-tags=tag:agent,tag:eu".to_owned(),
    ];
    let argv = |w: &[&str]| w.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    prop_assert_eq!(
        runcmd,
        vec![
            argv(&[
                "sh",
                "-c",
                "curl -fsSL https://tailscale.com/install.sh | sh"
            ]),
            join,
            argv(&["rm", "-f", "/run/tether/tailscale-authkey"]),
        ]
    );
    Ok(decoded(&files[1]))
}

/// What the env file must hold: tether's four variables, then the agent's (a later name wins,
/// as in systemd), with the characters no systemd environment file can carry (NUL, U+FEFF,
/// noncharacters) replaced by U+FFFD.
fn expected_env(env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let carried = |c: char| {
        let n = c as u32;
        let nonchar = (0xFDD0..=0xFDEF).contains(&n) || n % 0x10000 >= 0xFFFE;
        if c == '\0' || c == '\u{feff}' || nonchar {
            '\u{fffd}'
        } else {
            c
        }
    };
    let mut expected: BTreeMap<String, String> = [
        ("TETHER_AGENT", "a1"),
        ("TETHER_FLEET", "f"),
        ("TETHER_SUBSCRIPTION", "sub_1"),
        ("AGENT_RUNTIME_VERSION", "1.0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in env {
        expected.insert(k.clone(), v.chars().map(carried).collect());
    }
    expected
}

/// Strings built from everything that has ever broken a YAML document or an env file.
fn hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            "\n",
            "\r",
            "\r\n",
            "\u{85}",
            "\u{2028}",
            "\u{2029}",
            "\u{b}",
            "\u{c}",
            "\0",
            "\t",
            "\"",
            "'",
            "#",
            ": ",
            ":",
            "{",
            "}",
            "[",
            "]",
            "&a",
            "*a",
            "!!",
            "|",
            ">",
            "\\",
            "\\n",
            "\\u2028",
            "$HOME",
            "`id`",
            "- ",
            "---",
            "...",
            "%YAML",
            "@",
            ",",
            "bootcmd: [[sh, -c, 'echo PWNED']]",
            "\u{feff}",
            "\u{fffe}",
            "\u{202e}",
            " ",
            "=",
            "x",
        ])
        .prop_map(str::to_owned),
        any::<char>().prop_map(String::from),
    ];
    prop_oneof![
        prop::collection::vec(piece, 0..16).prop_map(|p| p.concat()),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn any_env_renders_to_exactly_the_expected_cloud_config(
        env in prop::collection::btree_map("[A-Za-z_][A-Za-z0-9_]{0,10}", hostile(), 0..6),
        key in hostile(),
    ) {
        let fleet = fleet();
        let agent = with_env(&fleet, &env);
        let doc = render(&agent, &fleet.settings, &key);
        prop_assert!(doc.len() <= super::size_bound(&agent, &fleet.settings, key.len()));
        prop_assert!(
            super::worst_case_size(&agent, &fleet.settings)
                <= super::size_bound(&agent, &fleet.settings, super::MAX_AUTH_KEY_LEN)
        );
        let env_text = check_structure(&doc, &agent, &key)?;
        let read = read_env_file(&env_text).map_err(TestCaseError::fail)?;
        prop_assert_eq!(read, expected_env(&env));
    }
}

#[test]
fn the_reported_injection_stays_inside_its_value() {
    let fleet = fleet();
    let value = "x\u{2028}bootcmd: [[sh, -c, 'echo PWNED']]\u{2028}#";
    let env = BTreeMap::from([("X".to_owned(), value.to_owned())]);
    let agent = with_env(&fleet, &env);
    let doc = render(&agent, &fleet.settings, "tskey-auth-k1");
    assert!(!doc.contains("bootcmd"), "{doc}");
    let env_text = check_structure(&doc, &agent, "tskey-auth-k1").expect("structure");
    assert_eq!(read_env_file(&env_text).expect("env")["X"], value);
}

#[test]
fn printable_values_round_trip_through_the_env_file_unchanged() {
    let fleet = fleet();
    let env = BTreeMap::from([("Q".to_owned(), "a \"b\" $c `d` \\e".to_owned())]);
    let agent = with_env(&fleet, &env);
    let text = env_file::render(&super::env_vars(&agent, &fleet.settings));
    assert_eq!(
        text,
        "TETHER_AGENT=\"a1\"\nTETHER_FLEET=\"f\"\nTETHER_SUBSCRIPTION=\"sub_1\"\nAGENT_RUNTIME_VERSION=\"1.0\"\nQ=\"a \\\"b\\\" \\$c \\`d\\` \\\\e\"\n"
    );
    assert_eq!(read_env_file(&text).expect("env")["Q"], env["Q"]);
}

#[test]
fn the_legacy_spec_hash_is_the_one_servers_were_labelled_with() {
    let fleet = fleet();
    let plain = with_env(&fleet, &BTreeMap::new());
    let hash = crate::labels::legacy_replacement_hash(&plain, &fleet.settings);
    // Pinned at the value tether computed before file contents became base64 and before
    // runtime fields left the hash: such servers must be recognised, never replaced.
    assert_eq!(hash, "05d530c954bb9da5");
    let env = BTreeMap::from([("A".to_owned(), "b".to_owned())]);
    let changed = with_env(&fleet, &env);
    assert_ne!(
        crate::labels::legacy_replacement_hash(&changed, &fleet.settings),
        hash
    );
}

#[test]
fn runtime_fields_change_the_runtime_hash_not_the_spec_hash() {
    let fleet = fleet();
    let plain = with_env(&fleet, &BTreeMap::new());
    let env = BTreeMap::from([("A".to_owned(), "b".to_owned())]);
    let changed = with_env(&fleet, &env);
    assert_eq!(
        crate::labels::replacement_hash(&changed, &fleet.settings),
        crate::labels::replacement_hash(&plain, &fleet.settings)
    );
    assert_ne!(
        crate::labels::runtime_hash(&changed),
        crate::labels::runtime_hash(&plain)
    );
}
