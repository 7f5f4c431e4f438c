//! Serving benchmark: stratum1 against chronyd, side by side, on loopback.
//!
//! For each server: the highest open-loop request rate answered with < 1% loss (a rate search
//! of short trials, repeated and interleaved between the servers so that noise from other
//! processes hits both alike), then p50/p99 reply latency at half that rate. Then resident
//! memory of a rate-limited stratum1 under a flood from a million distinct source addresses.
//!
//! Fairness: both servers run as their own process on the same CPU set (`--server-cpus`,
//! default CPU 0) and the generator busy-polls on the rest (`--load-cpus`, default CPU 1).
//! chronyd is single-threaded; stratum1 starts one worker per CPU it is allowed. All three run
//! at `--nice` (default -20, needs root) so that other work on a shared machine disturbs
//! neither server more than the other.
//!
//! `cargo bench --bench serve` (see benches/README.md); `-- --help` lists the options.

mod child;
mod flood;
mod load;
mod mmsg;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use stratum1::net::ratelimit::RateParams;

struct Opts {
    server_cpus: String,
    load_cpus: String,
    trial: Duration,
    repeats: usize,
    sockets: usize,
    flood: u32,
    flood_rate: f64,
    workers: usize,
    chrony: bool,
    with_limiter: bool,
    /// Also run a stratum1 with interleaved mode off, to see what it costs basic requests.
    basic_only: bool,
    /// Flood with requests in interleaved form.
    flood_interleaved: bool,
    nice: i32,
}

const HELP: &str = "\
usage: serve [--server-cpus LIST] [--load-cpus LIST] [--trial-ms N] [--repeats N]
             [--sockets N] [--flood N] [--flood-rate PPS] [--workers N] [--no-chrony]
             [--no-limiter] [--basic-only] [--flood-interleaved] [--nice N]
       serve serve --listen ADDR [--rate-limit INTERVAL_S,BURST] [--workers N] [--no-interleaved]   (internal)";

fn parse_opts(args: &[String]) -> anyhow::Result<Opts> {
    let mut o = Opts {
        server_cpus: "0".into(),
        load_cpus: "1".into(),
        trial: Duration::from_millis(1000),
        repeats: 3,
        sockets: 8,
        flood: 1_000_000,
        flood_rate: 100_000.0,
        workers: 0,
        chrony: true,
        with_limiter: true,
        basic_only: false,
        flood_interleaved: false,
        nice: -20,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--bench" => {}
            "--server-cpus" => o.server_cpus = val()?.clone(),
            "--load-cpus" => o.load_cpus = val()?.clone(),
            "--trial-ms" => o.trial = Duration::from_millis(val()?.parse()?),
            "--repeats" => o.repeats = val()?.parse()?,
            "--sockets" => o.sockets = val()?.parse()?,
            "--flood" => o.flood = val()?.parse()?,
            "--flood-rate" => o.flood_rate = val()?.parse()?,
            "--workers" => o.workers = val()?.parse()?,
            "--no-chrony" => o.chrony = false,
            "--no-limiter" => o.with_limiter = false,
            "--basic-only" => o.basic_only = true,
            "--flood-interleaved" => o.flood_interleaved = true,
            "--nice" => o.nice = val()?.parse()?,
            "-h" | "--help" => {
                println!("{HELP}");
                std::process::exit(0);
            }
            other => bail!("unknown option {other:?}\n{HELP}"),
        }
    }
    Ok(o)
}

