//! Issue #4: processes started before Saker get their state from the /proc scan, live and in a
//! capture's snapshot. A shell that was already waiting when `saker run`/`saker capture` started
//! runs `cat`; the alert must know the shell's cwd (inherited by cat), its command line and the
//! test process as grandparent, none of which any live event carries.

mod common;

use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn rules(tok: &str) -> String {
    format!(
        r#"- rule: Preexisting parent
  desc: cat run by a shell that predates saker
  condition: evt.type in (execve, execveat) and proc.name = cat and proc.cmdline contains "{tok}"
  output: "pre cwd=%proc.cwd pcmd=%proc.pcmdline gp=%proc.apid[2] exe=%proc.exepath ctime=%proc.exe_ino.ctime mtime=%proc.exe_ino.mtime cmd=%proc.cmdline"
  priority: WARNING
"#
    )
}

#[test]
#[ignore = "needs root"]
fn processes_started_before_saker_have_cwd_and_ancestry() {
    require_live("processes_started_before_saker_have_cwd_and_ancestry");
    let _g = probe_lock();
    let tok = token("pre");
    let dir = Scratch::new(&tok);
    let work = dir.path.join("wd");
    std::fs::create_dir(&work).expect("mkdir");
    let fifo = dir.file("go");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let rules_file = dir.file("pre.yaml");
    std::fs::write(&rules_file, rules(&tok)).expect("write rules");
    let scap = dir.file("pre.scap");

    // The shell blocks on the fifo until both sessions are up.
    let script = format!(
        "cd '{}' && read x < '{}' && cat /dev/null {tok} 2>/dev/null; true",
        work.display(),
        fifo.display()
    );
    let mut shell = Command::new("sh")
        .args(["-c", &script, &tok])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn sh");
    std::thread::sleep(Duration::from_millis(200));

    let live = Session::start(&[
        OsStr::new("run"),
        OsStr::new("-o"),
        OsStr::new("json_output=true"),
        OsStr::new("-r"),
        rules_file.as_os_str(),
    ]);
    let cap = Session::start(&[
        OsStr::new("capture"),
        OsStr::new("-w"),
        scap.as_os_str(),
        OsStr::new("-r"),
        rules_file.as_os_str(),
    ]);
    std::fs::write(&fifo, "go\n").expect("release the shell");
    assert!(shell.wait().expect("wait sh").success());
    live.wait_alerts(
        "the preexisting shell's cat",
        Duration::from_secs(20),
        |a| a.iter().any(|x| x.mentions(&tok)),
    );
    let cap_fin = cap.stop();
    let live_fin = live.stop();
    assert!(cap_fin.status.success(), "{}", cap_fin.stderr_text());

    let want_cwd = format!("{}/", work.display());
    let want_gp = std::process::id().to_string();
    let check = |what: &str, alerts: &[Alert]| {
        let a = alerts
            .iter()
            .find(|a| a.rule == "Preexisting parent" && a.mentions(&tok))
            .unwrap_or_else(|| panic!("{what}: no alert in {alerts:?}"));
        assert_eq!(
            a.field("proc.cwd").as_deref(),
            Some(want_cwd.as_str()),
            "{what}"
        );
        assert_eq!(
            a.field("proc.apid[2]").as_deref(),
            Some(want_gp.as_str()),
            "{what}"
        );
        // The executable's inode times, as stat(2) has them.
        let exe = a.field("proc.exepath").unwrap_or_default();
        let md = std::fs::metadata(&exe).unwrap_or_else(|e| panic!("{what}: stat {exe:?}: {e}"));
        let ns = |s: i64, n: i64| (s * 1_000_000_000 + n).to_string();
        assert_eq!(
            a.field("proc.exe_ino.ctime"),
            Some(ns(md.ctime(), md.ctime_nsec())),
            "{what}: ctime of {exe}"
        );
        assert_eq!(
            a.field("proc.exe_ino.mtime"),
            Some(ns(md.mtime(), md.mtime_nsec())),
            "{what}: mtime of {exe}"
        );
        let pcmd = a.field("proc.pcmdline").unwrap_or_default();
        assert!(
            pcmd.starts_with("sh -c cd ") && pcmd.contains("read x"),
            "{what}: proc.pcmdline {pcmd:?}"
        );
    };
    check("live", &live_fin.alerts());

    let out = Command::new(saker_bin())
        .args(["replay", "-o", "json_output=true", "-r"])
        .arg(&rules_file)
        .arg(&scap)
        .output()
        .expect("run saker replay");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replayed: Vec<Alert> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(Alert::parse)
        .collect();
    check("replay of the capture", &replayed);
}
