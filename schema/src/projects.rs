//! The Hetzner projects one fleet spreads over (`spec.projects` in fleet.yaml) and an agent's
//! pin to one of them (`spec.server.project`). The raw form is [`RawProject`]; [`validate`]
//! turns the list into [`Project`]s. No list means one implicit project: the single token.

use crate::diagnostic::Code;
use crate::names::ProjectName;
use crate::report::Report;
use crate::spanned::{Spanned, Text};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One Hetzner project of the fleet, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Project {
    /// Its name: the `tether/project` label value and the key of its token in the daemon
    /// config.
    pub name: ProjectName,
    /// How many servers tether may keep in it (its Hetzner server limit, or less): live plus
    /// planned servers never exceed it.
    pub capacity: u32,
}

/// One entry of `spec.projects` as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawProject {
    /// A lowercase RFC 1123 label, unique in the list; becomes the `tether/project` label.
    pub name: Text,
    /// Most servers tether keeps in the project (at least 1): set it to the project's Hetzner
    /// server limit or below.
    pub capacity: Spanned<u32>,
}

/// Validates `spec.projects`: names, duplicates and capacities, each reported at its place.
pub(crate) fn validate(raw: Option<&Spanned<Vec<RawProject>>>, r: &mut Report<'_>) -> Vec<Project> {
    let Some(list) = raw else {
        return Vec::new();
    };
    if list.value.is_empty() {
        r.push(
            list.span,
            "spec.projects",
            Code::InvalidValue,
            "`spec.projects` is empty, so no agent could be placed".into(),
            "list at least one project, or remove the key to use the single token's project".into(),
        );
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, p) in list.value.iter().enumerate() {
        let path = format!("spec.projects[{i}]");
        let name = r.parse(&format!("{path}.name"), &p.name, ProjectName::parse);
        if !seen.insert(p.name.value.clone()) {
            r.push(
                p.name.span,
                &format!("{path}.name"),
                Code::InvalidValue,
                format!("project `{}` is listed twice", p.name.value),
                "give each project one entry".into(),
            );
        }
        if p.capacity.value == 0 {
            r.push(
                p.capacity.span,
                &format!("{path}.capacity"),
                Code::InvalidValue,
                format!("project `{}` has capacity 0", p.name.value),
                "set the most servers tether may keep in the project (its Hetzner server limit or below), or remove the project".into(),
            );
        }
        if let Some(name) = name {
            out.push(Project {
                name,
                capacity: p.capacity.value,
            });
        }
    }
    out
}

/// Validates an agent's `spec.server.project` pin against the fleet's projects.
pub(crate) fn pin(
    raw: Option<&Text>,
    projects: Option<&[Project]>,
    r: &mut Report<'_>,
) -> Option<ProjectName> {
    let text = raw?;
    let path = "spec.server.project";
    let name = r.parse(path, text, ProjectName::parse)?;
    let projects = projects?;
    if projects.iter().any(|p| p.name == name) {
        return Some(name);
    }
    let known: Vec<&str> = projects.iter().map(|p| p.name.as_str()).collect();
    let hint = if known.is_empty() {
        "fleet.yaml declares no `spec.projects`: declare the project there, or remove the pin"
            .to_owned()
    } else {
        format!(
            "use one of [{}], or add it to `spec.projects` in fleet.yaml",
            known.join(", ")
        )
    };
    r.push(
        text.span,
        path,
        Code::NotInCatalog,
        format!(
            "project `{}` is not one of the fleet's projects",
            text.value
        ),
        hint,
    );
    None
}

#[cfg(test)]
mod tests {
    use crate::{Content, SourceFile, load_fleet};

    const HEAD: &str = "apiVersion: tether/v1\nkind: Fleet\nmetadata: {name: f}\nspec:\n  defaults: {server: {type: cpx21, location: fsn1, image: ubuntu-24.04}}\n  tailscale: {tags: [\"tag:agent\"]}\n  catalog: {serverTypes: [cpx21], locations: [fsn1], images: [ubuntu-24.04]}\n";

