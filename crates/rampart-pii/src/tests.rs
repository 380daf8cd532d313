#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use super::*;

fn detector() -> Detector {
    Detector::new(DetectorOptions::default()).unwrap()
}

/// The (entity, matched text) pairs found in `text`.
fn found(d: &Detector, text: &str) -> Vec<(Entity, String)> {
    d.scan(text)
        .into_iter()
        .map(|f| (f.entity, text[f.start..f.end].to_owned()))
        .collect()
}

/// `text` must yield exactly one finding of `entity` covering `value`.
fn hit(d: &Detector, entity: Entity, text: &str, value: &str) {
    let f = found(d, text);
    assert!(
        f.iter().any(|(e, v)| *e == entity && v == value),
        "{entity} {value:?} not found in {text:?}: {f:?}"
    );
}

/// `text` must yield no finding of `entity`.
fn miss(d: &Detector, entity: Entity, text: &str) {
    let f = found(d, text);
    assert!(
        !f.iter().any(|(e, _)| *e == entity),
        "{entity} wrongly found in {text:?}: {f:?}"
    );
}

#[test]
fn emails() {
    let d = detector();
    hit(
        &d,
        Entity::Email,
        "write to jane.doe+ml@example.co.uk today",
        "jane.doe+ml@example.co.uk",
    );
    hit(&d, Entity::Email, "<a.b@c-d.org>", "a.b@c-d.org");
    miss(&d, Entity::Email, "user@localhost is not routable");
    miss(&d, Entity::Email, "price@ 5.00");
}

#[test]
fn phones() {
    let d = detector();
    hit(
        &d,
        Entity::Phone,
        "call +1 415-555-2671 now",
        "+1 415-555-2671",
    );
    hit(&d, Entity::Phone, "tel: (415) 555-2671", "(415) 555-2671");
    hit(
        &d,
        Entity::Phone,
        "reach me at 415.555.2671",
        "415.555.2671",
    );
    hit(
        &d,
        Entity::Phone,
        "UK office +44 20 7946 0958.",
        "+44 20 7946 0958",
    );
    hit(&d, Entity::Phone, "E.164: +442079460958", "+442079460958");
    hit(
        &d,
        Entity::Phone,
        "London office: 020 7946 0958",
        "020 7946 0958",
    );
    hit(
        &d,
        Entity::Phone,
        "Berlin tel. 030 12345678",
        "030 12345678",
    );
    hit(&d, Entity::Phone, "phone 4155552671", "4155552671");
    hit(
        &d,
        Entity::Phone,
        "001-415-555-2671x123",
        "001-415-555-2671x123",
    );
    // Look-alikes: no phone plan has them, or the context says they are something else.
    miss(&d, Entity::Phone, "order 4155552671 shipped");
    miss(&d, Entity::Phone, "4155552671");
    miss(&d, Entity::Phone, "at 2024-01-02 10:00:00");
    miss(&d, Entity::Phone, "(123) 456-7890");
    hit(
        &d,
        Entity::Phone,
        "(451)685-0671x65726",
        "(451)685-0671x65726",
    );
    hit(&d, Entity::Phone, "+1-685-668-5574", "+1-685-668-5574");
    miss(&d, Entity::Phone, "(555) 111-2222");
    miss(&d, Entity::Phone, "at 1979-01-18T20:13:02.414915");
    miss(&d, Entity::Phone, "version 10.2.3004.5");
}

#[test]
fn ssns() {
    let d = detector();
    hit(&d, Entity::UsSsn, "SSN 536-22-1234", "536-22-1234");
    hit(&d, Entity::UsSsn, "536-22-1234 is on file", "536-22-1234");
    hit(
        &d,
        Entity::UsSsn,
        "social security number 536221234",
        "536221234",
    );
    miss(&d, Entity::UsSsn, "SSN 666-22-1234");
    miss(&d, Entity::UsSsn, "SSN 912-22-1234");
    miss(&d, Entity::UsSsn, "SSN 536-00-1234");
    miss(&d, Entity::UsSsn, "SSN 536-22-0000");
    miss(&d, Entity::UsSsn, "536221234 items");
    miss(&d, Entity::UsSsn, "ticket 536-22-1234");
    // A negative word counts only right before the number, and never across a sentence.
    hit(
        &d,
        Entity::UsSsn,
        "See the order request. 306-30-5871 is the SSN",
        "306-30-5871",
    );
    hit(
        &d,
        Entity::IpAddress,
        "for the order login from 131.103.167.18",
        "131.103.167.18",
    );
}

#[test]
fn cards() {
    let d = detector();
    hit(
        &d,
        Entity::CreditCard,
        "card 4111 1111 1111 1111 exp 12/29",
        "4111 1111 1111 1111",
    );
    hit(
        &d,
        Entity::CreditCard,
        "4111-1111-1111-1111",
        "4111-1111-1111-1111",
    );
    hit(
        &d,
        Entity::CreditCard,
        "amex 3782 822463 10005",
        "3782 822463 10005",
    );
    hit(
        &d,
        Entity::CreditCard,
        "paid with 5555555555554444",
        "5555555555554444",
    );
    hit(&d, Entity::CreditCard, "card 639089177682", "639089177682");
    miss(&d, Entity::CreditCard, "card 4111 1111 1111 1112");
    miss(&d, Entity::CreditCard, "9111111111111111");
    miss(&d, Entity::CreditCard, "4111 11 111111 1111");
    miss(&d, Entity::CreditCard, "order number 4111111111111111");
    assert!(
        found(&d, "card 4111 1111 1111 1112").is_empty(),
        "a Luhn-invalid card is nothing"
    );
}

#[test]
fn ibans() {
    let d = detector();
    hit(
        &d,
        Entity::Iban,
        "IBAN GB82 WEST 1234 5698 7654 32.",
        "GB82 WEST 1234 5698 7654 32",
    );
    hit(
        &d,
        Entity::Iban,
        "DE89370400440532013000",
        "DE89370400440532013000",
    );
    miss(&d, Entity::Iban, "GB83 WEST 1234 5698 7654 32");
    miss(&d, Entity::Iban, "GB82WEST123456987654");
}

#[test]
fn ip_addresses() {
    let d = detector();
    hit(
        &d,
        Entity::IpAddress,
        "from 192.168.10.20 port 22",
        "192.168.10.20",
    );
    hit(
        &d,
        Entity::IpAddress,
        "host 2001:db8:85a3::8a2e:370:7334",
        "2001:db8:85a3::8a2e:370:7334",
    );
    hit(&d, Entity::IpAddress, "fe80::1 is link-local", "fe80::1");
    miss(&d, Entity::IpAddress, "version 1.2.3.4");
    miss(&d, Entity::IpAddress, "999.1.1.1");
    miss(&d, Entity::IpAddress, "release 1.2.3.4.5");
    miss(&d, Entity::IpAddress, "at 10:20:30");
    miss(&d, Entity::IpAddress, "mac 00:1a:2b:3c:4d:5e");
}

#[test]
fn urls() {
    let d = detector();
    hit(
        &d,
        Entity::Url,
        "see https://example.com/a?b=c.",
        "https://example.com/a?b=c",
    );
    hit(&d, Entity::Url, "(www.example.org/x)", "www.example.org/x");
    miss(&d, Entity::Url, "http is a protocol");
}

#[test]
fn dates_of_birth() {
    let d = detector();
    hit(
        &d,
        Entity::DateOfBirth,
        "born 1985-03-12 in Leeds",
        "1985-03-12",
    );
    hit(&d, Entity::DateOfBirth, "DOB: 03/12/1985", "03/12/1985");
    hit(
        &d,
        Entity::DateOfBirth,
        "date of birth March 3, 1985",
        "March 3, 1985",
    );
    hit(
        &d,
        Entity::DateOfBirth,
        "born 3rd March 1985.",
        "3rd March 1985",
    );
    hit(&d, Entity::DateOfBirth, "DOB 12 Mar. 1990", "12 Mar. 1990");
    miss(&d, Entity::DateOfBirth, "shipped 1985-03-12");
    miss(&d, Entity::DateOfBirth, "shipped March 3, 1985");
    miss(&d, Entity::DateOfBirth, "created_at 2024-01-02T10:00:00Z");
    miss(&d, Entity::DateOfBirth, "born 1985-02-30");
}

