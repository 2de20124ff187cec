//! Strict parsing of OAuth parameters: query strings, form bodies, and the
//! JSON bodies that lenient clients send instead of forms.
//!
//! RFC 6749 §3.1: parameters sent without a value are treated as omitted, and
//! request and response parameters must not be repeated. Percent-encoding must
//! be well formed and decode to UTF-8; anything else is refused rather than
//! guessed at.

use std::collections::BTreeMap;

/// Longest value accepted for any single parameter.
pub const MAX_PARAM_LEN: usize = 8 * 1024;
/// Most parameters accepted in one request.
pub const MAX_PARAMS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamError {
    BadEncoding(String),
    Repeated(String),
    TooLong(String),
    TooMany,
    NotAnObject,
}

impl ParamError {
    pub fn describe(&self) -> String {
        match self {
            ParamError::BadEncoding(name) if name.is_empty() => {
                "the parameters are not valid percent-encoded UTF-8".into()
            }
            ParamError::BadEncoding(name) => {
                format!(
                    "parameter '{}' is not valid percent-encoded UTF-8",
                    printable(name)
                )
            }
            ParamError::Repeated(name) => format!("parameter '{}' is repeated", printable(name)),
            ParamError::TooLong(name) => format!("parameter '{}' is too long", printable(name)),
            ParamError::TooMany => "too many parameters".into(),
            ParamError::NotAnObject => "the JSON body must be an object of string values".into(),
        }
    }
}

/// A parameter name safe to echo in an error description: short, and only
/// characters that cannot break out of JSON, HTML or a header.
pub fn printable(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(40)
        .collect();
    if cleaned.is_empty() {
        "?".into()
    } else {
        cleaned
    }
}

#[derive(Debug, Default, Clone)]
pub struct Params {
    map: BTreeMap<String, String>,
}

impl Params {
    /// Parse `application/x-www-form-urlencoded` (also query strings).
    pub fn parse_form(input: &[u8]) -> Result<Params, ParamError> {
        let mut map = BTreeMap::new();
        let mut count = 0;
        for pair in input.split(|b| *b == b'&') {
            if pair.is_empty() {
                continue;
            }
            count += 1;
            if count > MAX_PARAMS {
                return Err(ParamError::TooMany);
            }
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let name = decode(k).map_err(|_| ParamError::BadEncoding(String::new()))?;
            let value = decode(v).map_err(|_| ParamError::BadEncoding(name.clone()))?;
            insert(&mut map, name, value)?;
        }
        Ok(Params { map })
    }

    /// Parse a JSON object whose values are strings (numbers and booleans are
    /// taken as their text; arrays, objects and nulls are refused).
    /// A key repeated in the object is refused, as in a form.
    pub fn parse_json(input: &[u8]) -> Result<Params, ParamError> {
        // Read the entries in order, as a list, so a repeated key is seen
        // (a JSON map would silently keep the last one).
        let entries: Entries =
            serde_json::from_slice(input).map_err(|_| ParamError::NotAnObject)?;
        if entries.0.len() > MAX_PARAMS {
            return Err(ParamError::TooMany);
        }
        let mut map = BTreeMap::new();
        for (k, v) in entries.0 {
            let s = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => return Err(ParamError::NotAnObject),
            };
            if map.contains_key(&k) {
                return Err(ParamError::Repeated(k));
            }
            insert(&mut map, k, s)?;
        }
        Ok(Params { map })
    }

    /// The parameter's value; an empty value counts as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// The entries of a JSON object in order, duplicates kept.
