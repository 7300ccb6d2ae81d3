//! Podman scaffolding: the busybox test images and private API services.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::{ok, token};

/// The general test image: busybox with the applets the rules tests use.
pub const IMAGE: &str = "localhost/saker-rstest:2";

/// Flags every test container gets: bounded limits and the runtime the machine notes name.
pub const PODMAN_LIMITS: [&str; 6] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
    "--runtime",
    "runc",
];

/// Fills `root` with the host's static busybox and links `applets` to it in /bin.
pub fn busybox_rootfs(root: &Path, applets: &[&str]) {
    for sub in ["bin", "etc", "tmp"] {
        std::fs::create_dir_all(root.join(sub)).expect("rootfs dirs");
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static is installed");
    for a in applets {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).expect("applet link");
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
}

/// `podman import` of a directory as image `name`, with optional `--change` instructions.
pub fn import_dir(root: &Path, name: &str, changes: &[&str]) {
    let tar = root.with_extension("tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .output()
        .expect("tar");
    ok(&out, "tar of the test rootfs");
    let mut cmd = Command::new("podman");
    cmd.arg("import");
    for c in changes {
        cmd.args(["--change", c]);
    }
    let out = cmd.arg(&tar).arg(name).output().expect("podman import");
    ok(&out, "podman import");
    let _ = std::fs::remove_file(&tar);
}

/// `podman save` of `image` as an OCI archive (for `ctr images import`).
pub fn save_oci(image: &str, archive: &Path) {
    let out = Command::new("podman")
        .args(["save", "--format", "oci-archive", "-o"])
        .arg(archive)
        .arg(image)
        .output()
        .expect("podman save");
    ok(&out, "podman save");
}

/// [`IMAGE`], built once per test binary (and kept between runs) from the host's busybox.
pub fn image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let exists = Command::new("podman")
            .args(["image", "exists", IMAGE])
            .status();
        if exists.is_ok_and(|s| s.success()) {
            return;
        }
        let dir = PathBuf::from("/tmp").join(token("image"));
        let root = dir.join("rootfs");
        busybox_rootfs(
            &root,
            &[
                "sh", "cat", "whoami", "ls", "nc", "sleep", "echo", "true", "arping", "nsenter",
                "mount", "ip", "awk", "wget", "ssh", "scp", "sftp", "id",
            ],
        );
        for sub in ["usr/bin", "root"] {
            std::fs::create_dir_all(root.join(sub)).expect("rootfs dirs");
        }
        std::os::unix::fs::symlink("../../bin/busybox", root.join("usr/bin/locate"))
            .expect("locate");
        // A regular file standing for a login binary, so a test can modify it.
        std::fs::write(root.join("bin/login"), "#!/bin/sh\nexit 0\n").expect("login stub");
        import_dir(&root, IMAGE, &[]);
        let _ = std::fs::remove_dir_all(&dir);
    });
    IMAGE
}

/// A pod sandbox ("pause") image `name` whose default command sleeps, saved as an OCI archive
/// below `dir`; returns the archive.
pub fn sandbox_archive(dir: &Path, name: &str) -> PathBuf {
    let root = dir.join("pause-rootfs");
    busybox_rootfs(&root, &["sh", "sleep", "cat", "echo"]);
    import_dir(&root, name, &["CMD [\"/bin/sleep\",\"100000\"]"]);
    let archive = dir.join("pause.tar");
    save_oci(name, &archive);
    archive
}

/// `podman system service` on a private socket, killed on drop.
pub struct Service {
    child: Child,
    pub sock: PathBuf,
}

impl Service {
    pub fn start(sock: &Path) -> Service {
        if let Some(dir) = sock.parent() {
            std::fs::create_dir_all(dir).expect("podman socket dir");
        }
        let child = Command::new("podman")
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", sock.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn podman system service");
        // Connectable, not just present: a killed service leaves its socket file behind.
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(sock).is_err() {
            assert!(Instant::now() < deadline, "podman socket did not appear");
            std::thread::sleep(Duration::from_millis(50));
        }
        Service {
            child,
            sock: sock.to_path_buf(),
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `podman system service` shared by a test binary's live tests, so that container metadata
/// (privileged, image, name) reaches the alerts; it exits by itself after a minute without
/// clients. Returns the socket's directory.
pub fn shared_api_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("saker-live-podman-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("podman api dir");
        let sock = dir.join("podman.sock");
        let spawned = Command::new("podman")
            .args(["system", "service", "--time=60"])
            .arg(format!("unix://{}", sock.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if spawned.is_ok() {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !sock.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        dir
    })
    .clone()
}
