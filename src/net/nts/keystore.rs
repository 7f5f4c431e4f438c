//! The cookie master keys on disk, so cookies issued before a restart still open after it.
//!
//! One key per line, `id created_unix_s key_hex`, newest first, under a comment; written to a
//! temporary file (mode 0600) and renamed over the old one, so a crash leaves either file whole.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, bail};

use super::aead::{KEY_LEN, Key};
use super::cookie::{CookieKeys, MasterKey};

/// Default location (the systemd unit's StateDirectory).
pub(crate) const DEFAULT_PATH: &str = "/var/lib/stratum1/nts-keys";

/// Reads the keys; `Ok(None)` when the file does not exist.
pub(crate) fn read(path: &Path) -> anyhow::Result<Option<CookieKeys>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read NTS keys from {}", path.display())),
    };
    parse(&text).with_context(|| format!("NTS key file {}", path.display()))
}

pub(crate) fn parse(text: &str) -> anyhow::Result<Option<CookieKeys>> {
    let mut keys = vec![];
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [id, created, key] = parts[..] else {
            bail!("line {}: expected `id created key`", i + 1);
        };
        let id = u32::from_str_radix(id, 16).with_context(|| format!("line {}: key id", i + 1))?;
        let created: u64 = created.parse().with_context(|| format!("line {}: creation time", i + 1))?;
        let key = from_hex(key).with_context(|| format!("line {}: key", i + 1))?;
        keys.push(MasterKey { id, created, key });
    }
    Ok(CookieKeys::from_keys(keys))
}

pub(crate) fn format(keys: &CookieKeys) -> String {
    let mut s = String::from("# stratum1 NTS cookie keys: id created_unix_s key. Secret: keep mode 0600.\n");
    for k in keys.keys() {
        s.push_str(&format!("{:08x} {} {}\n", k.id, k.created, to_hex(&k.key.0)));
    }
    s
}

/// Writes the keys atomically with owner-only permissions.
pub fn write(path: &Path, keys: &CookieKeys) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let result = (|| -> std::io::Result<()> {
        let mut f =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(format(keys).as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.with_context(|| format!("cannot write NTS keys to {}", path.display()))
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn from_hex(s: &str) -> anyhow::Result<Key> {
    if s.len() != 2 * KEY_LEN || !s.is_ascii() {
        bail!("expected {} hex digits", 2 * KEY_LEN);
    }
    let mut k = [0u8; KEY_LEN];
    for (i, b) in k.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).context("not hex")?;
    }
    Ok(Key(k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn round_trip_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        assert!(read(&path).unwrap().is_none());
        let keys = CookieKeys::generate(1_800_000_000).rotated(1_800_086_400);
        write(&path, &keys).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(read(&path).unwrap(), Some(keys));
    }

    #[test]
    fn bad_lines_are_named() {
        let e = parse("# c\n0000abcd 12 00\n").unwrap_err();
        assert!(format!("{e:#}").contains("line 2"), "{e:#}");
        let e = parse("zz 12 00\n").unwrap_err();
        assert!(format!("{e:#}").contains("key id"), "{e:#}");
        assert!(parse("\n# nothing\n").unwrap().is_none());
    }
}
