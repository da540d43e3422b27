//! Which URLs pushgate will ever fetch for SNS: a signing certificate
//! ([`SigningCertUrl::check`]) and a subscription confirmation ([`check_subscribe_url`]).
//!
//! Both must name the SNS endpoint of the topic's own region over plain `https` with
//! nothing unusual in them. The URL is checked twice: as written (so that nothing a
//! URL parser would quietly normalize, such as percent-encoding, a trailing dot or a
//! backslash, slips through) and as the `url` crate parses it (so that the URL fetched
//! is the URL checked). Every refusal here is unauthenticated: whoever wrote such a URL
//! is not SNS.

use url::{Host, Url};

use super::envelope::quoted;
use crate::sources::Rejected;

/// Longest URL considered; real ones are under 200 bytes.
const MAX_URL_LEN: usize = 2048;

/// Longest certificate id (the part between `SimpleNotificationService-` and `.pem`);
/// SNS uses 32 hexadecimal digits.
const MAX_CERT_ID_LEN: usize = 128;

const CERT_FILE_PREFIX: &str = "SimpleNotificationService-";
const CERT_FILE_SUFFIX: &str = ".pem";

/// A `SigningCertURL` that passed every rule: safe to look up and to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningCertUrl {
    url: Url,
    file_name: String,
}

impl SigningCertUrl {
    /// Checks `url` against the rules for the topic's `region`: `https`, host exactly
    /// `sns.<region>.amazonaws.com` (`.amazonaws.com.cn` for the China regions), no
    /// user, port, query or fragment, and the path `/SimpleNotificationService-<id>.pem`
    /// with an alphanumeric id.
    pub fn check(url: &str, region: &str) -> Result<SigningCertUrl, Rejected> {
        let refuse = |why: &str| Rejected::unauthenticated("sns_cert_url_invalid", format!("SigningCertURL {} {why}", quoted(url)));
        let written = Written::split(url).map_err(&refuse)?;
        let host = endpoint_host(region);
        if !written.host.eq_ignore_ascii_case(&host) {
            return Err(refuse(&format!("is not on the topic's SNS endpoint {host}")));
        }
        if written.rest.contains(['?', '#']) {
            return Err(refuse("has a query or fragment"));
        }
        let file_name = written.rest.strip_prefix('/').unwrap_or_default();
        let id = file_name
            .strip_prefix(CERT_FILE_PREFIX)
            .and_then(|f| f.strip_suffix(CERT_FILE_SUFFIX))
            .filter(|id| (1..=MAX_CERT_ID_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric()));
        if id.is_none() {
            return Err(refuse("is not /SimpleNotificationService-<id>.pem"));
        }

        let parsed = parse_agreeing(url, &host, &format!("/{file_name}")).map_err(&refuse)?;
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(refuse("has a query or fragment"));
        }
        Ok(SigningCertUrl { url: parsed, file_name: file_name.to_string() })
    }

    /// The URL, normalized (lowercase scheme and host, no default port).
    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// The last path segment, `SimpleNotificationService-<id>.pem`: the name of a pinned copy.
    pub fn file_name(&self) -> &str {
        &self.file_name
    }
}

/// Checks a `SubscribeURL` before pushgate GETs it to confirm a subscription: `https`,
/// the topic region's SNS endpoint as for certificates, path `/`, and a query whose one
/// `Action` is `ConfirmSubscription`. This is the only URL of a message that is ever
/// fetched besides the certificate.
pub fn check_subscribe_url(url: &str, region: &str) -> Result<Url, Rejected> {
    let refuse = |why: &str| Rejected::unauthenticated("sns_subscribe_url_invalid", format!("SubscribeURL {} {why}", quoted(url)));
    let written = Written::split(url).map_err(&refuse)?;
    let host = endpoint_host(region);
    if !written.host.eq_ignore_ascii_case(&host) {
        return Err(refuse(&format!("is not on the topic's SNS endpoint {host}")));
    }
    if written.rest.contains('#') {
        return Err(refuse("has a fragment"));
    }
    if !written.rest.starts_with("/?") {
        return Err(refuse("does not have the path / and a query"));
    }
    let parsed = parse_agreeing(url, &host, "/").map_err(&refuse)?;
    if parsed.fragment().is_some() {
        return Err(refuse("has a fragment"));
    }
    let actions: Vec<_> = parsed.query_pairs().filter(|(name, _)| name == "Action").map(|(_, value)| value).collect();
    if actions.len() != 1 || actions[0] != "ConfirmSubscription" {
        return Err(refuse("does not have the one query parameter Action=ConfirmSubscription"));
    }
    Ok(parsed)
}