fn cpu_list(s: &str) -> anyhow::Result<Vec<usize>> {
    let mut v = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => v.extend(a.parse::<usize>()?..=b.parse::<usize>()?),
            None => v.push(part.parse()?),
        }
    }
    Ok(v)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        let mut listen = None;
        let mut rate_limit = None;
        let mut workers = 0;
        let mut interleaved = true;
        let mut it = args[1..].iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--listen" => listen = Some(it.next().context("--listen ADDR")?.parse()?),
                "--rate-limit" => {
                    let v = it.next().context("--rate-limit INTERVAL_S,BURST")?;
                    let (i, b) = v.split_once(',').context("--rate-limit INTERVAL_S,BURST")?;
                    rate_limit = Some((i.parse()?, b.parse()?));
                }
                "--workers" => workers = it.next().context("--workers N")?.parse()?,
                "--no-interleaved" => interleaved = false,
                other => bail!("serve: unknown option {other:?}"),
            }
        }
        return child::run(listen.context("serve needs --listen")?, rate_limit, workers, interleaved);
    }
    let opts = parse_opts(&args)?;
    bench(&opts)
}

/// A server process under test, pinned to the server CPUs; killed on drop.
struct Server {
    name: &'static str,
    addr: SocketAddrV4,
    /// The rate limiter's table size, as the server reported it.
    table_bytes: u64,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<BufReader<ChildStdout>>,
}

impl Server {
    /// `rate_limit`: (interval s, burst), or `None` for `rate_limit = false`.
    fn stratum1(
        opts: &Opts,
        name: &'static str,
        addr: SocketAddrV4,
        rate_limit: Option<(f64, u32)>,
        interleaved: bool,
    ) -> anyhow::Result<Server> {
        let exe = std::env::current_exe()?;
        let mut cmd = Command::new("nice");
        cmd.args(["-n", &opts.nice.to_string(), "taskset", "-c", &opts.server_cpus]).arg(exe).args([
            "serve",
            "--listen",
            &addr.to_string(),
        ]);
        cmd.args(["--workers", &opts.workers.to_string()]);
        if let Some((interval, burst)) = rate_limit {
            cmd.args(["--rate-limit", &format!("{interval},{burst}")]);
        }
        if !interleaved {
            cmd.arg("--no-interleaved");
        }
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().context("start stratum1")?;
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().context("stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        if !line.starts_with("ready") {
            bail!("stratum1 server did not start: {line:?}");
        }
        eprintln!("stratum1: {}", line.trim());
        let table_bytes = line.split("table_bytes=").nth(1).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        Ok(Server { name, addr, table_bytes, child, stdin, stdout: Some(stdout) })
    }

