fn main() -> std::process::ExitCode {
    destination_clientsuccess::cli::main()
}