/// The SNS endpoint host of a region: China regions live under `amazonaws.com.cn`.
fn endpoint_host(region: &str) -> String {
    if region.starts_with("cn-") {
        format!("sns.{region}.amazonaws.com.cn")
    } else {
        format!("sns.{region}.amazonaws.com")
    }
}

/// A URL split as written, before any parser has normalized it.
struct Written<'a> {
    host: &'a str,
    /// Everything after the authority: path, query, fragment.
    rest: &'a str,
}

impl<'a> Written<'a> {
    fn split(url: &'a str) -> Result<Written<'a>, &'static str> {
        if url.len() > MAX_URL_LEN {
            return Err("is too long");
        }
        // Parsers drop tabs, newlines and surrounding spaces and read `\` as `/`;
        // a URL with any of them is refused rather than guessed at.
        if !url.bytes().all(|b| b.is_ascii_graphic()) || url.contains('\\') {
            return Err("has spaces, control characters, backslashes or non-ASCII characters");
        }
        let scheme_len = "https://".len();
        if url.len() < scheme_len || !url[..scheme_len].eq_ignore_ascii_case("https://") {
            return Err("is not https");
        }
        let after_scheme = &url[scheme_len..];
        let authority_end = after_scheme.find(['/', '?', '#']).unwrap_or(after_scheme.len());
        let (authority, rest) = after_scheme.split_at(authority_end);
        if authority.contains('@') {
            return Err("has a user name or password");
        }
        let host = match authority.split_once(':') {
            None => authority,
            Some((host, "443")) => host,
            Some(_) => return Err("has a port other than 443"),
        };
        // Letters, digits, dots and hyphens only: no percent-encoding, IP literals or IDNA.
        if host.is_empty() || !host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') {
            return Err("has an unusual host name");
        }
        Ok(Written { host, rest })
    }
}

