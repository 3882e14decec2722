//! The index file: what it writes reads back, changes land in the right lines, and anything
//! that is not a whole index of this version reads as an empty one.

use super::*;

fn oid(text: &str) -> Oid {
    Oid::hash_object(git2::ObjectType::Blob, text.as_bytes()).expect("oid")
}

fn agent(name: &str, subscription: &str) -> Checked {
    Checked::Agent {
        name: name.into(),
        subscription: subscription.into(),
    }
}

/// An index of `n` specs `agents/c{i/7}/a{i}.yaml` (agent `a{i}`, subscription `sub_{i}`) and a
/// `.gitkeep`, written and read back.
fn stored(n: usize) -> Index {
    let mut index = Index::default();
    let mut specs: HashMap<(String, Oid), Checked> = (0..n)
        .map(|i| {
            (
                (format!("agents/c{}/a{i}.yaml", i / 7), oid(&i.to_string())),
                agent(&format!("a{i}"), &format!("sub_{i}")),
            )
        })
        .collect();
    specs.insert(("agents/.gitkeep".into(), oid("")), Checked::Skipped);
    index.set_specs(oid("fleet"), Some(oid("agents")), specs);
    Index::parse(&index.render()).expect("reads back")
}

#[test]
fn the_index_reads_back_what_it_wrote() {
    let index = stored(300);
    assert!(index.describes(oid("fleet"), Some(oid("agents"))));
    assert!(!index.describes(oid("fleet"), Some(oid("other"))));
    for i in 0..300 {
        let path = format!("agents/c{}/a{i}.yaml", i / 7);
        assert_eq!(
            index.spec(oid("fleet"), &path, oid(&i.to_string())),
            Some(agent(&format!("a{i}"), &format!("sub_{i}")))
        );
        assert_eq!(
            index.by_subscription(&format!("sub_{i}")),
            Some((path.clone(), oid(&i.to_string())))
        );
        assert!(index.clashes("agents/new.yaml", &agent(&format!("a{i}"), "sub_new")));
        assert!(index.clashes("agents/new.yaml", &agent("new", &format!("sub_{i}"))));
        assert!(!index.clashes(&path, &agent(&format!("a{i}"), &format!("sub_{i}"))));
    }
    assert_eq!(
        index.spec(oid("fleet"), "agents/.gitkeep", oid("")),
        Some(Checked::Skipped)
    );
    assert_eq!(
        index.spec(oid("other fleet"), "agents/c0/a0.yaml", oid("0")),
        None
    );
    assert_eq!(
        index.spec(oid("fleet"), "agents/c0/a0.yaml", oid("changed")),
        None
    );
    assert_eq!(index.by_subscription("sub_none"), None);
    assert!(!index.clashes("agents/new.yaml", &agent("new", "sub_new")));
}

#[test]
fn changed_specs_are_written_into_their_lines_and_read_back() {
    let mut index = stored(50);
    let agents = Some(oid("agents 2"));
    // A new spec, a changed one (renamed and moved to a new subscription), a removed one.
    index.set_spec(
        "agents/new/n.yaml",
        Some((oid("n"), agent("n", "sub_n"))),
        agents,
    );
    index.set_spec(
        "agents/c0/a3.yaml",
        Some((oid("3b"), agent("a3-renamed", "sub_3b"))),
        agents,
    );
    index.set_spec("agents/c1/a7.yaml", None, agents);
    for index in [&index, &Index::parse(&index.render()).expect("reads back")] {
        assert!(index.describes(oid("fleet"), agents));
        assert_eq!(
            index.by_subscription("sub_n"),
            Some(("agents/new/n.yaml".into(), oid("n")))
        );
        assert_eq!(index.by_subscription("sub_3"), None);
        assert_eq!(index.by_subscription("sub_7"), None);
        assert_eq!(index.spec_at("agents/c1/a7.yaml"), None);
        assert_eq!(
            index.by_subscription("sub_3b"),
            Some(("agents/c0/a3.yaml".into(), oid("3b")))
        );
        assert!(!index.clashes("agents/x.yaml", &agent("a3", "sub_3")));
        assert!(!index.clashes("agents/x.yaml", &agent("a7", "sub_7")));
        assert!(index.clashes("agents/x.yaml", &agent("a3-renamed", "sub_x")));
        assert!(index.clashes("agents/x.yaml", &agent("x", "sub_n")));
        assert_eq!(
            index.by_subscription("sub_49"),
            Some(("agents/c7/a49.yaml".into(), oid("49")))
        );
    }
    let again = Index::parse(&index.render()).expect("reads back");
    // 50 agents and a `.gitkeep`, one added, one removed; one name per agent.
    let lines = |i: usize| again.stored[i].iter().filter(|&&b| b == b'\n').count();
    assert_eq!(
        (lines(SPECS), lines(NAMES), lines(SUBSCRIPTIONS)),
        (51, 50, 50)
    );
}

#[test]
fn anything_but_a_whole_index_of_this_version_is_empty() {
    let whole = stored(20).render();
    assert!(Index::parse(&whole).is_some());
    for cut in [1, 30, whole.len() / 2, whole.len() - 1] {
        assert!(Index::parse(&whole[..cut]).is_none(), "cut at {cut}");
    }
    let mut longer = whole.clone();
    longer.extend_from_slice(b"spec\tx\n");
    assert!(Index::parse(&longer).is_none());
    assert!(Index::parse(b"tether billing index v1\nfleet\tzz\n").is_none());
    assert!(Index::parse(b"something else\n").is_none());
}

#[test]
fn keys_are_found_by_the_commit_they_were_read_up_to() {
    let mut index = Index {
        keys_through: Some(oid("tip")),
        ..Index::default()
    };
    index.add_key("evt 1\tx", oid("c1"), oid("tip"));
    index.add_key("evt_2", oid("c2"), oid("c1"));
    index.add_key("evt_3", oid("c3"), oid("not the tip"));
    let back = Index::parse(&index.render()).expect("reads back");
    assert_eq!(back.keys_through, Some(oid("c2")));
    assert_eq!(back.key("evt 1\tx"), Some(oid("c1")));
    assert_eq!(back.key("evt_2"), Some(oid("c2")));
    assert_eq!(back.key("evt_3"), None);
    assert_eq!(back.key("evt 1"), None);
}
