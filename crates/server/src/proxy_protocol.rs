//! The PROXY protocol (HAProxy's, versions 1 and 2): a load balancer
//! prefixes the connection with the client's real address. Accepted only
//! from the addresses `listeners.proxy_protocol_from` trusts, so that the
//! loopback rule, the logs and the limits see the real client.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpStream;

/// Version 2's signature.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Version 1's longest header, CRLF included.
const V1_MAX: usize = 107;
/// Version 2's largest header we take (addresses and some TLVs).
const V2_MAX: usize = 16 + 512;

/// What the first bytes of a connection are.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Not a PROXY header (AMQP, say): nothing to consume.
    NotProxy,
    /// More bytes are needed to tell.
    Incomplete,
    /// A header of `len` bytes; the client's address, or `None` when the
    /// proxy speaks for itself (LOCAL, UNKNOWN, or a family other than TCP).
    Header {
        len: usize,
        source: Option<SocketAddr>,
    },
    Invalid(&'static str),
}

/// Reads a PROXY header at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed {
    if starts_like(buf, b"PROXY ") {
        if buf.len() < 6 {
            return Parsed::Incomplete;
        }
        return parse_v1(buf);
    }
    if starts_like(buf, &V2_SIGNATURE) {
        if buf.len() < 16 {
            return Parsed::Incomplete;
        }
        return parse_v2(buf);
    }
    Parsed::NotProxy
}

/// Whether `buf` is `prefix` or a start of it (or starts with it).
fn starts_like(buf: &[u8], prefix: &[u8]) -> bool {
    let n = buf.len().min(prefix.len());
    buf[..n] == prefix[..n] && n > 0
}

fn parse_v1(buf: &[u8]) -> Parsed {
    let Some(end) = buf.windows(2).take(V1_MAX - 1).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX {
            Parsed::Invalid("PROXY v1 line longer than 107 bytes")
        } else {
            Parsed::Incomplete
        };
    };
    let len = end + 2;
    let Ok(line) = std::str::from_utf8(&buf[..end]) else {
        return Parsed::Invalid("PROXY v1 line is not text");
    };
    let words: Vec<&str> = line.split(' ').collect();
    match words[..] {
        ["PROXY", "UNKNOWN", ..] => Parsed::Header { len, source: None },
        ["PROXY", family @ ("TCP4" | "TCP6"), source, _destination, port, _] => {
            let Ok(ip) = source.parse::<IpAddr>() else {
                return Parsed::Invalid("PROXY v1 source address");
            };
            if (family == "TCP4") != ip.is_ipv4() {
                return Parsed::Invalid("PROXY v1 address of the other family");
            }
            match port.parse::<u16>() {
                Ok(port) => Parsed::Header {
                    len,
                    source: Some(SocketAddr::new(ip, port)),
                },
                Err(_) => Parsed::Invalid("PROXY v1 source port"),
            }
        }
        _ => Parsed::Invalid("PROXY v1 line"),
    }
}

fn parse_v2(buf: &[u8]) -> Parsed {
    let (version_command, family) = (buf[12], buf[13]);
    if version_command >> 4 != 2 {
        return Parsed::Invalid("PROXY v2 version");
    }
    let body = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let len = 16 + body;
    if len > V2_MAX {
        return Parsed::Invalid("PROXY v2 header too long");
    }
    if buf.len() < len {
        return Parsed::Incomplete;
    }
    let addresses = &buf[16..len];
    match version_command & 0x0f {
        // LOCAL: the proxy's own connection (a health check, say).
        0 => return Parsed::Header { len, source: None },
        1 => {}
        _ => return Parsed::Invalid("PROXY v2 command"),
    }
    let source = match family {
        // TCP over IPv4: source, destination, source port, destination port.
        0x11 if addresses.len() >= 12 => {
            let ip = Ipv4Addr::from(<[u8; 4]>::try_from(&addresses[..4]).expect("4 bytes"));
            let port = u16::from_be_bytes([addresses[8], addresses[9]]);
            Some(SocketAddr::new(ip.into(), port))
        }
        0x21 if addresses.len() >= 36 => {
            let ip = Ipv6Addr::from(<[u8; 16]>::try_from(&addresses[..16]).expect("16 bytes"));
            let port = u16::from_be_bytes([addresses[32], addresses[33]]);
            Some(SocketAddr::new(ip.into(), port))
        }
        0x11 | 0x21 => return Parsed::Invalid("PROXY v2 addresses too short"),
        // UNSPEC, UDP, unix sockets: no client address to take.
        _ => None,
    };
    Parsed::Header { len, source }
}

