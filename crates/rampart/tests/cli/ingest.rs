//! `rampart data ingest | pin | unpin`: each integrity refusal, the store, the manifest.

use crate::Scratch;

const SCHEMA: &str = "version = 1\n[label]\ncolumn = \"y\"\nclasses = [\"0\", \"1\"]\n\
[[columns]]\nname = \"id\"\ntype = \"int\"\nunique = true\n\
[[columns]]\nname = \"x\"\ntype = \"float\"\nmin = 0\n\
[[columns]]\nname = \"y\"\ntype = \"int\"\n";

const DATA: &str = "id,x,y\n1,0.5,0\n2,1.5,1\n3,-1,1\n2,2.5,0\n4,3.5,1\n";
const CLEAN: &str = "id,x,y\n1,0.5,0\n2,1.5,1\n4,3.5,1\n";

fn scratch() -> Scratch {
    let s = Scratch::init();
    std::fs::create_dir_all(s.path().join("ds")).unwrap();
    std::fs::write(s.path().join("schema.toml"), SCHEMA).unwrap();
    std::fs::write(s.path().join("ds/d.csv"), DATA).unwrap();
    s.rampart(&["data", "roots", "add", "ds"])
        .assert()
        .success();
    s
}

fn stored(s: &Scratch) -> Vec<std::path::PathBuf> {
    let store = s.home().join("store/datasets");
    if !store.exists() {
        return Vec::new();
    }
    std::fs::read_dir(store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

fn ingest(s: &Scratch, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["data", "ingest", "ds/d.csv", "--schema", "schema.toml"];
    args.extend_from_slice(extra);
    s.run(&args)
}

fn audit(s: &Scratch) -> String {
    s.run(&[
        "--format",
        "json",
        "audit",
        "show",
        "--action",
        "data.ingest",
    ])
    .1
}

#[test]
fn unsigned_is_refused_unless_pinned_or_overridden_loudly() {
    let s = scratch();
    let (code, _, err) = ingest(&s, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("neither signed nor pinned"), "{err}");
    assert!(stored(&s).is_empty(), "nothing stored on refusal");
    assert!(audit(&s).contains("denied"));

    let (code, _, err) = ingest(&s, &["--allow-unsigned"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("WARNING: --allow-unsigned"), "{err}");
    assert!(
        audit(&s).contains("\"integrity\":\"unsigned\""),
        "{}",
        audit(&s)
    );

    // Pinned: accepted without the flag; unpinned again: refused.
    s.rampart(&["data", "pin", "ds/d.csv"]).assert().success();
    let (code, out, err) = ingest(&s, &["--format", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"integrity\":\"pinned\""), "{out}");
    s.rampart(&["data", "unpin", "ds/d.csv"]).assert().success();
    assert_eq!(ingest(&s, &[]).0, 2);
}

#[test]
fn signed_datasets_are_stored_encrypted_with_a_manifest() {
    let s = scratch();
    s.rampart(&["sign", "ds/d.csv"]).assert().success();
    let out = s.json(&["data", "ingest", "ds/d.csv", "--schema", "schema.toml"]);
    assert_eq!(out["integrity"], "signed");
    assert_eq!(out["report"]["accepted"], 3);
    assert_eq!(out["report"]["rejected"], 2);
    let want = format!("sha256:{}", sha256_hex(CLEAN.as_bytes()));
    assert_eq!(out["dataset"], want);

    // The store holds only ciphertext; decrypting gives exactly the clean rows.
    let data = std::path::PathBuf::from(out["path"].as_str().unwrap());
    let bytes = std::fs::read(&data).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1"));
    let plain = s
        .rampart(&["decrypt", data.to_str().unwrap(), "-o", "-"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(plain.stdout).unwrap(), CLEAN);

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out["manifest"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(
        manifest["source"]["sha256"],
        format!("sha256:{}", sha256_hex(DATA.as_bytes()))
    );
    assert_eq!(manifest["counts"]["rows_read"], 5);
    assert_eq!(manifest["counts"]["reconciled"], true);
    assert_eq!(manifest["counts"]["by_rule"]["unique"], 1);
    assert!(
        manifest["schema"]["sha256"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    // The quarantine is kept, encrypted, beside the manifest.
    let q = std::path::PathBuf::from(
        out["manifest"]
            .as_str()
            .unwrap()
            .replace(".json", ".quarantine.csv.age"),
    );
    let rejects = s
        .rampart(&["decrypt", q.to_str().unwrap(), "-o", "-"])
        .output()
        .unwrap();
    let rejects = String::from_utf8(rejects.stdout).unwrap();
    assert!(rejects.contains("\n3,4,x,min,"), "{rejects}");
    assert!(rejects.contains("\n4,5,id,unique,"), "{rejects}");

    // The built-in models train on the stored dataset by its digest, decrypted in memory; the
    // model records exactly that digest as its training data.
    let dataset = out["dataset"].as_str().unwrap();
    let v = s.json(&[
        "ml",
        "train",
        "--data",
        dataset,
        "--label",
        "y",
        "--model",
        "random-forest",
        "--trees",
        "3",
        "--ignore",
        "id",
        "-o",
        "m.safetensors",
    ]);
    assert_eq!(v["data_digest"], dataset);
    let (code, _, err) = s.run(&[
        "ml",
        "train",
        "--data",
        &format!("sha256:{}", "0".repeat(64)),
        "--label",
        "y",
        "--model",
        "logistic",
        "-o",
        "n.safetensors",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("ingest it first"), "{err}");
}

#[test]
fn tampered_and_wrongly_signed_datasets_are_refused() {
    let s = scratch();
    s.rampart(&["sign", "ds/d.csv"]).assert().success();
    std::fs::write(s.path().join("ds/d.csv"), DATA.replace("0.5", "0.6")).unwrap();
    let (code, _, err) = ingest(&s, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("does not match its signature"), "{err}");
    // --allow-unsigned does not excuse a bad signature.
    assert_eq!(ingest(&s, &["--allow-unsigned"]).0, 2);
    assert!(stored(&s).is_empty());

    // Signed by a key this home does not trust.
    std::fs::write(s.path().join("ds/d.csv"), DATA).unwrap();
    let other = Scratch::init();
    let key = other.home().join("keys/signing.key.pem");
    s.rampart(&["sign", "ds/d.csv", "--key", key.to_str().unwrap()])
        .assert()
        .success();
    let (code, _, err) = ingest(&s, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("does not verify"), "{err}");
    assert!(stored(&s).is_empty());
    assert!(audit(&s).contains("integrity.signature"));
}

#[test]
fn encrypted_sources_and_paths_outside_the_roots() {
    let s = scratch();
    s.rampart(&["encrypt", "ds/d.csv", "-o", "ds/d.csv.age"])
        .assert()
        .success();
    s.rampart(&["sign", "ds/d.csv.age"]).assert().success();
    let out = s.json(&["data", "ingest", "ds/d.csv.age", "--schema", "schema.toml"]);
    assert_eq!(out["integrity"], "signed");
    assert_eq!(out["report"]["accepted"], 3);

    std::fs::write(s.path().join("outside.csv"), DATA).unwrap();
    std::os::unix::fs::symlink(s.path().join("outside.csv"), s.path().join("ds/link.csv")).unwrap();
    let (code, _, err) = s.run(&[
        "data",
        "ingest",
        "ds/link.csv",
        "--schema",
        "schema.toml",
        "--allow-unsigned",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("data.roots"), "{err}");
    let (code, _, err) = s.run(&[
        "data",
        "ingest",
        "ds/../outside.csv",
        "--schema",
        "schema.toml",
        "--allow-unsigned",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("data.roots"), "{err}");
}

#[test]
fn too_many_rejections_store_nothing() {
    let s = scratch();
    let (code, _, err) = ingest(&s, &["--allow-unsigned", "--max-reject-rate", "0.1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("nothing was stored"), "{err}");
    assert!(stored(&s).is_empty());
}

fn sha256_hex(bytes: &[u8]) -> String {
    rampart_crypto::sha256(bytes).to_hex()
}

/// A Parquet file as pyarrow writes it (snappy, a dictionary-encoded category, a date column,
/// nulls), validated and ingested like CSV; clean rows stay Parquet and pyarrow reads them back.
#[test]
fn parquet_from_pyarrow_is_validated_and_ingested() {
    let s = Scratch::init();
    std::fs::create_dir_all(s.path().join("ds")).unwrap();
    s.rampart(&["data", "roots", "add", "ds"])
        .assert()
        .success();
    let (ok, out) = crate::interop::python(
        s.path(),
        "import datetime, pyarrow as pa, pyarrow.parquet as pq\n\
         t = pa.table({'id': [1, 2, 3, 2, 5],\n\
                       'x': [0.5, None, 7.0, 0.25, 0.75],\n\
                       'plan': pa.array(['free', 'pro', 'pro', 'free', 'gold']).dictionary_encode(),\n\
                       'day': [datetime.date(2024, 1, 1), None, datetime.date(2024, 3, 1),\n\
                               datetime.date(2024, 4, 1), datetime.date(2024, 5, 1)]})\n\
         pq.write_table(t, 'ds/d.parquet', compression='snappy')\n",
    );
    assert!(ok, "pyarrow failed: {out}");
    std::fs::write(
        s.path().join("schema.toml"),
        "version = 1\n\
         [[columns]]\nname = \"id\"\ntype = \"int\"\nunique = true\n\
         [[columns]]\nname = \"x\"\ntype = \"float\"\nnullable = true\nmax = 1\n\
         [[columns]]\nname = \"plan\"\ntype = \"category\"\nallowed = [\"free\", \"pro\"]\n\
         [[columns]]\nname = \"day\"\ntype = \"date\"\nnullable = true\n",
    )
    .unwrap();
    let (code, out, err) = s.run(&[
        "data",
        "validate",
        "ds/d.parquet",
        "--schema",
        "schema.toml",
        "-o",
        "clean.parquet",
        "--quarantine",
        "rejects.csv",
    ]);
    assert_eq!(code, 1, "{err}");
    // Row 3: x = 7 > 1; row 4: id 2 repeats; row 5: plan gold.
    assert!(
        out.contains("5 rows read = 2 accepted + 3 rejected (reconciled)"),
        "{out}"
    );
    let q = std::fs::read_to_string(s.path().join("rejects.csv")).unwrap();
    assert!(q.contains("\n4,4,id,unique,"), "{q}");
    let (ok, out) = crate::interop::python(
        s.path(),
        "import pyarrow.parquet as pq\n\
         t = pq.read_table('clean.parquet')\n\
         print(t.column('id').to_pylist(), t.column('day').to_pylist()[1])\n",
    );
    assert!(ok, "{out}");
    assert!(out.contains("[1, 2] None"), "{out}");

    let v = s.json(&[
        "data",
        "ingest",
        "ds/d.parquet",
        "--schema",
        "schema.toml",
        "--allow-unsigned",
    ]);
    assert!(
        v["path"].as_str().unwrap().ends_with("data.parquet.age"),
        "{v}"
    );
    assert_eq!(v["report"]["accepted"], 2);
    let plain = s
        .rampart(&[
            "decrypt",
            v["path"].as_str().unwrap(),
            "-o",
            "clean2.parquet",
        ])
        .output()
        .unwrap();
    assert!(plain.status.success());
    assert!(
        std::fs::read(s.path().join("clean2.parquet"))
            .unwrap()
            .starts_with(b"PAR1")
    );
    // infer-schema reads Parquet too.
    let (code, out, err) = s.run(&["data", "infer-schema", "ds/d.parquet"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("name = \"day\"\ntype = \"date\"\nnullable = true"),
        "{out}"
    );
    assert!(out.contains("name = \"plan\""), "{out}");
    // Nothing was left in the private spool directory.
    let runs = s.home().join("runs");
    assert_eq!(std::fs::read_dir(runs).unwrap().count(), 0);
}

/// A directory of CSV shards (one of them encrypted) is one dataset: signed as a directory,
/// every shard hashed as it is read; a changed, added or removed shard is refused.
#[test]
fn a_signed_directory_of_shards_is_one_dataset() {
    let s = scratch();
    let dir = s.path().join("ds/parts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("p1.csv"), "id,x,y\n1,0.5,0\n2,1.5,1\n").unwrap();
    std::fs::write(dir.join("p2.csv"), "id,x,y\n3,-1,1\n2,2.5,0\n4,3.5,1\n").unwrap();
    s.rampart(&["encrypt", "ds/parts/p2.csv", "-o", "ds/parts/p2.csv.age"])
        .assert()
        .success();
    std::fs::remove_file(dir.join("p2.csv")).unwrap();
    s.rampart(&["sign", "ds/parts"]).assert().success();

    let v = s.json(&["data", "ingest", "ds/parts", "--schema", "schema.toml"]);
    assert_eq!(v["integrity"], "signed");
    assert_eq!(v["report"]["rows_read"], 5);
    assert_eq!(v["report"]["accepted"], 3);
    // The same clean rows as the single-file dataset: the same content address.
    assert_eq!(
        v["dataset"],
        format!("sha256:{}", sha256_hex(CLEAN.as_bytes()))
    );

    // A modified shard, an added shard, a removed shard.
    std::fs::write(dir.join("p1.csv"), "id,x,y\n1,0.5,0\n2,1.5,0\n").unwrap();
    let (code, _, err) = s.run(&["data", "ingest", "ds/parts", "--schema", "schema.toml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("p1.csv"), "{err}");
    std::fs::write(dir.join("p1.csv"), "id,x,y\n1,0.5,0\n2,1.5,1\n").unwrap();
    std::fs::write(dir.join("p3.csv"), "id,x,y\n9,0.5,0\n").unwrap();
    let (code, _, err) = s.run(&["data", "ingest", "ds/parts", "--schema", "schema.toml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("p3.csv is not signed"), "{err}");
    std::fs::remove_file(dir.join("p3.csv")).unwrap();
    std::fs::remove_file(dir.join("p1.csv")).unwrap();
    let (code, _, err) = s.run(&["data", "ingest", "ds/parts", "--schema", "schema.toml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("p1.csv is missing"), "{err}");

    // Unsigned directories can be pinned (the OMS root digest of their files).
    std::fs::remove_file(dir.join("model.sig")).unwrap();
    std::fs::write(dir.join("p1.csv"), "id,x,y\n1,0.5,0\n2,1.5,1\n").unwrap();
    assert_eq!(
        s.run(&["data", "ingest", "ds/parts", "--schema", "schema.toml"])
            .0,
        2
    );
    s.rampart(&["data", "pin", "ds/parts"]).assert().success();
    let v = s.json(&["data", "ingest", "ds/parts", "--schema", "schema.toml"]);
    assert_eq!(v["integrity"], "pinned");

    // Shards must share the header; other files are refused by name.
    std::fs::write(dir.join("p3.csv"), "id,y,x\n9,0,0.5\n").unwrap();
    let (code, _, err) = s.run(&[
        "data",
        "ingest",
        "ds/parts",
        "--schema",
        "schema.toml",
        "--allow-unsigned",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("shard p3.csv: its header differs"), "{err}");
    std::fs::remove_file(dir.join("p3.csv")).unwrap();
    std::fs::write(dir.join("README.md"), "notes").unwrap();
    let (code, _, err) = s.run(&[
        "data",
        "ingest",
        "ds/parts",
        "--schema",
        "schema.toml",
        "--allow-unsigned",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("README.md is not a CSV shard"), "{err}");
    assert!(audit(&s).contains("data.shards"), "the refusal is audited");
}
