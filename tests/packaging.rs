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
fn the_image_builds_this_destination_from_the_workspace() {
    emukit::packaging::assert_image_builds_this_destination(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        "destination-clientsuccess",
    );
}

/// A destination is one folder of destinations/, found by looking: the workspace, the scripts
/// and the images need no list of them, so each folder must hold every part.
#[test]
fn every_destination_folder_has_every_part() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = 0;
    for entry in std::fs::read_dir(root.join("destinations")).unwrap() {
        let folder = entry.unwrap().path();
        if folder.is_dir() {
            emukit::packaging::assert_destination_folder_complete(&folder);
            found += 1;
        }
    }
    assert!(found >= 3, "{found} destination folders");
    for part in [
        "integration_tests/pyairbyte.py",
        "integration_tests/test-secrets",
    ] {
        assert!(root.join(part).exists(), "ClientSuccess has no {part}");
    }
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
