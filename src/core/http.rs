//! Plain values for what comes in and what goes out, so handlers can be
//! tested without a JS runtime. The shell converts these to and from the
//! worker crate's types.

use std::collections::BTreeMap;

/// The parts of an incoming request the core looks at.
#[derive(Debug, Clone, Default)]
pub struct Incoming {
    pub method: String,
    /// Full URL as the Worker saw it.
    pub url: String,
    /// Header names lower-cased; repeated headers joined with ", ".
    pub headers: BTreeMap<String, String>,
}

impl Incoming {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// `scheme://host[:port]` of the request URL.
    pub fn origin(&self) -> String {
        match url::Url::parse(&self.url) {
            Ok(u) => u.origin().ascii_serialization(),
            Err(_) => String::new(),
        }
    }

    pub fn query(&self) -> &str {
        match self.url.split_once('?') {
            Some((_, q)) => q.split('#').next().unwrap_or(""),
            None => "",
        }
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        let all = self.header("cookie")?;
        all.split(';').find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == name).then_some(v)
        })
    }
}

/// An outgoing response as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn new(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A JSON reply that must not be cached (tokens, registrations, errors).
    pub fn json(status: u16, value: &serde_json::Value) -> Reply {
        Reply::json_bytes(status, serde_json::to_vec(value).unwrap_or_default())
    }

    /// The same, for a document already serialised.
    pub fn json_bytes(status: u16, body: Vec<u8>) -> Reply {
        Reply::new(status)
            .header("Content-Type", "application/json; charset=utf-8")
            .header("Cache-Control", "no-store")
            .body(body)
    }

    /// A 302 (never 307: some clients fail silently on it).
    pub fn redirect(location: &str) -> Reply {
        Reply::new(302)
            .header("Location", location)
            .header("Cache-Control", "no-store")
            .header("Referrer-Policy", "no-referrer")
    }

    /// Set a header, replacing an earlier value of the same name; only
    /// `Set-Cookie` may appear several times. Values with CR or LF are
    /// dropped rather than sent: no input can split a response.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        if value.contains(['\r', '\n', '\0']) {
            return self;
        }
        if !name.eq_ignore_ascii_case("set-cookie") {
            self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        }
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: Vec<u8>) -> Reply {
        self.body = body;
        self
    }

    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_with_crlf_is_dropped() {
        let r = Reply::new(200)
            .header("X", "a\r\nSet-Cookie: x=1")
            .header("Y", "ok");
        assert_eq!(r.get_header("x"), None);
        assert_eq!(r.get_header("y"), Some("ok"));
    }

    #[test]
    fn a_header_is_replaced_but_cookies_accumulate() {
        let r = Reply::json(200, &serde_json::json!({}))
            .header("cache-control", "public, max-age=60")
            .header("Set-Cookie", "a=1")
            .header("Set-Cookie", "b=2");
        let cc: Vec<_> = r
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("cache-control"))
            .collect();
        assert_eq!(cc.len(), 1);
        assert_eq!(r.get_header("Cache-Control"), Some("public, max-age=60"));
        assert_eq!(
            r.headers.iter().filter(|(k, _)| k == "Set-Cookie").count(),
            2
        );
    }

    #[test]
    fn cookies_and_query() {
        let mut i = Incoming {
            url: "http://h:1/p?a=1#f".into(),
            ..Default::default()
        };
        i.headers.insert("cookie".into(), "a=1; b=two=2;c=3".into());
        assert_eq!(i.cookie("b"), Some("two=2"));
        assert_eq!(i.cookie("c"), Some("3"));
        assert_eq!(i.cookie("d"), None);
        assert_eq!(i.query(), "a=1");
        assert_eq!(i.origin(), "http://h:1");
    }
}
