//! The binary: documented exit codes, help with examples, and the synth → validate round trip.

use std::process::Command;

fn ascqr() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ascqr"))
}

#[test]
fn help_documents_every_command_with_examples_and_exit_codes() {
    let out = ascqr().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for word in ["synth", "validate", "import", "demo", "Exit codes", "RUST_LOG"] {
        assert!(text.contains(word), "--help lacks {word}");
    }
    for cmd in ["synth", "validate", "import", "demo"] {
        let out = ascqr().args([cmd, "--help"]).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("Example"), "{cmd} --help has no example");
    }
}

#[test]
fn synth_then_validate_reports_zero_rejects_and_bad_input_exits_with_2() {
    let dir = tempfile::tempdir().unwrap();
    let claims = dir.path().join("claims");
    let out = ascqr().args(["synth", "--seed", "1", "--scale", "small", "--out"]).arg(&claims).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rejects = dir.path().join("rejects.csv");
    let out = ascqr().args(["validate", "--claims"]).arg(&claims).arg("--rejects").arg(&rejects).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("no rows rejected"), "{text}");

    // Break one date: a fatal error naming file, row, column and value; exit code 2; no reject
    // file left behind.
    let bad = dir.path().join("bad");
    let csv_out = ascqr().args(["synth", "--seed", "1", "--years", "2022", "--format", "csv", "--out"]).arg(&bad).output().unwrap();
    assert!(csv_out.status.success());
    let path = bad.join("beneficiaries.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let fields: Vec<&str> = lines[3].split(',').collect();
    let broken = format!("{},1950-02-30,{}", fields[0], fields[2..].join(","));
    lines[3] = broken;
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let bad_rejects = dir.path().join("bad_rejects.csv");
    let out = ascqr().args(["validate", "--claims"]).arg(&bad).arg("--rejects").arg(&bad_rejects).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!("error: {}: row 3, column `birth_date`: value \"1950-02-30\" is not a date (YYYY-MM-DD)", path.display())),
        "{err}"
    );
    assert!(!bad_rejects.exists());

    let out = ascqr().args(["synth", "--out"]).arg(dir.path().join("x")).args(["--years", "1999"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("invalid option: --years \"1999\""));
}
