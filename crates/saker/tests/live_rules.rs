//! One live test per built-in rule (and per example custom rule): start `saker run`, perform the
//! behaviour for real, stop, and check that this rule and only the expected ones fired for it.
//! Run as root on a BTF kernel; container cases use podman (runc) with a busybox image.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use common::*;

fn builtin() -> Vec<PathBuf> {
    Vec::new()
}

// ---------------------------------------------------------------------------------------------
// Shells
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs root"]
fn terminal_shell_in_container() {
    require_live("terminal_shell_in_container");
    let tok = token("tty");
    let ctr = Container::background(&tok);
    let mut scope = Scope::with_token(&tok);
    scope.container_ids.push(ctr.id.clone());
    let (alerts, scope) = live(
        &builtin(),
        |s| {
            let out =
                s.run(Command::new("podman").args(["exec", "-t", &ctr.name, "sh", "-c", "exit 0"]));
            ok(&out, "podman exec -t");
        },
        scope,
    );
    assert_fired(
        &alerts,
        &scope,
        "Terminal shell in container",
        &[],
        &[
            ("proc.name", "sh"),
            ("container.id", &ctr.id[..12]),
            ("user.name", "root"),
        ],
    );
}

#[test]
#[ignore = "needs root"]
fn shell_spawned_by_server_process() {
    require_live("shell_spawned_by_server_process");
    let tok = token("websh");
    let dir = Scratch::new(&tok);
    let nginx = dir.file("nginx");
    std::os::unix::fs::symlink("/bin/dash", &nginx).unwrap();
    let (alerts, scope) = live(
        &builtin(),
        |s| {
            let script = format!("sh -c 'exit 0' {tok}; true");
            let out = s.run(Command::new(&nginx).arg("-c").arg(script));
            ok(&out, "fake nginx");
        },
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "Shell spawned by a server process",
        &[],
        &[
            ("proc.name", "sh"),
            ("proc.pname", "nginx"),
            ("user.name", "root"),
        ],
    );
}

#[test]
#[ignore = "needs root"]
fn shell_binary_run_from_unusual_location() {
    require_live("shell_binary_run_from_unusual_location");
    let tok = token("oddsh");
    let dir = Scratch::new(&tok);
    let sh = dir.file("sh");
    std::fs::copy("/bin/dash", &sh).unwrap();
    let (alerts, scope) = live(
        &builtin(),
        |s| {
            ok(
                &s.run(Command::new(&sh).args(["-c", "exit 0", &tok])),
                "copied shell",
            )
        },
        Scope::with_token(&tok),
    );
    let exe = sh.to_string_lossy().to_string();
    assert_fired(
        &alerts,
        &scope,
        "Shell binary run from an unusual location",
        &[],
        &[("proc.name", "sh"), ("proc.exepath", &exe)],
    );
}

// ---------------------------------------------------------------------------------------------
// Privileged containers and namespaces
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs root"]
fn privileged_container_started() {
    require_live("privileged_container_started");
    let tok = token("priv");
    let ctr = Container::create(&tok, &["--privileged"], "echo up; true");
    let (alerts, scope) = live(
        &builtin(),
        |s| ok(&ctr.start_attached(s), "privileged container"),
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "Privileged container started",
        &[],
        &[("proc.name", "sh"), ("container.id", &ctr.id[..12])],
    );
}

#[test]
#[ignore = "needs root"]
fn host_escape_tool_in_privileged_container() {
    require_live("host_escape_tool_in_privileged_container");
    let tok = token("escape");
    let ctr = Container::create(
        &tok,
        &["--privileged"],
        "/bin/nsenter --help >/dev/null 2>&1; true",
    );
    let (alerts, scope) = live(
        &builtin(),
        |s| {
            ctr.start_attached(s);
        },
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "Host escape tool run in privileged container",
        &["Privileged container started"],
        &[("proc.name", "nsenter"), ("container.id", &ctr.id[..12])],
    );
}

