//! Who is asking: network ranges and the client address behind trusted proxies.

mod cidr;
mod peer;

pub use cidr::{Cidr, CidrParseError};
pub use peer::{TrustedProxies, client_ip};

pub(crate) use cidr::canonical as canonical_ip;
pub(crate) use peer::{ClientError, request_client};
