//! Job credentials at rest: sealed with ChaCha20-Poly1305 under a 32-byte server key, a fresh
//! random 96-bit nonce per seal and the job id as associated data (a sealed blob copied onto
//! another job's row does not open).

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use pipeline::Error;
use std::path::Path;

/// Nonce length of ChaCha20-Poly1305 (bytes), stored in front of the ciphertext.
const NONCE_LEN: usize = 12;

/// The server's credential key.
pub struct JobKey(ChaCha20Poly1305);

impl std::fmt::Debug for JobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JobKey(***)")
    }
}

impl JobKey {
    /// The key from `file` (32 raw bytes, 64 hex digits or base64), else from the
    /// `SEREN_JOB_KEY` variable (hex or base64). Neither: a config error saying how to make one.
    pub fn load(file: Option<&Path>) -> Result<JobKey, Error> {
        let (bytes, from) = match file {
            Some(f) => (
                std::fs::read(f).map_err(|e| {
                    Error::config(format!("cannot read --key-file {}: {e}", f.display()))
                })?,
                format!("--key-file {}", f.display()),
            ),
            None => match std::env::var("SEREN_JOB_KEY") {
                Ok(v) => (v.into_bytes(), "SEREN_JOB_KEY".to_string()),
                Err(_) => {
                    return Err(Error::config(
                        "job credentials are encrypted at rest and no key was given: pass \
                         --key-file FILE or set SEREN_JOB_KEY (make one with \
                         `head -c 32 /dev/urandom > job.key`)",
                    ))
                }
            },
        };
        JobKey::from_material(&bytes).ok_or_else(|| {
            Error::config(format!(
                "{from} does not hold a 32-byte key: give 32 raw bytes, 64 hex digits or \
                 base64 of 32 bytes"
            ))
        })
    }

    /// A key from 32 raw bytes, 64 hex digits or base64 of 32 bytes (surrounding whitespace
    /// ignored for the text forms).
    pub fn from_material(bytes: &[u8]) -> Option<JobKey> {
        if bytes.len() == 32 {
            return Some(JobKey::from_bytes(bytes));
        }
        let text = std::str::from_utf8(bytes).ok()?.trim();
        let decoded = if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
                .collect::<Option<Vec<u8>>>()?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .ok()?
        };
        (decoded.len() == 32).then(|| JobKey::from_bytes(&decoded))
    }

    fn from_bytes(bytes: &[u8]) -> JobKey {
        JobKey(ChaCha20Poly1305::new(Key::from_slice(bytes)))
    }

    /// `plaintext` sealed, bound to `aad`: nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = self
            .0
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("ChaCha20-Poly1305 encrypts any message under 256 GB");
        [&nonce[..], &sealed].concat()
    }

    /// The plaintext of what [`JobKey::seal`] made with the same `aad`; `None` when the key is
    /// another one or the blob was altered.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, msg) = sealed.split_at(NONCE_LEN);
        self.0
            .decrypt(Nonce::from_slice(nonce), Payload { msg, aad })
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::JobKey;

    #[test]
    fn seal_then_open() {
        let key = JobKey::from_material(&[7u8; 32]).unwrap();
        let sealed = key.seal(b"postgresql://u:secret@h/db", b"job-1");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            key.open(&sealed, b"job-1").unwrap(),
            b"postgresql://u:secret@h/db"
        );
        assert!(key.open(&sealed, b"job-2").is_none());
        let other = JobKey::from_material("07".repeat(31).as_bytes());
        assert!(other.is_none());
        let hex = JobKey::from_material(format!("{}\n", "08".repeat(32)).as_bytes()).unwrap();
        assert!(hex.open(&sealed, b"job-1").is_none());
        assert!(JobKey::from_material(b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").is_some());
    }
}
