//! The HTML report renders in a real browser: headless Chromium loads `report.html` from disk
//! (no network), and the rendered DOM holds the SVG charts with their points and the facility
//! sections. Where Chromium is not installed (Debian packages `chromium`, `chromium-driver`) the
//! test says so on stderr and checks nothing else.

use ascqr::claims::FileFormat;
use ascqr::pipeline::{run, RunConfig};
use ascqr::synth::{generate, Scale, SynthOptions};
use std::path::PathBuf;
use std::process::Command;

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
        std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()))
    })
}

#[test]
fn the_report_renders_in_headless_chromium_with_its_charts() {
    let Some(browser) = chromium() else {
        eprintln!("SKIPPED the_report_renders_in_headless_chromium_with_its_charts: Chromium is not installed (apt-get install chromium chromium-driver)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let claims = dir.path().join("claims");
    generate(&claims, &SynthOptions::new(6, Scale::Small, "2021-2023", FileFormat::Parquet).unwrap(), &indicatif::ProgressBar::hidden()).unwrap();
    let config = RunConfig {
        measures: Some(vec!["asc12".into()]),
        bootstrap: Some(0),
        web_records: Some(claims.join("web/records.csv")),
        upload_date: Some("2025-04-01".into()),
        ..Default::default()
    };
    let out = dir.path().join("run");
    run(&claims, &config, ascqr::dictionary::Dictionary::embedded().unwrap(), vec![], &out).unwrap();
    let page = out.join("report.html");
    let rendered = Command::new(&browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(rendered.status.success(), "{}", String::from_utf8_lossy(&rendered.stderr));
    let dom = String::from_utf8(rendered.stdout).unwrap();
    assert!(dom.contains("ASCQR measures"), "the page did not render: {}", &dom[..dom.len().min(500)]);
    // Two charts for ASC-12 (funnel, caterpillar), each an inline SVG with one circle per facility.
    assert_eq!(dom.matches("<svg").count(), 2, "charts in the DOM");
    assert!(dom.matches("<circle").count() >= 2 * 10, "facility points in the charts");
    assert!(dom.contains("id=\"facilities\"") && dom.contains("<article id=\"f"));
}
