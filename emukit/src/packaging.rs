//! No Docker engine runs here, so a destination folder's image is checked by reading its
//! Dockerfile, and its version by reading Cargo.toml, the Dockerfile's label and metadata.yaml.
//! Each destination's `tests/packaging.rs` calls these with its own folder and name.

use std::path::Path;

fn read(folder: &Path, name: &str) -> String {
    std::fs::read_to_string(folder.join(name)).unwrap()
}

/// Multi-stage from standard images, run as `airbyte` with a shell and the variable Airbyte's
/// launcher evaluates, named after `destination`, built from the whole workspace (so no image
/// lists another destination's crates) with the registry and build directory cached.
pub fn assert_image_builds_this_destination(folder: &Path, destination: &str) {
    let dockerfile = read(folder, "Dockerfile");
    let from: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(from.len(), 2, "{from:?}");
    assert!(from[0].starts_with("FROM rust:") && from[0].ends_with(" AS builder"));
    // Debian slim keeps /bin/sh, which the launcher's `sh -c` needs.
    assert!(from[1].starts_with("FROM debian:") && from[1].contains("slim"));
    assert!(dockerfile.contains("USER airbyte"));
    assert!(dockerfile.contains("useradd") && dockerfile.contains("--uid 1000 airbyte"));
    assert!(dockerfile.contains("ca-certificates"));
    let binary = format!("/usr/local/bin/{destination}");
    assert!(dockerfile.contains(&format!(r#"ENTRYPOINT ["{binary}"]"#)));
    assert!(dockerfile.contains(&format!(r#"ENV AIRBYTE_ENTRYPOINT="{binary}""#)));
    assert!(dockerfile.contains(&format!("LABEL io.airbyte.name=airbyte/{destination}")));
    assert!(
        dockerfile.contains("\nCOPY . .\n"),
        "the whole workspace is the build's input"
    );
    assert!(dockerfile.contains(&format!("cargo build --release --locked -p {destination}")));
    assert!(dockerfile.contains("--mount=type=cache,target=/usr/local/cargo/registry"));
}

/// What a destination folder holds, so that adding one touches no other: its crate, emulator,
/// spec files, docs page, metadata and icon, image, examples, tests, and PyAirbyte's default
/// path with the credentials the output is searched for.
pub fn assert_destination_folder_complete(folder: &Path) {
    let name = folder.file_name().unwrap().to_string_lossy().into_owned();
    for part in [
        "Cargo.toml".to_owned(),
        "src/main.rs".to_owned(),
        "src/lib.rs".to_owned(),
        "emulator/Cargo.toml".to_owned(),
        "emulator/src/main.rs".to_owned(),
        format!("emulator/src/bin/{name}-demo.rs"),
        "spec/spec.json".to_owned(),
        "spec/catalog.json".to_owned(),
        format!("docs/{name}.md"),
        "metadata.yaml".to_owned(),
        "icon.svg".to_owned(),
        "Dockerfile".to_owned(),
        "examples".to_owned(),
        "tests/e2e.rs".to_owned(),
        "tests/packaging.rs".to_owned(),
        "pyairbyte.py".to_owned(),
        "test-secrets".to_owned(),
    ] {
        assert!(
            folder.join(&part).exists(),
            "{} has no {part}",
            folder.display()
        );
    }
    // The scripts run `{name}-emulator` and `destination-{name}`.
    assert!(read(folder, "emulator/Cargo.toml").contains(&format!(r#"name = "{name}-emulator""#)));
    assert!(read(folder, "Cargo.toml").contains(&format!(r#"name = "destination-{name}""#)));
}

/// The package's `version` is the image's label and metadata.yaml's tag, under its repository.
pub fn assert_versions_agree(folder: &Path, destination: &str, version: &str) {
    assert!(read(folder, "Dockerfile").contains(&format!("LABEL io.airbyte.version={version}")));
    let metadata = read(folder, "metadata.yaml");
    assert!(metadata.contains(&format!("dockerImageTag: {version}")));
    assert!(metadata.contains(&format!("dockerRepository: airbyte/{destination}")));
}
