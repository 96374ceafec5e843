//! `server.auth`: who may use the data plane. A request's `Authorization:
//! Bearer` credential is a static token (compared as `manage.tokens` are,
//! see [`super`]) or a JWT access token from the configured issuer
//! ([`super::jwt`], keys from [`super::jwks`]). The result is an
//! [`Identity`] (the token's name, or the JWT's `sub`) that the transports
//! bind sessions to, or a refusal the data plane answers with 401 and a
//! `WWW-Authenticate` challenge pointing at the protected resource
//! metadata (RFC 9728). Built once at start; checks run on the data
//! plane's reactor thread and never block: a token whose key is unknown
//! yields [`Outcome::NeedKeys`], and the caller hands its request to the
//! `auth:jwks` thread.

use super::jwt::{self, JwtError};
use super::{jwks::Jwks, Digest};
use crate::config::{DataAuthConfig, JwtConfig};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Longest identity kept (a JWT `sub` is the issuer's text).
pub const MAX_NAME: usize = 128;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A `server.auth.tokens` entry; `name` is its name.
    Token,
    /// A JWT access token; `name` is its `sub`.
    Jwt,
}

/// Who made a request.
#[derive(Clone, Debug)]
pub struct Identity {
    pub kind: Kind,
    /// The token's name or the JWT's `sub` (printable, at most [`MAX_NAME`]).
    pub name: String,
    /// The views this identity may use (`None`: not restricted by auth).
    pub views: Option<Vec<String>>,
}

impl PartialEq for Identity {
    /// The same client: kind and name (views do not make another client).
    fn eq(&self, other: &Identity) -> bool {
        self.kind == other.kind && self.name == other.name
    }
}

impl Identity {
    /// `token:<name>` or `jwt:<sub>`, for logs and events.
    pub fn label(&self) -> String {
        let kind = match self.kind {
            Kind::Token => "token",
            Kind::Jwt => "jwt",
        };
        format!("{kind}:{}", self.name)
    }
}

/// Whether two requests' identities are the same client (both anonymous
/// counts as the same).
pub fn same(a: Option<&Identity>, b: Option<&Identity>) -> bool {
    a == b
}

/// The answer to a credential.
#[derive(Debug)]
pub enum Outcome {
    /// Served, as this identity (`None`: anonymous, `allow_unauthenticated`).
    Allowed(Option<Arc<Identity>>),
    /// 401.
    Refused(Refusal),
    /// A JWT signed with a key not in the cache: check again after a refetch.
    NeedKeys,
}

#[derive(Debug, PartialEq)]
pub struct Refusal {
    /// A credential was presented (then the challenge says `invalid_token`).
    pub token_given: bool,
    /// Why, for the event and the `error_description` (never the token).
    pub reason: String,
    /// Who, when the token itself was genuine (an expired JWT's `sub`).
    pub who: Option<String>,
}

struct StaticToken {
    name: String,
    digest: Digest,
    views: Option<Vec<String>>,
    /// Requests it authenticated.
    used: AtomicU64,
}

pub struct DataAuth {
    tokens: Vec<StaticToken>,
    jwt: Option<(JwtConfig, Jwks)>,
    resource: String,
    allow_anonymous: bool,
    /// Requests served as a JWT identity.
    pub jwt_used: AtomicU64,
    /// Refusals (401).
    pub refused: AtomicU64,
}

