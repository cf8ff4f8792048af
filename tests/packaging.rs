//! No Docker engine runs here, so the image is checked by reading its Dockerfile, and the
//! version by reading Cargo.toml, the Dockerfile's label and metadata.yaml.

use std::path::Path;

fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

/// Instructions with their arguments, continuation lines joined, comments dropped.
fn instructions() -> Vec<(String, String)> {
    let text = read("Dockerfile").replace("\\\n", " ");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (op, rest) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            (op.to_ascii_uppercase(), rest.trim().to_owned())
        })
        .collect()
}

/// The arguments of every instruction `op`, in order.
fn arguments_of(op: &str) -> Vec<String> {
    instructions()
        .into_iter()
        .filter(|(o, _)| o == op)
        .map(|(_, a)| a)
        .collect()
}

fn metadata_field(key: &str) -> String {
    read("metadata.yaml")
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix(&format!("{key}:"))
                .map(|v| v.trim().trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| panic!("metadata.yaml has no {key}"))
}

#[test]
fn dockerfile_is_multi_stage_from_standard_images() {
    let from: Vec<String> = arguments_of("FROM");
    assert_eq!(
        from.len(),
        2,
        "a builder stage and a runtime stage: {from:?}"
    );
    assert!(
        from[0].starts_with("rust:") && from[0].ends_with(" AS builder"),
        "{from:?}"
    );
    assert!(
        from[1].starts_with("debian:") && from[1].contains("slim")
            || from[1].starts_with("gcr.io/distroless/cc"),
        "{from:?}"
    );
}

#[test]
fn dockerfile_caches_dependencies_in_their_own_layer() {
    let all = instructions();
    let manifest = all
        .iter()
        .position(|(op, a)| op == "COPY" && a.contains("Cargo.lock"))
        .expect("manifests copied");
    let sources = all
        .iter()
        .position(|(op, a)| op == "COPY" && a.starts_with("src "))
        .expect("sources copied");
    let deps_build = all
        .iter()
        .position(|(op, a)| op == "RUN" && a.contains("cargo build"))
        .expect("a dependency build");
    assert!(
        manifest < deps_build && deps_build < sources,
        "dependencies must build before the sources are copied"
    );
}

/// Cargo reads every workspace member's manifest, so the image copies each one, and the
/// sources of each crate the connector is built from.
#[test]
fn dockerfile_copies_every_workspace_member() {
    let copies: Vec<String> = arguments_of("COPY");
    let manifest = read("Cargo.toml");
    let members = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("members = "))
        .expect("a workspace members line");
    for member in members.trim_matches(['[', ']']).split(',') {
        let member = member.trim().trim_matches('"');
        if member == "." {
            continue;
        }
        assert!(
            copies
                .iter()
                .any(|c| c.starts_with(&format!("{member}/Cargo.toml "))),
            "{member}/Cargo.toml is not copied: {copies:?}"
        );
    }
    assert!(
        copies.iter().any(|c| c.starts_with("engine/src ")),
        "{copies:?}"
    );
}

#[test]
fn dockerfile_runs_as_airbyte_with_an_absolute_entrypoint() {
    let all = instructions();
    let last = |op: &str| {
        all.iter()
            .rev()
            .find(|(o, _)| o == op)
            .map(|(_, a)| a.clone())
            .unwrap_or_default()
    };
    assert_eq!(last("USER"), "airbyte");
    let run_text: String = all
        .iter()
        .filter(|(o, _)| o == "RUN")
        .map(|(_, a)| a.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        run_text.contains("useradd") && run_text.contains("airbyte"),
        "creates the airbyte user"
    );
    assert!(
        run_text.contains("mkdir -p /airbyte")
            && run_text.contains("chown airbyte:airbyte /airbyte"),
        "a writable /airbyte"
    );
    assert!(
        run_text.contains("ca-certificates"),
        "CA certificates for https"
    );
    let entrypoint = last("ENTRYPOINT");
    let path: Vec<String> = serde_json::from_str(&entrypoint).expect("exec-form ENTRYPOINT");
    assert!(path[0].starts_with('/'), "absolute: {path:?}");
    assert_eq!(last("ENV"), format!("AIRBYTE_ENTRYPOINT=\"{}\"", path[0]));
}

#[test]
fn versions_agree_across_cargo_dockerfile_and_metadata() {
    let version = env!("CARGO_PKG_VERSION");
    let labels: Vec<String> = arguments_of("LABEL");
    assert!(
        labels.contains(&"io.airbyte.name=airbyte/destination-clientsuccess".to_owned()),
        "{labels:?}"
    );
    assert!(
        labels.contains(&format!("io.airbyte.version={version}")),
        "{labels:?}"
    );
    assert_eq!(metadata_field("dockerImageTag"), version);
    assert_eq!(
        metadata_field("dockerRepository"),
        "airbyte/destination-clientsuccess"
    );
    assert!(
        read("CHANGELOG.md").contains(&format!("## {version}")),
        "CHANGELOG.md has an entry for {version}"
    );
}

#[test]
fn metadata_names_this_destination() {
    assert_eq!(metadata_field("connectorType"), "destination");
    assert_eq!(metadata_field("connectorSubtype"), "api");
    assert_eq!(metadata_field("supportsDataActivation"), "true");
    assert!(read("metadata.yaml").contains("- api.clientsuccess.com"));
    assert_eq!(
        metadata_field("documentationUrl"),
        destination_clientsuccess::config::DOCUMENTATION_URL
    );
}

/// The engine is shared by every destination: no platform's name, nor any platform's object,
/// may be in it.
#[test]
fn the_engine_names_no_platform_and_no_object() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("engine");
    let mut files = vec![root.join("Cargo.toml")];
    let mut folders = vec![root.join("src")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                files.push(path);
            }
        }
    }
    let names = [
        "clientsuccess",
        "client success",
        "gainsight",
        "aptrinsic",
        "trackops",
        "revnue",
        "contract",
        "accounts",
        "account_",
        "identifyid",
        "externalid",
        "customer",
        "supplier",
        "contacts",
    ];
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap().to_lowercase();
        for name in names {
            assert!(!text.contains(name), "{} names {name:?}", file.display());
        }
    }
}
