//! The `destination-clientsuccess` binary: everything is in the library; see `cli::main`.

// The reader thread and the runtime allocate in parallel, per record; mimalloc's per-thread
// heaps avoid glibc's arena lock contention (about a fifth of the write path's CPU).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    destination_clientsuccess::cli::main()
}
