//! No Docker engine runs here, so a destination folder's image is checked by reading its
//! Dockerfile, and its version by reading Cargo.toml, the Dockerfile's label and metadata.yaml.
//! Each destination's `tests/packaging.rs` calls these with its own folder and name.

use std::path::Path;

fn read(folder: &Path, name: &str) -> String {
    std::fs::read_to_string(folder.join(name)).unwrap()
}

/// Multi-stage from standard images, run as `airbyte`, named after `destination`, and with
/// every workspace member's manifest in the build context (or cargo cannot load the workspace).
pub fn assert_image_builds_this_destination(folder: &Path, destination: &str) {
    let dockerfile = read(folder, "Dockerfile");
    let from: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(from.len(), 2, "{from:?}");
    assert!(from[0].starts_with("FROM rust:") && from[0].ends_with(" AS builder"));
    assert!(from[1].starts_with("FROM debian:") && from[1].contains("slim"));
    assert!(dockerfile.contains("USER airbyte"));
    assert!(dockerfile.contains(&format!(r#"ENTRYPOINT ["/usr/local/bin/{destination}"]"#)));
    assert!(dockerfile.contains(&format!("LABEL io.airbyte.name=airbyte/{destination}")));
    let workspace = read(folder, "../../Cargo.toml");
    let members = workspace
        .lines()
        .find_map(|l| l.trim().strip_prefix("members = "))
        .unwrap();
    for member in members.trim_matches(['[', ']']).split(',') {
        let member = member.trim().trim_matches('"');
        let manifest = if member == "." {
            "Cargo.toml".to_owned()
        } else {
            format!("{member}/Cargo.toml")
        };
        assert!(
            dockerfile.contains(&format!("COPY {manifest} ")),
            "{manifest} is not copied"
        );
    }
}

/// The package's `version` is the image's label and metadata.yaml's tag, under its repository.
pub fn assert_versions_agree(folder: &Path, destination: &str, version: &str) {
    assert!(read(folder, "Dockerfile").contains(&format!("LABEL io.airbyte.version={version}")));
    let metadata = read(folder, "metadata.yaml");
    assert!(metadata.contains(&format!("dockerImageTag: {version}")));
    assert!(metadata.contains(&format!("dockerRepository: airbyte/{destination}")));
}
