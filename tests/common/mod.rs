//! Helpers shared by integration tests (`mod common;`).

use std::collections::BTreeMap;
use std::path::Path;

/// Every file under `dir` (recursively), keyed by its path relative to `dir`, with its bytes.
#[allow(dead_code)]
pub fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Ingests the canonical extract in `raw` into `raw/_extract` (a folder the canonical reader
/// ignores) with three shards, so every test of a stage also runs on a sharded prepared extract.
#[allow(dead_code)]
pub fn extract(raw: &Path) -> std::path::PathBuf {
    let out = raw.join("_extract");
    let options = ascqr::claims::IngestOptions { layout: ascqr::claims::Layout::Canonical, shards: Some(3) };
    ascqr::claims::ingest(raw, &options, &out, &indicatif::ProgressBar::hidden()).unwrap();
    out
}

/// Every measure's cohort, exclusions, attrition and analysis file from a prepared extract.
#[allow(dead_code)]
pub fn results(extract: &Path) -> Vec<(polars::prelude::DataFrame, polars::prelude::DataFrame, String, polars::prelude::DataFrame)> {
    let dict = ascqr::dictionary::Dictionary::embedded().unwrap();
    ascqr::dictionary::MeasureId::ALL
        .iter()
        .map(|&m| {
            let c = ascqr::cohort::build(extract, m, None, dict).unwrap();
            let a = ascqr::risk::analysis_frame(extract, m, &c.cohort, dict).unwrap().sort(["procedure_id"], Default::default()).unwrap();
            (c.cohort, c.excluded, format!("{:?}", c.attrition), a)
        })
        .collect()
}

/// Asserts two sets of [`results`] are equal, naming the measure and part that differs.
#[allow(dead_code, clippy::type_complexity)]
pub fn assert_same_results(
    what: &str,
    a: &[(polars::prelude::DataFrame, polars::prelude::DataFrame, String, polars::prelude::DataFrame)],
    b: &[(polars::prelude::DataFrame, polars::prelude::DataFrame, String, polars::prelude::DataFrame)],
) {
    for (m, (x, y)) in ascqr::dictionary::MeasureId::ALL.iter().zip(a.iter().zip(b)) {
        assert!(x.0.height() > 0, "{what}: {m} has an empty cohort");
        assert!(x.0.equals_missing(&y.0), "{what}: {m} cohort differs");
        assert!(x.1.equals_missing(&y.1), "{what}: {m} exclusions differ");
        assert_eq!(x.2, y.2, "{what}: {m} attrition differs");
        assert!(x.3.equals_missing(&y.3), "{what}: {m} analysis file differs");
    }
}

/// A copy of the files of the flat folder `from` in a new folder `to` (a delivery to spoil).
#[allow(dead_code)]
pub fn copy_folder(from: &Path, to: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
    to.to_path_buf()
}
