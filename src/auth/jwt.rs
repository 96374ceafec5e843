//! JWT access tokens (RFC 7519, the JWS compact form of RFC 7515) as an
//! OAuth 2.1 protected resource checks them: `alg` one of RS256, ES256,
//! EdDSA (never `none` nor an HMAC, whose key would be the public one), the
//! signature against the issuer's key with that `kid` (`ring`), then `iss`,
//! `aud`, `exp` and `nbf` with [`SKEW`] of clock leeway. Pure: the key set
//! is given ([`KeySet::parse`] reads a JWKS document; fetching it is
//! [`super::jwks`]'s).

use serde_json::{Map, Value};

/// Clock leeway for `exp` and `nbf`, in seconds.
pub const SKEW: u64 = 60;
/// Longest token considered (bytes); a longer one is refused unparsed.
pub const MAX_TOKEN: usize = 16 * 1024;
/// Most keys kept from one key set.
const MAX_KEYS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Es256,
    EdDsa,
}

impl Alg {
    fn from_name(s: &str) -> Option<Alg> {
        match s {
            "RS256" => Some(Alg::Rs256),
            "ES256" => Some(Alg::Es256),
            "EdDSA" => Some(Alg::EdDsa),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum KeyData {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// The uncompressed point 0x04 || x || y.
    P256(Vec<u8>),
    Ed25519(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub kid: Option<String>,
    alg: Alg,
    data: KeyData,
}

/// The usable keys of a JWKS document.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeySet {
    pub keys: Vec<Key>,
}

/// Why a token was refused. None of these carries the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwtError {
    /// Not three base64url parts of JSON, or too long.
    Malformed(&'static str),
    /// An `alg` this resource does not accept.
    Alg(String),
    /// No key with the token's `kid` (the key set may be out of date).
    UnknownKey,
    Signature,
    Issuer,
    Audience,
    Expired,
    NotYetValid,
}

impl std::fmt::Display for JwtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtError::Malformed(why) => write!(f, "malformed token: {why}"),
            JwtError::Alg(a) => write!(f, "algorithm {:?} is not accepted", crate::util::printable(a, 20)),
            JwtError::UnknownKey => f.write_str("signed with an unknown key"),
            JwtError::Signature => f.write_str("bad signature"),
            JwtError::Issuer => f.write_str("wrong issuer"),
            JwtError::Audience => f.write_str("wrong audience"),
            JwtError::Expired => f.write_str("expired"),
            JwtError::NotYetValid => f.write_str("not yet valid"),
        }
    }
}

/// What a verified token says about its holder.
#[derive(Clone, Debug, PartialEq)]
pub struct Claims {
    pub sub: Option<String>,
    pub claims: Map<String, Value>,
}

/// The token's header fields that choose a key.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub alg: String,
    pub kid: Option<String>,
}

/// Whether a bearer credential has the shape of a JWS (three base64url
/// parts); static tokens never reach the verifier otherwise.
pub fn looks_like_jwt(token: &str) -> bool {
    token.len() <= MAX_TOKEN
        && token.split('.').count() == 3
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn b64json(part: &str, what: &'static str) -> Result<Map<String, Value>, JwtError> {
    let bytes = crate::util::base64url_decode(part).ok_or(JwtError::Malformed(what))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(JwtError::Malformed(what)),
    }
}

/// The header alone (no verification): which key the token names.
pub fn header(token: &str) -> Result<Header, JwtError> {
    if !looks_like_jwt(token) {
        return Err(JwtError::Malformed("not a JWS compact token"));
    }
    let h = b64json(token.split('.').next().unwrap_or(""), "header is not base64url JSON")?;
    let alg = h.get("alg").and_then(Value::as_str).ok_or(JwtError::Malformed("header has no alg"))?;
    if h.get("crit").is_some() {
        return Err(JwtError::Malformed("unsupported crit header"));
    }
    Ok(Header { alg: alg.to_owned(), kid: h.get("kid").and_then(Value::as_str).map(str::to_owned) })
}

/// What the token must say: `iss` and an `aud` entry.
pub struct Expect<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
}

