//! `stratum1-gen-docs OUT_DIR`: the man pages (`OUT_DIR/man/stratum1.1` and one page per
//! subcommand, `stratum1-refclock-test.1`…) and the shell completions
//! (`OUT_DIR/completions/{stratum1.bash,_stratum1,stratum1.fish}`), generated from the clap
//! definitions the binary itself parses with, so they cannot drift from it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap_complete::Shell;

fn main() -> anyhow::Result<()> {
    let out = std::env::args_os().nth(1).map(PathBuf::from).context("usage: stratum1-gen-docs OUT_DIR")?;
    let cmd = stratum1::cli::command();
    let man = out.join("man");
    std::fs::create_dir_all(&man).with_context(|| format!("creating {}", man.display()))?;
    write_pages(&cmd, "stratum1", &man)?;

    let completions = out.join("completions");
    std::fs::create_dir_all(&completions).with_context(|| format!("creating {}", completions.display()))?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = stratum1::cli::command();
        let path = clap_complete::generate_to(shell, &mut cmd, "stratum1", &completions)
            .with_context(|| format!("writing the {shell} completion"))?;
        println!("{}", path.display());
    }
    Ok(())
}

/// One page for `cmd` named `name`, then one per subcommand (`stratum1-config-check`).
fn write_pages(cmd: &clap::Command, name: &str, dir: &Path) -> anyhow::Result<()> {
    // The page's title and synopsis use the command's name: give subcommands their full one.
    // clap names are `&'static str` (without its "string" feature, which would rebuild the lib).
    let full: &'static str = Box::leak(name.to_string().into_boxed_str());
    let named = cmd.clone().name(full).bin_name(name.replace('-', " "));
    let path = dir.join(format!("{name}.1"));
    let mut buf = Vec::new();
    clap_mangen::Man::new(named).render(&mut buf).with_context(|| format!("rendering {name}"))?;
    std::fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))?;
    println!("{}", path.display());
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}
