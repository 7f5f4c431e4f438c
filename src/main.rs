fn main() -> std::process::ExitCode {
    stratum1::cli::main()
}
