//! Pod IP allocation from the node's pod CIDR (IPv4 only).
//!
//! [`Ipv4Cidr`] parses `a.b.c.d/len`; [`Allocations`] hands out the hosts
//! of the range — never the network address, the first host (reserved, as
//! a bridge's gateway would be) or the broadcast address — lowest free
//! first, and never the same address to two holders. The runtime keeps
//! [`Allocations`] in `ipam.json` (see [`super::records`]) and rewrites it
//! atomically after every change. With a loopback CIDR such as
//! `127.10.1.0/24` every address already routes to `lo`, so a pod's
//! processes can bind their IP without any network setup or privileges.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::runtime::RuntimeError;

/// An IPv4 network `addr/prefix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Cidr {
    network: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Cidr {
    /// Parses `a.b.c.d/len`; refuses IPv6, host bits set, and ranges too
    /// small to hold a pod (`/31`, `/32`).
    pub fn parse(s: &str) -> Result<Self, RuntimeError> {
        let bad = |why: &str| RuntimeError::InvalidArgument(format!("pod CIDR {s:?}: {why}"));
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| bad("expected ADDRESS/PREFIX, e.g. 127.10.1.0/24"))?;
        if addr.contains(':') {
            return Err(bad("only IPv4 pod CIDRs are supported"));
        }
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix: u8 = len.parse().map_err(|_| bad("prefix is not a number"))?;
        if prefix > 30 {
            return Err(bad("prefix longer than /30 leaves no pod addresses"));
        }
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        if u32::from(addr) & !mask != 0 {
            return Err(bad("host bits are set (write the network address)"));
        }
        Ok(Self {
            network: addr,
            prefix,
        })
    }

    /// The addresses pods may get: after the network address and the
    /// reserved first host, up to before the broadcast address.
    fn pod_range(&self) -> std::ops::RangeInclusive<u32> {
        let base = u32::from(self.network);
        let size = 1u64 << (32 - u32::from(self.prefix));
        let last = base + (size - 2) as u32;
        (base + 2)..=last
    }

    /// Whether `ip` lies inside this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0);
        u32::from(ip) & mask == u32::from(self.network)
    }
}

impl std::fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Which address each sandbox holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Allocations {
    /// The CIDR these were made from (a changed pod CIDR drops them all).
    pub cidr: String,
    /// Address → sandbox id.
    pub by_ip: BTreeMap<Ipv4Addr, String>,
}

impl Allocations {
    /// No allocations yet, for `cidr`.
    pub fn new(cidr: &Ipv4Cidr) -> Self {
        Self {
            cidr: cidr.to_string(),
            by_ip: BTreeMap::new(),
        }
    }

    /// Gives `holder` the lowest free address (its existing one if it
    /// already holds one).
    pub fn allocate(&mut self, cidr: &Ipv4Cidr, holder: &str) -> Result<Ipv4Addr, RuntimeError> {
        if let Some((ip, _)) = self.by_ip.iter().find(|(_, h)| *h == holder) {
            return Ok(*ip);
        }
        let free = cidr
            .pod_range()
            .map(Ipv4Addr::from)
            .find(|ip| !self.by_ip.contains_key(ip))
            .ok_or_else(|| {
                RuntimeError::Failed(format!(
                    "pod CIDR {cidr} is exhausted: all {} pod addresses are in use",
                    self.by_ip.len()
                ))
            })?;
        self.by_ip.insert(free, holder.to_string());
        Ok(free)
    }

    /// Releases whatever `holder` holds; true if it held something.
    pub fn release(&mut self, holder: &str) -> bool {
        let before = self.by_ip.len();
        self.by_ip.retain(|_, h| h != holder);
        before != self.by_ip.len()
    }

    /// Keeps only the allocations whose holder `keep` accepts (used at
    /// start-up to drop addresses leaked by a crash between allocating and
    /// recording a sandbox); true if something was dropped.
    pub fn retain_holders(&mut self, mut keep: impl FnMut(&Ipv4Addr, &str) -> bool) -> bool {
        let before = self.by_ip.len();
        self.by_ip.retain(|ip, h| keep(ip, h));
        before != self.by_ip.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ipv4_and_refuses_the_rest() {
        let c = Ipv4Cidr::parse("127.10.1.0/24").unwrap();
        assert_eq!(c.to_string(), "127.10.1.0/24");
        assert!(c.contains(Ipv4Addr::new(127, 10, 1, 77)));
        assert!(!c.contains(Ipv4Addr::new(127, 10, 2, 1)));
        for bad in [
            "fd00::/64",
            "127.10.1.0",
            "127.10.1.1/24",
            "127.0.0.0/31",
            "x/8",
            "1.2.3.0/99",
        ] {
            let e = Ipv4Cidr::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
        assert!(
            Ipv4Cidr::parse("fd00::/64")
                .unwrap_err()
                .to_string()
                .contains("only IPv4")
        );
    }

    #[test]
    fn skips_network_gateway_and_broadcast_and_never_hands_out_twice() {
        let c = Ipv4Cidr::parse("127.10.1.0/29").unwrap();
        let mut a = Allocations::new(&c);
        let got: Vec<_> = (0..5)
            .map(|i| a.allocate(&c, &format!("s{i}")).unwrap())
            .collect();
        assert_eq!(got.first(), Some(&Ipv4Addr::new(127, 10, 1, 2)));
        assert_eq!(got.last(), Some(&Ipv4Addr::new(127, 10, 1, 6)));
        let e = a.allocate(&c, "s5").unwrap_err().to_string();
        assert!(e.contains("exhausted"), "{e}");
        // Idempotent for one holder.
        assert_eq!(a.allocate(&c, "s0").unwrap(), got[0]);
        // Released addresses come back, lowest first.
        assert!(a.release("s1"));
        assert!(!a.release("s1"));
        assert_eq!(a.allocate(&c, "s6").unwrap(), got[1]);
        let holders: std::collections::BTreeSet<_> = a.by_ip.values().collect();
        assert_eq!(holders.len(), a.by_ip.len());
    }

    #[test]
    fn retain_drops_leaked_addresses() {
        let c = Ipv4Cidr::parse("127.10.1.0/24").unwrap();
        let mut a = Allocations::new(&c);
        a.allocate(&c, "live").unwrap();
        let leaked = a.allocate(&c, "gone").unwrap();
        assert!(a.retain_holders(|_, h| h == "live"));
        assert_eq!(a.allocate(&c, "new").unwrap(), leaked);
    }
}