#[test]
fn people_and_addresses() {
    let d = detector();
    hit(
        &d,
        Entity::Person,
        "Hello, my name is Maria Gonzalez.",
        "Maria Gonzalez",
    );
    hit(
        &d,
        Entity::Person,
        "Signed by Dr. Alan Turing",
        "Alan Turing",
    );
    hit(
        &d,
        Entity::Person,
        "ask Jennifer Lawson about it",
        "Jennifer Lawson",
    );
    miss(&d, Entity::Person, "The Quick Brown fox");
    miss(&d, Entity::Person, "Grace Street is closed");
    hit(
        &d,
        Entity::Address,
        "ship to 1600 Pennsylvania Avenue, Washington, DC 20500 please",
        "1600 Pennsylvania Avenue, Washington, DC 20500",
    );
    hit(
        &d,
        Entity::Address,
        "48288 Burns Mews Apt. 391",
        "48288 Burns Mews Apt. 391",
    );
    miss(&d, Entity::Address, "3 Apples are red");
}

#[test]
fn secrets() {
    let d = detector();
    hit(
        &d,
        Entity::AwsAccessKey,
        "aws_access_key_id=AKIAIOSFODNN7EXAMPLE",
        "AKIAIOSFODNN7EXAMPLE",
    );
    // Characters glued after a key id hide nothing: its 20 characters are the key.
    hit(
        &d,
        Entity::AwsAccessKey,
        "AKIAIOSFODNN7EXAMPLEXX",
        "AKIAIOSFODNN7EXAMPLE",
    );
    let pem =
        "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAAAA\n-----END RSA PRIVATE KEY-----\nend";
    let f = d.scan(pem);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].entity, Entity::PrivateKey);
    assert!(pem[f[0].start..f[0].end].ends_with("-----END RSA PRIVATE KEY-----"));
    miss(&d, Entity::PrivateKey, "-----BEGIN PUBLIC KEY-----");
    let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    hit(
        &d,
        Entity::Jwt,
        &format!("Authorization: Bearer {jwt}"),
        jwt,
    );
    miss(
        &d,
        Entity::Jwt,
        "eyJub3RoaW5nIjoxMjM0NX0.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w",
    );
    hit(
        &d,
        Entity::ApiToken,
        "GITHUB_TOKEN=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",
        "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",
    );
    hit(
        &d,
        Entity::ApiToken,
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    );
    hit(
        &d,
        Entity::ApiToken,
        "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    );
    hit(
        &d,
        Entity::Secret,
        "api_key = \"Zr8q2Lw9XkP4vT7mNb3Hc6\"",
        "Zr8q2Lw9XkP4vT7mNb3Hc6",
    );
    hit(&d, Entity::Secret, "password: hunter2!", "hunter2!");
    miss(&d, Entity::Secret, "token: the next one");
    miss(&d, Entity::Secret, "password reset link sent");
    miss(&d, Entity::Secret, "api_key = <REDACTED>");
    miss(
        &d,
        Entity::Secret,
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
    );
}

#[test]
fn hard_negatives_are_quiet() {
    let d = detector();
    for text in [
        "order #ORD-2023-000123 shipped",
        "uuid 123e4567-e89b-12d3-a456-426614174000",
        "git 9fceb02d0ae598e95dc970b74767f19372d61af8",
        "timestamp 2024-01-02T10:00:00Z",
        "version 2.14.3 released",
        "invoice 4532015112830366",
        "ISBN 978-3-16-148410-0",
        "total 1,234,567.89 USD",
    ] {
        assert!(
            found(&d, text).is_empty(),
            "{text:?}: {:?}",
            found(&d, text)
        );
    }
}

#[test]
fn column_names_are_context() {
    let d = detector();
    let h = ColumnHint::from_name("customerName");
    assert!(h.entities.contains(&Entity::Person));
    let f = d.scan_with("Zbigniew Brzezinski", Some(&h));
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].entity, f[0].start, f[0].end), (Entity::Person, 0, 19));
    // The column name alone makes a value a name when nothing else knows it.
    let f = d.scan_with("Qwzx Vbnmk", Some(&h));
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].rule, "person-column");
    let h = ColumnHint::from_name("date_of_birth");
    assert_eq!(
        d.scan_with("1990-07-04", Some(&h))[0].entity,
        Entity::DateOfBirth
    );
    let h = ColumnHint::from_name("home_address");
    assert_eq!(
        d.scan_with("12 rue de la Paix", Some(&h))[0].entity,
        Entity::Address
    );
    let h = ColumnHint::from_name("phone");
    assert_eq!(d.scan_with("4155552671", Some(&h))[0].entity, Entity::Phone);
    assert!(ColumnHint::from_name("filename").entities.is_empty());
    assert!(
        d.scan_with("Report Final", Some(&ColumnHint::from_name("file_name")))
            .is_empty()
    );
}

#[test]
fn confidence_and_filters() {
    let d = Detector::new(DetectorOptions {
        min_confidence: 0.9,
        entities: vec![Entity::UsSsn],
    })
    .unwrap();
    assert!(d.scan("536-22-1234").is_empty(), "0.85 < 0.9");
    assert_eq!(d.scan("SSN 536-22-1234")[0].confidence, 1.0);
    assert!(
        d.scan("jane@example.com SSN 536-22-1234")
            .iter()
            .all(|f| f.entity == Entity::UsSsn)
    );
}

#[test]
fn rule_ids_are_unique_and_entities_round_trip() {
    let mut r = RULES.to_vec();
    r.sort_unstable();
    r.dedup();
    assert_eq!(r.len(), RULES.len());
    for e in ENTITIES {
        assert_eq!(e.name().parse::<Entity>().unwrap(), *e);
    }
    assert!("NOPE".parse::<Entity>().is_err());
    // The context lists key on the discriminant, below the two shared lists' bits: ENTITIES
    // holds each discriminant from 0 up once, so an entity added to the enum before its end
    // and left out of ENTITIES shows as a gap here.
    let mut seen: Vec<usize> = ENTITIES.iter().map(|e| *e as usize).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..ENTITIES.len()).collect::<Vec<_>>());
    for e in ENTITIES {
        assert_eq!(
            context_list(*e) & (IDENTIFIER_LIST | NEGATIVE_LIST),
            0,
            "{e}"
        );
    }
    // Every finding's rule is a declared one.
    let d = detector();
    let text = "jane@example.com +1 415-555-2671 536-22-1234 4111111111111111 GB82WEST12345698765432 \
                10.0.0.1 https://x.org born 1985-03-12 my name is Ann Lee 5 Main Street AKIAIOSFODNN7EXAMPLE";
    let f = d.scan(text);
    assert_eq!(f.len(), 11, "{f:?}");
    assert!(f.iter().all(|x| RULES.contains(&x.rule)));
    let f = d.scan("Yesterday Margaret Thornton signed the lease.");
    assert!(
        !f.is_empty() && f.iter().all(|x| RULES.contains(&x.rule)),
        "{f:?}"
    );
}

/// A private key of `der` (a DER encoding), as the base64 body of its PEM file: 64-character
/// lines.
fn pem_body(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    b64.as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `n` bytes that look random (SplitMix64).
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut z = seed;
    (0..n)
        .map(|_| {
            z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (x >> 56) as u8
        })
        .collect()
}

