//! The proxies whose `X-Forwarded-For` header is believed (`PUSHGATE_TRUSTED_PROXIES`):
//! behind a load balancer or an ingress the TCP peer of every push is the proxy, and only
//! the header it adds names the sender. Anyone else can write that header, so it is read
//! only when the peer is one of these networks.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use super::layers::{var_name, Layers};

/// Networks of trusted proxies, IPv4 and IPv6; empty (the default): none is trusted and
/// the peer address is the client's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn new(networks: Vec<Cidr>) -> TrustedProxies {
        TrustedProxies(networks)
    }

    /// Whether `addr` is in one of the networks. An IPv4-mapped IPv6 address
    /// (`::ffff:10.0.0.1`, what a dual-stack socket reports for an IPv4 peer) is the IPv4
    /// address it carries, so `10.0.0.0/8` covers it as well.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        self.0.iter().any(|network| network.contains(addr))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Comma-separated networks; every entry that is not one is reported, so an operator
    /// fixes them all in one round. The file may also give a TOML list, which the layers
    /// hand over as the same comma-separated text.
    pub(super) fn read(layers: &mut Layers) -> TrustedProxies {
        let text = layers.text("trusted_proxies").unwrap_or_default();
        let mut networks = Vec::new();
        // An empty item (a trailing comma) names nothing.
        for item in text.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            match item.parse::<Cidr>() {
                Ok(network) => networks.push(network),
                Err(why) => layers.error(format!("{}: `{item}` {why}", var_name("trusted_proxies"))),
            }
        }
        TrustedProxies(networks)
    }
}

/// Printed as the list a TOML file would hold.
impl Serialize for TrustedProxies {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(ToString::to_string))
    }
}

/// One network: an address and the number of leading bits that name the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, addr: IpAddr) -> bool {
        let ((network, width), (addr, addr_width)) = (bits(self.network), bits(addr));
        width == addr_width && addr & mask(width, self.prefix) == network
    }
}

/// An address as a number, and its width in bits.
fn bits(addr: IpAddr) -> (u128, u8) {
    match addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

/// The leading `prefix` bits of a `width`-bit address set.
fn mask(width: u8, prefix: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    let all = if width == 128 { u128::MAX } else { (1u128 << width) - 1 };
    all & !((1u128 << (width - prefix)) - 1)
}

impl FromStr for Cidr {
    type Err = &'static str;

    /// `ADDRESS/PREFIX`, or a bare address for that one host (`/32`, `/128`).
    fn from_str(text: &str) -> Result<Cidr, &'static str> {
        const NOT_A_CIDR: &str = "is not a network like 10.0.0.0/8, 2001:db8::/32 or a single address";
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| NOT_A_CIDR)?;
        let (address, width) = bits(network);
        let prefix = match prefix {
            None => width,
            // Digits only: `u8` would also take `+8`.
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse::<u8>().map_err(|_| NOT_A_CIDR)?,
            Some(_) => return Err(NOT_A_CIDR),
        };
        if prefix > width {
            return Err("has a prefix longer than its address");
        }
        // `10.0.0.1/8` is most likely a typo for a host or for `10.0.0.0/8`: which one
        // decides who may speak for every sender, so it is refused rather than guessed.
        if address & mask(width, prefix) != address {
            return Err("has bits set after its prefix (write the network address, e.g. 10.0.0.0/8)");
        }
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_hold_their_addresses_and_no_others() {
        let ten = cidr("10.0.0.0/8");
        assert!(ten.contains(ip("10.0.0.0")) && ten.contains(ip("10.255.255.255")));
        assert!(!ten.contains(ip("11.0.0.0")) && !ten.contains(ip("9.255.255.255")));
        let host = cidr("192.0.2.7");
        assert_eq!(host.to_string(), "192.0.2.7/32");
        assert!(host.contains(ip("192.0.2.7")) && !host.contains(ip("192.0.2.8")));
        let v6 = cidr("2001:db8::/32");
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")) && !ten.contains(ip("::a00:1")), "families never match each other");
        assert!(cidr("0.0.0.0/0").contains(ip("203.0.113.9")) && cidr("::/0").contains(ip("::1")));
        assert_eq!(cidr("::1").to_string(), "::1/128");
    }

    #[test]
    fn an_ipv4_mapped_peer_is_its_ipv4_address() {
        let proxies = TrustedProxies(vec![cidr("10.0.0.0/8")]);
        assert!(proxies.contains(ip("::ffff:10.1.2.3")));
        assert!(!proxies.contains(ip("::ffff:11.1.2.3")));
    }

    #[test]
    fn what_is_not_a_network_is_refused() {
        for bad in ["", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/+8", "10.0.0/8", "example.com/8", "10.0.0.0/8/8", " 10.0.0.0/8"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?} parsed");
        }
        let host_bits = "10.0.0.1/8".parse::<Cidr>().unwrap_err();
        assert!(host_bits.contains("after its prefix"), "{host_bits}");
        assert!("2001:db8::1/32".parse::<Cidr>().is_err());
    }
}
