//! The `destination-revnue` binary: everything is in the library and the engine.

fn main() -> std::process::ExitCode {
    engine::cli::main::<destination_revnue::Revnue>()
}
