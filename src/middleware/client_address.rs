//! The client address of a call, resolved once, before anything else reads
//! it: the TCP peer, or the `x-forwarded-for` entry that a configured trusted
//! proxy vouches for. The result goes into the request extensions as a
//! [`ClientAddress`]; the rate limiter, the trace span, and the handlers
//! (sessions, security events, the new-address notice) all read it there,
//! so they can never disagree. An untrusted peer cannot choose its address
//! by sending the header.

use std::{
    net::IpAddr,
    sync::Arc,
    task::{Context, Poll},
};

use http::Request;
use ipnet::IpNet;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::{Layer, Service};

/// The resolved client address of a call; `None` when the transport gave
/// no peer address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub Option<IpAddr>);

/// The client address of a call: the peer, or, when the peer is a trusted
/// proxy, the right-most `x-forwarded-for` entry that is not itself trusted.
pub fn resolve(peer: Option<IpAddr>, forwarded_for: &[&str], trusted: &[IpNet]) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer.map(|ip| ip.to_canonical())?;
    if !is_trusted(&client) {
        return Some(client);
    }
    let hops = forwarded_for
        .iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.into_iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            // A hop we cannot read: keep the last address vouched for.
            break;
        };
        client = ip.to_canonical();
        if !is_trusted(&client) {
            break;
        }
    }
    Some(client)
}

#[derive(Debug, Clone)]
pub struct ClientAddressLayer {
    trusted: Arc<[IpNet]>,
}

impl ClientAddressLayer {
    /// `trusted`: the proxies whose `x-forwarded-for` names the client.
    pub fn new(trusted: Vec<IpNet>) -> Self {
        Self {
            trusted: trusted.into(),
        }
    }
}

impl<S> Layer<S> for ClientAddressLayer {
    type Service = ClientAddressService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ClientAddressService {
            inner,
            trusted: self.trusted.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClientAddressService<S> {
    inner: S,
    trusted: Arc<[IpNet]>,
}

impl<S, B> Service<Request<B>> for ClientAddressService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let extensions = request.extensions();
        let peer = extensions
            .get::<TcpConnectInfo>()
            .or_else(|| {
                extensions
                    .get::<TlsConnectInfo<TcpConnectInfo>>()
                    .map(TlsConnectInfo::get_ref)
            })
            .and_then(TcpConnectInfo::remote_addr)
            .map(|addr| addr.ip());
        let forwarded: Vec<&str> = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        let address = ClientAddress(resolve(peer, &forwarded, &self.trusted));
        request.extensions_mut().insert(address);
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_cannot_choose_its_address() {
        let trusted = [IpNet::from(ip("10.0.0.1"))];
        let client = resolve(Some(ip("198.51.100.7")), &["203.0.113.9"], &trusted);
        assert_eq!(client, Some(ip("198.51.100.7")));
    }

    #[test]
    fn a_trusted_proxy_names_the_right_most_untrusted_hop() {
        let trusted = ["10.0.0.0/8".parse::<IpNet>().unwrap()];
        let client = resolve(
            Some(ip("10.0.0.1")),
            &["6.6.6.6, 203.0.113.9", "10.1.2.3"],
            &trusted,
        );
        assert_eq!(
            client,
            Some(ip("203.0.113.9")),
            "the spoofed 6.6.6.6 is ignored"
        );
        let garbage = resolve(Some(ip("10.0.0.1")), &["not an ip"], &trusted);
        assert_eq!(garbage, Some(ip("10.0.0.1")));
        let none = resolve(Some(ip("10.0.0.1")), &[], &trusted);
        assert_eq!(none, Some(ip("10.0.0.1")));
    }

    #[test]
    fn a_mapped_ipv4_peer_is_ipv4() {
        assert_eq!(
            resolve(Some(ip("::ffff:192.0.2.1")), &[], &[]),
            Some(ip("192.0.2.1"))
        );
    }
}
