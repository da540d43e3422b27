//! The address a request came from, as rejections record it. Behind a load balancer or
//! an ingress the TCP peer is the proxy; each proxy appends the address it received the
//! request from to `X-Forwarded-For`, so the sender is the right-most entry that is not
//! itself a trusted proxy (`PUSHGATE_TRUSTED_PROXIES`).
//!
//! The header is read only when the peer is a trusted proxy: anyone can send one, and a
//! sender that writes its own would otherwise choose what its rejections say. Entries
//! are read from the right, because only the right end of the list was written by
//! proxies pushgate trusts; what lies left of the first untrusted address was written by
//! the sender (or by proxies nobody vouches for) and is never believed.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::http::HeaderMap;

use crate::config::TrustedProxies;

/// The client of a request whose TCP peer is `peer`.
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    if !trusted.contains(peer) {
        return peer;
    }
    // Several header lines are one list, in order (RFC 9110, section 5.3).
    let lines: Vec<Option<&str>> = headers.get_all("x-forwarded-for").iter().map(|v| v.to_str().ok()).collect();
    walk(peer, &lines, trusted)
}

/// From the trusted `peer` leftwards through `lines` (`None`: a line that is not text):
/// the first address that is not a trusted proxy. Every address passed on the way is a
/// trusted proxy, so when the list runs out the left-most of them is the furthest hop
/// known, and that is the answer.
///
/// An entry that is not an address (`unknown`, an obfuscated name, garbage) stops the
/// walk at the trusted hop that wrote it. Skipping it would believe the entries left of
/// it, which no trusted proxy vouched for; taking it as the sender would record what
/// anyone could have written. The hop is a real address on the path, so the record stays
/// true, if less precise.
fn walk(peer: IpAddr, lines: &[Option<&str>], trusted: &TrustedProxies) -> IpAddr {
    let mut hop = peer;
    for line in lines.iter().rev() {
        let Some(line) = line else { return hop };
        // Empty entries (`a,,b`, a trailing comma) carry nothing, and lists may hold them.
        for entry in line.rsplit(',').map(str::trim).filter(|e| !e.is_empty()) {
            let Some(addr) = parse_entry(entry) else { return hop };
            if !trusted.contains(addr) {
                return addr;
            }
            hop = addr;
        }
    }
    hop
}

