//! TLS as libpq does it: `sslmode` (`disable`, `allow`, `prefer`, `require`, `verify-ca`,
//! `verify-full`) and `sslrootcert`, on top of OpenSSL.
//!
//! tokio-postgres only knows `disable`/`prefer`/`require` and rejects `sslrootcert`, so these
//! parameters are taken out of the connection string here and applied to the OpenSSL connector.

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use pipeline::{Error, ErrorKind, Result, Side};
use postgres_openssl::MakeTlsConnector;
use std::path::PathBuf;
use tokio_postgres::config::SslMode;

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Encrypt, check nothing (`require`, and `prefer` when the server offers TLS).
    None,
    /// The certificate must chain to a trusted root (`verify-ca`).
    Ca,
    /// …and name the host connected to (`verify-full`).
    Full,
}

/// The TLS settings of one connection string.
#[derive(Debug, Clone)]
pub struct Tls {
    /// What tokio-postgres negotiates.
    pub mode: SslMode,
    /// What is verified once TLS is up.
    pub verify: Verify,
    /// Trusted roots (`sslrootcert`); the system's when absent.
    pub root_cert: Option<PathBuf>,
}

impl Tls {
    /// Take `sslmode` and `sslrootcert` out of `conninfo` (URL or key=value); returns the rest
    /// of the string and the settings. The default, as in libpq, is `prefer`.
    pub fn extract(conninfo: &str, side: Side) -> Result<(String, Tls)> {
        let (rest, params) = if conninfo.contains("://") {
            take_url_params(conninfo)
        } else {
            take_keyword_params(conninfo)
        };
        let mut tls = Tls {
            mode: SslMode::Prefer,
            verify: Verify::None,
            root_cert: None,
        };
        for (key, value) in params {
            match key.as_str() {
                "sslrootcert" => tls.root_cert = Some(PathBuf::from(value)),
                _ => {
                    (tls.mode, tls.verify) = match value.as_str() {
                        "disable" => (SslMode::Disable, Verify::None),
                        "allow" | "prefer" => (SslMode::Prefer, Verify::None),
                        "require" => (SslMode::Require, Verify::None),
                        "verify-ca" => (SslMode::Require, Verify::Ca),
                        "verify-full" => (SslMode::Require, Verify::Full),
                        other => {
                            return Err(Error::new(
                                ErrorKind::Config,
                                side,
                                format!(
                                    "sslmode `{other}` is not one of disable, allow, prefer, \
                                     require, verify-ca, verify-full"
                                ),
                            ))
                        }
                    }
                }
            }
        }
        // As in libpq, a root certificate file with `require` means verify-ca.
        if tls.verify == Verify::None && tls.mode == SslMode::Require && tls.root_cert.is_some() {
            tls.verify = Verify::Ca;
        }
        Ok((rest, tls))
    }

    /// The OpenSSL connector for these settings, built once per process and settings (loading
    /// the system's trusted roots costs ~100 ms of CPU).
    pub fn connector(&self, side: Side) -> Result<MakeTlsConnector> {
        static BUILT: std::sync::OnceLock<
            std::sync::Mutex<std::collections::HashMap<String, MakeTlsConnector>>,
        > = std::sync::OnceLock::new();
        let key = format!("{:?} {:?} {:?}", self.mode, self.verify, self.root_cert);
        let cache = BUILT.get_or_init(Default::default);
        if let Some(c) = cache.lock().unwrap().get(&key) {
            return Ok(c.clone());
        }
        let c = self.build_connector(side)?;
        cache.lock().unwrap().insert(key, c.clone());
        Ok(c)
    }

    fn build_connector(&self, side: Side) -> Result<MakeTlsConnector> {
        let config_error = |what: String, e: openssl::error::ErrorStack| {
            Error::new(ErrorKind::Config, side, format!("{what}: {e}"))
        };
        let mut builder = SslConnector::builder(SslMethod::tls())
            .map_err(|e| config_error("setting up TLS".into(), e))?;
        match &self.root_cert {
            // Never used: TLS is off, so the trusted roots need not be loaded.
            _ if self.mode == SslMode::Disable => {}
            Some(path) => builder
                .set_ca_file(path)
                .map_err(|e| config_error(format!("reading sslrootcert {}", path.display()), e))?,
            None => builder
                .set_default_verify_paths()
                .map_err(|e| config_error("loading the system's trusted certificates".into(), e))?,
        }
        if self.verify == Verify::None {
            builder.set_verify(SslVerifyMode::NONE);
        }
        let mut connector = MakeTlsConnector::new(builder.build());
        let full = self.verify == Verify::Full;
        connector.set_callback(move |config, _| {
            config.set_verify_hostname(full);
            Ok(())
        });
        Ok(connector)
    }
}

fn is_tls_key(key: &str) -> bool {
    key == "sslmode" || key == "sslrootcert"
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn take_url_params(url: &str) -> (String, Vec<(String, String)>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), Vec::new());
    };
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((k, v)) if is_tls_key(&percent_decode(k)) => {
                taken.push((percent_decode(k), percent_decode(v)))
            }
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (rest, taken)
}

/// Split `key = value` pairs (values optionally single-quoted with `\` escapes), taking the TLS
/// ones out and re-quoting the others.
fn take_keyword_params(s: &str) -> (String, Vec<(String, String)>) {
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            break;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == '=') {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '\'' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        if is_tls_key(&key) {
            taken.push((key, value));
        } else {
            let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
            kept.push(format!("{key}='{quoted}'"));
        }
    }
    (kept.join(" "), taken)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_tls_parameters_out_of_urls_and_keywords() {
        let (rest, tls) =
            Tls::extract("postgresql://u@h/db?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca.pem", Side::Target)
                .unwrap();
        assert_eq!(rest, "postgresql://u@h/db?application_name=x");
        assert_eq!((tls.mode, tls.verify), (SslMode::Require, Verify::Full));
        assert_eq!(tls.root_cert, Some(PathBuf::from("/tmp/ca.pem")));

        let (rest, tls) = Tls::extract(
            "host=h sslmode = require password='a b\\'c' sslrootcert='/x y/ca.pem'",
            Side::Target,
        )
        .unwrap();
        assert_eq!(rest, "host='h' password='a b\\'c'");
        assert_eq!((tls.mode, tls.verify), (SslMode::Require, Verify::Ca));

        let (rest, tls) = Tls::extract("postgresql://u@h/db", Side::Target).unwrap();
        assert_eq!(rest, "postgresql://u@h/db");
        assert_eq!(tls.mode, SslMode::Prefer);
        assert!(Tls::extract("host=h sslmode=bogus", Side::Target).is_err());
    }
}