    fn load(projects: &str, server: &str) -> Result<crate::Fleet, crate::LoadError> {
        let agent = format!(
            "apiVersion: tether/v1\nkind: Agent\nmetadata: {{name: a1}}\nspec:\n  subscription: sub_1\n  server: {server}\n  runtime: {{version: \"1.0\"}}\n"
        );
        load_fleet(&[
            SourceFile {
                path: "fleet.yaml".into(),
                content: Content::Bytes(format!("{HEAD}{projects}").into_bytes()),
            },
            SourceFile {
                path: "agents/a1.yaml".into(),
                content: Content::Bytes(agent.into_bytes()),
            },
        ])
    }

    #[test]
    fn projects_and_a_pin_load_in_order() {
        let fleet = load(
            "  projects:\n  - {name: eu-1, capacity: 7000}\n  - {name: eu-2, capacity: 10}\n",
            "{project: eu-2}",
        )
        .expect("valid");
        let names: Vec<(&str, u32)> = fleet
            .settings
            .projects
            .iter()
            .map(|p| (p.name.as_str(), p.capacity))
            .collect();
        assert_eq!(names, [("eu-1", 7000), ("eu-2", 10)]);
        let agent = fleet.agents.values().next().expect("one agent");
        assert_eq!(
            agent.server.project.as_ref().map(|p| p.as_str()),
            Some("eu-2")
        );
    }

    #[test]
    fn a_fleet_without_projects_has_none_and_agents_no_pin() {
        let fleet = load("", "{}").expect("valid");
        assert!(fleet.settings.projects.is_empty());
        assert!(fleet.agents.values().all(|a| a.server.project.is_none()));
    }

    #[test]
    fn a_pin_to_an_undeclared_project_is_located_and_names_the_choices() {
        let err = load(
            "  projects:\n  - {name: eu-1, capacity: 5}\n",
            "{project: us-1}",
        )
        .expect_err("unknown project");
        let d = &err.diagnostics[0];
        assert_eq!(d.file, "agents/a1.yaml");
        assert_eq!(d.path, "spec.server.project");
        assert!(d.message.contains("`us-1`"), "{d:?}");
        assert!(d.hint.as_deref().unwrap_or("").contains("eu-1"), "{d:?}");
    }

    #[test]
    fn bad_project_lists_report_every_problem() {
        let err = load(
            "  projects:\n  - {name: Eu_1, capacity: 5}\n  - {name: eu-2, capacity: 0}\n  - {name: eu-2, capacity: 3}\n",
            "{}",
        )
        .expect_err("invalid projects");
        let paths: Vec<&str> = err.diagnostics.iter().map(|d| d.path.as_str()).collect();
        assert!(paths.contains(&"spec.projects[0].name"), "{paths:?}");
        assert!(paths.contains(&"spec.projects[1].capacity"), "{paths:?}");
        assert!(paths.contains(&"spec.projects[2].name"), "{paths:?}");
    }

    #[test]
    fn declared_reads_the_project_names_from_fleet_yaml_alone() {
        let files = [SourceFile {
            path: "fleet.yaml".into(),
            content: Content::Bytes(
                format!("{HEAD}  projects:\n  - {{name: eu-2, capacity: 3}}\n  - {{name: eu-1, capacity: 3}}\n")
                    .into_bytes(),
            ),
        }];
        assert_eq!(crate::declared_projects(&files), ["eu-2", "eu-1"]);
        assert!(crate::declared_projects(&[]).is_empty());
    }

    #[test]
    fn a_fleet_wide_default_project_is_refused() {
        let err = load_fleet(&[SourceFile {
            path: "fleet.yaml".into(),
            content: Content::Bytes(
                HEAD.replace(
                    "image: ubuntu-24.04}}",
                    "image: ubuntu-24.04, project: eu-1}}",
                )
                .into_bytes(),
            ),
        }])
        .expect_err("default pin");
        assert_eq!(err.diagnostics[0].path, "spec.defaults.server.project");
    }
}