/// Verifies `token` against `keys` at `now` (seconds since the epoch).
pub fn verify(token: &str, keys: &KeySet, expect: &Expect<'_>, now: u64) -> Result<Claims, JwtError> {
    let h = header(token)?;
    let alg = Alg::from_name(&h.alg).ok_or_else(|| JwtError::Alg(h.alg.clone()))?;
    let mut parts = token.split('.');
    let (head, payload, sig) = match (parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), Some(c)) => (a, b, c),
        _ => return Err(JwtError::Malformed("not three parts")),
    };
    let sig = crate::util::base64url_decode(sig).ok_or(JwtError::Malformed("signature is not base64url"))?;
    let signed = &token.as_bytes()[..head.len() + 1 + payload.len()];
    let candidates: Vec<&Key> =
        keys.keys.iter().filter(|k| k.alg == alg && (h.kid.is_none() || k.kid == h.kid)).collect();
    if candidates.is_empty() {
        return Err(JwtError::UnknownKey);
    }
    if !candidates.iter().any(|k| k.verify(signed, &sig)) {
        return Err(JwtError::Signature);
    }
    let c = b64json(payload, "payload is not base64url JSON")?;
    if c.get("iss").and_then(Value::as_str) != Some(expect.issuer) {
        return Err(JwtError::Issuer);
    }
    let aud_ok = match c.get("aud") {
        Some(Value::String(a)) => a == expect.audience,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(expect.audience)),
        _ => false,
    };
    if !aud_ok {
        return Err(JwtError::Audience);
    }
    // exp is required for an access token.
    match c.get("exp").and_then(Value::as_f64) {
        Some(exp) if exp + SKEW as f64 > now as f64 => {}
        _ => return Err(JwtError::Expired),
    }
    if let Some(nbf) = c.get("nbf") {
        match nbf.as_f64() {
            Some(nbf) if nbf <= (now + SKEW) as f64 => {}
            _ => return Err(JwtError::NotYetValid),
        }
    }
    Ok(Claims { sub: c.get("sub").and_then(Value::as_str).map(str::to_owned), claims: c })
}

impl Key {
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        use ring::signature as s;
        match &self.data {
            KeyData::Rsa { n, e } => {
                s::RsaPublicKeyComponents { n, e }.verify(&s::RSA_PKCS1_2048_8192_SHA256, msg, sig).is_ok()
            }
            KeyData::P256(point) => {
                s::UnparsedPublicKey::new(&s::ECDSA_P256_SHA256_FIXED, point).verify(msg, sig).is_ok()
            }
            KeyData::Ed25519(k) => s::UnparsedPublicKey::new(&s::ED25519, k).verify(msg, sig).is_ok(),
        }
    }

    /// One JWK; `None` for a key this resource cannot use (another type,
    /// an encryption key, a symmetric key), which is skipped.
    fn from_jwk(k: &Map<String, Value>) -> Option<Key> {
        let s = |name: &str| k.get(name).and_then(Value::as_str);
        let b = |name: &str| s(name).and_then(crate::util::base64url_decode);
        if s("use").is_some_and(|u| u != "sig") {
            return None;
        }
        let (alg, data) = match (s("kty")?, s("crv")) {
            ("RSA", _) => {
                let strip = |v: Vec<u8>| -> Vec<u8> {
                    let first = v.iter().position(|&x| x != 0).unwrap_or(v.len());
                    v[first..].to_vec()
                };
                (Alg::Rs256, KeyData::Rsa { n: strip(b("n")?), e: strip(b("e")?) })
            }
            ("EC", Some("P-256")) => {
                let (x, y) = (b("x")?, b("y")?);
                if x.len() != 32 || y.len() != 32 {
                    return None;
                }
                let mut p = vec![4u8];
                p.extend_from_slice(&x);
                p.extend_from_slice(&y);
                (Alg::Es256, KeyData::P256(p))
            }
            ("OKP", Some("Ed25519")) => {
                let x = b("x")?;
                if x.len() != 32 {
                    return None;
                }
                (Alg::EdDsa, KeyData::Ed25519(x))
            }
            _ => return None,
        };
        // A key that declares its algorithm is used for that one only.
        if s("alg").is_some_and(|a| Alg::from_name(a) != Some(alg)) {
            return None;
        }
        Some(Key { kid: s("kid").map(str::to_owned), alg, data })
    }
}

