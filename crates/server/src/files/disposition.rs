//! `Content-Disposition: attachment` for any file name (RFC 6266 with RFC 5987's `filename*`):
//! an ASCII fallback in `filename` for old clients, and the exact name, percent-encoded as
//! UTF-8, in `filename*`. Quotes, backslashes, control characters, path separators and
//! anything not printable ASCII never reach the header as they are.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// RFC 5987 `attr-char`s stay; everything else is percent-encoded.
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// The header value for downloading `filename`.
pub fn attachment(filename: &str) -> String {
    let fallback: String = filename
        .chars()
        .map(|c| if c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '/' | '%') || c == ' ' { c } else { '_' })
        .collect();
    let fallback = fallback.trim_matches(|c| c == '.' || c == ' ');
    let fallback = if fallback.is_empty() { "download" } else { fallback };
    let encoded = utf8_percent_encode(filename, ATTR_CHAR);
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass_and_every_other_character_is_encoded() {
        assert_eq!(attachment("report.pdf"), "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf");
        assert_eq!(
            attachment("a \"b\"\\c.txt"),
            "attachment; filename=\"a _b__c.txt\"; filename*=UTF-8''a%20%22b%22%5Cc.txt"
        );
        assert_eq!(
            attachment("r\u{e9}sum\u{e9}.pdf"),
            "attachment; filename=\"r_sum_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"
        );
        assert_eq!(
            attachment("../../etc/passwd"),
            "attachment; filename=\"_.._etc_passwd\"; filename*=UTF-8''..%2F..%2Fetc%2Fpasswd"
        );
        let header = attachment("x\r\nSet-Cookie: a=b\0\u{202e}gpj.exe");
        assert!(header.is_ascii() && !header.contains('\r') && !header.contains('\n') && !header.contains('\0'));
        assert!(header.contains("%E2%80%AE"), "the RTL override is encoded: {header}");
        assert!(axum::http::HeaderValue::from_str(&header).is_ok());
        assert_eq!(attachment("\u{1f600}"), "attachment; filename=\"_\"; filename*=UTF-8''%F0%9F%98%80");
        assert_eq!(attachment(".."), "attachment; filename=\"download\"; filename*=UTF-8''..");
    }
}