#[test]
fn keys_and_tokens_are_found_by_their_own_structure() {
    let d = detector();
    // A word glued before or after a key hides nothing.
    hit(
        &d,
        Entity::PrivateKey,
        "x-----BEGIN PRIVATE KEY-----",
        "-----BEGIN PRIVATE KEY-----",
    );
    for text in [
        "key_AKIA2JQ7KX5MRD3PWZ4T",
        "helloAKIA2JQ7KX5MRD3PWZ4T",
        "AKIA2JQ7KX5MRD3PWZ4Tabc",
        "AKIA2JQ7KX5MRD3PWZ4TXYZ",
    ] {
        hit(&d, Entity::AwsAccessKey, text, "AKIA2JQ7KX5MRD3PWZ4T");
    }
    hit(
        &d,
        Entity::ApiToken,
        "token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",
        "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",
    );
    hit(
        &d,
        Entity::ApiToken,
        "keysk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    );
    // Look-alikes: a template's key id, a prefix inside an identifier, a token word.
    for text in [
        "AKIAXXXXXXXXXXXXXXXX",
        "mask_test_configurationsettingsdone",
        "the task_live_streamingupdates flag",
        "detoxoxb-cleanse-program",
    ] {
        let f = found(&d, text);
        assert!(
            f.iter()
                .all(|(e, _)| !matches!(e, Entity::AwsAccessKey | Entity::ApiToken)),
            "{text}: {f:?}"
        );
    }
}

#[test]
fn private_key_bodies_without_their_header_are_keys() {
    let d = detector();
    // Ed25519 in PKCS #8, EC P-256 in SEC 1, RSA in PKCS #1 and PKCS #8 (version 0 or 1 after
    // the outer sequence), with random key material.
    let ed25519 = [
        &[
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ][..],
        &noise(32, 1),
    ]
    .concat();
    let ec = [
        &[0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20][..],
        &noise(32, 2),
        &[
            0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0xa1, 0x44,
            0x03, 0x42, 0x00, 0x04,
        ],
        &noise(64, 3),
    ]
    .concat();
    let rsa1 = [
        &[
            0x30, 0x82, 0x04, 0xa4, 0x02, 0x01, 0x00, 0x02, 0x82, 0x01, 0x01, 0x00,
        ][..],
        &noise(1180, 4),
    ]
    .concat();
    let rsa8 = [
        &[
            0x30, 0x82, 0x04, 0xbd, 0x02, 0x01, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48,
            0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
        ][..],
        &noise(1190, 5),
    ]
    .concat();
    for der in [&ed25519, &ec, &rsa1, &rsa8] {
        let body = pem_body(der);
        // On its own lines between words, glued to a word, and on one line.
        for text in [
            format!("here it is:\n{body}\nthanks"),
            format!("key={body}"),
            format!("paste {} done", body.replace('\n', "")),
            format!("key: |\n    {}\n  next: 1", body.replace('\n', "\n    ")),
        ] {
            let f: Vec<_> = d
                .scan(&text)
                .into_iter()
                .filter(|f| f.entity == Entity::PrivateKey)
                .collect();
            assert_eq!(f.len(), 1, "{text}: {f:?}");
            let got = &text[f[0].start..f[0].end];
            let compact = |s: &str| s.replace(['\n', ' '], "");
            assert_eq!(compact(got), compact(&body), "{text}");
        }
    }
    // Look-alikes: a public key (a sequence first) and a certificate, a base64 image, prose.
    let spki = [
        &[
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ][..],
        &noise(32, 6),
    ]
    .concat();
    let cert = [
        &[
            0x30, 0x82, 0x01, 0x2c, 0x30, 0x81, 0xdf, 0xa0, 0x03, 0x02, 0x01, 0x02,
        ][..],
        &noise(290, 7),
    ]
    .concat();
    let png = [
        &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a][..],
        &noise(300, 8),
    ]
    .concat();
    for der in [&spki, &cert, &png] {
        miss(
            &d,
            Entity::PrivateKey,
            &format!("data:\n{}\n", pem_body(der)),
        );
    }
    miss(
        &d,
        Entity::PrivateKey,
        "MIIT is a fine school; Mary met Michael at MIT.",
    );
}

#[test]
fn aws_secret_keys_alone_or_beside_their_key_id() {
    let d = detector();
    let secret = "9dk3Jf8sLq2Zx7Vb1Nm4Pw6Rt0Yh5Ug8Ke3Ai2So";
    for text in [
        secret.to_owned(),
        format!("AKIA2JQ7KX5MRD3PWZ4T {secret}"),
        format!("aws_secret_access_key = {secret}"),
    ] {
        hit(&d, Entity::Secret, &text, secret);
    }
    // Look-alikes: AWS's documentation secret, a git SHA-1, a path, a padded base64 value,
    // a 41-character run, an identifier.
    for text in [
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "commit 3f786850e387550fdab836ed7e6dc881de23001b",
        "src/main/java/com/Acme/Service1/Impl/Core",
        "dGhpcyBpcyBhIGJhc2U2NCB2YWx1ZSBvZjMwYnl0ZQ==",
        "9dk3Jf8sLq2Zx7Vb1Nm4Pw6Rt0Yh5Ug8Ke3Ai2SoX",
        "test_9dk3Jf8sLq2Zx7Vb1Nm4Pw6Rt0Yh5Ug8Ke3Ai2So",
    ] {
        miss(&d, Entity::Secret, text);
    }
}

#[test]
fn samples_are_masked() {
    assert_eq!(mask_sample("536-22-1234"), "***-**-**34");
    assert_eq!(mask_sample("ab"), "**");
    assert!(!mask_sample("jane@example.com").contains("jane"));
    assert!(mask_sample(&"x".repeat(100)).chars().count() <= 24);
}