/// Parses `url` with the `url` crate and requires it to read the URL as the written
/// checks did: `https`, no user, the expected `host`, no explicit port, and `path`.
fn parse_agreeing(url: &str, host: &str, path: &str) -> Result<Url, &'static str> {
    let parsed = Url::parse(url).map_err(|_| "is not a valid URL")?;
    let agrees = parsed.scheme() == "https"
        && parsed.username().is_empty()
        && parsed.password().is_none()
        && parsed.port().is_none()
        && parsed.host() == Some(Host::Domain(host))
        && parsed.path() == path;
    if agrees {
        Ok(parsed)
    } else {
        Err("does not parse to the URL it appears to be")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::RejectClass;

    const GOOD: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem";

    #[test]
    fn real_certificate_urls_pass() {
        let checked = SigningCertUrl::check(GOOD, "us-east-1").unwrap();
        assert_eq!(checked.file_name(), "SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem");
        assert_eq!(checked.as_str(), GOOD);
        let china = "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem";
        assert!(SigningCertUrl::check(china, "cn-north-1").is_ok());
        let gov = "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-abc.pem";
        assert!(SigningCertUrl::check(gov, "us-gov-west-1").is_ok());
    }

    #[test]
    fn scheme_and_host_compare_without_case_and_the_default_port_is_allowed() {
        for url in [
            "HTTPS://SNS.US-EAST-1.AMAZONAWS.COM/SimpleNotificationService-abc.pem",
            "https://sns.us-east-1.amazonaws.com:443/SimpleNotificationService-abc.pem",
        ] {
            let checked = SigningCertUrl::check(url, "us-east-1").unwrap();
            assert_eq!(checked.as_str(), "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem");
        }
    }

    #[test]
    fn odd_certificate_urls_are_refused() {
        for url in [
            "",
            "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://sns.us-east-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
            "https://sns.us-east-1.amazonaws.com./SimpleNotificationService-abc.pem",
            "https://sns.us-east-1.amazonaws.com.evil.com/SimpleNotificationService-abc.pem",
            "https://evil.com/sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://evil.com#@sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://user:pw@sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-abc.pem",
            "https://sns.us-east-1.amazonaws.com:/SimpleNotificationService-abc.pem",
            "https://sns%2Eus-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://sns.us-east-1.amazonaws.com\\SimpleNotificationService-abc.pem",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem?x=1",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem?",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem#",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.key",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-.pem",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-a_b.pem",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-a%62.pem",
            "https://sns.us-east-1.amazonaws.com/x/../SimpleNotificationService-abc.pem",
            "https://sns.us-east-1.amazonaws.com/./SimpleNotificationService-abc.pem",
            "https://sns.us-east-1.amazonaws.com//SimpleNotificationService-abc.pem",
            "https://sns.us-east-1.amazonaws.com/simplenotificationservice-abc.pem",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem ",
            " https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://sns.us-east-1.amazon\taws.com/SimpleNotificationService-abc.pem",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc\n.pem",
            "https://[::1]/SimpleNotificationService-abc.pem",
            "https://sns.us-east-1.amazonaws.com",
            "https://sns.us-east-1.amazonaws.com/",
            "https:sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https:///sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://foo.amazonaws.com/bar",
            "https://s3.us-east-1.amazonaws.com/evil/cert.pem",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-ä.pem",
        ] {
            let e = SigningCertUrl::check(url, "us-east-1").expect_err(url);
            assert_eq!((e.class, e.reason), (RejectClass::Unauthenticated, "sns_cert_url_invalid"), "{url}");
        }
        let long = format!("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-{}.pem", "a".repeat(129));
        assert!(SigningCertUrl::check(&long, "us-east-1").is_err());
    }

    #[test]
    fn china_regions_only_under_amazonaws_com_cn() {
        let url = "https://sns.cn-north-1.amazonaws.com/SimpleNotificationService-abc.pem";
        assert!(SigningCertUrl::check(url, "cn-north-1").is_err());
    }

    const CONFIRM: &str =
        "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:131990247566:t&Token=2336";

    #[test]
    fn real_subscribe_urls_pass() {
        let url = check_subscribe_url(CONFIRM, "us-west-2").unwrap();
        assert_eq!(url.as_str(), CONFIRM);
        let encoded =
            "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn%3Aaws%3Asns%3Aus-west-2%3A1%3At&Token=1";
        assert!(check_subscribe_url(encoded, "us-west-2").is_ok());
    }

    #[test]
    fn odd_subscribe_urls_are_refused() {
        for url in [
            "http://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Token=1",
            "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=1",
            "https://evil.example.com/?Action=ConfirmSubscription&Token=1",
            "https://sns.us-west-2.amazonaws.com/x?Action=ConfirmSubscription&Token=1",
            "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&Token=1",
            "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Action=Unsubscribe",
            "https://sns.us-west-2.amazonaws.com/?Token=1",
            "https://sns.us-west-2.amazonaws.com/",
            "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription#x",
            "https://sns.us-west-2.amazonaws.com:8443/?Action=ConfirmSubscription",
            "https://a@sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription",
            "https://sns.us-west-2.amazonaws.com/./?Action=ConfirmSubscription",
            "https://sns.us-west-2.amazonaws.com\\?Action=ConfirmSubscription",
        ] {
            let e = check_subscribe_url(url, "us-west-2").expect_err(url);
            assert_eq!((e.class, e.reason), (RejectClass::Unauthenticated, "sns_subscribe_url_invalid"), "{url}");
        }
    }
}