impl DataAuth {
    /// Loads the tokens and starts the key-set thread. `default_resource`
    /// is the resource id when `resource` is not set. Errors name the entry.
    pub fn from_config(cfg: &DataAuthConfig, default_resource: &str) -> Result<DataAuth, String> {
        let mut tokens = Vec::with_capacity(cfg.tokens.len());
        for (i, t) in cfg.tokens.iter().enumerate() {
            let digest = super::load_digest(&t.source, &format!("server.auth.tokens[{i}] ({})", t.name))?;
            tokens.push(StaticToken { name: t.name.clone(), digest, views: t.views.clone(), used: AtomicU64::new(0) });
        }
        let jwt = match &cfg.jwt {
            Some(j) => Some((j.clone(), Jwks::start(j)?)),
            None => None,
        };
        Ok(DataAuth {
            tokens,
            jwt,
            resource: cfg.resource.clone().unwrap_or_else(|| default_resource.to_owned()),
            allow_anonymous: cfg.allow_unauthenticated,
            jwt_used: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    /// For tests: the given JWT settings with a fixed key set.
    pub fn with_keys(cfg: &DataAuthConfig, keys: jwt::KeySet, resource: &str) -> Result<DataAuth, String> {
        let mut a = DataAuth::from_config(&DataAuthConfig { jwt: None, ..cfg.clone() }, resource)?;
        a.jwt = cfg.jwt.clone().map(|j| (j, Jwks::fixed(keys)));
        Ok(a)
    }

    pub fn jwks(&self) -> Option<&Jwks> {
        self.jwt.as_ref().map(|(_, k)| k)
    }

    /// The protected resource's identifier.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// Static tokens' names with the requests each authenticated (metrics:
    /// the names are bounded by the configuration).
    pub fn token_counts(&self) -> Vec<(&str, u64)> {
        self.tokens.iter().map(|t| (t.name.as_str(), t.used.load(Ordering::Relaxed))).collect()
    }

    /// Checks an `Authorization` header at `now` (seconds since the epoch).
    /// `may_wait`: an unknown JWT key yields [`Outcome::NeedKeys`] (else a
    /// refusal: the refetch already happened).
    pub fn check(&self, authorization: Option<&str>, now: u64, may_wait: bool) -> Outcome {
        let out = self.check_inner(authorization, now, may_wait);
        if matches!(out, Outcome::Refused(_)) {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        out
    }

    fn check_inner(&self, authorization: Option<&str>, now: u64, may_wait: bool) -> Outcome {
        let Some(presented) = super::bearer(authorization) else {
            if self.allow_anonymous && authorization.is_none() {
                return Outcome::Allowed(None);
            }
            let reason = if authorization.is_some() { "not a Bearer credential" } else { "no bearer token" };
            return Outcome::Refused(Refusal {
                token_given: authorization.is_some(),
                reason: reason.into(),
                who: None,
            });
        };
        // Every static token is compared, whatever the credential's shape.
        if let Some(t) = super::find_token(&self.tokens, |t| &t.digest, presented) {
            t.used.fetch_add(1, Ordering::Relaxed);
            return Outcome::Allowed(Some(Arc::new(Identity {
                kind: Kind::Token,
                name: t.name.clone(),
                views: t.views.clone(),
            })));
        }
        let invalid =
            |reason: String, who: Option<String>| Outcome::Refused(Refusal { token_given: true, reason, who });
        let Some((cfg, keys)) = &self.jwt else {
            return invalid("unknown token".into(), None);
        };
        if !jwt::looks_like_jwt(presented) {
            return invalid("unknown token".into(), None);
        }
        let expect = jwt::Expect { issuer: &cfg.issuer, audience: &cfg.audience };
        match jwt::verify(presented, &keys.keys(), &expect, now) {
            Ok(c) => {
                self.jwt_used.fetch_add(1, Ordering::Relaxed);
                let name =
                    c.sub.as_deref().map_or_else(|| "(no sub)".to_owned(), |s| crate::util::printable(s, MAX_NAME));
                let views = cfg.views_claim.as_deref().and_then(|claim| views_of(c.claims.get(claim)));
                Outcome::Allowed(Some(Arc::new(Identity { kind: Kind::Jwt, name, views })))
            }
            Err(JwtError::UnknownKey) if may_wait => Outcome::NeedKeys,
            Err(e @ (JwtError::Issuer | JwtError::Audience | JwtError::Expired | JwtError::NotYetValid)) => {
                // The signature held: its sub is the issuer's word.
                invalid(format!("JWT {e}"), signed_sub(presented))
            }
            Err(e) => invalid(format!("JWT {e}"), None),
        }
    }

    /// The `WWW-Authenticate` value of a 401 (MCP authorization, RFC 9728
    /// §5.1, RFC 6750 §3): where the resource metadata is, and
    /// `invalid_token` when a credential was presented.
    pub fn challenge(&self, refusal: &Refusal) -> String {
        let mut v = format!("Bearer resource_metadata=\"{}\"", self.metadata_url());
        if refusal.token_given {
            let desc: String = refusal.reason.chars().filter(|c| *c != '"' && *c != '\\' && !c.is_control()).collect();
            v.push_str(&format!(", error=\"invalid_token\", error_description=\"{desc}\""));
        }
        v
    }

    /// `<origin of resource>/.well-known/oauth-protected-resource`.
    pub fn metadata_url(&self) -> String {
        format!("{}{}", origin(&self.resource), WELL_KNOWN)
    }

    /// The RFC 9728 metadata document.
    pub fn metadata(&self) -> Value {
        let mut m = serde_json::json!({
            "resource": self.resource,
            "bearer_methods_supported": ["header"],
        });
        if let Some((cfg, _)) = &self.jwt {
            m["authorization_servers"] = serde_json::json!([cfg.issuer]);
        }
        m
    }
}

/// The metadata's path (RFC 9728 §3); the path-suffixed form
/// (`…/oauth-protected-resource/mcp`) is served too.
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// `scheme://authority` of a URL.
fn origin(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    match url[after..].find(['/', '?', '#']) {
        Some(i) => &url[..after + i],
        None => url,
    }
}

/// A views claim: an array of strings or one space-separated string.
fn views_of(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::Array(a) => Some(a.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
        Value::String(s) => Some(s.split_whitespace().map(str::to_owned).collect()),
        _ => None,
    }
}

/// The `sub` of a token whose signature was verified.
fn signed_sub(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = crate::util::base64url_decode(payload)?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    Some(crate::util::printable(v.get("sub")?.as_str()?, MAX_NAME))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DataTokenConfig, TokenSource};
    use serde_json::json;

    fn cfg() -> DataAuthConfig {
        DataAuthConfig {
            tokens: vec![DataTokenConfig {
                name: "alice".into(),
                // sha256("abc")
                source: TokenSource::Sha256("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into()),
                views: Some(vec!["dev".into()]),
            }],
            jwt: Some(JwtConfig {
                issuer: "https://idp".into(),
                audience: "mcp".into(),
                jwks_url: "http://127.0.0.1:1/k".into(),
                ca_cert: None,
                views_claim: Some("mcp_views".into()),
            }),
            resource: None,
            allow_unauthenticated: false,
        }
    }

    #[test]
    fn static_tokens_jwt_and_challenges() {
        use ring::signature::{Ed25519KeyPair, KeyPair};
        let rng = ring::rand::SystemRandom::new();
        let kp = Ed25519KeyPair::from_pkcs8(Ed25519KeyPair::generate_pkcs8(&rng).expect("gen").as_ref()).expect("kp");
        let x = crate::util::base64url_encode(kp.public_key().as_ref());
        let keys = jwt::KeySet::parse(
            json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": x}]}).to_string().as_bytes(),
        )
        .expect("keys");
        let a = DataAuth::with_keys(&cfg(), keys, "http://127.0.0.1:9000/mcp").expect("auth");
        let now = 1_800_000_000;
        match a.check(Some("Bearer abc"), now, true) {
            Outcome::Allowed(Some(id)) => {
                assert_eq!(id.label(), "token:alice");
                assert_eq!(id.views.as_deref(), Some(&["dev".to_owned()][..]));
            }
            other => panic!("{other:?}"),
        }
        let Outcome::Refused(r) = a.check(None, now, true) else { panic!("anonymous") };
        assert!(!r.token_given);
        assert_eq!(
            a.challenge(&r),
            "Bearer resource_metadata=\"http://127.0.0.1:9000/.well-known/oauth-protected-resource\""
        );
        let Outcome::Refused(r) = a.check(Some("Bearer nope"), now, true) else { panic!("wrong") };
        assert!(a.challenge(&r).contains("error=\"invalid_token\""));
        let claims = json!({"iss": "https://idp", "aud": "mcp", "sub": "bob", "exp": now + 60, "mcp_views": ["dev"]});
        let t = jwt::tests::sign_ed25519(&kp, "k1", &claims);
        match a.check(Some(&format!("Bearer {t}")), now, true) {
            Outcome::Allowed(Some(id)) => {
                assert_eq!((id.label(), id.views.clone()), ("jwt:bob".to_owned(), Some(vec!["dev".to_owned()])))
            }
            other => panic!("{other:?}"),
        }
        let expired =
            jwt::tests::sign_ed25519(&kp, "k1", &json!({"iss": "https://idp", "aud": "mcp", "sub": "bob", "exp": 5}));
        let Outcome::Refused(r) = a.check(Some(&format!("Bearer {expired}")), now, true) else { panic!("expired") };
        assert_eq!((r.reason.as_str(), r.who.as_deref()), ("JWT expired", Some("bob")));
        let other_kid = jwt::tests::sign_ed25519(&kp, "k2", &claims);
        assert!(matches!(a.check(Some(&format!("Bearer {other_kid}")), now, true), Outcome::NeedKeys));
        assert!(matches!(a.check(Some(&format!("Bearer {other_kid}")), now, false), Outcome::Refused(_)));
        assert_eq!(a.metadata()["authorization_servers"], json!(["https://idp"]));
        assert_eq!(a.token_counts(), vec![("alice", 1)]);
    }

    #[test]
    fn anonymous_when_allowed() {
        let c = DataAuthConfig { allow_unauthenticated: true, jwt: None, ..cfg() };
        let a = DataAuth::from_config(&c, "http://h/mcp").expect("auth");
        assert!(matches!(a.check(None, 0, true), Outcome::Allowed(None)));
        assert!(matches!(a.check(Some("Bearer nope"), 0, true), Outcome::Refused(_)));
        assert_eq!(origin("https://gw.example.com:8443/mcp?x"), "https://gw.example.com:8443");
    }
}
