//! Agent releases: a godwit binary for one platform, its version, its SHA-256 and an Ed25519
//! signature made with the operator's release key. The control plane refuses a release whose
//! signature does not verify with its release key, and an agent refuses one that does not
//! verify with its own (`--release-key`): a compromised control plane cannot make agents run a
//! binary the key's holder did not sign.
//!
//! What is signed is one line per field (`signed_text`), so the version and the platform are
//! signed with the digest: a signed 1.2.0 cannot be relabelled 9.0.0 to force it on agents.

use std::cmp::Ordering;
use std::io::Read;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A release key's public half, as the control plane and agents hold it.
pub type PublicKey = VerifyingKey;

/// What describes a release: written by `godwit release sign` next to the binary, sent with
/// the binary to the control plane, and handed to agents with the download's address.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The version the binary reports (`godwit --version`), a semantic version.
    pub version: String,
    /// The platform it runs on: `linux-x86_64`, `linux-aarch64`.
    pub platform: String,
    /// The binary's SHA-256, 64 lowercase hex digits.
    pub sha256: String,
    /// The binary's size in bytes.
    pub size: u64,
    /// The Ed25519 signature of `signed_text`, base64.
    pub signature: String,
}

/// The platform this build runs on, as releases name it.
pub fn platform() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

/// The text a release's signature is made over.
pub fn signed_text(version: &str, platform: &str, sha256: &str, size: u64) -> String {
    format!("godwit-release-v1\n{version}\n{platform}\n{sha256}\n{size}\n")
}

/// A new release key: (secret, public), each base64 of 32 bytes.
pub fn generate_key() -> Result<(String, String), String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no random source: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    Ok((
        STANDARD.encode(key.to_bytes()),
        STANDARD.encode(key.verifying_key().to_bytes()),
    ))
}

fn key_bytes(text: &str, what: &str) -> Result<[u8; 32], String> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|e| format!("the {what} is not base64: {e}"))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("the {what} has {} bytes, not 32", b.len()))
}

/// A public release key from its text (base64 of 32 bytes).
pub fn public_key(text: &str) -> Result<VerifyingKey, String> {
    VerifyingKey::from_bytes(&key_bytes(text, "release public key")?)
        .map_err(|e| format!("the release public key is not a valid Ed25519 key: {e}"))
}

/// The public key of a secret release key's text.
pub fn public_of(secret: &str) -> Result<String, String> {
    let key = SigningKey::from_bytes(&key_bytes(secret, "release key")?);
    Ok(STANDARD.encode(key.verifying_key().to_bytes()))
}

/// The manifest of `binary`, signed with the secret key's text.
pub fn sign(
    secret: &str,
    binary: &Path,
    version: &str,
    platform: &str,
) -> Result<Manifest, String> {
    if !is_version(version) {
        return Err(format!("{version} is not a semantic version (1.2.3)"));
    }
    let key = SigningKey::from_bytes(&key_bytes(secret, "release key")?);
    let (sha256, size) = sha256_of(binary).map_err(|e| format!("{}: {e}", binary.display()))?;
    let signature = key.sign(signed_text(version, platform, &sha256, size).as_bytes());
    Ok(Manifest {
        version: version.to_string(),
        platform: platform.to_string(),
        sha256,
        size,
        signature: STANDARD.encode(signature.to_bytes()),
    })
}

/// Whether `manifest`'s signature was made with the secret half of `key`.
pub fn verify(key: &VerifyingKey, manifest: &Manifest) -> Result<(), String> {
    let bytes = STANDARD
        .decode(manifest.signature.trim())
        .map_err(|e| format!("the signature is not base64: {e}"))?;
    let bytes: [u8; 64] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("the signature has {} bytes, not 64", b.len()))?;
    let text = signed_text(
        &manifest.version,
        &manifest.platform,
        &manifest.sha256,
        manifest.size,
    );
    key.verify(text.as_bytes(), &Signature::from_bytes(&bytes))
        .map_err(|_| "the signature does not verify with the release key".to_string())
}

/// SHA-256 (lowercase hex) and size of a file, read as a stream.
pub fn sha256_of(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex(&hasher.finalize()), size))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A streaming SHA-256, for those that receive a release a piece at a time.
#[derive(Debug, Clone, Default)]
pub struct Hasher(Sha256);

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn hex(self) -> String {
        hex(&self.0.finalize())
    }
}

/// Whether `v` is a semantic version: three numbers, then maybe `-pre` or `+build`.
pub fn is_version(v: &str) -> bool {
    parts(v).is_some()
}

fn parts(v: &str) -> Option<([u64; 3], Option<&str>)> {
    let v = v.split('+').next()?;
    let (core, pre) = match v.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (v, None),
    };
    let mut n = [0u64; 3];
    let mut it = core.split('.');
    for slot in &mut n {
        let p = it.next()?;
        if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        *slot = p.parse().ok()?;
    }
    if it.next().is_some() || pre.is_some_and(str::is_empty) {
        return None;
    }
    Some((n, pre))
}

/// How version `a` compares with `b` (build metadata ignored, a pre-release before its
/// release, pre-releases compared as text); None when either is not a semantic version.
pub fn compare(a: &str, b: &str) -> Option<Ordering> {
    let (na, pa) = parts(a)?;
    let (nb, pb) = parts(b)?;
    Some(na.cmp(&nb).then(match (pa, pb) {
        (None, None) => Ordering::Equal,
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (Some(x), Some(y)) => x.cmp(y),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_release_verifies_and_any_change_breaks_it() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("godwit");
        std::fs::write(&bin, b"#!/bin/sh\necho hi\n").unwrap();
        let (secret, public) = generate_key().unwrap();
        assert_eq!(public_of(&secret).unwrap(), public);
        let key = public_key(&public).unwrap();
        let m = sign(&secret, &bin, "1.2.0", "linux-x86_64").unwrap();
        assert_eq!(m.size, 18);
        assert_eq!(m.sha256.len(), 64);
        verify(&key, &m).unwrap();
        for changed in [
            Manifest {
                version: "9.0.0".into(),
                ..m.clone()
            },
            Manifest {
                platform: "linux-aarch64".into(),
                ..m.clone()
            },
            Manifest {
                sha256: "0".repeat(64),
                ..m.clone()
            },
            Manifest {
                size: 19,
                ..m.clone()
            },
        ] {
            assert!(verify(&key, &changed).is_err(), "{changed:?}");
        }
        let (_, other) = generate_key().unwrap();
        let e = verify(&public_key(&other).unwrap(), &m).unwrap_err();
        assert!(e.contains("signature"), "{e}");
        assert!(public_key("not base64!").is_err());
        assert!(
            public_key(&STANDARD.encode([1u8; 5]))
                .unwrap_err()
                .contains("5 bytes")
        );
        assert!(sign(&secret, &bin, "1.2", "linux").is_err());
    }

    #[test]
    fn versions_compare_as_semantic_versions() {
        assert_eq!(compare("0.1.0", "0.2.0"), Some(Ordering::Less));
        assert_eq!(compare("0.10.0", "0.9.9"), Some(Ordering::Greater));
        assert_eq!(compare("1.0.0-rc.1", "1.0.0"), Some(Ordering::Less));
        assert_eq!(compare("1.0.0+abc", "1.0.0"), Some(Ordering::Equal));
        assert_eq!(compare("1.0", "1.0.0"), None);
        assert!(!is_version("1.0.0-"));
        assert!(!is_version("1.0.0.0"));
        assert!(is_version("0.1.1-next"));
    }
}
