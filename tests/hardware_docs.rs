//! hardware/: ready configs parse, the wiring picture is well-formed SVG, guides link to files
//! that exist, and the Debian package's assets are all there.

use std::path::{Path, PathBuf};

use stratum1::config::{Config, RefclockKind};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn files(ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("hardware"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

#[test]
fn every_ready_config_parses_and_follows_pool_rules() {
    let configs = files("toml");
    assert!(configs.len() >= 5, "{configs:?}");
    for path in configs {
        let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let name = path.display();
        assert!(
            c.refclock.iter().any(|r| matches!(r.kind, RefclockKind::Nmea(_))),
            "{name}: no nmea refclock"
        );
        assert!((4..=7).contains(&c.upstream.len()), "{name}: {} upstreams", c.upstream.len());
        assert!(c.upstream.iter().all(|u| !u.address.contains("pool.ntp.org")), "{name}: pool as upstream");
        let has_pps = c.refclock.iter().any(|r| r.pps().is_some());
        assert_eq!(has_pps, !name.to_string().contains("usb-gps"), "{name}: PPS entry");
    }
}

#[test]
fn hat_guides_cover_the_facts() {
    let guides = [
        "adafruit-ultimate-gps-hat.md",
        "uputronics-gps-rtc-hat.md",
        "waveshare-l76x-hat.md",
        "ublox-neo-breakout.md",
        "usb-gps.md",
    ];
    for g in guides {
        let text = std::fs::read_to_string(root().join("hardware").join(g)).unwrap();
        let lower = text.to_lowercase();
        for topic in ["baud", "pps", "refclock test", ".toml"] {
            assert!(lower.contains(topic), "{g} does not mention {topic}");
        }
        if g != "usb-gps.md" {
            assert!(text.contains("dtoverlay=pps-gpio,gpiopin="), "{g}: no PPS overlay line");
            assert!(lower.contains("bias"), "{g}: no PPS bias");
        }
    }
    for b in ["board-pi3-pi4.md", "board-pi5.md", "board-cm4-cm5.md"] {
        let text = std::fs::read_to_string(root().join("hardware").join(b)).unwrap();
        assert!(text.contains("config.txt") && text.contains("cmdline.txt"), "{b}");
    }
}

#[test]
fn markdown_links_resolve() {
    for md in files("md") {
        let text = std::fs::read_to_string(&md).unwrap();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            let end = rest.find(')').expect("unclosed link");
            let target = &rest[..end];
            if !target.contains("://") && !target.starts_with('#') && !target.contains(' ') {
                let path = md.parent().unwrap().join(target.split('#').next().unwrap());
                assert!(path.exists(), "{}: link to missing {target}", md.display());
            }
        }
    }
}

#[test]
fn install_guide_tests_the_receiver_first() {
    let text = std::fs::read_to_string(root().join("hardware/INSTALL.md")).unwrap();
    let test = text.find("sudo stratum1 refclock test").expect("refclock test step");
    let enable = text.find("systemctl enable --now stratum1").expect("enable step");
    assert!(test < enable, "the receiver test comes before enabling the service");
    for must in
        ["apt install ./stratum1_", "scripts/package.sh", "cargo build --release", "arm64", "armhf", "pool"]
    {
        assert!(text.contains(must), "INSTALL.md lacks {must}");
    }
    for placeholder in ["OWNER", "<this repository>", "example.com", "example.org", "TODO"] {
        assert!(!text.contains(placeholder), "INSTALL.md has a placeholder: {placeholder}");
    }
}

/// The guide leads with the package: its first code block is the whole path from a fresh
/// Raspberry Pi OS to serving, in at most six commands, in the right order.
#[test]
fn install_guide_leads_with_six_commands() {
    let text = std::fs::read_to_string(root().join("hardware/INSTALL.md")).unwrap();
    let quick = text.find("## Quick install").expect("a quick install section");
    assert!(quick < text.find("## 1.").expect("the detailed steps"), "the quick path comes first");
    let block =
        text[quick..].split("```sh\n").nth(1).and_then(|b| b.split("```").next()).expect("a sh block");
    let commands: Vec<&str> =
        block.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    assert!(commands.len() <= 6, "{} commands: {commands:#?}", commands.len());
    let at =
        |what: &str| commands.iter().position(|c| c.contains(what)).unwrap_or_else(|| panic!("no {what}"));
    assert!(at("apt install ./stratum1_") < at("stratum1 refclock test"));
    assert!(at("stratum1 refclock test") < at("systemctl enable --now stratum1"));
}

/// Well-formed XML: balanced tags, quoted attributes, known entities.
fn check_xml(text: &str) -> Result<String, String> {
    let mut stack: Vec<String> = Vec::new();
    let mut root = None;
    let mut rest = text;
    let check_text = |t: &str| -> Result<(), String> {
        let mut s = t;
        while let Some(i) = s.find('&') {
            let end = s[i..].find(';').ok_or("unterminated entity")? + i;
            let ent = &s[i + 1..end];
            let ok = ["amp", "lt", "gt", "quot", "apos"].contains(&ent)
                || ent.strip_prefix("#x").is_some_and(|h| u32::from_str_radix(h, 16).is_ok())
                || ent.strip_prefix('#').is_some_and(|d| d.parse::<u32>().is_ok());
            if !ok {
                return Err(format!("bad entity &{ent};"));
            }
            s = &s[end + 1..];
        }
        if s.contains('<') { Err("stray <".into()) } else { Ok(()) }
    };
    while let Some(open) = rest.find('<') {
        check_text(&rest[..open])?;
        rest = &rest[open..];
        if let Some(r) = rest.strip_prefix("<!--") {
            rest = &r[r.find("-->").ok_or("unterminated comment")? + 3..];
            continue;
        }
        if let Some(r) = rest.strip_prefix("<?") {
            rest = &r[r.find("?>").ok_or("unterminated declaration")? + 2..];
            continue;
        }
        let close = rest.find('>').ok_or("unterminated tag")?;
        let tag = &rest[1..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let top = stack.pop().ok_or_else(|| format!("</{name}> without opening"))?;
            if top != name.trim() {
                return Err(format!("</{name}> closes <{top}>"));
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
        let name = &tag[..name_end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == ':' || c == '-') {
            return Err(format!("bad tag name {name:?}"));
        }
        let mut attrs = tag[name_end..].trim();
        while !attrs.is_empty() {
            let eq = attrs.find('=').ok_or_else(|| format!("attribute without value in <{name}>"))?;
            let q = attrs[eq + 1..].chars().next().ok_or("no quote")?;
            if q != '"' && q != '\'' {
                return Err(format!("unquoted attribute in <{name}>"));
            }
            let vend = attrs[eq + 2..].find(q).ok_or("unterminated attribute")? + eq + 2;
            check_text(&attrs[eq + 2..vend])?;
            attrs = attrs[vend + 1..].trim_start();
        }
        if root.is_none() {
            root = Some(tag.to_string());
        } else if stack.is_empty() {
            return Err("second root element".into());
        }
        if !self_closing {
            stack.push(name.to_string());
        }
    }
    check_text(rest)?;
    if !stack.is_empty() {
        return Err(format!("unclosed {stack:?}"));
    }
    root.ok_or_else(|| "no element".into())
}

#[test]
fn wiring_svg_is_well_formed() {
    let svgs = files("svg");
    assert!(!svgs.is_empty());
    for svg in svgs {
        let text = std::fs::read_to_string(&svg).unwrap();
        let root = check_xml(&text).unwrap_or_else(|e| panic!("{}: {e}", svg.display()));
        assert!(root.starts_with("svg ") && root.contains("xmlns=\"http://www.w3.org/2000/svg\""), "{root}");
        for label in ["GPIO 18", "TXD", "RXD", "PPS", "GND"] {
            assert!(text.contains(label), "{}: no {label}", svg.display());
        }
    }
    assert!(check_xml("<a><b></a></b>").is_err());
    assert!(check_xml("<a x=1/>").is_err());
    assert!(check_xml("<a>&nbsp;</a>").is_err());
    assert!(check_xml("<a/><b/>").is_err());
    assert!(check_xml("<?xml version=\"1.0\"?><!-- c --><a x='1'>&#8594;</a>").is_ok());
}

#[test]
fn package_files_exist_and_scripts_parse() {
    for s in ["postinst", "prerm", "postrm"] {
        let p = root().join("packaging/deb").join(s);
        let out = std::process::Command::new("sh").arg("-n").arg(&p).output().unwrap();
        assert!(out.status.success(), "{}: {}", p.display(), String::from_utf8_lossy(&out.stderr));
    }
    for f in [
        "packaging/deb/control",
        "packaging/deb/changelog",
        "packaging/deb/copyright",
        "packaging/deb/lintian-overrides",
        "systemd/stratum1.service",
        "systemd/stratum1.sysusers",
        "systemd/stratum1.tmpfiles",
        "systemd/stratum1.toml",
        "udev/60-stratum1.rules",
    ] {
        assert!(root().join(f).is_file(), "{f} missing");
    }
    // The changelog's version is the crate's, with a Debian revision.
    let changelog = std::fs::read_to_string(root().join("packaging/deb/changelog")).unwrap();
    let top = changelog.lines().next().unwrap();
    let expected = format!("stratum1 ({}-", env!("CARGO_PKG_VERSION"));
    assert!(top.starts_with(&expected), "changelog starts {top:?}, expected {expected}…");
    let control = std::fs::read_to_string(root().join("packaging/deb/control")).unwrap();
    let maintainer = control.lines().find_map(|l| l.strip_prefix("Maintainer: ")).expect("Maintainer");
    assert!(
        maintainer.contains('<') && maintainer.contains('@') && maintainer.ends_with('>'),
        "{maintainer}"
    );
    assert!(changelog.contains(&format!(" -- {maintainer}  ")), "changelog trailer names the maintainer");
}