#[test]
fn operators() {
    use redact::{mask, reveal};
    let d = detector();
    let text = "mail jane@example.com or call +1 415-555-2671";
    let f = d.scan(text);
    let r = Redactor::new(Operator::Replace);
    assert_eq!(
        r.redact(text, &f, None).unwrap(),
        "mail <EMAIL> or call <PHONE>"
    );
    let r = Redactor::new(Operator::Remove).entity(Entity::Phone, Operator::Mask(4));
    assert_eq!(
        r.redact(text, &f, None).unwrap(),
        "mail  or call +* ***-***-2671"
    );
    assert_eq!(mask("4111 1111 1111 1111", 4), "**** **** **** 1111");
    let r = Redactor::new(Operator::Keep);
    assert_eq!(r.redact(text, &f, None).unwrap(), text);
    assert_eq!(
        r.redact(text, &f, Some(Operator::Replace)).unwrap(),
        "mail <EMAIL> or call <PHONE>"
    );
    assert!("mask:x".parse::<Operator>().is_err());
    assert_eq!("mask:2".parse::<Operator>().unwrap(), Operator::Mask(2));
    assert_eq!("HASH".parse::<Operator>().unwrap(), Operator::Hash);

    // Hash: stable for one key, different under another, and needs a key.
    let key = zeroize::Zeroizing::new(vec![7u8; 32]);
    let h1 = Redactor::new(Operator::Hash).hash_key(key.clone()).unwrap();
    let h2 = Redactor::new(Operator::Hash).hash_key(key).unwrap();
    let other = Redactor::new(Operator::Hash)
        .hash_key(zeroize::Zeroizing::new(vec![8u8; 32]))
        .unwrap();
    let a = h1.redact(text, &f, None).unwrap();
    assert_eq!(a, h2.redact(text, &f, None).unwrap());
    assert_ne!(a, other.redact(text, &f, None).unwrap());
    assert!(a.starts_with("mail <EMAIL:") && !a.contains("jane"));
    assert_ne!(
        h1.pseudonym(Entity::Email, "a@b.co").unwrap(),
        h1.pseudonym(Entity::Email, "a@b.cp").unwrap()
    );
    assert!(Redactor::new(Operator::Hash).check(&[]).is_err());
    assert!(
        Redactor::new(Operator::Hash)
            .hash_key(zeroize::Zeroizing::new(vec![1; 8]))
            .is_err()
    );

    // Encrypt: reversible with the identity, not without it.
    let id = age::x25519::Identity::generate();
    let e = Redactor::new(Operator::Encrypt).recipients(vec![id.to_public()]);
    let c = e.redact(text, &f, None).unwrap();
    assert!(c.contains("<EMAIL:age:") && !c.contains("jane"));
    assert_eq!(reveal(&c, std::slice::from_ref(&id)).unwrap(), text);
    let stranger = age::x25519::Identity::generate();
    assert!(reveal(&c, &[stranger]).is_err());
    assert!(Redactor::new(Operator::Encrypt).check(&[]).is_err());
    assert_eq!(
        reveal("no tokens: <x:age:>", &[]).unwrap(),
        "no tokens: <x:age:>"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Any text: no panic; findings sorted, disjoint, on char boundaries; `keep` gives the
    /// text back and `replace` swaps exactly the findings' bytes for their tags.
    #[test]
    fn never_panics_and_spans_are_sound(
        text in "(?s)[a-zA-Z0-9 @.:/+()#=_\\-\n\u{e9}\u{4e2d}]{0,200}",
        name in "[a-z_]{0,20}",
    ) {
        let d = detector();
        let hint = ColumnHint::from_name(&name);
        for h in [None, Some(&hint)] {
            let found = d.scan_with(&text, h);
            let mut last = 0;
            for f in &found {
                proptest::prop_assert!(f.start >= last && f.start < f.end && f.end <= text.len());
                proptest::prop_assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
                last = f.end;
            }
            proptest::prop_assert_eq!(Redactor::new(Operator::Keep).redact(&text, &found, None).unwrap(), text.clone());
            let replaced = Redactor::new(Operator::Replace).redact(&text, &found, None).unwrap();
            let removed: usize = found.iter().map(|f| f.end - f.start).sum();
            let tags: usize = found.iter().map(|f| f.entity.name().len() + 2).sum();
            proptest::prop_assert_eq!(replaced.len(), text.len() - removed + tags);
        }
    }

    /// Text made of the pieces addresses and phone numbers are built from (digits, capitals,
    /// separators, street and unit words, kanji of prefectures and block numbers, 〒): no
    /// panic, findings disjoint and on char boundaries.
    #[test]
    fn address_pieces_never_panic(
        text in "(?s)(?:[0-9A-Z ,\\-/.()\n〒　東京都大阪府県市区丁目番号ー]|Straße|rue |Calle |Via |Flat |H\\.No\\. |NSW |ON |Road){0,60}",
    ) {
        let d = detector();
        let mut last = 0;
        for f in d.scan(&text) {
            proptest::prop_assert!(f.start >= last && f.start < f.end && f.end <= text.len());
            proptest::prop_assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
            last = f.end;
        }
    }

}

proptest::proptest! {
    /// Cluster-wise overlap resolution equals the greedy choice over all findings at once.
    #[test]
    fn overlap_resolution_matches_global_greedy(spans in proptest::collection::vec((0usize..200, 1usize..30, 0u8..5), 0..60)) {
        let found: Vec<Finding> = spans
            .iter()
            .map(|&(s, len, c)| Finding { entity: Entity::Phone, start: s, end: s + len, confidence: f32::from(c) / 4.0, rule: "phone-digits" })
            .collect();
        let mut order = found.clone();
        order.sort_by(|a, b| b.confidence.total_cmp(&a.confidence).then((b.end - b.start).cmp(&(a.end - a.start))).then(a.start.cmp(&b.start)));
        let mut expected: Vec<Finding> = Vec::new();
        for f in order {
            if expected.iter().all(|k| f.end <= k.start || f.start >= k.end) {
                expected.push(f);
            }
        }
        expected.sort_by_key(|f| f.start);
        proptest::prop_assert_eq!(super::resolve_overlaps(found), expected);
    }

    /// Readings that tie on confidence, length and start are chosen by entity and rule, not by
    /// the order the candidates came in.
    #[test]
    fn overlap_resolution_does_not_depend_on_candidate_order(spans in proptest::collection::vec((0usize..40, 1usize..8, 0u8..2, 0usize..3), 0..30), cut in 0usize..30) {
        let rules = ["person-model", "person-given-name", "person-context"];
        let entities = [Entity::Person, Entity::Address];
        let found: Vec<Finding> = spans
            .iter()
            .map(|&(s, len, e, r)| Finding { entity: entities[usize::from(e)], start: s, end: s + len, confidence: 0.6, rule: rules[r] })
            .collect();
        let mut other = found.clone();
        other.reverse();
        let n = other.len();
        other.rotate_left(cut.min(n));
        proptest::prop_assert_eq!(super::resolve_overlaps(found), super::resolve_overlaps(other));
    }
}

#[test]
fn national_identifier_check_digits() {
    use national as n;
    // Published specimens and numbers checked against python-stdnum; each with one digit
    // changed, which its check digit must catch.
    type Validator = fn(&[u8]) -> bool;
    let pairs: &[(Validator, &str, &str)] = &[
        (n::uk_nhs_valid, "9434765919", "9434765918"),
        (n::de_tax_id_valid, "86095742719", "86095742718"),
        (n::de_tax_id_valid, "47036892816", "47036892817"),
        (n::fr_nir_valid, "185057800608491", "185057800608436"),
        (n::fr_nir_valid, "269054958815780", "269054958815781"),
        (n::fr_nir_valid, "185052A00608435", "185052B00608435"),
        (n::es_nif_valid, "12345678Z", "12345678A"),
        (n::es_nie_valid, "X1234567L", "X1234567M"),
        (
            n::it_fiscal_code_valid,
            "RSSMRA85T10A562S",
            "RSSMRA85T10A562T",
        ),
        (n::nl_bsn_valid, "111222333", "111222334"),
        (n::nl_bsn_valid, "123456782", "123456783"),
        (n::in_aadhaar_valid, "234123412346", "234123412345"),
        (n::in_aadhaar_valid, "499181923702", "499181923703"),
        (n::ca_sin_valid, "130692544", "130692545"),
        (n::au_tfn_valid, "123456782", "123456783"),
        (n::au_tfn_valid, "876543210", "876543211"),
        (n::au_medicare_valid, "2123456701", "2123456711"),
        (n::us_itin_valid, "912781234", "912691234"),
        (n::us_ein_valid, "123456789", "073456789"),
        (n::in_pan_valid, "ABCPE1234F", "ABCDE1234F"),
    ];
    for (valid, good, bad) in pairs {
        assert!(valid(good.as_bytes()), "{good} should be valid");
        assert!(!valid(bad.as_bytes()), "{bad} should be invalid");
    }
    assert!(n::de_id_card_valid(b"T220001293", true));
    assert!(!n::de_id_card_valid(b"T220001294", true));
    assert!(
        !n::de_id_card_valid(b"A220001293", true),
        "A is not in the alphabet"
    );
    assert!(n::uk_nino_valid(b"AB123456C", true));
    assert!(n::uk_nino_valid(b"AB123456", false));
    assert!(
        !n::uk_nino_valid(b"QQ123456C", true),
        "Q never starts a NINO"
    );
    assert!(!n::uk_nino_valid(b"GB123456A", true), "GB is not allocated");
    assert!(!n::uk_nino_valid(b"AB123456E", true), "suffixes are A-D");
    // A codice fiscale's date must exist: 29 February only in a leap year, no day 32.
    assert!(!n::it_fiscal_code_valid(b"VBBUEC58B69U201L"));
    // Repeated digits pass weighted checksums; they are never issued.
    assert!(!n::nl_bsn_valid(b"000000000") && !n::ca_sin_valid(b"999999999"));
    assert!(n::verhoeff(b"2363") && !n::verhoeff(b"2364"));
}

#[test]
fn national_identifiers_in_text() {
    let d = detector();
    let cases: &[(Entity, &str, &str)] = &[
        (
            Entity::UkNino,
            "NI number AB 12 34 56 C on file",
            "AB 12 34 56 C",
        ),
        (Entity::UkNino, "nino: JG103759A", "JG103759A"),
        (Entity::UkNhs, "NHS number 943 476 5919.", "943 476 5919"),
        (
            Entity::DeTaxId,
            "Steuer-ID 86 095 742 719",
            "86 095 742 719",
        ),
        (
            Entity::DeTaxId,
            "Ihre Steueridentifikationsnummer: 47036892816",
            "47036892816",
        ),
        (
            Entity::DeIdCard,
            "Personalausweis T220001293 gültig",
            "T220001293",
        ),
        (
            Entity::FrNir,
            "NIR : 1 85 05 78 006 084 91",
            "1 85 05 78 006 084 91",
        ),
        (
            Entity::FrNir,
            "sécurité sociale 2 69 05 49 588 157 80",
            "2 69 05 49 588 157 80",
        ),
        (
            Entity::FrNir,
            "n° 1 85 05 2A 006 084 35 (Corse)",
            "1 85 05 2A 006 084 35",
        ),
        (Entity::EsNif, "DNI 12345678Z", "12345678Z"),
        (Entity::EsNif, "con DNI 12.345.678-Z y", "12.345.678-Z"),
        (Entity::EsNie, "NIE X-1234567-L", "X-1234567-L"),
        (
            Entity::ItFiscalCode,
            "codice fiscale RSSMRA85T10A562S",
            "RSSMRA85T10A562S",
        ),
        (Entity::NlBsn, "BSN 123456782", "123456782"),
        (
            Entity::NlBsn,
            "burgerservicenummer 1112.22.333",
            "1112.22.333",
        ),
        (
            Entity::InAadhaar,
            "Aadhaar: 2341 2341 2346",
            "2341 2341 2346",
        ),
        (Entity::InPan, "PAN ABCPE1234F", "ABCPE1234F"),
        (Entity::CaSin, "SIN 130 692 544", "130 692 544"),
        (Entity::AuTfn, "TFN 123 456 782", "123 456 782"),
        (
            Entity::AuMedicare,
            "Medicare card 2123 45670 1",
            "2123 45670 1",
        ),
        (Entity::UsItin, "ITIN 912-78-1234", "912-78-1234"),
        (Entity::UsEin, "EIN 12-3456789", "12-3456789"),
        (
            Entity::Passport,
            "passport no. C01X00T47 issued",
            "C01X00T47",
        ),
        (Entity::Passport, "Passport Number: 123456789", "123456789"),
        (Entity::MedicalRecord, "MRN: 00-4471-92", "00-4471-92"),
        (
            Entity::HealthCondition,
            "she was diagnosed with type 2 diabetes",
            "type 2 diabetes",
        ),
        (
            Entity::HealthCondition,
            "a history of Bipolar Disorder",
            "Bipolar Disorder",
        ),
    ];
    for (entity, text, value) in cases {
        hit(&d, *entity, text, value);
    }
    // Without context, the distinctive layouts and letter-bearing identifiers stand alone;
    // bare digits do not.
    hit(
        &d,
        Entity::ItFiscalCode,
        "RSSMRA85T10A562S",
        "RSSMRA85T10A562S",
    );
    hit(&d, Entity::EsNif, "12345678Z", "12345678Z");
    hit(&d, Entity::UsItin, "912-78-1234", "912-78-1234");
    hit(
        &d,
        Entity::FrNir,
        "1 85 05 78 006 084 91",
        "1 85 05 78 006 084 91",
    );
    hit(&d, Entity::DeTaxId, "86 095 742 719", "86 095 742 719");
    for quiet in ["123456782", "2341 2341 2347", "value 86095742719"] {
        let f = found(&d, quiet);
        assert!(f.is_empty(), "{quiet:?}: {f:?}");
    }
    // A 3-3-4 number is a phone number unless the NHS is named.
    hit(&d, Entity::Phone, "call 943 476 5919", "943 476 5919");
}

#[test]
fn national_look_alikes_are_quiet() {
    let d = detector();
    // Wrong check digits, in the layouts and with the words that would report them.
    for (entity, text) in [
        (Entity::UkNhs, "NHS number 943 476 5918"),
        (Entity::DeTaxId, "Steuer-ID 86 095 742 718"),
        (Entity::FrNir, "NIR 1 85 05 78 006 084 36"),
        (Entity::EsNif, "DNI 12345678A"),
        (Entity::EsNie, "NIE X1234567M"),
        (Entity::ItFiscalCode, "codice fiscale RSSMRA85T10A562T"),
        (Entity::NlBsn, "BSN 123456783"),
        (Entity::InAadhaar, "Aadhaar 2341 2341 2345"),
        (Entity::CaSin, "SIN 130 692 545"),
        (Entity::AuTfn, "TFN 123 456 783"),
        (Entity::AuMedicare, "Medicare 2123 45671 1"),
        (Entity::DeIdCard, "Personalausweis T220001294"),
        (Entity::UkNino, "NI number QQ 12 34 56 C"),
    ] {
        miss(&d, entity, text);
    }
    // Order numbers, ISBNs, product codes, versions and words that are not data at all.
    for text in [
        "order 12-3456789 shipped",
        "ISBN 978-3-16-148410-0",
        "ISBN 0-306-40615-2",
        "part no. ABCDE1234F",
        "SKU QQ123456C",
        "build 2024.06.123",
        "passport office opening hours 9 to 5",
        "the cancer research institute opened",
        "invoice 2341 2341 2346",
    ] {
        let f = found(&d, text);
        assert!(f.is_empty(), "{text:?}: {f:?}");
    }
}

#[test]
fn phones_of_the_world() {
    let d = detector();
    for (text, value) in [
        // International, with and without a space, with the trunk 0 in parentheses, slashes.
        ("call +44 (0)20 7946 0958 today", "+44 (0)20 7946 0958"),
        ("Tel. +49 30/12345678", "+49 30/12345678"),
        ("+81 3-1234-5678", "+81 3-1234-5678"),
        ("+33 6 12 34 56 78", "+33 6 12 34 56 78"),
        ("+91 98765 43210", "+91 98765 43210"),
        ("+55 11 91234-5678", "+55 11 91234-5678"),
        ("+27 21 123 4567", "+27 21 123 4567"),
        // From North America, with its international prefix.
        ("dial 011 44 20 7946 0958", "011 44 20 7946 0958"),
        // National layouts of regions that write a trunk 0.
        ("ring 03-1234-5678", "03-1234-5678"),
        ("Telefon 030 12345678", "030 12345678"),
        ("mobile 06 12 34 56 78", "06 12 34 56 78"),
        ("(02) 9876 5432", "(02) 9876 5432"),
        ("Tel 044 668 18 00", "044 668 18 00"),
        // Extensions.
        ("+1 415-555-2671 ext: 42", "+1 415-555-2671 ext: 42"),
        ("(415) 555-2671 extension 7", "(415) 555-2671 extension 7"),
        // Without the +, named as a phone.
        ("phone: 44 20 7946 0958", "44 20 7946 0958"),
        // Vanity numbers on toll-free area codes.
        ("call 1-800-FLOWERS now", "1-800-FLOWERS"),
        ("(888) GOT-JUNK", "(888) GOT-JUNK"),
    ] {
        hit(&d, Entity::Phone, text, value);
    }
    for text in [
        // No phone word: a grouped number with no + is not taken for an international one.
        "44 20 7946 0958 units",
        "room 1-800-A",
        "see 1-800-FLOWERSHOPPING",
        "ISBN 0-306-40615-2",
    ] {
        miss(&d, Entity::Phone, text);
    }
}

#[test]
fn phones_in_other_languages_and_layouts() {
    let d = detector();
    for (text, value) in [
        // National numbers written as bare digits, with a phone word in the line's language.
        ("Telefon: 07222389263", "07222389263"),
        ("téléphone : 0141234567", "0141234567"),
        ("Bel me op 0201234567.", "0201234567"),
        // A trunk prefix in parentheses followed by a dash; a long group after +CC.
        ("tel. (0245)-631842", "(0245)-631842"),
        ("+31915-268897", "+31915-268897"),
        // A known country code and a plausible length the plan does not assign: with a
        // phone word only.
        ("Telefono: +39 000 1234567", "+39 000 1234567"),
    ] {
        hit(&d, Entity::Phone, text, value);
    }
    for text in [
        "invoice 07222389263",
        "ref +39 000 1234567",
        "code 0201234567",
    ] {
        miss(&d, Entity::Phone, text);
    }
}

#[test]
fn a_number_named_as_another_identifier_is_no_card() {
    // Twelve digits with a valid Luhn digit and a Maestro prefix, which the line calls an
    // Aadhaar (whose check digit is Verhoeff's, and fails): neither a card nor an Aadhaar.
    let d = detector();
    for text in ["Aadhaar 573403649656", "Aadhaar number: 6759 0012 3455"] {
        miss(&d, Entity::CreditCard, text);
        miss(&d, Entity::InAadhaar, text);
    }
    // The same digits as a card, in a card's words or alone.
    hit(
        &d,
        Entity::CreditCard,
        "Maestro card 6759 0012 3455",
        "6759 0012 3455",
    );
    hit(
        &d,
        Entity::CreditCard,
        "paid with 6759 0012 3455",
        "6759 0012 3455",
    );
}

#[test]
fn a_town_ends_where_the_next_item_is_introduced() {
    // The town after a postcode takes up to three capitalised words; a word that introduces
    // something else (a context word of any entity) or the letters of an IBAN are not part
    // of it, so the address and the next item are both found.
    let d = detector();
    for (text, address, other, value) in [
        (
            "Ignatz-Klemm-Platz 43, 29372 Erfurt Konto DE48883198058297211079",
            "Ignatz-Klemm-Platz 43, 29372 Erfurt",
            Entity::Iban,
            "DE48883198058297211079",
        ),
        (
            "Ignatz-Klemm-Platz 43, 29372 Erfurt DE48883198058297211079",
            "Ignatz-Klemm-Platz 43, 29372 Erfurt",
            Entity::Iban,
            "DE48883198058297211079",
        ),
        (
            "Hauptstraße 5, 97278 Eisleben Telefon: 0345 1234567",
            "Hauptstraße 5, 97278 Eisleben",
            Entity::Phone,
            "0345 1234567",
        ),
        (
            "2833 Gregg Point Apt. 535, Lisaborough, FM 03133 SSN 768-53-6273",
            "2833 Gregg Point Apt. 535, Lisaborough, FM 03133",
            Entity::UsSsn,
            "768-53-6273",
        ),
    ] {
        let f = found(&d, text);
        assert!(
            f.contains(&(Entity::Address, address.to_owned())),
            "{text}: {f:?}"
        );
        assert!(f.contains(&(other, value.to_owned())), "{text}: {f:?}");
    }
    // Towns of several words and a province code are kept whole.
    hit(
        &d,
        Entity::Address,
        "Via Roma 12, 45021 Badia Polesine RO",
        "Via Roma 12, 45021 Badia Polesine RO",
    );
    hit(
        &d,
        Entity::Address,
        "Hauptstraße 5, 60311 Frankfurt am Main",
        "Hauptstraße 5, 60311 Frankfurt am Main",
    );
}

#[test]
fn ring_streets_elided_articles_and_four_digit_postcodes() {
    let d = detector();
    for text in [
        // Street before number, with an elided article (France, Belgium, Italy).
        "Rue de l'Église 4, 75001 Paris",
        "Via dell'Orso 7, 20121 Milano",
        // A ring road written as one word, with its postcode and town.
        "Kaiserring 12, 68161 Mannheim",
        // Hyphenated ring streets are streets on their own.
        "Konrad-Adenauer-Ring 3",
        // Four-digit postcodes of Belgium, Switzerland, Austria and Denmark with the town.
        "Rue de la Loi 16, 1000 Bruxelles",
        "Bahnhofstrasse 21, 8001 Zürich",
        "Mariahilfer Straße 120, 1070 Wien",
        "Vesterbrogade 3, 1620 København",
    ] {
        hit(&d, Entity::Address, text, text);
    }
    // English words ending in "ring" before a number are no streets without a postcode.
    for text in [
        "Engineering 101 starts Monday",
        "Monitoring 24 hours a day",
        "Kaiserring 12",
        "In 2024 Paris hosted the Olympics",
        "We sold 1500 Widgets in March",
    ] {
        miss(&d, Entity::Address, text);
    }
}

#[test]
fn numbers_of_plans_without_a_trunk_prefix_need_a_phone_word() {
    // Spain, Portugal, Poland, Denmark and Greece dial national numbers without a trunk 0:
    // nine bare digits or small groups, read as phones when a phone word is before them.
    let d = detector();
    for (text, value) in [
        ("Teléfono: 612345678", "612345678"),
        ("móvil 612 34 56 78", "612 34 56 78"),
        ("Número de teléfono: 91 234 56 78", "91 234 56 78"),
        ("Telefone: 912 345 678", "912 345 678"),
        ("Zadzwoń: 601 234 567", "601 234 567"),
        ("Tlf. 22 12 34 56", "22 12 34 56"),
        ("Τηλ. 210 123 4567", "210 123 4567"),
    ] {
        hit(&d, Entity::Phone, text, value);
    }
    // The same numbers without a phone word, and numbers the plans do not assign.
    for text in [
        "order 612345678 shipped",
        "lot 612 34 56 78",
        "Teléfono: 112345678",
        "móvil 012 34 56 78",
    ] {
        miss(&d, Entity::Phone, text);
    }
    // Nine digits that are a valid SSN and a valid Spanish number: the context word decides.
    hit(&d, Entity::UsSsn, "SSN 612345678", "612345678");
    miss(&d, Entity::Phone, "SSN 612345678");
    miss(&d, Entity::UsSsn, "Teléfono: 612345678");
}

#[test]
fn names_without_context_are_found_and_addresses_keep_their_streets() {
    let d = detector();
    let text = "The lease was countersigned by Margaret Thornton and Hans-Dieter Krause.";
    let f = d.scan(text);
    let people: Vec<&str> = f
        .iter()
        .filter(|x| x.entity == Entity::Person)
        .map(|x| &text[x.start..x.end])
        .collect();
    assert_eq!(people, ["Margaret Thornton", "Hans-Dieter Krause"], "{f:?}");
    assert!(f.iter().all(|x| x.rule == "person-model"), "{f:?}");
    // A street named after someone stays part of the address.
    let text = "Ship it to 42 Abbott Street, Springfield, IL 62704.";
    let f = found(&d, text);
    assert!(f.iter().any(|x| x.0 == Entity::Address), "{f:?}");
    assert!(!f.iter().any(|x| x.0 == Entity::Person), "{f:?}");
}

#[test]
fn addresses_in_the_layouts_of_ten_countries() {
    let d = detector();
    for (text, address) in [
        // UK: flat, number first, town, postcode.
        (
            "Send it to Flat 3, 12 Baker Street, London NW1 6XE please.",
            "Flat 3, 12 Baker Street, London NW1 6XE",
        ),
        ("Our office is in Leeds LS1 4AP.", "LS1 4AP"),
        // Germany: name first, compound or apart, postcode before the town.
        (
            "Sie wohnt in der Berliner Straße 12a, 10115 Berlin.",
            "Berliner Straße 12a, 10115 Berlin",
        ),
        (
            "Lieferung an Hauptstr. 5/7, 80331 München bitte.",
            "Hauptstr. 5/7, 80331 München",
        ),
        // France: number, street word in lower case, postcode, town.
        (
            "Elle habite au 47, rue de la République, 69002 Lyon.",
            "47, rue de la République, 69002 Lyon",
        ),
        // Spain: street word, name, number, unit, postcode, town.
        (
            "Envíelo a Calle de Alcalá 42 Piso 3, 28014 Madrid.",
            "Calle de Alcalá 42 Piso 3, 28014 Madrid",
        ),
        // Italy: comma before the number, province in brackets.
        (
            "Abito in Via Giuseppe Garibaldi, 21, 20121 Milano (MI).",
            "Via Giuseppe Garibaldi, 21, 20121 Milano (MI)",
        ),
        // The Netherlands: compound street, 4 digits and 2 letters.
        (
            "Het adres is Prinsengracht 263, 1016 GV Amsterdam.",
            "Prinsengracht 263, 1016 GV Amsterdam",
        ),
        // Canada: province and postcode.
        (
            "Mail it to 24 Sussex Drive, Ottawa, ON K1M 1M4.",
            "24 Sussex Drive, Ottawa, ON K1M 1M4",
        ),
        // Australia: unit/number, state and postcode.
        (
            "Deliver to 3/10 Smith Street, Parramatta NSW 2150.",
            "3/10 Smith Street, Parramatta NSW 2150",
        ),
        // India: house/plot number, road, town and PIN.
        (
            "Ship to 14/2, MG Road, Bengaluru - 560001 today.",
            "14/2, MG Road, Bengaluru - 560001",
        ),
        // Japan: postcode mark, prefecture, city, ward, block numbers.
        (
            "〒100-0001 東京都千代田区千代田1丁目1番1号に住んでいます。",
            "〒100-0001 東京都千代田区千代田1丁目1番1号",
        ),
        (
            "本社は大阪府大阪市北区梅田3-1-3です。",
            "大阪府大阪市北区梅田3-1-3",
        ),
        // The US, as before.
        (
            "ship to 1600 Pennsylvania Avenue, Washington, DC 20500-0003 please",
            "1600 Pennsylvania Avenue, Washington, DC 20500-0003",
        ),
    ] {
        hit(&d, Entity::Address, text, address);
    }
    // A phone number before a prefecture stays a phone number; its tail is no postcode.
    let text = "携帯 070-7018-5010 山口県小金井市長畑29丁目16番3号に住んでいます。";
    hit(&d, Entity::Phone, text, "070-7018-5010");
    hit(&d, Entity::Address, text, "山口県小金井市長畑29丁目16番3号");
    // A town and a digits-only postcode count with a word that says "address".
    hit(
        &d,
        Entity::Address,
        "Ich wohne in 10115 Berlin.",
        "10115 Berlin",
    );
    miss(&d, Entity::Address, "Ticket 10115 Berlin was closed.");
    // Streets named after people keep their names inside the address.
    let text = "Vive en Plaza de Isidoro Gómez 82, Guadalajara.";
    let f = found(&d, text);
    assert!(
        f.iter().any(|x| x.0 == Entity::Address) && !f.iter().any(|x| x.0 == Entity::Person),
        "{f:?}"
    );
}

#[test]
fn address_look_alikes_are_not_addresses() {
    let d = detector();
    for text in [
        "Order 12345 shipped on 2024-05-01.",
        "Version 2.0 ships to 2024 EU markets.",
        "Room 101 is on floor 3.",
        "It was sent via Outlook 365 yesterday.",
        "ISBN 978-3-16-148410-0 is in stock.",
        "The SW1A team met at 10.",
        // Inward codes never use C, I, K, M, O or V; K is no UK postcode area.
        "Ref AB12 3CD and K12 4AB are part numbers.",
        "Model K1M 1M4X is discontinued.",
        "Invoice 560001 from Mumbai.",
        "Build 4417 NSW 2150 failed.",
        "Batch 75002 Paris-2 done.",
        "In 2019 Prinsengracht was quiet.",
        "東京都の人口は1400万人です。",
        // Street types that are ordinary words in prose.
        "Follow these 5 Easy Steps today.",
        "Members get 24 Hour Access and a 3 Day Retreat.",
    ] {
        miss(&d, Entity::Address, text);
    }
}

#[test]
fn phone_numbers_the_plans_do_not_assign_need_a_phone_word() {
    let d = detector();
    for (text, phone) in [
        // An abbreviation's full stop does not end the context ("tél." before the number).
        ("tél. 0297956417", "0297956417"),
        // A hyphenated phone word counts by its parts.
        ("Appelez-moi au 0485293627.", "0485293627"),
        // A trunk (0) after the country code, seven groups.
        (
            "Appelez-moi au +33 (0)1 55 19 49 05.",
            "+33 (0)1 55 19 49 05",
        ),
        // 0115 is a British area code, not North America's 011 prefix; 496 is kept for drama.
        ("Call me on 0115 496 0670.", "0115 496 0670"),
        // Italian mobiles have no trunk 0.
        ("Telefono: 3516878360", "3516878360"),
        // Local numbers without an area code, and area codes in brackets with dots.
        ("Phone: 6834 6008", "6834 6008"),
        ("mobile (07).1965.9322", "(07).1965.9322"),
        // Numbers in a phone layout the plan never gives out.
        ("Call me on (136) 618-4441.", "(136) 618-4441"),
        // Context words in languages written without spaces.
        ("電話番号は63-2301-1642です。", "63-2301-1642"),
    ] {
        hit(&d, Entity::Phone, text, phone);
    }
    for text in [
        "Order 3516878360 shipped.",
        "(136) 618-4441 is the part code.",
        "Phone plan 2024-2025 renewed.",
        "Call centre, Aadhaar number: 2475 7883 8432",
        "Serial 6834 6008 registered.",
    ] {
        miss(&d, Entity::Phone, text);
    }
}

#[test]
fn windows_cut_inside_a_character_still_read_what_fits() {
    let d = detector();
    // The 16 bytes after the month end inside "ü": the day and year are still read (the
    // window was empty, and the date lost).
    hit(
        &d,
        Entity::DateOfBirth,
        "born March 3, 1985 üüüüü",
        "March 3, 1985",
    );
}

#[test]
fn a_block_of_lines_reads_as_each_line_alone() {
    // The text scan reads lines in blocks; what a line holds must not depend on its
    // neighbours: no context word, address or name runs across a line break.
    let d = detector();
    let lines = [
        "Phone: +910397731820",
        "tél. +33 5 31 49 69 90",
        "Tel. 0115 496 0670 any time",
        "Address: 1091 Mcdonald Corners, New Michaelborough, YT E5K 7A1",
        "Abita in Piazza Olga, 2, 23037, Tirano (SO).",
        "SKU AB-78394-L",
        "Adres: Jortlaan 3, 5565 GG, Oldehove",
        "栃木県墨田区長畑23丁目21番9号",
        "221B Baker Street",
        "London NW1 6XE",
        "Dear Jacob Jones,",
        "ask Carol Delacruz about it",
        "SSN 536-22-8941",
        "version 5.29.4",
        // A capital alone on a line is no initial of a stop that opens the next line.
        "A",
        ".Af Ak+0",
    ];
    let text = lines.join("\n");
    let mut alone = Vec::new();
    let mut at = 0;
    for line in lines {
        for f in d.scan(line) {
            alone.push((f.entity, at + f.start, at + f.end, f.confidence));
        }
        at += line.len() + 1;
    }
    let together: Vec<_> = d
        .scan(&text)
        .into_iter()
        .map(|f| (f.entity, f.start, f.end, f.confidence))
        .collect();
    assert_eq!(together, alone);
    // The lines were worth reading: phones with their context, addresses, names.
    for e in [
        Entity::Phone,
        Entity::Address,
        Entity::Person,
        Entity::UsSsn,
    ] {
        assert!(alone.iter().any(|f| f.0 == e), "{e:?}");
    }
    // `tél.` at the start of its line is still the phone's context word.
    let tel = lines.first().map_or(0, |l| l.len() + 1);
    assert!(
        alone
            .iter()
            .any(|f| f.0 == Entity::Phone && f.1 > tel && f.1 < tel + 12 && f.3 >= 0.95),
        "{alone:?}"
    );
}

/// GitHub's and npm's token layout in the test: 30 random characters and their CRC32 in base
/// 62 (digits, upper, lower), six characters.
fn crc_token(prefix: &str, random: &str) -> String {
    const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut v = crc32fast::hash(random.as_bytes());
    let mut sum = [b'0'; 6];
    for slot in sum.iter_mut().rev() {
        *slot = B62[(v % 62) as usize];
        v /= 62;
    }
    format!("{prefix}{random}{}", std::str::from_utf8(&sum).unwrap())
}

#[test]
fn github_and_npm_tokens_carry_their_checksum() {
    let d = detector();
    // Revoked real tokens, published with their checksums by therootcompany/base62-token.js.
    for t in [
        "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",
        "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",
        "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",
    ] {
        assert!(secrets::crc32_base62_valid(&t[4..]), "{t}");
        hit(&d, Entity::ApiToken, &format!("token: {t}"), t);
        // One character changed: the checksum fails, and it is no token.
        let tampered =
            format!("{}{}", &t[..10], if &t[10..11] == "a" { "b" } else { "a" }) + &t[11..];
        miss(&d, Entity::ApiToken, &format!("token: {tampered}"));
    }
    // GitHub's documentation example has no valid checksum.
    miss(
        &d,
        Entity::ApiToken,
        "export GITHUB_TOKEN=ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    );
    let npm = crc_token("npm_", "Kq7Vd2XbT9mLw4Rz8Hc1Pn6Jy3Fs5G");
    hit(
        &d,
        Entity::ApiToken,
        &format!("//registry.npmjs.org/:_authToken={npm}"),
        &npm,
    );
    let bad = format!(
        "{}{}",
        &npm[..39],
        if npm.ends_with('a') { 'b' } else { 'a' }
    );
    miss(&d, Entity::ApiToken, &format!("_authToken {bad}"));
}

#[test]
fn provider_keys_are_found_by_their_layout() {
    let d = detector();
    let openai = "sk-proj-Xk29fLq8Rm3Vt7Zp1Wn4Yc6Hb5Jd0GsT3BlbkFJa8Kw2Lq9Zx4Vn7Rt1Yp5Hm3Jc6Gd0Fb";
    let anthropic = format!(
        "sk-ant-api03-{}AA",
        "Rz8Kq2Vd7XbT9mLw4Hc1Pn6Jy3Fs5Gt0Qa"
            .repeat(3)
            .get(..93)
            .unwrap()
    );
    let deepseek_style = "sk-4f9a1c7e2b8d4e6f9a0b3c5d7e1f2a4b";
    let google = "AIzaSyD4kR9xQ2mV7tL1pZ8wN3cH6bJ5fG0sYaE";
    let gitlab = "glpat-Xk29fLq8Rm3Vt7Zp1Wn4";
    let slack_hook = "hooks.slack.com/services/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";
    let sendgrid = "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";
    let twilio = "SK2b8d4e6f9a0b3c5d7e1f2a4b6c8d0e1f";
    let hf = "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";
    let whsec = "whsec_Xk29fLq8Rm3Vt7Zp1Wn4Yc6Hb5Jd0Gs";
    for (text, value) in [
        (format!("OPENAI_API_KEY={openai}"), openai.to_owned()),
        (
            format!("client = Anthropic(api_key=\"{anthropic}\")"),
            anthropic.clone(),
        ),
        (
            format!("use {deepseek_style} for the API"),
            deepseek_style.to_owned(),
        ),
        (format!("maps key {google}"), google.to_owned()),
        (
            format!("git clone https://oauth2:{gitlab}@gitlab.com/g/p.git"),
            gitlab.to_owned(),
        ),
        (
            format!("post to https://{slack_hook}"),
            slack_hook.to_owned(),
        ),
        (format!("SENDGRID={sendgrid}"), sendgrid.to_owned()),
        (format!("twilio {twilio} ok"), twilio.to_owned()),
        (format!("login with {hf}"), hf.to_owned()),
        (format!("endpoint secret {whsec}"), whsec.to_owned()),
    ] {
        let f = found(&d, &text);
        assert!(
            f.iter().any(|(e, v)| *e == Entity::ApiToken && v == &value),
            "{text}: {f:?}"
        );
    }
    let key = format!(
        "{}==",
        "Xk29fLq8Rm3Vt7Zp1Wn4Yc6Hb5Jd0Gs/+"
            .repeat(3)
            .get(..86)
            .unwrap()
    );
    hit(
        &d,
        Entity::Secret,
        &format!(
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={key};EndpointSuffix=core.windows.net"
        ),
        &key,
    );
    hit(
        &d,
        Entity::Secret,
        "client_secret: Zx18Q~Kq7Vd2XbT9mLw4Rz8Hc1Pn6Jy3Fs5Gt0",
        "Zx18Q~Kq7Vd2XbT9mLw4Rz8Hc1Pn6Jy3Fs5Gt0",
    );
    // An Azure SAS URL: the signature is a percent-encoded base64 HMAC-SHA256.
    let sig = "Xk29fLq8Rm3Vt7Zp1Wn4Yc6Hb5Jd0Gs%2Bq9Zx4Vn7RtE%3D";
    hit(
        &d,
        Entity::Secret,
        &format!(
            "https://acme.blob.core.windows.net/c/f.txt?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-12-31T00:00:00Z&sig={sig}"
        ),
        sig,
    );
    let discord = "discord.com/api/webhooks/1183457702395072512/Xk29fLq8Rm3Vt7Zp1Wn4Yc6Hb5Jd0GsT3BlKw2Lq9Zx4Vn7Rt1Yp5Hm3Jc6Gd0Fb-aQ8";
    let f = found(&d, &format!("notify https://{discord} on deploy"));
    assert!(
        f.iter()
            .any(|(e, v)| *e == Entity::ApiToken && v == discord),
        "{f:?}"
    );
}

#[test]
fn provider_key_look_alikes_pass() {
    let d = detector();
    // Documentation placeholders, shortened keys, test-mode and publishable keys, and words
    // that happen to start like a key.
    for text in [
        "OPENAI_API_KEY=sk-...",
        "set OPENAI_API_KEY to sk-your-key-here-0000000000000000000",
        "sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "the task-force-alignment-meeting-notes-2024-final summary",
        "AIzaSyXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "glpat-xxxxxxxxxxxxxxxxxxxx",
        "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        "hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "stripe.api_key = 'sk_test_4eC39HqLyjWDarjtT1zdp7dc'",
        "Stripe('pk_live_51HxYzAbCdEfGhIjKlMnOpQrStUv')",
        "SKU SK0000000000000000000000000000000 out of stock",
        "SENDGRID=SG.Xk29fLq8Rm3Vt7Zp1Wn4Yc.6Hb5Jd0GsT3BlKw2Lq9Zx4Vn7Rt1Yp5Hm3Jc6Gd0FbAa8Kw2L",
        "https://a.blob.core.windows.net/c?sv=2022-11-02&sig=XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "the config=signature-verification-enabled-for-all-requests-by-default flag",
        "https://discord.com/api/webhooks/000000000000000000/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    ] {
        let f = found(&d, text);
        assert!(
            f.iter()
                .all(|(e, _)| !matches!(e, Entity::ApiToken | Entity::Secret)),
            "{text}: {f:?}"
        );
    }
}

#[test]
fn passwords_in_connection_strings_and_urls() {
    let d = detector();
    for (text, pass) in [
        (
            "DATABASE_URL=postgres://app:S3cr3t-Pa55@db.internal:5432/prod",
            "S3cr3t-Pa55",
        ),
        (
            "mongodb+srv://admin:q8Lz2Vw7Kp@cluster0.ab1cd.mongodb.net/test",
            "q8Lz2Vw7Kp",
        ),
        ("REDIS_URL=redis://:Hx7fK2qL9z@cache:6379/0", "Hx7fK2qL9z"),
        (
            "pull from https://deploy:gh7Tq9xLm2@registry.acme.io/v2/",
            "gh7Tq9xLm2",
        ),
    ] {
        hit(&d, Entity::Secret, text, pass);
    }
    for text in [
        "postgres://user:password@localhost/db",
        "mongodb+srv://admin:${MONGO_PASSWORD}@cluster0.mongodb.net",
        "mysql://root:<password>@127.0.0.1:3306/app",
        "see https://example.com/a:b@c for the syntax",
    ] {
        miss(&d, Entity::Secret, text);
    }
}

#[test]
fn environment_dumps_name_their_secrets() {
    let d = detector();
    hit(
        &d,
        Entity::Secret,
        "MASTER_KEY=Zr8q2Lw9XkP4vT7mNb3Hc6Qa",
        "Zr8q2Lw9XkP4vT7mNb3Hc6Qa",
    );
    hit(&d, Entity::Secret, "export DB_PASS=hunter2!", "hunter2!");
    for text in [
        "PUBLIC_KEY=MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE",
        "STRIPE_PUBLISHABLE_KEY=Zr8q2Lw9XkP4vT7mNb3Hc6Qa",
        "SORT_KEY=created_at",
        "CACHE_KEY=v2",
    ] {
        miss(&d, Entity::Secret, text);
    }
}
