//! The image and the version, checked by reading files (no Docker engine runs here).

use emukit::packaging::{assert_image_builds_this_destination, assert_versions_agree};
use std::path::Path;

const FOLDER: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn the_image_is_multi_stage_runs_as_airbyte_and_names_this_destination() {
    assert_image_builds_this_destination(Path::new(FOLDER), "destination-revnue");
}

#[test]
fn versions_agree_across_cargo_dockerfile_and_metadata() {
    assert_versions_agree(
        Path::new(FOLDER),
        "destination-revnue",
        env!("CARGO_PKG_VERSION"),
    );
}
