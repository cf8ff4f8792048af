//! The `destination-clientsuccess` binary: everything is in the library; see `cli::main`.

fn main() -> std::process::ExitCode {
    destination_clientsuccess::cli::main()
}