/// From a trusted peer: reads a PROXY header if the connection starts with
/// one (consuming exactly it) and returns the client's address; otherwise
/// the peer's own. Err for a damaged header or one that does not arrive
/// within `timeout`.
pub async fn accept(
    stream: &mut TcpStream,
    peer: SocketAddr,
    timeout: Duration,
) -> Result<SocketAddr, String> {
    use tokio::io::AsyncReadExt;
    let read = async {
        let mut buf = vec![0u8; V2_MAX];
        loop {
            let n = stream.peek(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed before a PROXY header".to_string());
            }
            match parse(&buf[..n]) {
                Parsed::NotProxy => return Ok(peer),
                Parsed::Invalid(why) => return Err(why.to_string()),
                Parsed::Header { len, source } => {
                    let mut header = vec![0u8; len];
                    stream
                        .read_exact(&mut header)
                        .await
                        .map_err(|e| e.to_string())?;
                    return Ok(source.unwrap_or(peer));
                }
                // peek returns what has arrived; wait a little for more.
                Parsed::Incomplete => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| "no complete PROXY header in time".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v2(command: u8, family: u8, addresses: &[u8]) -> Vec<u8> {
        let mut b = V2_SIGNATURE.to_vec();
        b.push(0x20 | command);
        b.push(family);
        b.extend_from_slice(&(addresses.len() as u16).to_be_bytes());
        b.extend_from_slice(addresses);
        b
    }

    #[test]
    fn version_1_gives_the_source() {
        let line = b"PROXY TCP4 203.0.113.7 10.0.0.1 56324 5672\r\nAMQP";
        assert_eq!(
            parse(line),
            Parsed::Header {
                len: line.len() - 4,
                source: Some("203.0.113.7:56324".parse().unwrap())
            }
        );
        let v6 = b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 5672\r\n";
        assert!(matches!(parse(v6), Parsed::Header { source: Some(a), .. } if a.port() == 4000));
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n"),
            Parsed::Header {
                len: 15,
                source: None
            }
        );
        assert_eq!(parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1"), Parsed::Incomplete);
        assert!(matches!(
            parse(b"PROXY TCP4 ::1 ::1 1 2\r\n"),
            Parsed::Invalid(_)
        ));
    }

    #[test]
    fn version_2_gives_the_source() {
        let mut v4 = vec![198, 51, 100, 9, 10, 0, 0, 1];
        v4.extend_from_slice(&4242u16.to_be_bytes());
        v4.extend_from_slice(&5672u16.to_be_bytes());
        let header = v2(1, 0x11, &v4);
        assert_eq!(
            parse(&header),
            Parsed::Header {
                len: 28,
                source: Some("198.51.100.9:4242".parse().unwrap())
            }
        );
        assert_eq!(parse(&header[..20]), Parsed::Incomplete);
        assert_eq!(
            parse(&v2(0, 0, &[])),
            Parsed::Header {
                len: 16,
                source: None
            }
        );
        assert!(matches!(parse(&v2(1, 0x11, &[1, 2])), Parsed::Invalid(_)));
    }

    #[test]
    fn amqp_is_not_a_proxy_header() {
        assert_eq!(parse(b"AMQP\x00\x00\x09\x01"), Parsed::NotProxy);
        assert_eq!(parse(b"PRO"), Parsed::Incomplete);
        assert_eq!(parse(b"\r\n\r"), Parsed::Incomplete);
    }

    proptest! {
        #[test]
        fn any_bytes_parse_without_panic_and_headers_fit(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Parsed::Header { len, .. } = parse(&bytes) {
                prop_assert!(len <= bytes.len());
            }
        }

        #[test]
        fn v1_addresses_round_trip(a in any::<[u8; 4]>(), port in any::<u16>()) {
            let ip = Ipv4Addr::from(a);
            let line = format!("PROXY TCP4 {ip} 10.0.0.1 {port} 5672\r\n");
            prop_assert_eq!(
                parse(line.as_bytes()),
                Parsed::Header { len: line.len(), source: Some(SocketAddr::new(ip.into(), port)) }
            );
        }
    }
}
