//! The drift file: the learned frequency correction, kept across restarts so a cold start does
//! not have to learn the crystal again (chrony's `driftfile`: "freq_ppm skew_ppm").
//!
//! Parsing and formatting are pure; [`read`] and [`write_atomic`] are the thin IO. The write goes
//! to a temporary file in the same directory, is synced, then renamed over the old one, so a
//! crash or power cut leaves either the old or the new file, never half of one.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use super::system::MAX_FREQUENCY_PPM;

/// Default location (systemd's `StateDirectory=stratum1`).
pub(crate) const DEFAULT_PATH: &str = "/var/lib/stratum1/drift";

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Drift {
    /// Frequency correction that cancelled the crystal, ppm.
    pub(crate) freq_ppm: f64,
    /// How uncertain that was, ppm (1σ).
    pub(crate) sd_ppm: f64,
}

impl Drift {
    /// The uncertainty assumed when the file has none, or it is implausibly small: the crystal
    /// moves with temperature between runs.
    pub(crate) const MIN_SD_PPM: f64 = 0.5;

    pub(crate) fn parse(text: &str) -> Result<Drift, String> {
        let mut f = text.split_whitespace();
        let freq = f.next().ok_or("empty drift file")?;
        let freq_ppm: f64 = freq.parse().map_err(|_| format!("frequency {freq:?} is not a number"))?;
        if !freq_ppm.is_finite() || freq_ppm.abs() > MAX_FREQUENCY_PPM {
            return Err(format!("frequency {freq_ppm} ppm is outside ±{MAX_FREQUENCY_PPM} ppm"));
        }
        let sd_ppm = match f.next() {
            Some(s) => s.parse::<f64>().map_err(|_| format!("uncertainty {s:?} is not a number"))?,
            None => Self::MIN_SD_PPM,
        };
        if !sd_ppm.is_finite() || sd_ppm < 0.0 {
            return Err(format!("uncertainty {sd_ppm} ppm is not a positive number"));
        }
        Ok(Drift { freq_ppm, sd_ppm: sd_ppm.max(Self::MIN_SD_PPM) })
    }

    pub(crate) fn format(&self) -> String {
        format!("{:.6} {:.6}\n", self.freq_ppm, self.sd_ppm)
    }
}

/// Reads the drift file; `Ok(None)` when there is none yet (first start).
pub(crate) fn read(path: &Path) -> anyhow::Result<Option<Drift>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading drift file {}", path.display())),
    };
    Drift::parse(&text).map(Some).map_err(|e| anyhow::anyhow!("drift file {}: {e}", path.display()))
}

/// Replaces the drift file atomically (temporary file, fsync, rename, directory fsync).
pub(crate) fn write_atomic(path: &Path, drift: &Drift) -> anyhow::Result<()> {
    if path.is_dir() {
        anyhow::bail!("drift file {} is a directory: name a file in it", path.display());
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().with_context(|| format!("drift file path {} has no name", path.display()))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(drift.format().as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself is durable once the directory is synced.
        std::fs::File::open(dir)?.sync_all()
    };
    write()
        // Nothing half-written is left behind (the path may have become a directory since).
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
        .with_context(|| format!("writing drift file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chrony_style_and_bare_frequency() {
        assert_eq!(
            Drift::parse("  -12.345678   0.712345\n").unwrap(),
            Drift { freq_ppm: -12.345678, sd_ppm: 0.712345 }
        );
        assert_eq!(Drift::parse("3.5").unwrap(), Drift { freq_ppm: 3.5, sd_ppm: Drift::MIN_SD_PPM });
        // A tiny uncertainty from a calm day does not survive a restart.
        assert_eq!(Drift::parse("3.5 0.001").unwrap().sd_ppm, Drift::MIN_SD_PPM);
        for bad in ["", "abc", "900 0.1", "1.0 x", "NaN", "1.0 -2"] {
            assert!(Drift::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn write_is_atomic_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drift");
        assert_eq!(read(&path).unwrap(), None);
        let d = Drift { freq_ppm: -11.987654, sd_ppm: 0.5 };
        write_atomic(&path, &d).unwrap();
        assert_eq!(read(&path).unwrap(), Some(d));
        write_atomic(&path, &Drift { freq_ppm: 1.0, sd_ppm: 0.6 }).unwrap();
        assert_eq!(read(&path).unwrap().unwrap().freq_ppm, 1.0);
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        std::fs::write(&path, "garbage").unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("drift file") && e.contains("garbage"), "{e}");
    }

    #[test]
    fn a_directory_is_refused_and_nothing_is_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("state");
        std::fs::create_dir(&inner).unwrap();
        let e = write_atomic(&inner, &Drift { freq_ppm: 1.0, sd_ppm: 0.6 }).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no .state.tmp");
    }
}
