//! A short, deterministic fuzz run of every target in `src/fuzz.rs` on the stable toolchain:
//! the seeds under `fuzz/seeds/TARGET` (and the NMEA captures under `tests/captures`), then
//! random mutations of them (bit flips, byte edits, splices, truncations) and random bytes.
//! Each target checks its own invariants; a failure prints the target and the input in hex.
//!
//! `FUZZ_SMOKE_ITERS=N` sets the mutations per target (default 5000; a fifth of that for
//! `nmea`, whose inputs are whole captures); the long,
//! coverage-guided runs are `cargo +nightly fuzz run TARGET` in `fuzz/`.

use std::path::Path;

/// xorshift64*: deterministic across versions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("fuzz/seeds").join(target)];
    if target == "nmea" {
        dirs.push(root.join("tests/captures"));
    }
    let mut out = Vec::new();
    for dir in dirs {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        entries.sort();
        for p in entries {
            let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            // Big captures: their first stretch is seed enough.
            out.push(data[..data.len().min(4 * 1024)].to_vec());
        }
    }
    assert!(!out.is_empty(), "no seeds for {target}");
    out
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut d = seeds[rng.below(seeds.len())].clone();
    if rng.below(20) == 0 {
        return (0..rng.below(300)).map(|_| rng.next() as u8).collect();
    }
    for _ in 0..1 + rng.below(6) {
        let len = d.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                d[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                d[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(len + 1);
                let b = [b',', b'*', b'$', b'\n', b'\r', b'.', b'-', b'=', b'"', b'[', b'0', b'9', 0, 0xff]
                    [rng.below(14)];
                d.insert(i, b);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                d.remove(i);
            }
            4 => d.truncate(rng.below(len + 1)),
            5 => {
                // Splice in a piece of another seed.
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = a + rng.below(other.len() - a + 1).min(64);
                    let at = rng.below(len + 1);
                    d.splice(at..at, other[a..b].iter().copied());
                }
            }
            _ if len > 0 => {
                // Duplicate a stretch (repeated sentences, repeated keys).
                let a = rng.below(len);
                let b = (a + rng.below(64)).min(len);
                let piece = d[a..b].to_vec();
                let at = rng.below(d.len() + 1);
                d.splice(at..at, piece);
            }
            _ => {}
        }
    }
    d
}

#[test]
fn every_fuzz_target_survives_a_smoke_run() {
    let iters: usize = std::env::var("FUZZ_SMOKE_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000);
    for (name, target) in stratum1::fuzz::TARGETS {
        let iters = if name == "nmea" { iters / 5 } else { iters };
        let started = std::time::Instant::now();
        let seeds = seeds(name);
        let mut rng = Rng(0x5eed ^ (name.len() as u64 * 0x9e37_79b9));
        let inputs = seeds.iter().cloned().chain((0..iters).map(|_| mutate(&mut rng, &seeds)));
        for (i, input) in inputs.enumerate() {
            let r = std::panic::catch_unwind(|| target(&input));
            if r.is_err() {
                let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
                panic!("fuzz target {name} failed on input #{i} ({} bytes): {hex}", input.len());
            }
        }
        eprintln!(
            "fuzz smoke: {name}: {} seeds + {iters} mutations in {:.1?}",
            seeds.len(),
            started.elapsed()
        );
    }
}
