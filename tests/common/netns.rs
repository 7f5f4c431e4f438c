//! Network namespaces a test makes itself: a "server" namespace and a "remote" one joined by
//! a veth pair (10.x.y.1 and 10.x.y.2), both with loopback up. Deleted on drop. Needs root.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::process::Command;

pub fn ip_cmd(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ip` (iproute2 is needed for this test): {e}"));
    assert!(
        out.status.success(),
        "`ip {}` failed (this test needs root): {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Runs `f` on a short-lived thread inside namespace `name`; sockets it creates stay there.
pub fn in_netns<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{name}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        // SAFETY: setns on a valid namespace fd only changes this (temporary) thread.
        let rc = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("namespace thread")
}

pub struct NetnsPair {
    pub server_ns: String,
    pub remote_ns: String,
    /// The server namespace's end of the veth pair.
    pub local: Ipv4Addr,
    /// The remote namespace's end.
    pub remote: Ipv4Addr,
}

impl NetnsPair {
    /// `tag` keeps names and addresses apart from other tests running at the same time.
    pub fn create(tag: &str, subnet: u8) -> NetnsPair {
        let id = std::process::id();
        let server_ns = format!("s1{tag}s{id}");
        let remote_ns = format!("s1{tag}r{id}");
        let (sv, rv) = (format!("{tag}s{}", id % 100_000), format!("{tag}r{}", id % 100_000));
        let local = Ipv4Addr::new(10, 198, subnet, 1);
        let remote = Ipv4Addr::new(10, 198, subnet, 2);
        for ns in [&server_ns, &remote_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            ip_cmd(&["netns", "add", ns]);
        }
        let pair = NetnsPair { server_ns, remote_ns, local, remote };
        ip_cmd(&["-n", &pair.server_ns, "link", "add", &sv, "type", "veth", "peer", "name", &rv]);
        ip_cmd(&["-n", &pair.server_ns, "link", "set", &rv, "netns", &pair.remote_ns]);
        for (n, dev, addr) in [(&pair.server_ns, &sv, local), (&pair.remote_ns, &rv, remote)] {
            ip_cmd(&["-n", n, "addr", "add", &format!("{addr}/30"), "dev", dev]);
            ip_cmd(&["-n", n, "link", "set", dev, "up"]);
            ip_cmd(&["-n", n, "link", "set", "lo", "up"]);
        }
        pair
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        // Deleting the namespaces deletes the veth pair with them.
        for ns in [&self.server_ns, &self.remote_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}
