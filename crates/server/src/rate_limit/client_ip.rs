//! Who is calling: the socket peer, or, behind proxies listed in `TRUSTED_PROXIES`, the
//! right-most `X-Forwarded-For` hop that no trusted proxy could have written.
//!
//! Everything left of the first untrusted hop is whatever the client chose to send, so it is
//! never believed.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

use crate::config::Cidr;

/// The header proxies append the address of their own peer to.
const FORWARDED_FOR: &str = "x-forwarded-for";

/// The client's address: `peer` itself unless it is a trusted proxy; then, walking
/// `X-Forwarded-For` from the right, the first hop that is not trusted. When every hop is
/// trusted, or a hop cannot be read, the last address that could be vouched for is used.
/// IPv4-mapped IPv6 addresses are returned as IPv4.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let mut client = peer.ip().to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|network| network.contains(ip));
    if !is_trusted(client) {
        return client;
    }
    // Several X-Forwarded-For headers read as one list, in order; walk it right to left.
    let values: Vec<&str> = headers.get_all(FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok()).collect();
    for hop in values.iter().rev().flat_map(|value| value.rsplit(',')) {
        let Some(ip) = parse_hop(hop) else {
            return client;
        };
        client = ip;
        if !is_trusted(ip) {
            return ip;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:5678`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>().or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip())).ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|c| c.parse().unwrap()).collect()
    }

    fn ip(value: &str) -> IpAddr {
        value.parse().unwrap()
    }

    fn with_xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(FORWARDED_FOR, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn peer(value: &str) -> SocketAddr {
        SocketAddr::new(ip(value), 40000)
    }

    #[test]
    fn ipv4_networks_match_by_prefix() {
        let net: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.255.1.2")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(net.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped addresses match IPv4 networks");
        assert!(!net.contains(ip("::1")));
        let odd: Cidr = "192.168.1.128/25".parse().unwrap();
        assert!(odd.contains(ip("192.168.1.200")) && !odd.contains(ip("192.168.1.127")));
        let host: Cidr = "203.0.113.7".parse().unwrap();
        assert!(host.contains(ip("203.0.113.7")) && !host.contains(ip("203.0.113.8")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("198.51.100.1")) && !all.contains(ip("2001:db8::1")));
    }

    #[test]
    fn ipv6_networks_match_by_prefix() {
        let net: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(net.contains(ip("2001:db8:ffff::1")));
        assert!(!net.contains(ip("2001:db9::1")));
        assert!(!net.contains(ip("10.0.0.1")));
        let host: Cidr = "::1".parse().unwrap();
        assert!(host.contains(ip("::1")) && !host.contains(ip("::2")));
        let all: Cidr = "::/0".parse().unwrap();
        assert!(all.contains(ip("fe80::1")));
    }

    #[test]
    fn host_bits_are_masked_and_bad_networks_rejected() {
        assert_eq!("10.1.2.3/8".parse::<Cidr>().unwrap().to_string(), "10.0.0.0/8");
        assert_eq!("2001:db8::1/64".parse::<Cidr>().unwrap().to_string(), "2001:db8::/64");
        assert_eq!("::ffff:10.0.0.0/8".parse::<Cidr>().unwrap().to_string(), "10.0.0.0/8");
        for bad in ["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0/8", "10.0.0.0/+8", "proxy", "", "10.0.0.0/8/8"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?} rejected");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted = cidrs(&["10.0.0.0/8"]);
        let headers = with_xff(&["198.51.100.1"]);
        assert_eq!(client_ip(peer("203.0.113.5"), &headers, &trusted), ip("203.0.113.5"));
        assert_eq!(client_ip(peer("203.0.113.5"), &headers, &[]), ip("203.0.113.5"));
    }

    #[test]
    fn a_trusted_peer_yields_the_right_most_untrusted_hop() {
        let trusted = cidrs(&["10.0.0.0/8", "2001:db8::/32"]);
        // The client forged the left-most entry; 203.0.113.9 is the address our edge proxy saw.
        let headers = with_xff(&["1.1.1.1, 203.0.113.9, 10.0.0.2"]);
        assert_eq!(client_ip(peer("10.0.0.1"), &headers, &trusted), ip("203.0.113.9"));
        let split = with_xff(&["1.1.1.1", "203.0.113.9 , 10.0.0.2"]);
        assert_eq!(client_ip(peer("10.0.0.1"), &split, &trusted), ip("203.0.113.9"), "several headers form one list");
        let v6 = with_xff(&["2001:db9::7, 2001:db8::1"]);
        assert_eq!(client_ip(peer("2001:db8::2"), &v6, &trusted), ip("2001:db9::7"));
        let ported = with_xff(&["203.0.113.9:5555"]);
        assert_eq!(client_ip(peer("10.0.0.1"), &ported, &trusted), ip("203.0.113.9"));
        let mapped = with_xff(&["::ffff:203.0.113.9"]);
        assert_eq!(client_ip(peer("::ffff:10.0.0.1"), &mapped, &trusted), ip("203.0.113.9"));
    }

    #[test]
    fn an_all_trusted_chain_yields_its_left_most_hop() {
        let trusted = cidrs(&["10.0.0.0/8"]);
        let headers = with_xff(&["10.0.0.9, 10.0.0.8"]);
        assert_eq!(client_ip(peer("10.0.0.1"), &headers, &trusted), ip("10.0.0.9"));
        assert_eq!(client_ip(peer("10.0.0.1"), &HeaderMap::new(), &trusted), ip("10.0.0.1"), "no header: the peer");
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_vouched_address() {
        let trusted = cidrs(&["10.0.0.0/8"]);
        assert_eq!(client_ip(peer("10.0.0.1"), &with_xff(&["not-an-ip"]), &trusted), ip("10.0.0.1"));
        assert_eq!(client_ip(peer("10.0.0.1"), &with_xff(&["203.0.113.9, , 10.0.0.2"]), &trusted), ip("10.0.0.2"));
        assert_eq!(client_ip(peer("10.0.0.1"), &with_xff(&["unknown, 10.0.0.2"]), &trusted), ip("10.0.0.2"));
        let mut binary = HeaderMap::new();
        binary.insert(FORWARDED_FOR, HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        assert_eq!(client_ip(peer("10.0.0.1"), &binary, &trusted), ip("10.0.0.1"));
    }
}
