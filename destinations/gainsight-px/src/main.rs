//! The `destination-gainsight-px` binary: everything is in the library and the engine.

fn main() -> std::process::ExitCode {
    engine::cli::main::<destination_gainsight_px::GainsightPx>()
}
