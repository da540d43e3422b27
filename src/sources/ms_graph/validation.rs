//! The Graph validation handshake: when a subscription is created (and when its URLs
//! change), Graph POSTs to each URL with a `validationToken` query parameter and expects
//! the decoded token back, as `text/plain`, within 10 seconds.
//!
//! The parameter name is matched in any letter case (Graph's own spelling has varied and
//! proxies lowercase it). The value is decoded as a form value (`+` is a space, `%XX` a
//! byte) and echoed byte for byte, so it need not be UTF-8. The body is never read.

use percent_encoding::percent_decode;

use crate::sources::Rejected;

/// Longest decoded token echoed; Graph's are about 200 bytes.
pub const MAX_TOKEN_BYTES: usize = 1024;

/// The decoded `validationToken` of a query, `Ok(None)` when the query has none.
pub fn token(query: Option<&str>) -> Result<Option<Vec<u8>>, Rejected> {
    let Some(query) = query else { return Ok(None) };
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !form_decode(name).eq_ignore_ascii_case(b"validationtoken") {
            continue;
        }
        // The encoded form is at most three bytes per decoded byte.
        if value.len() > 3 * MAX_TOKEN_BYTES {
            return Err(too_long());
        }
        let token = form_decode(value);
        if token.len() > MAX_TOKEN_BYTES {
            return Err(too_long());
        }
        if token.is_empty() {
            return Err(Rejected::malformed("graph_validation_token_empty", "the validationToken parameter is empty"));
        }
        return Ok(Some(token));
    }
    Ok(None)
}

fn too_long() -> Rejected {
    Rejected::malformed("graph_validation_token_too_long", format!("the validationToken is over {MAX_TOKEN_BYTES} bytes"))
}

/// A query-string component decoded as `application/x-www-form-urlencoded`.
fn form_decode(text: &str) -> Vec<u8> {
    let spaced = text.replace('+', " ");
    percent_decode(spaced.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_decoded_byte_for_byte() {
        let q = "validationToken=Validation%3a+Testing+client+application+reachability+for+subscription+Request-Id%3a+3f1b";
        assert_eq!(
            token(Some(q)).unwrap().unwrap(),
            b"Validation: Testing client application reachability for subscription Request-Id: 3f1b"
        );
        // Markup and bytes that are not UTF-8 come back exactly as sent.
        assert_eq!(token(Some("validationToken=%3Cscript%3Ealert(1)%3C%2Fscript%3E")).unwrap().unwrap(), b"<script>alert(1)</script>");
        assert_eq!(token(Some("validationToken=%FF%00a%2B")).unwrap().unwrap(), b"\xff\x00a+");
    }

    #[test]
    fn the_name_is_matched_in_any_case_among_other_parameters() {
        for q in ["validationtoken=abc", "VALIDATIONTOKEN=abc", "x=1&ValidationToken=abc&y=2", "validation%54oken=abc"] {
            assert_eq!(token(Some(q)).unwrap().unwrap(), b"abc", "{q}");
        }
        assert_eq!(token(Some("x=1&validation=abc")).unwrap(), None);
        assert_eq!(token(None).unwrap(), None);
    }

    #[test]
    fn empty_and_oversized_tokens_are_refused() {
        assert_eq!(token(Some("validationToken=")).unwrap_err().reason, "graph_validation_token_empty");
        assert_eq!(token(Some("validationToken")).unwrap_err().reason, "graph_validation_token_empty");
        let long = format!("validationToken={}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert_eq!(token(Some(&long)).unwrap_err().reason, "graph_validation_token_too_long");
        let encoded = format!("validationToken={}", "%41".repeat(MAX_TOKEN_BYTES + 1));
        assert_eq!(token(Some(&encoded)).unwrap_err().reason, "graph_validation_token_too_long");
        let exact = format!("validationToken={}", "a".repeat(MAX_TOKEN_BYTES));
        assert_eq!(token(Some(&exact)).unwrap().unwrap().len(), MAX_TOKEN_BYTES);
    }
}
