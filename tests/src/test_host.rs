//! Test hosts: network namespaces with their own addresses, made by a test, so that several
//! daemons run as on several machines. Each host is a namespace joined to this one by a veth
//! pair on its own /30: the host has `address`, this side has `gateway` (where a test puts
//! what the host must reach, e.g. a relay to PostgreSQL). Nothing routes beyond the pair.
//!
//! Invariants: made only by root with `ip` (iproute2) present ([`TestHost::available`]);
//! once available, every failure to make one panics with what `ip` said; a host is deleted,
//! with its link, when its handle drops.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// The /16 test hosts take their /30 links from: private, and unlikely to be in use on a test
/// machine (RFC 1918).
const LINK_NETWORK: [u8; 2] = [10, 213];

/// One test host (see the module doc).
pub struct TestHost {
    name: String,
    /// The host's own address.
    pub address: Ipv4Addr,
    /// This side's end of the link, reachable from the host.
    pub gateway: Ipv4Addr,
}

impl TestHost {
    /// Whether this process can make test hosts: root, with `ip` installed.
    pub fn available() -> bool {
        // SAFETY: geteuid(2) has no preconditions and touches no memory.
        let root = unsafe { libc::geteuid() } == 0;
        root && Command::new("ip")
            .arg("-V")
            .output()
            .is_ok_and(|output| output.status.success())
    }

    /// A new host; `None` when [`TestHost::available`] is false.
    pub fn create() -> Option<TestHost> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        if !Self::available() {
            return None;
        }
        let number = COUNTER.fetch_add(1, Ordering::Relaxed);
        // 16,384 /30 links in the /16: spread by process so concurrent test binaries differ.
        let link = (std::process::id().wrapping_mul(64).wrapping_add(number)) % 16_384;
        let base = link * 4;
        let octets = |last: u32| {
            Ipv4Addr::new(
                LINK_NETWORK[0],
                LINK_NETWORK[1],
                u8::try_from(base / 256).expect("< 256"),
                u8::try_from(base % 256 + last).expect("< 256"),
            )
        };
        let host = TestHost {
            name: format!("toolgate-{}-{number}", std::process::id()),
            address: octets(2),
            gateway: octets(1),
        };
        let (outside, inside) = (format!("tg{link}o"), format!("tg{link}i"));
        ip(&["netns", "add", &host.name]);
        ip(&[
            "link", "add", &outside, "type", "veth", "peer", "name", &inside, "netns", &host.name,
        ]);
        ip(&[
            "addr",
            "add",
            &format!("{}/30", host.gateway),
            "dev",
            &outside,
        ]);
        ip(&["link", "set", &outside, "up"]);
        ip(&[
            "-n",
            &host.name,
            "addr",
            "add",
            &format!("{}/30", host.address),
            "dev",
            &inside,
        ]);
        ip(&["-n", &host.name, "link", "set", &inside, "up"]);
        ip(&["-n", &host.name, "link", "set", "lo", "up"]);
        Some(host)
    }

    /// `program` to be run inside this host (its network namespace only: the filesystem,
    /// users and everything else are this machine's).
    pub fn command(&self, program: &Path) -> Command {
        let namespace = File::open(format!("/run/netns/{}", self.name))
            .unwrap_or_else(|e| panic!("open the namespace of {}: {e}", self.name));
        let mut command = Command::new(program);
        // SAFETY: runs in the child between fork and exec, calling only setns(2), which is
        // async-signal-safe; `namespace` stays open (moved into the closure) until then.
        unsafe {
            command.pre_exec(move || {
                if libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        command
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the veth pair, and with it the pair.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Runs `ip ARGS`; panics with its output when it fails.
fn ip(args: &[&str]) {
    let output = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run ip {args:?}: {e}"));
    assert!(
        output.status.success(),
        "ip {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
