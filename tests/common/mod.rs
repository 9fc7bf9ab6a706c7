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
