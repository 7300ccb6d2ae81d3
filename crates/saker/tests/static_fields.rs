//! `static_fields` from the config reach rule conditions and outputs (no root: a capture replay).

mod common;

use std::process::Command;

fn replay(cluster: &str, rules: &std::path::Path) -> String {
    let cap = common::repo_root().join("../shared/captures/cat_write.scap");
    let out = Command::new(common::saker_bin())
        .args(["replay", "--no-progress", "-r"])
        .arg(rules)
        .args(["-o", &format!("static_fields.cluster={cluster}")])
        .arg(cap)
        .output()
        .expect("run saker replay");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn static_fields_work_in_conditions_and_outputs() {
    let dir = std::env::temp_dir().join(format!("saker-static-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("r.yaml");
    std::fs::write(
        &rules,
        "- rule: Open in production\n  desc: t\n  condition: evt.type in (open, openat) and static.cluster = prod\n  output: \"open in %static.cluster by %proc.name\"\n  priority: WARNING\n",
    )
    .unwrap();
    let prod = replay("prod", &rules);
    assert_eq!(prod.matches("open in prod by cat").count(), 8, "{prod}");
    let dev = replay("dev", &rules);
    assert!(!dev.contains("open in"), "{dev}");
    let _ = std::fs::remove_dir_all(&dir);
}