#[test]
#[ignore = "needs root"]
fn process_entered_another_namespace() {
    require_live("process_entered_another_namespace");
    let tok = token("setns");
    let me = std::process::id().to_string();
    let (alerts, scope) = live(
        &builtin(),
        |s| {
            ok(
                &s.run(Command::new("nsenter").args(["-t", &me, "-n", "true", &tok])),
                "nsenter",
            )
        },
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "Process entered another namespace",
        &[],
        &[("proc.name", "nsenter"), ("user.name", "root")],
    );
}

#[test]
#[ignore = "needs root"]
fn process_created_new_namespaces() {
    require_live("process_created_new_namespaces");
    let tok = token("unshare");
    let (alerts, scope) = live(
        &builtin(),
        |s| {
            ok(
                &s.run(Command::new("unshare").args(["-U", "true", &tok])),
                "unshare -U",
            )
        },
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "Process created new namespaces",
        &[],
        &[
            ("proc.name", "unshare"),
            ("evt.arg.flags", "~CLONE_NEWUSER"),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Sensitive files and credentials
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs root"]
fn sensitive_file_read_by_untrusted_program() {
    require_live("sensitive_file_read_by_untrusted_program");
    let tok = token("shadow");
    let (alerts, scope) = live(
        &builtin(),
        |s| ok(&s.sh("cat /etc/shadow >/dev/null; true"), "cat /etc/shadow"),
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "Sensitive file read by untrusted program",
        &[],
        &[
            ("proc.name", "cat"),
            ("fd.name", "/etc/shadow"),
            ("user.name", "root"),
        ],
    );
}

#[test]
#[ignore = "needs root"]
fn cloud_credentials_file_read() {
    require_live("cloud_credentials_file_read");
    let tok = token("awscreds");
    let dir = Scratch::new(&tok);
    std::fs::create_dir_all(dir.file(".aws")).unwrap();
    let creds = dir.file(".aws/credentials");
    std::fs::write(
        &creds,
        "[default]\naws_access_key_id = AKIAEXAMPLEEXAMPLE00\n",
    )
    .unwrap();
    let path = creds.to_string_lossy().to_string();
    let (alerts, scope) = live(
        &builtin(),
        |s| {
            ok(
                &s.sh(&format!("cat {path} >/dev/null; true")),
                "cat credentials",
            )
        },
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "Cloud credentials file read",
        &[],
        &[("proc.name", "cat"), ("fd.name", &path)],
    );
}

#[test]
#[ignore = "needs root"]
fn cloud_metadata_service_contacted_from_container() {
    require_live("cloud_metadata_service_contacted_from_container");
    let tok = token("imds");
    // Busybox applets run by path: its shell otherwise re-executes /proc/self/exe (comm "exe").
    // The metadata address is made local to the container's own network namespace, so the
    // connection succeeds without touching the host network.
    let script = "ip addr add 169.254.169.254/32 dev lo; (nc -l -p 80 >/dev/null &); sleep 1; \
                  echo GET | /bin/nc -w 1 169.254.169.254 80; true";
    let ctr = Container::create(&tok, &["--cap-add", "NET_ADMIN"], script);
    let (alerts, scope) = live(
        &builtin(),
        |s| {
            ctr.start_attached(s);
        },
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "Cloud metadata service contacted from container",
        &[],
        &[
            ("proc.name", "nc"),
            ("fd.name", "~169.254.169.254:80"),
            ("container.id", &ctr.id[..12]),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Writes to system locations
// ---------------------------------------------------------------------------------------------

fn touch_case(dir: &str, rule: &str) {
    let tok = token("write");
    let target = PathBuf::from(dir).join(&tok);
    let _cleanup = RemoveOnDrop(target.clone());
    let path = target.to_string_lossy().to_string();
    let (alerts, scope) = live(
        &builtin(),
        |s| ok(&s.sh(&format!("touch {path}; true")), "touch"),
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        rule,
        &[],
        &[("proc.name", "touch"), ("fd.name", &path)],
    );
}

#[test]
#[ignore = "needs root"]
fn file_written_below_etc() {
    require_live("file_written_below_etc");
    touch_case("/etc", "File written below /etc");
}

#[test]
#[ignore = "needs root"]
fn file_written_below_binary_directory() {
    require_live("file_written_below_binary_directory");
    touch_case("/usr/local/bin", "File written below a binary directory");
}

#[test]
#[ignore = "needs root"]
fn file_written_below_library_directory() {
    require_live("file_written_below_library_directory");
    touch_case("/usr/lib", "File written below a library or boot directory");
}

#[test]
#[ignore = "needs root"]
fn file_written_below_root() {
    require_live("file_written_below_root");
    touch_case("/root", "File written below /root");
}

#[test]
#[ignore = "needs root"]
fn core_system_binary_modified() {
    require_live("core_system_binary_modified");
    let tok = token("login");
    // The image's /bin/login is a regular file; the host's binaries are never touched.
    let ctr = Container::create(&tok, &[], "echo '# changed' >> /bin/login; true");
    let (alerts, scope) = live(
        &builtin(),
        |s| ok(&ctr.start_attached(s), "container"),
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "Core system binary modified",
        &[],
        &[("fd.name", "/bin/login"), ("container.id", &ctr.id[..12])],
    );
}

// ---------------------------------------------------------------------------------------------
// Links, modes and ownership
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs root"]
fn symlink_created_to_sensitive_file() {
    require_live("symlink_created_to_sensitive_file");
    let tok = token("symlink");
    let dir = Scratch::new(&tok);
    let link = dir.file("link").to_string_lossy().to_string();
    let (alerts, scope) = live(
        &builtin(),
        |s| ok(&s.sh(&format!("ln -s /etc/shadow {link}; true")), "ln -s"),
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "Symlink created to a sensitive file",
        &[],
        &[
            ("proc.name", "ln"),
            ("evt.arg.target", "/etc/shadow"),
            ("evt.arg.linkpath", &link),
        ],
    );
}

#[test]
#[ignore = "needs root"]
fn hardlink_created_to_sensitive_file() {
    require_live("hardlink_created_to_sensitive_file");
    let tok = token("hardlink");
    let dir = Scratch::new(&tok);
    let link = dir.file("hard").to_string_lossy().to_string();
    let (alerts, scope) = live(
        &builtin(),
        |s| {
            s.sh(&format!("ln /etc/shadow {link}; true"));
        },
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "Hardlink created to a sensitive file",
        &[],
        &[
            ("proc.name", "ln"),
            ("evt.arg.oldpath", "/etc/shadow"),
            ("evt.arg.newpath", &link),
        ],
    );
}

#[test]
#[ignore = "needs root"]
fn symlink_created_to_sensitive_directory() {
    require_live("symlink_created_to_sensitive_directory");
    let tok = token("dirlink");
    let dir = Scratch::new(&tok);
    let link = dir.file("etc-link").to_string_lossy().to_string();
    let (alerts, scope) = live(
        &builtin(),
        |s| ok(&s.sh(&format!("ln -s /etc {link}; true")), "ln -s /etc"),
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "Symlink created to a sensitive directory",
        &[],
        &[
            ("proc.name", "ln"),
            ("evt.arg.target", "/etc"),
            ("evt.arg.linkpath", &link),
        ],
    );
}

#[test]
#[ignore = "needs root"]
fn hardlink_created_to_file_in_sensitive_directory() {
    require_live("hardlink_created_to_file_in_sensitive_directory");
    let tok = token("binlink");
    let dir = Scratch::new(&tok);
    // The attempt is what counts: the rule fires even if /tmp is another filesystem (EXDEV).
    let link = dir.file("env").to_string_lossy().to_string();
    let (alerts, scope) = live(
        &builtin(),
        |s| {
            s.sh(&format!("ln /usr/bin/env {link}; true"));
        },
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "Hardlink created to a file in a sensitive directory",
        &[],
        &[
            ("proc.name", "ln"),
            ("evt.arg.oldpath", "/usr/bin/env"),
            ("evt.arg.newpath", &link),
        ],
    );
}

#[test]
#[ignore = "needs root"]
fn setuid_bit_set_on_file() {
    require_live("setuid_bit_set_on_file");
    let tok = token("setuid");
    let dir = Scratch::new(&tok);
    let file = dir.file("tool");
    std::fs::write(&file, "x").unwrap();
    let path = file.to_string_lossy().to_string();
    let (alerts, scope) = live(
        &builtin(),
        |s| ok(&s.sh(&format!("chmod u+s {path}; true")), "chmod u+s"),
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "Setuid or setgid bit set on a file",
        &[],
        &[
            ("proc.name", "chmod"),
            ("evt.arg.mode", "~S_ISUID"),
            ("evt.arg.filename", &path),
        ],
    );
}

#[test]
#[ignore = "needs root"]
fn permissions_or_owner_of_sensitive_file_changed() {
    require_live("permissions_or_owner_of_sensitive_file_changed");
    let tok = token("shadowattr");
    // Re-apply the current mode and owner: the syscalls happen, nothing changes.
    let meta = std::fs::metadata("/etc/shadow").expect("stat /etc/shadow");
    let mode = format!("{:o}", meta.permissions().mode() & 0o7777);
    let owner = {
        use std::os::unix::fs::MetadataExt;
        format!("{}:{}", meta.uid(), meta.gid())
    };
    let (alerts, scope) = live(
        &builtin(),
        |s| {
            ok(
                &s.sh(&format!(
                    "chmod {mode} /etc/shadow; chown {owner} /etc/shadow; true"
                )),
                "chmod/chown",
            )
        },
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "Permissions or owner of a sensitive file changed",
        &[],
        &[("proc.name", "chmod"), ("evt.arg.filename", "/etc/shadow")],
    );
    assert!(
        alerts
            .iter()
            .any(|a| scope.owns(a) && a.field("proc.name").as_deref() == Some("chown")),
        "the chown of /etc/shadow raised no alert"
    );
}

// ---------------------------------------------------------------------------------------------
// Network
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs root"]
fn outbound_connection_from_container_by_network_tool() {
    require_live("outbound_connection_from_container_by_network_tool");
    let tok = token("outbound");
    let port = listener("0.0.0.0:0");
    let script = format!(
        "gw=$(ip route | awk '/default/ {{print $3}}'); echo hello | /bin/nc -w 2 $gw {port}; true"
    );
    let ctr = Container::create(&tok, &[], &script);
    let (alerts, scope) = live(
        &builtin(),
        |s| {
            ctr.start_attached(s);
        },
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "Outbound connection from container by a network tool",
        &[],
        &[
            ("proc.name", "nc"),
            ("fd.sport", &port.to_string()),
            ("container.id", &ctr.id[..12]),
        ],
    );
}

#[test]
#[ignore = "needs root"]
fn raw_packet_socket_opened_in_container() {
    require_live("raw_packet_socket_opened_in_container");
    let tok = token("packet");
    let script =
        "gw=$(ip route | awk '/default/ {print $3}'); /bin/arping -c 1 -w 1 -I eth0 $gw; true";
    let ctr = Container::create(&tok, &["--cap-add", "NET_RAW"], script);
    let (alerts, scope) = live(
        &builtin(),
        |s| {
            ctr.start_attached(s);
        },
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "Raw packet socket opened in container",
        &[],
        &[
            ("proc.name", "arping"),
            ("evt.arg.domain", "AF_PACKET"),
            ("container.id", &ctr.id[..12]),
        ],
    );
}

#[test]
#[ignore = "needs root"]
fn shell_streams_redirected_to_network_connection() {
    require_live("shell_streams_redirected_to_network_connection");
    let tok = token("revshell");
    let port = listener("127.0.0.1:0");
    let script = format!("exec 1<>/dev/tcp/127.0.0.1/{port}; echo hi");
    let (alerts, scope) = live(
        &builtin(),
        |s| {
            ok(
                &s.run(Command::new("bash").args(["-c", &script, &tok])),
                "bash /dev/tcp",
            )
        },
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "Shell standard streams redirected to a network connection",
        &[],
        &[
            ("proc.name", "bash"),
            ("evt.rawres", "1"),
            ("fd.name", &format!("~127.0.0.1:{port}")),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Sensitive programs
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs root"]
fn ssh_client_tool_run_in_container() {
    require_live("ssh_client_tool_run_in_container");
    let tok = token("ssh");
    // busybox has no ssh applet: the exec itself is what the rule sees.
    let ctr = Container::create(&tok, &[], "ssh -V 2>/dev/null; true");
    let (alerts, scope) = live(
        &builtin(),
        |s| {
            ctr.start_attached(s);
        },
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "SSH client tool run in container",
        &[],
        &[("proc.name", "ssh"), ("container.id", &ctr.id[..12])],
    );
}

#[test]
#[ignore = "needs root"]
fn user_or_password_management_tool_run() {
    require_live("user_or_password_management_tool_run");
    let tok = token("pwck");
    let (alerts, scope) = live(
        &builtin(),
        |s| {
            // Read-only check of the account files.
            s.sh("pwck -r >/dev/null 2>&1; true");
        },
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "User or password management tool run",
        &[],
        &[("proc.name", "pwck"), ("user.name", "root")],
    );
}

// ---------------------------------------------------------------------------------------------
// Covering tracks
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs root"]
fn log_file_cleared_or_deleted() {
    require_live("log_file_cleared_or_deleted");
    let tok = token("log");
    let log = PathBuf::from("/var/log").join(format!("{tok}.log"));
    let _cleanup = RemoveOnDrop(log.clone());
    std::fs::write(&log, "evidence\n").unwrap();
    let path = log.to_string_lossy().to_string();
    let (alerts, scope) = live(
        &builtin(),
        |s| {
            ok(
                &s.sh(&format!(": > {path}; rm -f {path}; true")),
                "truncate and rm",
            )
        },
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "Log file cleared or deleted",
        &[],
        &[("proc.name", "sh"), ("fd.name", &path)],
    );
    assert!(
        alerts.iter().any(|a| scope.owns(a)
            && a.rule == "Log file cleared or deleted"
            && a.field("proc.name").as_deref() == Some("rm")),
        "deleting the log raised no alert"
    );
}

#[test]
#[ignore = "needs root"]
fn secure_deletion_tool_run() {
    require_live("secure_deletion_tool_run");
    let tok = token("shred");
    let dir = Scratch::new(&tok);
    let file = dir.file("secret");
    std::fs::write(&file, "secret").unwrap();
    let path = file.to_string_lossy().to_string();
    let (alerts, scope) = live(
        &builtin(),
        |s| ok(&s.sh(&format!("shred -u {path}; true")), "shred"),
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "Secure deletion tool run",
        &[],
        &[
            ("proc.name", "shred"),
            ("proc.cmdline", &format!("~{path}")),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Execution tricks, kernel, other processes
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs root"]
fn fileless_execution_from_memory() {
    require_live("fileless_execution_from_memory");
    let tok = token("memfd");
    let script = "import os, sys\n\
                  fd = os.memfd_create('saker-payload')\n\
                  os.write(fd, open('/bin/true', 'rb').read())\n\
                  os.execv('/proc/self/fd/%d' % fd, ['payload', sys.argv[1]])\n";
    let (alerts, scope) = live(
        &builtin(),
        |s| {
            ok(
                &s.run(Command::new(python()).args(["-c", script, &tok])),
                "memfd exec",
            )
        },
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "Fileless execution from memory",
        &[],
        &[("proc.name", "3"), ("proc.cmdline", &format!("~{tok}"))],
    );
}

#[test]
#[ignore = "needs root"]
fn program_run_from_dev_shm() {
    require_live("program_run_from_dev_shm");
    let tok = token("shm");
    let exe = PathBuf::from("/dev/shm").join(&tok);
    let _cleanup = RemoveOnDrop(exe.clone());
    std::fs::copy("/bin/true", &exe).unwrap();
    let path = exe.to_string_lossy().to_string();
    let (alerts, scope) = live(
        &builtin(),
        |s| ok(&s.run(Command::new(&exe).arg(&tok)), "exec from /dev/shm"),
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "Program run from /dev/shm",
        &[],
        &[("proc.exepath", &path)],
    );
}

#[test]
#[ignore = "needs root"]
fn kernel_module_load_attempted() {
    require_live("kernel_module_load_attempted");
    let tok = token("kmod");
    // finit_module on /dev/null: refused (or ENOSYS without module support), but attempted.
    let script = "import ctypes, os\n\
                  libc = ctypes.CDLL(None, use_errno=True)\n\
                  fd = os.open('/dev/null', os.O_RDONLY)\n\
                  libc.syscall(313, fd, b'', 0)\n";
    let (alerts, scope) = live(
        &builtin(),
        |s| {
            ok(
                &s.run(Command::new(python()).args(["-c", script, &tok])),
                "finit_module",
            )
        },
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "Kernel module load attempted",
        &[],
        &[("evt.type", "finit_module"), ("proc.name", "~python3")],
    );
}

#[test]
#[ignore = "needs root"]
fn process_attached_with_ptrace() {
    require_live("process_attached_with_ptrace");
    let tok = token("ptrace");
    let script = "import ctypes, os, signal, time\n\
                  libc = ctypes.CDLL(None, use_errno=True)\n\
                  libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]\n\
                  pid = os.fork()\n\
                  if pid == 0:\n    time.sleep(10)\n    os._exit(0)\n\
                  time.sleep(0.2)\n\
                  assert libc.ptrace(16, pid, None, None) == 0, ctypes.get_errno()\n\
                  os.waitpid(pid, 0)\n\
                  libc.ptrace(17, pid, None, None)\n\
                  os.kill(pid, signal.SIGKILL)\n\
                  os.waitpid(pid, 0)\n";
    let (alerts, scope) = live(
        &builtin(),
        |s| {
            ok(
                &s.run(Command::new(python()).args(["-c", script, &tok])),
                "ptrace attach",
            )
        },
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        "Process attached to another with ptrace",
        &[],
        &[
            ("evt.arg.request", "PTRACE_ATTACH"),
            ("proc.name", "~python3"),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// The EKS tutorial's custom rules, loaded after the built-in ones
// ---------------------------------------------------------------------------------------------

fn custom_case(program: &str, path: &str, rule: &str) {
    let tok = token(program);
    // Full path: busybox's shell runs some applets (whoami) in-process unless given a path.
    let ctr = Container::create(&tok, &[], &format!("{path} >/dev/null 2>&1; true"));
    let rules = vec![builtin_rules(), custom_rules_example()];
    let (alerts, scope) = live(
        &rules,
        |s| {
            ctr.start_attached(s);
        },
        Scope::with_token(&tok),
    );
    assert_fired(
        &alerts,
        &scope,
        rule,
        &[],
        &[("proc.name", program), ("container.id", &ctr.id[..12])],
    );
}

#[test]
#[ignore = "needs root"]
fn custom_rule_whoami_in_container() {
    require_live("custom_rule_whoami_in_container");
    custom_case("whoami", "/bin/whoami", "whoami run in a container");
}

#[test]
#[ignore = "needs root"]
fn custom_rule_locate_in_container() {
    require_live("custom_rule_locate_in_container");
    custom_case("locate", "/usr/bin/locate", "locate run in a container");
}

// ---------------------------------------------------------------------------------------------
// Bookkeeping (no root needed): every rule is documented and has a live test above.
// ---------------------------------------------------------------------------------------------

fn rule_names(yaml: &str) -> Vec<String> {
    yaml.lines()
        .filter_map(|l| l.strip_prefix("- rule: "))
        .map(|n| n.trim().to_string())
        .collect()
}

#[test]
fn every_rule_is_documented_and_live_tested() {
    let rules = std::fs::read_to_string(builtin_rules()).expect("read built-in rules");
    let custom = std::fs::read_to_string(custom_rules_example()).expect("read example rules");
    let docs =
        std::fs::read_to_string(common::repo_root().join("docs/rules.md")).expect("read docs");
    let tests = include_str!("live_rules.rs");
    let names: Vec<String> = rule_names(&rules)
        .into_iter()
        .chain(rule_names(&custom))
        .collect();
    assert_eq!(
        names.len(),
        34,
        "rule count changed: update docs/rules.md and the live tests"
    );
    for name in &names {
        assert!(
            docs.contains(&format!("| {name} |")),
            "docs/rules.md does not list '{name}'"
        );
        assert!(
            tests.contains(&format!("\"{name}\"")),
            "no live test asserts '{name}'"
        );
    }
}
