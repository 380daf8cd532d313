//! The PII detector and redactor over arbitrary text: never a panic, findings sorted, inside
//! the text, on char boundaries and never overlapping; redaction with `keep` gives the text
//! back; `<TYPE>` replacement swaps exactly the findings' bytes for their tags.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rampart_data::pii::{ColumnHint, Detector, DetectorOptions, Operator, Redactor};

/// Built once: compiling the patterns costs far more than one input.
static DETECTOR: OnceLock<Option<Detector>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(d) = DETECTOR
        .get_or_init(|| Detector::new(DetectorOptions::default()).ok())
        .as_ref()
    else {
        return;
    };
    let hint = ColumnHint::from_name("customer_email_phone_address_name_dob_password");
    for hint in [None, Some(&hint)] {
        let found = d.scan_with(text, hint);
        let mut last_end = 0;
        for f in &found {
            assert!(f.start >= last_end && f.start < f.end && f.end <= text.len());
            assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
            assert!((0.0..=1.0).contains(&f.confidence));
            assert!(rampart_data::pii::RULES.contains(&f.rule));
            last_end = f.end;
        }
        let keep = Redactor::new(Operator::Keep);
        assert_eq!(keep.redact(text, &found, None).ok().as_deref(), Some(text));
        let replaced = Redactor::new(Operator::Replace)
            .redact(text, &found, None)
            .unwrap_or_default();
        let kept: usize = text.len() - found.iter().map(|f| f.end - f.start).sum::<usize>();
        let tags: usize = found.iter().map(|f| f.entity.name().len() + 2).sum();
        assert_eq!(replaced.len(), kept + tags);
    }
});
