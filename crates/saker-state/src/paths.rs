//! Path resolution and container ids from cgroup paths.

use crate::types::NulList;

/// Joins `path` onto `base` (when relative) and normalises `.`, `..` and
/// repeated slashes. `base` is a directory; a missing trailing `/` is fine.
pub fn resolve(base: &[u8], path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(base.len() + path.len() + 1);
    let push_parts = |src: &[u8], out: &mut Vec<u8>| {
        for comp in src.split(|&c| c == b'/') {
            match comp {
                b"" | b"." => {}
                b".." => {
                    while let Some(c) = out.pop() {
                        if c == b'/' {
                            break;
                        }
                    }
                }
                c => {
                    out.push(b'/');
                    out.extend_from_slice(c);
                }
            }
        }
    };
    if !path.starts_with(b"/") {
        push_parts(base, &mut out);
    }
    push_parts(path, &mut out);
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// True if `path` needs no resolution (absolute and already normal).
pub fn is_normal_abs(path: &[u8]) -> bool {
    if !path.starts_with(b"/") {
        return false;
    }
    // Every component follows a slash: look only after each one (one pass; every open's path
    // goes through here, and it is short: a byte loop beats a vectorised search per slash).
    for (i, _) in path.iter().enumerate().filter(|(_, &c)| c == b'/') {
        match &path[i + 1..] {
            // A trailing slash (the root alone is normal).
            [] => return i == 0,
            // An empty component.
            [b'/', ..] => return false,
            // `.` or `..` as a whole component.
            [b'.'] | [b'.', b'/', ..] | [b'.', b'.'] | [b'.', b'.', b'/', ..] => return false,
            _ => {}
        }
    }
    true
}

/// Directory part of a path as `fd.directory` shows it (`/` for top-level files).
pub fn dirname(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&c| c == b'/') {
        Some(0) => b"/",
        Some(i) => &path[..i],
        None => path,
    }
}

/// Last path component.
pub fn basename(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&c| c == b'/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

fn is_hex64(s: &[u8]) -> bool {
    s.len() == 64 && s.iter().all(|c| c.is_ascii_hexdigit())
}

/// Container runtime recognised from a cgroup layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Docker,
    Cri,
    Containerd,
    Podman,
}

/// runc-style layouts: text between the last `prefix` and the following `suffix`
/// (end of string when empty) must be 64 hex characters.
const LAYOUTS: &[(Runtime, &[u8], &[u8])] = &[
    (Runtime::Podman, b"/libpod-payload-", b".scope"),
    (Runtime::Podman, b"/libpod-", b".scope/container"),
    (Runtime::Podman, b"/libpod-", b".scope"),
    (Runtime::Podman, b"/libpod-", b""),
    (Runtime::Docker, b"/docker-", b".scope"),
    (Runtime::Cri, b"/cri-containerd-", b".scope"),
    (Runtime::Cri, b"/crio-", b".scope"),
    (Runtime::Cri, b"/crio-", b""),
    (Runtime::Cri, b":cri-containerd:", b""),
    (Runtime::Cri, b"/nerdctl-", b".scope"),
    (Runtime::Docker, b"/", b""),
];

/// Last occurrence of `needle`: runs for each layout on every cgroup line of every clone
/// and execve (memchr's searcher is vectorised).
fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::rfind(hay, needle)
}

/// Full container id and runtime for one cgroup path, if it names a container.
pub fn container_from_cgroup(path: &[u8]) -> Option<(&[u8], Runtime)> {
    for &(rt, prefix, suffix) in LAYOUTS {
        let Some(p) = rfind(path, prefix) else {
            continue;
        };
        let start = p + prefix.len();
        let end = if suffix.is_empty() {
            path.len()
        } else {
            match rfind(&path[start..], suffix) {
                Some(s) => start + s,
                None => continue,
            }
        };
        if end >= start && is_hex64(&path[start..end]) {
            let rt = if rt == Runtime::Docker && path.starts_with(b"/kubepods") {
                Runtime::Cri
            } else {
                rt
            };
            return Some((&path[start..end], rt));
        }
    }
    // containerd outside Kubernetes: `/<namespace>/<id>` with a short id.
    let mut it = path.rsplitn(3, |&c| c == b'/');
    let (id, ns, head) = (it.next()?, it.next()?, it.next()?);
    let ns_ok = !ns.is_empty()
        && ns[0].is_ascii_alphanumeric()
        && ns
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    let id_ok = !id.is_empty()
        && id.len() <= 64
        && !id.ends_with(b".service")
        && !id.ends_with(b".slice")
        && !id.ends_with(b".scope")
        && id
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'));
    if head.is_empty() && ns_ok && id_ok && id.len() >= 12 {
        return Some((id, Runtime::Containerd));
    }
    None
}

