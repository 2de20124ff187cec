//! Discovery documents: RFC 8414 authorization server metadata and RFC 9728
//! protected resource metadata. `issuer` is the base URL byte for byte, with
//! no trailing slash.

use serde_json::{json, Value};

/// Attio's scopes, spelled exactly as Attio spells them.
pub const ATTIO_SCOPES: &[&str] = &[
    "user_management:read",
    "user_management:read-write",
    "record_permission:read",
    "record_permission:read-write",
    "object_configuration:read",
    "object_configuration:read-write",
    "list_entry:read",
    "list_entry:read-write",
    "list_configuration:read",
    "list_configuration:read-write",
    "public_collection:read",
    "public_collection:read-write",
    "private_collection:read",
    "private_collection:read-write",
    "comment:read",
    "comment:read-write",
    "task:read",
    "task:read-write",
    "note:read",
    "note:read-write",
    "meeting:read",
    "meeting:read-write",
    "call_recording:read",
    "call_recording:read-write",
    "webhook:read",
    "webhook:read-write",
    "file:read",
    "file:read-write",
    "scim_management:read",
    "scim_management:read-write",
];

pub fn authorization_server(base: &str) -> Value {
    json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "registration_endpoint": format!("{base}/oauth/register"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
        "scopes_supported": ATTIO_SCOPES,
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": true,
        "service_documentation": format!("{base}/"),
    })
}

/// `suffix` is the path after `/.well-known/oauth-protected-resource`, if
/// the client used the path-suffixed form.
pub fn protected_resource(base: &str, suffix: Option<&str>) -> Value {
    let resource = match suffix
        .map(|s| s.trim_matches('/'))
        .filter(|s| !s.is_empty())
    {
        Some(s) => format!("{base}/{s}"),
        None => base.to_string(),
    };
    json!({
        "resource": resource,
        "authorization_servers": [base],
        "scopes_supported": ATTIO_SCOPES,
        "bearer_methods_supported": ["header"],
        "resource_documentation": format!("{base}/"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_and_endpoints() {
        let m = authorization_server("https://b.dev");
        assert_eq!(m["issuer"], "https://b.dev");
        assert_eq!(m["token_endpoint"], "https://b.dev/oauth/token");
        assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
        assert!(m["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("record_permission:read-write")));
        assert!(ATTIO_SCOPES
            .iter()
            .all(|s| s.ends_with(":read") || s.ends_with(":read-write")));
        assert_eq!(ATTIO_SCOPES.len(), 30);
    }

    #[test]
    fn resource_forms() {
        assert_eq!(
            protected_resource("https://b.dev", None)["resource"],
            "https://b.dev"
        );
        assert_eq!(
            protected_resource("https://b.dev", Some("/mcp")),
            json!({
                "resource": "https://b.dev/mcp",
                "authorization_servers": ["https://b.dev"],
                "scopes_supported": ATTIO_SCOPES,
                "bearer_methods_supported": ["header"],
                "resource_documentation": "https://b.dev/",
            })
        );
    }
}