impl KeySet {
    /// A JWKS document (`{"keys": [...]}`); keys it cannot use are skipped.
    pub fn parse(json: &[u8]) -> Result<KeySet, String> {
        let v: Value = serde_json::from_slice(json).map_err(|e| format!("not JSON: {e}"))?;
        let keys = v.get("keys").and_then(Value::as_array).ok_or("no \"keys\" array")?;
        let keys: Vec<Key> =
            keys.iter().filter_map(Value::as_object).filter_map(Key::from_jwk).take(MAX_KEYS).collect();
        Ok(KeySet { keys })
    }

    /// Whether a key with this `kid` (or, with none, of this algorithm) is known.
    pub fn knows(&self, h: &Header) -> bool {
        let Some(alg) = Alg::from_name(&h.alg) else { return true };
        self.keys.iter().any(|k| k.alg == alg && (h.kid.is_none() || k.kid == h.kid))
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::util::base64url_encode as b64;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use serde_json::json;

    pub fn sign_ed25519(kp: &Ed25519KeyPair, kid: &str, claims: &Value) -> String {
        let h = b64(json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}).to_string().as_bytes());
        let p = b64(claims.to_string().as_bytes());
        let input = format!("{h}.{p}");
        let sig = kp.sign(input.as_bytes());
        format!("{input}.{}", b64(sig.as_ref()))
    }

    fn ed_key() -> (Ed25519KeyPair, Value) {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("keygen");
        let kp = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key");
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed1", "x": b64(kp.public_key().as_ref())});
        (kp, jwk)
    }

    fn claims(now: u64) -> Value {
        json!({"iss": "https://idp", "aud": ["x", "mcp"], "sub": "user-1", "exp": now + 300, "nbf": now - 10})
    }

    const EXPECT: Expect<'static> = Expect { issuer: "https://idp", audience: "mcp" };
    const NOW: u64 = 1_800_000_000;

    fn set(jwks: Value) -> KeySet {
        KeySet::parse(jwks.to_string().as_bytes()).expect("jwks")
    }

    #[test]
    fn eddsa_and_claims() {
        let (kp, jwk) = ed_key();
        let keys = set(json!({"keys": [jwk]}));
        let t = sign_ed25519(&kp, "ed1", &claims(NOW));
        let c = verify(&t, &keys, &EXPECT, NOW).expect("valid");
        assert_eq!(c.sub.as_deref(), Some("user-1"));
        // The claim checks.
        let mut bad = claims(NOW);
        bad["iss"] = json!("https://other");
        assert_eq!(verify(&sign_ed25519(&kp, "ed1", &bad), &keys, &EXPECT, NOW), Err(JwtError::Issuer));
        let mut bad = claims(NOW);
        bad["aud"] = json!("other");
        assert_eq!(verify(&sign_ed25519(&kp, "ed1", &bad), &keys, &EXPECT, NOW), Err(JwtError::Audience));
        let mut ok = claims(NOW);
        ok["aud"] = json!("mcp");
        assert!(verify(&sign_ed25519(&kp, "ed1", &ok), &keys, &EXPECT, NOW).is_ok());
        let mut bad = claims(NOW);
        bad["exp"] = json!(NOW - SKEW - 1);
        assert_eq!(verify(&sign_ed25519(&kp, "ed1", &bad), &keys, &EXPECT, NOW), Err(JwtError::Expired));
        let mut skew = claims(NOW);
        skew["exp"] = json!(NOW - 30);
        assert!(verify(&sign_ed25519(&kp, "ed1", &skew), &keys, &EXPECT, NOW).is_ok());
        let mut bad = claims(NOW);
        bad.as_object_mut().expect("obj").remove("exp");
        assert_eq!(verify(&sign_ed25519(&kp, "ed1", &bad), &keys, &EXPECT, NOW), Err(JwtError::Expired));
        let mut bad = claims(NOW);
        bad["nbf"] = json!(NOW + SKEW + 5);
        assert_eq!(verify(&sign_ed25519(&kp, "ed1", &bad), &keys, &EXPECT, NOW), Err(JwtError::NotYetValid));
        // Unknown kid, tampered payload, another key.
        assert_eq!(verify(&sign_ed25519(&kp, "ed2", &claims(NOW)), &keys, &EXPECT, NOW), Err(JwtError::UnknownKey));
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        let mut c2 = claims(NOW);
        c2["sub"] = json!("admin");
        parts[1] = b64(c2.to_string().as_bytes());
        assert_eq!(verify(&parts.join("."), &keys, &EXPECT, NOW), Err(JwtError::Signature));
        let (other, _) = ed_key();
        assert_eq!(verify(&sign_ed25519(&other, "ed1", &claims(NOW)), &keys, &EXPECT, NOW), Err(JwtError::Signature));
    }

    #[test]
    fn refused_algorithms_and_shapes() {
        let (kp, jwk) = ed_key();
        let keys = set(json!({"keys": [jwk]}));
        let p = b64(claims(NOW).to_string().as_bytes());
        for alg in ["none", "HS256", "RS512"] {
            let h = b64(json!({"alg": alg, "kid": "ed1"}).to_string().as_bytes());
            let t = format!("{h}.{p}.");
            assert_eq!(verify(&t, &keys, &EXPECT, NOW), Err(JwtError::Alg(alg.into())), "{alg}");
            let t = format!("{h}.{p}.{}", b64(b"sig"));
            assert_eq!(verify(&t, &keys, &EXPECT, NOW), Err(JwtError::Alg(alg.into())), "{alg}");
        }
        // An EdDSA key is not used for ES256 (alg confusion).
        let h = b64(json!({"alg": "ES256", "kid": "ed1"}).to_string().as_bytes());
        let sig = kp.sign(format!("{h}.{p}").as_bytes());
        assert_eq!(verify(&format!("{h}.{p}.{}", b64(sig.as_ref())), &keys, &EXPECT, NOW), Err(JwtError::UnknownKey));
        assert!(!looks_like_jwt("plain-static-token"));
        assert!(matches!(verify("a.b", &keys, &EXPECT, NOW), Err(JwtError::Malformed(_))));
        assert!(matches!(verify("a.b.c", &keys, &EXPECT, NOW), Err(JwtError::Malformed(_))));
        // Unusable keys are skipped, not fatal.
        let s =
            set(json!({"keys": [{"kty": "oct", "k": "AAAA"}, {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"}]}));
        assert!(s.keys.is_empty());
        assert!(KeySet::parse(b"[]").is_err());
    }

    #[test]
    fn es256() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("keygen");
        let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).expect("key");
        let pt = kp.public_key().as_ref();
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "ec1", "alg": "ES256", "x": b64(&pt[1..33]), "y": b64(&pt[33..65])});
        let keys = set(json!({"keys": [jwk]}));
        let h = b64(json!({"alg": "ES256", "kid": "ec1"}).to_string().as_bytes());
        let p = b64(claims(NOW).to_string().as_bytes());
        let input = format!("{h}.{p}");
        let sig = kp.sign(&rng, input.as_bytes()).expect("sign");
        let t = format!("{input}.{}", b64(sig.as_ref()));
        assert_eq!(verify(&t, &keys, &EXPECT, NOW).expect("valid").sub.as_deref(), Some("user-1"));
        let mut bad = sig.as_ref().to_vec();
        bad[5] ^= 1;
        assert_eq!(verify(&format!("{input}.{}", b64(&bad)), &keys, &EXPECT, NOW), Err(JwtError::Signature));
    }

    #[test]
    fn rs256_fixture() {
        // tests/fixtures/auth/: an RSA key pair made with openssl, its JWK,
        // and a token signed with it (claims as in `claims(NOW)`).
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/auth");
        let jwks = std::fs::read(dir.join("rsa.jwks.json")).expect("fixture");
        let keys = KeySet::parse(&jwks).expect("jwks");
        let token = std::fs::read_to_string(dir.join("rsa.token")).expect("fixture");
        let c = verify(token.trim(), &keys, &EXPECT, NOW).expect("valid");
        assert_eq!(c.sub.as_deref(), Some("user-1"));
        let mut t = token.trim().to_owned();
        t.push('A');
        assert!(verify(&t, &keys, &EXPECT, NOW).is_err());
    }
}