/// Container id of a thread from its `subsys=path` cgroup entries (empty = host).
/// Every clone and execve asks, nearly always with the previous caller's list (a
/// process's children share its cgroups), so the last answer is kept.
pub fn container_id(cgroups: &NulList) -> Vec<u8> {
    thread_local! {
        static LAST: std::cell::RefCell<(NulList, Vec<u8>)> = Default::default();
    }
    LAST.with_borrow_mut(|(list, id)| {
        if list != cgroups {
            *id = container_id_of(cgroups);
            list.clone_from(cgroups);
        }
        id.clone()
    })
}

fn container_id_of(cgroups: &NulList) -> Vec<u8> {
    for cg in cgroups {
        let path = match cg.iter().position(|&c| c == b'=') {
            Some(i) => &cg[i + 1..],
            None => cg,
        };
        if let Some((id, _)) = container_from_cgroup(path) {
            return id.to_vec();
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_relative_and_dots() {
        assert_eq!(resolve(b"/home/u/", b"a.txt"), b"/home/u/a.txt");
        assert_eq!(resolve(b"/home/u", b"../x/./y"), b"/home/x/y");
        assert_eq!(resolve(b"/tmp/", b"/etc//passwd"), b"/etc/passwd");
        assert_eq!(resolve(b"/", b".."), b"/");
        assert_eq!(resolve(b"/a/", b""), b"/a");
        assert!(is_normal_abs(b"/etc/passwd"));
        for (p, normal) in [
            ("/", true),
            ("/a/.b/..c/c..", true),
            ("//", false),
            ("/a//b", false),
            ("/a/", false),
            ("/a/.", false),
            ("/a/..", false),
            ("/./a", false),
            ("/a/../b", false),
            ("/.", false),
            ("", false),
        ] {
            assert_eq!(is_normal_abs(p.as_bytes()), normal, "{p}");
        }
        assert!(!is_normal_abs(b"etc/passwd"));
        assert!(!is_normal_abs(b"/etc/../passwd"));
        assert_eq!(dirname(b"/etc/passwd"), b"/etc");
        assert_eq!(dirname(b"/passwd"), b"/");
        assert_eq!(basename(b"/etc/passwd"), b"passwd");
    }

    #[test]
    fn container_ids_from_cgroups() {
        let id = "3f1e2d4c5b6a79881726354453627180a9b8c7d6e5f40312a1b2c3d4e5f60718";
        let cases = [
            (format!("/docker/{id}"), Runtime::Docker),
            (format!("/system.slice/docker-{id}.scope"), Runtime::Docker),
            (
                format!("/kubepods/burstable/pod1234-5678/{id}"),
                Runtime::Cri,
            ),
            (
                format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod12.slice/cri-containerd-{id}.scope"),
                Runtime::Cri,
            ),
            (format!("/kubepods.slice/x.slice/crio-{id}.scope"), Runtime::Cri),
            (format!("/machine.slice/libpod-{id}.scope"), Runtime::Podman),
            (format!("/machine.slice/libpod-{id}.scope/container"), Runtime::Podman),
        ];
        for (path, rt) in cases {
            let (got, grt) = container_from_cgroup(path.as_bytes()).unwrap();
            assert_eq!(got, id.as_bytes(), "{path}");
            assert_eq!(grt, rt, "{path}");
        }
        assert_eq!(
            container_from_cgroup(b"/default/myctr123456789"),
            Some((&b"myctr123456789"[..], Runtime::Containerd))
        );
        assert_eq!(
            container_from_cgroup(b"/user.slice/user-1000.slice/session-2.scope"),
            None
        );
        assert_eq!(container_from_cgroup(b"/"), None);
        assert_eq!(container_from_cgroup(b"/init.scope"), None);
        assert_eq!(
            container_id(&NulList::from_iter([
                b"cpu=/".to_vec(),
                format!("memory=/docker/{id}").into_bytes()
            ])),
            id.as_bytes()
        );
        assert!(container_id(&NulList::from_iter(["cpu=/user.slice"])).is_empty());
    }
}
