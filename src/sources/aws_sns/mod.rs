//! Amazon SNS over HTTP/S (`POST /push/aws-sns/{id}`): the message envelope, the rules
//! for the URLs it names, signing certificates, and authentication of each push.

pub mod cert_url;
pub mod certs;
pub mod envelope;
#[doc(hidden)]
pub mod test_signer;
pub mod verify;
