//! No Docker engine runs here: the image is checked by reading its Dockerfile, and the version
//! by reading Cargo.toml, the Dockerfile's label and metadata.yaml.

use std::path::Path;

fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

#[test]
fn the_image_is_multi_stage_runs_as_airbyte_and_names_this_destination() {
    let dockerfile = read("Dockerfile");
    let from: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(from.len(), 2, "{from:?}");
    assert!(from[0].starts_with("FROM rust:") && from[0].ends_with(" AS builder"));
    assert!(from[1].starts_with("FROM debian:") && from[1].contains("slim"));
    assert!(dockerfile.contains("USER airbyte"));
    assert!(dockerfile.contains(r#"ENTRYPOINT ["/usr/local/bin/destination-trackops"]"#));
    assert!(dockerfile.contains("LABEL io.airbyte.name=airbyte/destination-trackops"));
    // Every workspace member's manifest is in the build context, or cargo cannot load it.
    let workspace =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml"))
            .unwrap();
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

#[test]
fn versions_agree_across_cargo_dockerfile_and_metadata() {
    let version = env!("CARGO_PKG_VERSION");
    assert!(read("Dockerfile").contains(&format!("LABEL io.airbyte.version={version}")));
    assert!(read("metadata.yaml").contains(&format!("dockerImageTag: {version}")));
    assert!(read("metadata.yaml").contains("dockerRepository: airbyte/destination-trackops"));
}
