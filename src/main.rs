//! The `apitokens` binary: the command line in `apitokens::cli`.

fn main() -> std::process::ExitCode {
    apitokens::cli::main()
}
