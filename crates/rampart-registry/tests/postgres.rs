//! The PostgreSQL metadata store against a real server (`rampart_postgres::testing` starts
//! one, or uses `RAMPART_TEST_POSTGRES`): the conformance suite, and writers on several
//! connections at once.

#![allow(clippy::unwrap_used)]

use rampart_postgres::{Origin, Target, testing};
use rampart_registry::RegistryError;
use rampart_registry::meta::{MetadataStore, conformance};
use rampart_registry::pg::PgMetadata;

fn database() -> Target {
    Target::parse(&testing::fresh_database().unwrap(), Origin::Environment).unwrap()
}

#[test]
fn the_postgres_store_passes_the_metadata_conformance_suite() {
    let mut store = PgMetadata::open(&database()).unwrap();
    conformance::run(&mut store).unwrap();
}

#[test]
fn the_postgres_store_passes_the_concurrent_cases() {
    let target = database();
    let open = || -> Result<Box<dyn MetadataStore>, RegistryError> {
        Ok(Box::new(PgMetadata::open(&target)?))
    };
    conformance::run_concurrent(&open).unwrap();
}

#[test]
fn a_second_open_finds_the_tables_migrated_and_the_data_kept() {
    let target = database();
    let mut a = PgMetadata::open(&target).unwrap();
    conformance::run(&mut a).unwrap();
    let b = PgMetadata::open(&target).unwrap();
    assert_eq!(b.resolve("m@production").unwrap().version, 1);
    assert_eq!(b.names().unwrap(), ["m"]);
}