struct Entries(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Entries, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = m.next_entry::<String, serde_json::Value>()? {
                    if out.len() > MAX_PARAMS {
                        return Err(serde::de::Error::custom("too many parameters"));
                    }
                    out.push(entry);
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

fn insert(
    map: &mut BTreeMap<String, String>,
    name: String,
    value: String,
) -> Result<(), ParamError> {
    if value.len() > MAX_PARAM_LEN || name.len() > 256 {
        return Err(ParamError::TooLong(name));
    }
    // An empty value is "omitted" (RFC 6749 §3.1), so it neither counts as a
    // repetition nor overwrites a real value.
    match map.get(&name) {
        Some(existing) if !existing.is_empty() && !value.is_empty() => {
            Err(ParamError::Repeated(name))
        }
        Some(existing) if !existing.is_empty() => Ok(()),
        _ => {
            map.insert(name, value);
            Ok(())
        }
    }
}

/// Strict form decoding: `+` is a space, `%XX` must be two hex digits, and
/// the result must be UTF-8.
pub fn decode(input: &[u8]) -> Result<String, ()> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = input.get(i + 1).and_then(|c| hex(*c)).ok_or(())?;
                let lo = input.get(i + 2).and_then(|c| hex(*c)).ok_or(())?;
                out.push(hi << 4 | lo);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ())
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Append parameters to a URL's query, keeping any query it already has.
pub fn append_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    let q = ser.finish();
    let (before_fragment, _) = base.split_once('#').unwrap_or((base, ""));
    if q.is_empty() {
        before_fragment.to_string()
    } else if before_fragment.contains('?') {
        let sep = if before_fragment.ends_with('?') || before_fragment.ends_with('&') {
            ""
        } else {
            "&"
        };
        format!("{before_fragment}{sep}{q}")
    } else {
        format!("{before_fragment}?{q}")
    }
}

/// Encode a form body.
pub fn encode_form(pairs: &[(&str, &str)]) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    ser.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_decodes() {
        let p = Params::parse_form(b"a=1&b=x+y%21&c=&d").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), Some("x y!"));
        assert_eq!(p.get("c"), None);
        assert_eq!(p.get("d"), None);
    }

    #[test]
    fn repeated_is_refused_but_empty_repeat_is_ignored() {
        assert_eq!(
            Params::parse_form(b"a=1&a=2").unwrap_err(),
            ParamError::Repeated("a".into())
        );
        assert_eq!(Params::parse_form(b"a=1&a=").unwrap().get("a"), Some("1"));
        assert_eq!(Params::parse_form(b"a=&a=1").unwrap().get("a"), Some("1"));
    }

    #[test]
    fn bad_encoding_is_refused() {
        for bad in [
            &b"a=%"[..],
            b"a=%4",
            b"a=%zz",
            b"a=%ff",
            b"a=\xff",
            b"%ff=1",
        ] {
            assert!(
                matches!(Params::parse_form(bad), Err(ParamError::BadEncoding(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn limits() {
        let long = format!("a={}", "x".repeat(MAX_PARAM_LEN + 1));
        assert!(matches!(
            Params::parse_form(long.as_bytes()),
            Err(ParamError::TooLong(_))
        ));
        let many: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("p{i}=1")).collect();
        assert_eq!(
            Params::parse_form(many.join("&").as_bytes()).unwrap_err(),
            ParamError::TooMany
        );
    }

    #[test]
    fn json_bodies() {
        let p = Params::parse_json(br#"{"grant_type":"refresh_token","n":5,"b":true}"#).unwrap();
        assert_eq!(p.get("grant_type"), Some("refresh_token"));
        assert_eq!(p.get("n"), Some("5"));
        assert!(Params::parse_json(b"[1]").is_err());
        assert!(Params::parse_json(br#"{"a":[1]}"#).is_err());
        assert!(Params::parse_json(b"{").is_err());
        assert_eq!(
            Params::parse_json(br#"{"grant_type":"password","grant_type":"refresh_token"}"#)
                .unwrap_err(),
            ParamError::Repeated("grant_type".into())
        );
    }

    #[test]
    fn append_query_keeps_existing_and_drops_fragment() {
        assert_eq!(
            append_query("https://a/cb", &[("code", "x y")]),
            "https://a/cb?code=x+y"
        );
        assert_eq!(
            append_query("https://a/cb?k=v", &[("code", "1")]),
            "https://a/cb?k=v&code=1"
        );
        assert_eq!(
            append_query("cursor://x/cb", &[("a", "&")]),
            "cursor://x/cb?a=%26"
        );
    }

    #[test]
    fn printable_strips_markup() {
        assert_eq!(printable("<script>"), "script");
        assert_eq!(printable("\r\n"), "?");
    }

    proptest! {
        #[test]
        fn never_panics(input in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Params::parse_form(&input);
            let _ = Params::parse_json(&input);
        }

        #[test]
        fn encode_then_parse_round_trips(k in "[a-z_]{1,10}", v in ".{1,50}") {
            let body = encode_form(&[(&k, &v)]);
            let p = Params::parse_form(body.as_bytes()).unwrap();
            prop_assert_eq!(p.get(&k), Some(v.as_str()));
        }
    }
}
