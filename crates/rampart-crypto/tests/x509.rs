//! Certificate-chain validation for model-signing's certificate method, on chains built here
//! with `rcgen` (each rule gets a chain that breaks only it), and the certificate bundle round
//! trip.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use rampart_crypto::SigningKey;
use rampart_crypto::dsse::{BundleError, UnverifiedBundle, sign_bundle_with_certificates};
use rampart_crypto::x509::{X509Error, verify_chain};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384,
};

struct Issued {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn params(name: &str, ca: Option<Option<u8>>) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(2035, 1, 1);
    if let Some(len) = ca {
        p.is_ca = IsCa::Ca(len.map_or(
            BasicConstraints::Unconstrained,
            BasicConstraints::Constrained,
        ));
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    }
    p
}

fn root(name: &str, path_len: Option<u8>) -> Issued {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = params(name, Some(path_len)).self_signed(&key).unwrap();
    Issued { cert, key }
}

fn issue(p: CertificateParams, by: &Issued, alg: &'static rcgen::SignatureAlgorithm) -> Issued {
    let key = KeyPair::generate_for(alg).unwrap();
    let cert = p.signed_by(&key, &by.cert, &by.key).unwrap();
    Issued { cert, key }
}

fn leaf_params() -> CertificateParams {
    let mut p = params("model signer", None);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    p
}

fn der(i: &Issued) -> Vec<u8> {
    i.cert.der().to_vec()
}

#[test]
fn a_chain_to_a_trusted_root_gives_the_signing_key() {
    let r = root("root", None);
    let int = issue(
        params("intermediate", Some(None)),
        &r,
        &PKCS_ECDSA_P384_SHA384,
    );
    let leaf = issue(leaf_params(), &int, &PKCS_ECDSA_P384_SHA384);
    let v = verify_chain(&[der(&leaf), der(&int)], &[der(&r)]).unwrap();
    assert_eq!(
        v.path,
        vec!["CN=model signer", "CN=intermediate", "CN=root"]
    );
    let signing = SigningKey::from_pem(&leaf.key.serialize_pem()).unwrap();
    assert_eq!(v.key, signing.public_key());
    // The intermediate may come from the roots instead of the bundle.
    assert!(verify_chain(&[der(&leaf)], &[der(&int)]).is_ok());
    // Without the intermediate there is no path.
    let e = verify_chain(&[der(&leaf)], &[der(&r)]).unwrap_err();
    assert!(matches!(e, X509Error::Untrusted(_)), "{e}");
}

#[test]
fn each_rule_fails_its_own_chain() {
    let r = root("root", None);
    let other = root("root", None); // same name, another key
    let int = issue(
        params("intermediate", Some(None)),
        &r,
        &PKCS_ECDSA_P256_SHA256,
    );
    let leaf = issue(leaf_params(), &int, &PKCS_ECDSA_P256_SHA256);
    let untrusted = |chain: &[Vec<u8>], roots: &[Vec<u8>], why: &str| {
        let e = verify_chain(chain, roots).unwrap_err();
        assert!(e.to_string().contains(why), "expected {why:?}: {e}");
    };
    // A chain to another CA (same name, other key).
    untrusted(&[der(&leaf), der(&int)], &[der(&other)], "not trusted");
    // An issuer that is not a CA.
    let not_ca = issue(params("intermediate", None), &r, &PKCS_ECDSA_P256_SHA256);
    let under = issue(leaf_params(), &not_ca, &PKCS_ECDSA_P256_SHA256);
    untrusted(&[der(&under), der(&not_ca)], &[der(&r)], "not a CA");
    // An intermediate that expired before the signing certificate's validity began.
    let mut old = params("intermediate", Some(None));
    old.not_before = rcgen::date_time_ymd(2020, 1, 1);
    old.not_after = rcgen::date_time_ymd(2024, 1, 1);
    let old = issue(old, &r, &PKCS_ECDSA_P256_SHA256);
    let under = issue(leaf_params(), &old, &PKCS_ECDSA_P256_SHA256);
    untrusted(&[der(&under), der(&old)], &[der(&r)], "is valid from");
    // pathLenConstraint 0 at the root forbids the intermediate.
    let strict = root("strict", Some(0));
    let int2 = issue(params("int2", Some(None)), &strict, &PKCS_ECDSA_P256_SHA256);
    let under = issue(leaf_params(), &int2, &PKCS_ECDSA_P256_SHA256);
    untrusted(
        &[der(&under), der(&int2)],
        &[der(&strict)],
        "pathLenConstraint",
    );
    // An unknown critical extension.
    let mut p = leaf_params();
    let mut ext =
        CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 99999, 1], vec![0x05, 0x00]);
    ext.set_criticality(true);
    p.custom_extensions = vec![ext];
    let crit = issue(p, &int, &PKCS_ECDSA_P256_SHA256);
    untrusted(&[der(&crit), der(&int)], &[der(&r)], "critical extension");
    // A signing certificate that may not sign.
    let mut p = params("model signer", None);
    p.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let tls = issue(p, &int, &PKCS_ECDSA_P256_SHA256);
    let e = verify_chain(&[der(&tls), der(&int)], &[der(&r)]).unwrap_err();
    assert!(matches!(e, X509Error::NotForSigning(_)), "{e}");
    // Garbage and limits.
    assert!(matches!(
        verify_chain(&[b"\x30\x03\x02\x01\x01".to_vec()], &[der(&r)]),
        Err(X509Error::Malformed(_))
    ));
    assert!(verify_chain(&vec![der(&leaf); 11], &[der(&r)]).is_err());
    assert!(verify_chain(&[der(&leaf), der(&int)], &[]).is_err());
}