/// An entry as proxies write it: `192.0.2.1`, `2001:db8::1`, and with a port
/// `192.0.2.1:4711` or `[2001:db8::1]:4711`, or in brackets without one.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(addr) = entry.parse::<IpAddr>() {
        return Some(addr);
    }
    if let Ok(addr) = entry.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    let bracketed = entry.strip_prefix('[')?.strip_suffix(']')?;
    bracketed.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Cidr;

    fn proxies(networks: &[&str]) -> TrustedProxies {
        TrustedProxies::new(networks.iter().map(|n| n.parse::<Cidr>().unwrap()).collect())
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// The client of a request from `peer` carrying these `X-Forwarded-For` lines.
    fn client(peer: &str, lines: &[&str], trusted: &TrustedProxies) -> String {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append("x-forwarded-for", line.parse().unwrap());
        }
        client_addr(ip(peer), &headers, trusted).to_string()
    }

    #[test]
    fn a_trusted_proxy_names_the_client() {
        let lb = proxies(&["10.0.0.0/8"]);
        assert_eq!(client("10.0.0.5", &["203.0.113.7"], &lb), "203.0.113.7");
        // A trusted proxy without the header is the client itself (a probe, say).
        assert_eq!(client("10.0.0.5", &[], &lb), "10.0.0.5");
    }

    #[test]
    fn an_untrusted_peer_cannot_name_anyone() {
        let lb = proxies(&["10.0.0.0/8"]);
        assert_eq!(client("198.51.100.2", &["203.0.113.7"], &lb), "198.51.100.2");
        assert_eq!(client("198.51.100.2", &["10.0.0.1"], &lb), "198.51.100.2");
        // Nothing is trusted by default.
        assert_eq!(client("10.0.0.5", &["203.0.113.7"], &TrustedProxies::default()), "10.0.0.5");
    }

    #[test]
    fn what_the_sender_wrote_left_of_the_proxies_is_ignored() {
        let lb = proxies(&["10.0.0.0/8"]);
        // The sender wrote `192.0.2.66, 10.1.1.1`; the load balancer appended its peer.
        assert_eq!(client("10.0.0.5", &["192.0.2.66, 10.1.1.1, 203.0.113.7"], &lb), "203.0.113.7");
    }

    #[test]
    fn a_chain_of_trusted_proxies_is_walked_from_the_right() {
        let chain = proxies(&["10.0.0.0/8", "172.16.0.0/12"]);
        // CDN edge 172.16.3.3, then the ingress 10.2.2.2, then the peer 10.0.0.5.
        assert_eq!(client("10.0.0.5", &["203.0.113.7, 172.16.3.3, 10.2.2.2"], &chain), "203.0.113.7");
        // The same list as several header lines.
        assert_eq!(client("10.0.0.5", &["198.51.100.1, 203.0.113.7", "172.16.3.3", "10.2.2.2"], &chain), "203.0.113.7");
        // Every entry a trusted proxy: the furthest of them.
        assert_eq!(client("10.0.0.5", &["172.16.3.3, 10.2.2.2"], &chain), "172.16.3.3");
    }

    #[test]
    fn ipv6_peers_entries_and_ports() {
        let lb = proxies(&["2001:db8:1::/48", "10.0.0.0/8"]);
        assert_eq!(client("2001:db8:1::5", &["2001:db8:ffff::7"], &lb), "2001:db8:ffff::7");
        assert_eq!(client("2001:db8:1::5", &["[2001:db8:ffff::7]:4711"], &lb), "2001:db8:ffff::7");
        assert_eq!(client("2001:db8:1::5", &["[2001:db8:ffff::7]"], &lb), "2001:db8:ffff::7");
        assert_eq!(client("10.0.0.5", &["203.0.113.7:4711, 2001:db8:1::9"], &lb), "203.0.113.7");
        // A dual-stack listener reports an IPv4 proxy as an IPv4-mapped address.
        assert_eq!(client("::ffff:10.0.0.5", &["203.0.113.7"], &lb), "203.0.113.7");
        assert_eq!(client("2001:db8:2::5", &["203.0.113.7"], &lb), "2001:db8:2::5", "outside the trusted /48");
    }

    #[test]
    fn an_entry_that_is_not_an_address_stops_at_the_hop_that_wrote_it() {
        let chain = proxies(&["10.0.0.0/8"]);
        assert_eq!(client("10.0.0.5", &["unknown"], &chain), "10.0.0.5");
        // Never past it, to what the sender wrote.
        assert_eq!(client("10.0.0.5", &["203.0.113.7, _hidden, 10.2.2.2"], &chain), "10.2.2.2");
        assert_eq!(client("10.0.0.5", &["203.0.113.7, 999.1.1.1"], &chain), "10.0.0.5");
        assert_eq!(client("10.0.0.5", &["203.0.113.7, fe80::1%eth0"], &chain), "10.0.0.5");
        // Empty entries are no entries.
        assert_eq!(client("10.0.0.5", &["203.0.113.7, , 10.2.2.2,"], &chain), "203.0.113.7");
        assert_eq!(client("10.0.0.5", &[""], &chain), "10.0.0.5");
    }

    #[test]
    fn a_line_that_is_not_text_stops_the_walk() {
        let chain = proxies(&["10.0.0.0/8"]);
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", "203.0.113.7".parse().unwrap());
        headers.append("x-forwarded-for", axum::http::HeaderValue::from_bytes(b"10.2.2.2\xff").unwrap());
        assert_eq!(client_addr(ip("10.0.0.5"), &headers, &chain), ip("10.0.0.5"));
    }
}