    fn chronyd(opts: &Opts, addr: SocketAddrV4, workdir: &Path) -> anyhow::Result<Server> {
        let chronyd = peers_root()?.join("usr/sbin/chronyd");
        std::fs::create_dir_all(workdir)?;
        // The config the brief asks for: local stratum 1, no ratelimit directive, allow all.
        let child = Command::new("nice")
            .args(["-n", &opts.nice.to_string(), "taskset", "-c", &opts.server_cpus])
            .args(["setpriv", "--bounding-set=-sys_time", "--"])
            .arg(&chronyd)
            .args(["-d", "-x", "-u", "nobody", "-f", "/dev/null"])
            .arg(format!("port {}", addr.port()))
            .arg(format!("bindaddress {}", addr.ip()))
            .arg("local stratum 1")
            .arg("allow all")
            .arg("cmdport 0")
            .arg(format!("pidfile {}", workdir.join("chronyd-bench.pid").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("start {}", chronyd.display()))?;
        let s = Server { name: "chronyd", addr, table_bytes: 0, child, stdin: None, stdout: None };
        s.wait_answering()?;
        eprintln!("chronyd: serving on {addr} (pid {})", s.child.id());
        Ok(s)
    }

    /// Waits until the server answers a request as a synchronised server.
    fn wait_answering(&self) -> anyhow::Result<()> {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
        sock.set_read_timeout(Some(Duration::from_millis(200)))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut req = [0u8; 48];
        req[0] = 0x23;
        req[40] = 1;
        while Instant::now() < deadline {
            sock.send_to(&req, self.addr)?;
            let mut buf = [0u8; 128];
            if let Ok((n, _)) = sock.recv_from(&mut buf)
                && n >= 48
                && buf[0] >> 6 != 3
                && buf[1] == 1
            {
                return Ok(());
            }
        }
        bail!("{} on {} never answered as a synchronised stratum 1", self.name, self.addr)
    }

    fn stats(&mut self) -> anyhow::Result<String> {
        let (Some(i), Some(o)) = (self.stdin.as_mut(), self.stdout.as_mut()) else {
            return Ok(String::new());
        };
        writeln!(i, "stats")?;
        let mut line = String::new();
        o.read_line(&mut line)?;
        Ok(line.trim().to_string())
    }

    fn status(&self) -> anyhow::Result<(u64, u64)> {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kib = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok((kib("VmRSS:"), kib("VmHWM:")))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn peers_root() -> anyhow::Result<PathBuf> {
    let script = repo_root().join("scripts/fetch-peers.sh");
    let ok = Command::new("flock").arg(repo_root().join("target/peers.lock")).arg(&script).status()?;
    if !ok.success() {
        bail!("{} failed: chronyd from Debian is needed for the comparison", script.display());
    }
    Ok(std::env::var_os("STRATUM1_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/peers"))
        .join("root"))
}

struct Search {
    max_rate: f64,
    /// The lowest failing rate was the generator's failure, not the server's: the server's
    /// true maximum may be higher.
    generator_limited: bool,
    /// (rate, loss, generator drops, server socket drops, achieved send rate)
    trials: Vec<(f64, f64, u64, u64, f64)>,
}

struct Trial {
    out: load::Outcome,
    /// Requests the server's socket dropped (its queue was full).
    server_drops: u64,
}

impl Trial {
    /// Whether the generator lost or failed to send more than a fraction of the load itself.
    fn generator_limited(&self, rate: f64) -> bool {
        self.out.achieved_rate < 0.97 * rate || self.out.generator_drops as f64 > 0.002 * self.out.sent as f64
    }
}

fn trial(opts: &Opts, target: SocketAddrV4, rate: f64, duration: Duration) -> anyhow::Result<Trial> {
    let before = load::udp_drops(&[target.port()]);
    let out = load::run(&load::Load { target, rate, duration, sockets: opts.sockets })?;
    let server_drops = load::udp_drops(&[target.port()]) - before;
    if out.invalid > 0 || out.oversized > 0 {
        bail!("{target}: {} invalid and {} oversized replies at {rate:.0}/s", out.invalid, out.oversized);
    }
    std::thread::sleep(Duration::from_millis(100));
    Ok(Trial { out, server_drops })
}

/// Doubles the rate until loss reaches 1%, then bisects to within 2%.
fn search(opts: &Opts, target: SocketAddrV4) -> anyhow::Result<Search> {
    let mut s = Search { max_rate: 0.0, generator_limited: false, trials: Vec::new() };
    let (mut lo, mut hi) = (0.0f64, f64::INFINITY);
    let mut rate = 20_000.0;
    for _ in 0..16 {
        let t = trial(opts, target, rate, opts.trial)?;
        let loss = t.out.loss();
        s.trials.push((rate, loss, t.out.generator_drops, t.server_drops, t.out.achieved_rate));
        if t.generator_limited(rate) {
            // Not the server's limit: what we know is only that the maximum is at least `lo`.
            s.generator_limited = true;
            hi = rate;
        } else if loss < 0.01 {
            lo = rate;
        } else {
            // The server lost requests: this upper bound is the server's own.
            s.generator_limited = false;
            hi = rate;
        }
        if hi.is_finite() && hi - lo <= 0.02 * hi {
            break;
        }
        rate = if hi.is_finite() { (lo + hi) / 2.0 } else { rate * 2.0 };
    }
    s.max_rate = lo;
    Ok(s)
}

/// Gives the generator and both servers (children inherit all of it) the same high priority.
/// With autogroup scheduling a nice value only counts inside its session, so the bench starts
/// its own session and sets that group's nice; per-thread nice then keeps the three equal.
fn prioritise(nice: i32) {
    // SAFETY: prctl/setsid/setpriority take plain integers and affect only this process.
    unsafe {
        // Die with `cargo bench` even though we leave its session.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        libc::setsid();
        if libc::setpriority(libc::PRIO_PROCESS, 0, nice) != 0 {
            eprintln!("note: cannot renice the generator: {}", std::io::Error::last_os_error());
        }
    }
    if std::path::Path::new("/proc/self/autogroup").exists()
        && let Err(e) = std::fs::write("/proc/self/autogroup", nice.to_string())
    {
        eprintln!("note: cannot set the autogroup's nice to {nice}: {e}");
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bench(opts: &Opts) -> anyhow::Result<()> {
    let load_cpus = cpu_list(&opts.load_cpus)?;
    mmsg::pin_to(&load_cpus).context("pin the generator")?;
    prioritise(opts.nice);
    let workdir = repo_root().join("target/tmp/bench-serve");
    let s1 = Server::stratum1(opts, "stratum1", "127.0.0.1:12301".parse()?, None, true)?;
    s1.wait_answering()?;
    let mut servers = vec![s1];
    if opts.chrony {
        servers.push(Server::chronyd(opts, "127.0.0.1:12302".parse()?, &workdir)?);
    }
    if opts.with_limiter {
        // The pool configuration's per-packet path (access lists + a rate-table lookup for
        // every request), with limits far above the generator's per-address rate.
        let s = Server::stratum1(
            opts,
            "stratum1+ratelimit",
            "127.0.0.1:12304".parse()?,
            Some((1e-6, 1000)),
            true,
        )?;
        s.wait_answering()?;
        servers.push(s);
    }
    if opts.basic_only {
        let s = Server::stratum1(opts, "stratum1-basic-only", "127.0.0.1:12305".parse()?, None, false)?;
        s.wait_answering()?;
        servers.push(s);
    }
    let mut maxima: Vec<Vec<f64>> = vec![Vec::new(); servers.len()];
    let mut limited = vec![false; servers.len()];
    for r in 0..opts.repeats {
        for (i, s) in servers.iter().enumerate() {
            let res = search(opts, s.addr)?;
            let trials: Vec<String> = res
                .trials
                .iter()
                .map(|(r, l, g, d, a)| {
                    let mut gen_mark = if *g > 0 { format!(",gen-drop {g}") } else { String::new() };
                    if *a < 0.97 * r {
                        gen_mark += &format!(",gen-sent {:.0}k/s", a / 1e3);
                    }
                    format!("{:.0}k:{:.2}%(srv-drop {d}{gen_mark})", r / 1e3, l * 100.0)
                })
                .collect();
            eprintln!(
                "round {} {:>8}: max {:>7.0}/s{}  [{}]",
                r + 1,
                s.name,
                res.max_rate,
                if res.generator_limited { " (generator-limited)" } else { "" },
                trials.join(" ")
            );
            maxima[i].push(res.max_rate);
            limited[i] |= res.generator_limited;
        }
    }
    let mut report = Vec::new();
    let medians: Vec<f64> = maxima.iter_mut().map(|m| median(m)).collect();
    // Latency is also compared at one common rate, half the slower server's maximum.
    let common = medians.iter().copied().fold(f64::INFINITY, f64::min) / 2.0;
    // Latency trials alternate between the servers too; the median of the rounds is kept.
    let mut lat: Vec<[Vec<f64>; 4]> = vec![Default::default(); servers.len()];
    let mut half_loss = vec![0.0f64; servers.len()];
    for _ in 0..opts.repeats {
        for (i, s) in servers.iter().enumerate() {
            let half = trial(opts, s.addr, medians[i] / 2.0, Duration::from_secs(2))?.out;
            let at_common = trial(opts, s.addr, common, Duration::from_secs(2))?.out;
            half_loss[i] = half_loss[i].max(half.loss());
            lat[i][0].push(half.percentile_us(0.5));
            lat[i][1].push(half.percentile_us(0.99));
            lat[i][2].push(at_common.percentile_us(0.5));
            lat[i][3].push(at_common.percentile_us(0.99));
        }
    }
    for (i, s) in servers.iter_mut().enumerate() {
        let max = medians[i];
        let [p50, p99, c50, c99] = lat[i].clone().map(|mut v| median(&mut v));
        let (rss, hwm) = s.status()?;
        let stats = s.stats()?;
        eprintln!(
            "{:>8}: max {max:.0}/s at <1% loss; at {:.0}/s: p50 {p50:.1} µs, p99 {p99:.1} µs (worst loss {:.3}%); \
             at {common:.0}/s: p50 {c50:.1} µs, p99 {c99:.1} µs; VmRSS {rss} kB, VmHWM {hwm} kB {stats}",
            s.name,
            max / 2.0,
            half_loss[i] * 100.0,
        );
        report.push(serde_json::json!({
            "max_rate": max, "max_rates": maxima[i], "generator_limited": limited[i],
            "half_rate": max / 2.0, "p50_us": p50, "p99_us": p99, "half_loss": half_loss[i],
            "common_rate": common, "common_p50_us": c50, "common_p99_us": c99,
            "vm_rss_kib": rss, "vm_hwm_kib": hwm,
        }));
    }
    let servers_names: Vec<&str> = servers.iter().map(|s| s.name).collect();
    drop(servers);

    // Memory under a flood from a million distinct addresses, rate limiting on.
    let mut flood_report = serde_json::Value::Null;
    if opts.flood > 0 {
        let defaults = (RateParams::DEFAULT_INTERVAL_S, RateParams::DEFAULT_BURST);
        let mut s = Server::stratum1(opts, "stratum1", "127.0.0.1:12303".parse()?, Some(defaults), true)?;
        let table_bytes = s.table_bytes;
        let (idle_rss, _) = s.status()?;
        let t0 = Instant::now();
        let sent = flood::run(s.addr, opts.flood, opts.flood_rate, opts.flood_interleaved)?;
        std::thread::sleep(Duration::from_millis(500));
        let (rss, hwm) = s.status()?;
        let stats = s.stats()?;
        let grown_kib = hwm.saturating_sub(idle_rss);
        eprintln!(
            "flood: {sent} requests from {} distinct addresses in {:.1} s; stratum1 VmRSS idle {idle_rss} kB, \
             after {rss} kB, VmHWM {hwm} kB (grew {grown_kib} kB; rate table {} kB, allocated at start) {stats}",
            opts.flood,
            t0.elapsed().as_secs_f64(),
            table_bytes / 1024
        );
        flood_report = serde_json::json!({
            "addresses": opts.flood, "sent": sent, "idle_rss_kib": idle_rss, "rss_kib": rss,
            "hwm_kib": hwm, "table_kib": table_bytes / 1024, "interleaved_form": opts.flood_interleaved, "server_stats": serde_json::from_str::<serde_json::Value>(&stats).ok(),
        });
        if grown_kib > 1024 {
            bail!(
                "stratum1 grew by {grown_kib} kB under the address flood: memory is not bounded by the table"
            );
        }
    }

    let ratio = opts.chrony.then(|| medians[0] / medians[1]);
    let by_name = |n: &str| servers_names.iter().position(|&s| s == n).map(|i| report[i].clone());
    let result = serde_json::json!({
        "stratum1": report[0],
        "chronyd": by_name("chronyd"),
        "stratum1_ratelimit": by_name("stratum1+ratelimit"),
        "stratum1_basic_only": by_name("stratum1-basic-only"),
        "ratio": ratio,
        "flood": flood_report,
        "server_cpus": opts.server_cpus, "load_cpus": opts.load_cpus, "repeats": opts.repeats,
    });
    println!("{result}");
    if let Some(r) = ratio {
        eprintln!("stratum1 / chronyd max rate: {r:.2}x");
    }
    Ok(())
}
