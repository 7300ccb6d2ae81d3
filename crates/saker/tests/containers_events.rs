//! Issue #7: a short-lived container still gets its metadata. `podman run --rm` creates and
//! starts a container in one go and its processes run for a few milliseconds, less than an
//! inspect takes. Saker follows the runtime's create events and holds the alerts of a container
//! whose metadata is on its way (never the events), so even the container's first exec and an
//! exec 1 ms later carry its name, image and privileged flag, not just its id.

mod common;

use std::process::Command;

use common::*;

fn rules(tok: &str) -> String {
    format!(
        r#"- rule: Saker test short-lived container exec
  desc: any exec in this test's container
  condition: evt.type in (execve, execveat) and container.id != host and proc.cmdline contains "{tok}"
  output: "exec in short-lived container (name=%container.name repo=%container.image.repository tag=%container.image.tag type=%container.type priv=%container.privileged cmd=%proc.cmdline)"
  priority: WARNING
"#
    )
}

#[test]
#[ignore = "needs root"]
fn short_lived_container_alerts_carry_name_and_image() {
    require_live("short_lived_container_alerts_carry_name_and_image");
    let tok = token("short");
    let dir = Scratch::new(&tok);
    let rules_file = dir.file("short.yaml");
    std::fs::write(&rules_file, rules(&tok)).expect("write rules");
    let image = image();
    let runs = [
        (format!("{tok}-plain"), false),
        (format!("{tok}-priv"), true),
    ];
    let cidfile = |name: &str| dir.file(&format!("{name}.cid"));
    let (alerts, _scope) = live(
        &[rules_file],
        |scope| {
            for (name, privileged) in &runs {
                let out = scope.run(
                    Command::new("podman")
                        .args(["run", "--rm", "--name", name, "--cidfile"])
                        .arg(cidfile(name))
                        .args(if *privileged {
                            &["--privileged"][..]
                        } else {
                            &[]
                        })
                        .args(PODMAN_LIMITS)
                        .arg(image)
                        .args(["sh", "-c", &format!("/bin/ls -d / {tok} 2>/dev/null; true")]),
                );
                ok(&out, "podman run --rm");
            }
        },
        Scope::with_token(&tok),
    );
    let (repo, tag) = image.rsplit_once(':').expect("image has a tag");
    for (name, privileged) in &runs {
        let cid = std::fs::read_to_string(cidfile(name)).expect("podman wrote the cidfile");
        let short = cid.trim().get(..12).expect("a 64-hex container id");
        // In this sandbox host processes have a container id too (a memory cgroup that looks
        // like containerd's), so the test's alerts are picked by the podman container's id.
        let ours: Vec<&Alert> = alerts
            .iter()
            .filter(|a| a.field("container.id").as_deref() == Some(short))
            .collect();
        // The entrypoint shell and the /bin/ls it execs a millisecond later.
        assert!(
            ours.len() >= 2,
            "{name}: expected the entrypoint and its child, got {ours:#?}"
        );
        let want_priv = privileged.to_string();
        for a in &ours {
            assert_eq!(
                a.field("container.name").as_deref(),
                Some(name.as_str()),
                "{a:?}"
            );
            assert_eq!(
                a.field("container.image.repository").as_deref(),
                Some(repo),
                "{a:?}"
            );
            assert_eq!(
                a.field("container.image.tag").as_deref(),
                Some(tag),
                "{a:?}"
            );
            assert_eq!(
                a.field("container.type").as_deref(),
                Some("podman"),
                "{a:?}"
            );
            assert_eq!(
                a.field("container.privileged"),
                Some(want_priv.clone()),
                "{a:?}"
            );
        }
    }
}

/// `saker capture` records the container metadata it learns as container events, so a replay of
/// the file renders the container fields live detection had.
#[test]
#[ignore = "needs root"]
fn captured_container_metadata_replays() {
    require_live("captured_container_metadata_replays");
    let _g = probe_lock();
    let tok = token("capctr");
    let dir = Scratch::new(&tok);
    let rules_file = dir.file("cap.yaml");
    std::fs::write(&rules_file, rules(&tok)).expect("write rules");
    let scap = dir.file("ctr.scap");
    let image = image();
    let mut cap = Command::new(saker_bin())
        .env(
            "SAKER_CONTAINER_SOCKETS",
            saker_testkit::podman::shared_api_dir(),
        )
        .arg("capture")
        .arg("-w")
        .arg(&scap)
        .arg("-r")
        .arg(&rules_file)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn saker capture");
    let mut err = std::io::BufReader::new(cap.stderr.take().expect("stderr"));
    let mut line = String::new();
    while !line.contains("saker: started") {
        line.clear();
        let n = std::io::BufRead::read_line(&mut err, &mut line).expect("read stderr");
        assert!(n > 0, "saker capture exited before starting");
    }
    let cidfile = dir.file("cid");
    // The sleep lets the metadata arrive (and be recorded) before the exec that the rule sees.
    let out = Command::new("podman")
        .args(["run", "--rm", "--name", &tok, "--cidfile"])
        .arg(&cidfile)
        .args(PODMAN_LIMITS)
        .arg(image)
        .args([
            "sh",
            "-c",
            &format!("sleep 1; /bin/ls -d / {tok} 2>/dev/null; true"),
        ])
        .output()
        .expect("podman run");
    ok(&out, "podman run");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(Command::new("kill")
        .args(["-INT", &cap.id().to_string()])
        .status()
        .unwrap()
        .success());
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut rest);
    assert!(cap.wait().expect("wait capture").success(), "{rest}");

    let out = Command::new(saker_bin())
        .args(["replay", "-o", "json_output=true", "-r"])
        .arg(&rules_file)
        .arg(&scap)
        .output()
        .expect("saker replay");
    ok(&out, "saker replay");
    let cid = std::fs::read_to_string(&cidfile).expect("cidfile");
    let short = cid.trim().get(..12).expect("64-hex id");
    let alerts: Vec<Alert> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(Alert::parse)
        .filter(|a| a.field("container.id").as_deref() == Some(short))
        .collect();
    let ls = alerts
        .iter()
        .find(|a| {
            a.field("proc.cmdline")
                .is_some_and(|c| c.starts_with("ls "))
        })
        .unwrap_or_else(|| panic!("no replayed alert for the ls exec: {alerts:#?}"));
    let (repo, _) = image.rsplit_once(':').expect("tag");
    assert_eq!(
        ls.field("container.name").as_deref(),
        Some(tok.as_str()),
        "{ls:?}"
    );
    assert_eq!(
        ls.field("container.image.repository").as_deref(),
        Some(repo),
        "{ls:?}"
    );
    assert_eq!(
        ls.field("container.type").as_deref(),
        Some("podman"),
        "{ls:?}"
    );
    assert_eq!(
        ls.field("container.privileged").as_deref(),
        Some("false"),
        "{ls:?}"
    );
}
