//! Binding listeners as RabbitMQ does by default: every IPv4 and every IPv6
//! interface on one port. On Linux the IPv6 wildcard usually takes IPv4
//! too (dual stack), so the IPv4 wildcard after it then finds its port
//! taken: that is not an error. On a machine without IPv6 the IPv6
//! wildcard is skipped.

use std::io;
use std::net::SocketAddr;

/// Whether failing to bind `addr` with `error` is fine, given the
/// listeners already bound: the IPv6 wildcard where the machine has no
/// IPv6, or the IPv4 wildcard whose port a dual-stack IPv6 wildcard holds.
pub fn can_skip(addr: SocketAddr, error: &io::Error, bound: &[SocketAddr]) -> Option<&'static str> {
    if !addr.ip().is_unspecified() {
        return None;
    }
    let os = error.raw_os_error();
    if addr.is_ipv6() && matches!(os, Some(libc::EAFNOSUPPORT) | Some(libc::EADDRNOTAVAIL)) {
        return Some("this machine has no IPv6");
    }
    let dual_stack = bound
        .iter()
        .any(|b| b.is_ipv6() && b.ip().is_unspecified() && b.port() == addr.port());
    (addr.is_ipv4() && error.kind() == io::ErrorKind::AddrInUse && dual_stack)
        .then_some("the IPv6 wildcard on this port takes IPv4 too")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_wildcards_covered_elsewhere_are_skipped() {
        let in_use = io::Error::from(io::ErrorKind::AddrInUse);
        let v6: SocketAddr = "[::]:5672".parse().unwrap();
        let v4: SocketAddr = "0.0.0.0:5672".parse().unwrap();
        assert!(can_skip(v4, &in_use, &[v6]).is_some());
        assert!(can_skip(v4, &in_use, &[]).is_none(), "nothing else took it");
        let local: SocketAddr = "127.0.0.1:5672".parse().unwrap();
        assert!(can_skip(local, &in_use, &[v6]).is_none());
        let no_v6 = io::Error::from_raw_os_error(libc::EAFNOSUPPORT);
        assert!(can_skip(v6, &no_v6, &[]).is_some());
    }
}
