//! The local provider's signed transfer URLs: `/files/{id}/upload` and `/files/{id}/download`
//! with `expires` (Unix seconds) and `signature`, an HMAC-SHA256 over the method, the file id,
//! its content type and size (uploads) and the expiry, keyed by a key derived from
//! `SECRET_KEY`. The signature is the credential, so it is compared in constant time; what it
//! covers comes from the database row, so a URL cannot be stretched to another type or size.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// What a signed URL lets its holder do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transfer<'a> {
    /// Upload exactly `size` bytes of `content_type`.
    Upload {
        /// The declared media type.
        content_type: &'a str,
        /// The declared size.
        size: i64,
    },
    /// Download the file.
    Download,
}

/// Signs and checks transfer URLs.
#[derive(Clone)]
pub struct TransferSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for TransferSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TransferSigner([REDACTED])")
    }
}

impl TransferSigner {
    /// A signer whose key is derived from `secret_key` (so it differs from the tokens' key).
    pub fn new(secret_key: &str) -> TransferSigner {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret_key.as_bytes()).expect("any key length");
        mac.update(b"omnistack/files/transfer/v1");
        TransferSigner { key: mac.finalize().into_bytes().into() }
    }

    fn mac(&self, id: Uuid, transfer: Transfer<'_>, expires: i64) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("any key length");
        // Fields are separated by newlines, which none of them can hold.
        let message = match transfer {
            Transfer::Upload { content_type, size } => format!("PUT\n{id}\n{content_type}\n{size}\n{expires}"),
            Transfer::Download => format!("GET\n{id}\n{expires}"),
        };
        mac.update(message.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The `signature` parameter for `transfer` of file `id` until `expires`.
    pub fn sign(&self, id: Uuid, transfer: Transfer<'_>, expires: i64) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(id, transfer, expires))
    }

    /// Whether `signature` is this signer's for `transfer` of `id` until `expires` and
    /// `expires` is not past `now`.
    pub fn verify(&self, id: Uuid, transfer: Transfer<'_>, expires: i64, signature: &str, now: i64) -> bool {
        let Ok(given) = URL_SAFE_NO_PAD.decode(signature.as_bytes()) else { return false };
        let expected = self.mac(id, transfer, expires);
        bool::from(given.as_slice().ct_eq(&expected)) && now <= expires
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_covers_the_file_the_transfer_and_the_expiry() {
        let signer = TransferSigner::new("secret");
        let id = Uuid::now_v7();
        let upload = Transfer::Upload { content_type: "text/plain", size: 5 };
        let signature = signer.sign(id, upload, 100);
        assert!(signer.verify(id, upload, 100, &signature, 100));
        assert!(!signer.verify(id, upload, 100, &signature, 101), "expired");
        assert!(!signer.verify(id, upload, 101, &signature, 0), "another expiry");
        assert!(!signer.verify(Uuid::now_v7(), upload, 100, &signature, 0), "another file");
        assert!(!signer.verify(id, Transfer::Upload { content_type: "text/plain", size: 6 }, 100, &signature, 0));
        assert!(!signer.verify(id, Transfer::Upload { content_type: "text/html", size: 5 }, 100, &signature, 0));
        assert!(!signer.verify(id, Transfer::Download, 100, &signature, 0), "an upload URL does not download");
        assert!(!TransferSigner::new("other").verify(id, upload, 100, &signature, 0), "another key");
        assert!(!signer.verify(id, upload, 100, "not base64!", 0));
        assert!(!signer.verify(id, upload, 100, "", 0));
    }
}
