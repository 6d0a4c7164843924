//! Removing passwords from text before the server stores or returns it: every secret the job
//! was given (each whole connection string and its password, raw and percent-decoded) is
//! replaced by `***`, and so is the password of any `scheme://user:password@` URL, known or not.

/// Replaces a job's secrets in text.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    /// (secret, replacement), longest secret first: a whole connection string becomes its
    /// redacted form before its password alone is looked for.
    secrets: Vec<(String, String)>,
}

impl Scrubber {
    /// A scrubber for these connection strings (URLs or `key=value` conninfo).
    pub fn new(conninfos: &[&str]) -> Scrubber {
        let mut secrets = Vec::new();
        for c in conninfos {
            let shown = redact_urls(&seren_postgres::redact_conninfo(c));
            for p in passwords(c) {
                let decoded = percent_encoding::percent_decode_str(&p)
                    .decode_utf8_lossy()
                    .into_owned();
                let encoded = crate::session::url_component(&p);
                secrets.extend([p, decoded, encoded].map(|s| (s, "***".to_string())));
            }
            secrets.push((c.to_string(), shown));
        }
        secrets.retain(|(s, _)| !s.is_empty());
        secrets.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Scrubber { secrets }
    }

    /// `text` with every known secret and every URL password replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (s, replacement) in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), replacement);
            }
        }
        redact_urls(&out)
    }
}

/// The password of a connection string: a URL's userinfo password or `password=` parameter,
/// or a `key=value` string's `password` value.
fn passwords(conninfo: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(url) = url::Url::parse(conninfo) {
        if let Some(p) = url.password() {
            found.push(p.to_string());
        }
        for (k, v) in url.query_pairs() {
            if k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("pass") {
                found.push(v.into_owned());
            }
        }
    } else {
        for part in conninfo.split_whitespace() {
            if let Some(v) = part.strip_prefix("password=") {
                found.push(v.trim_matches('\'').to_string());
            }
        }
    }
    found
}

/// Every `scheme://user:password@host` in `text` with its password replaced by `***`.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (before, after) = rest.split_at(i + 3);
        out.push_str(before);
        let end = after
            .find(|c: char| {
                c.is_whitespace() || matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>')
            })
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rsplit_once('@') {
            Some((userinfo, host)) if userinfo.contains(':') => {
                let user = userinfo.split_once(':').map_or(userinfo, |u| u.0);
                out.push_str(&format!("{user}:***@{host}"));
            }
            _ => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_passwords_go() {
        let s = Scrubber::new(&[
            "postgresql://bob:Pw-9f3kq%21x@db:5432/app",
            "host=h user=u password='s3cr3t!'",
        ]);
        let text = "connect postgresql://bob:Pw-9f3kq%21x@db:5432/app failed; pw Pw-9f3kq!x, \
                    s3cr3t! and mysql://root:other@h/x";
        let clean = s.scrub(text);
        for secret in ["9f3kq", "s3cr3t", "other"] {
            assert!(!clean.contains(secret), "{clean}");
        }
        assert!(clean.contains("mysql://root:***@h/x"), "{clean}");
        assert!(clean.contains("bob:***@db:5432/app"), "{clean}");
        assert_eq!(redact_urls("http://host:80/x"), "http://host:80/x");
        assert_eq!(redact_urls("a://u@h b"), "a://u@h b");
    }
}