#[test]
fn certificate_bundles_round_trip_and_refuse_tampering() {
    let r = root("root", None);
    let int = issue(
        params("intermediate", Some(None)),
        &r,
        &PKCS_ECDSA_P256_SHA256,
    );
    let leaf = issue(leaf_params(), &int, &PKCS_ECDSA_P384_SHA384);
    let key = SigningKey::from_pem(&leaf.key.serialize_pem()).unwrap();
    let chain = [der(&leaf), der(&int)];
    let bundle = sign_bundle_with_certificates(&key, &chain, b"{\"a\":1}").unwrap();
    let text = String::from_utf8(bundle.clone()).unwrap();
    assert!(
        text.contains("\"x509CertificateChain\":{\"certificates\":[{\"rawBytes\":"),
        "{text}"
    );
    let (payload, v) = UnverifiedBundle::parse(&bundle)
        .unwrap()
        .verify_certificate(&[der(&r)])
        .unwrap();
    assert_eq!(payload.payload, b"{\"a\":1}");
    assert_eq!(v.path.len(), 3);
    // The key method refuses a certificate bundle rather than ignore its certificates.
    assert!(matches!(
        UnverifiedBundle::parse(&bundle)
            .unwrap()
            .verify(&[key.public_key()]),
        Err(BundleError::Unsupported(_))
    ));
    // Another key than the certificate's cannot sign with it.
    assert!(sign_bundle_with_certificates(&SigningKey::generate(), &chain, b"{}").is_err());
    // A payload swapped under the signature.
    let swapped = text.replace(&base64_of(b"{\"a\":1}"), &base64_of(b"{\"a\":2}"));
    assert!(matches!(
        UnverifiedBundle::parse(swapped.as_bytes())
            .unwrap()
            .verify_certificate(&[der(&r)]),
        Err(BundleError::BadSignature(_))
    ));
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Nine CA certificates with one name and one key all verify each other: without a budget,
/// path building would try every ordering (9! paths). It stops after a bounded number of
/// signature checks instead.
#[test]
fn path_building_is_bounded() {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let twins: Vec<Issued> = (0..9)
        .map(|_| {
            let cert = params("loop", Some(None)).self_signed(&key).unwrap();
            Issued {
                cert,
                key: KeyPair::from_pem(&key.serialize_pem()).unwrap(),
            }
        })
        .collect();
    let leaf = issue(leaf_params(), &twins[0], &PKCS_ECDSA_P256_SHA256);
    let mut chain = vec![der(&leaf)];
    chain.extend(twins.iter().map(der));
    let elsewhere = root("loop", None);
    let e = verify_chain(&chain, &[der(&elsewhere)]).unwrap_err();
    assert!(e.to_string().contains("signature checks"), "{e}");
}
