//! `rampart ml privacy`: JSON keys as the issue names them, and bad input is exit 2.

use crate::Scratch;

#[test]
fn privacy_reports_epsilon_or_noise() {
    let s = Scratch::new();
    let v = s.json(&[
        "ml",
        "privacy",
        "--sample-rate",
        "0.01",
        "--noise",
        "1.1",
        "--steps",
        "10000",
        "--delta",
        "1e-5",
    ]);
    let eps = v["epsilon"].as_f64().unwrap();
    assert!(eps > 5.0 && eps < 6.5, "{v}");
    assert!(v["order"].as_f64().unwrap() > 1.0);
    let v = s.json(&[
        "ml",
        "privacy",
        "--sample-rate",
        "0.01",
        "--target-epsilon",
        "1",
        "--steps",
        "10000",
        "--delta",
        "1e-5",
    ]);
    let sigma = v["noise"].as_f64().unwrap();
    assert!(v["epsilon"].as_f64().unwrap() <= 1.0 && sigma > 1.1, "{v}");
    // Round trip: the noise found gives back the target.
    let back = s.json(&[
        "ml",
        "privacy",
        "--sample-rate",
        "0.01",
        "--noise",
        &sigma.to_string(),
        "--steps",
        "10000",
        "--delta",
        "1e-5",
    ]);
    assert!(
        (back["epsilon"].as_f64().unwrap() - 1.0).abs() < 1e-3,
        "{back}"
    );
    for bad in [["--sample-rate", "1.5"], ["--delta", "0"]] {
        let mut args = vec![
            "ml",
            "privacy",
            "--sample-rate",
            "0.01",
            "--noise",
            "1",
            "--steps",
            "10",
            "--delta",
            "1e-5",
        ];
        let i = args.iter().position(|a| *a == bad[0]).unwrap();
        args[i + 1] = bad[1];
        let (code, _, err) = s.run(&args);
        assert_eq!(code, 2, "{err}");
    }
    let (code, _, _) = s.run(&[
        "ml",
        "privacy",
        "--sample-rate",
        "0.01",
        "--steps",
        "10",
        "--delta",
        "1e-5",
    ]);
    assert_eq!(code, 2);
}
