//! User and group tables (from capture user lists or the host's /etc files).

use std::path::Path;

use rustc_hash::FxHashMap;
use saker_event::{GroupInfo, UserInfo};

use crate::Error;

#[derive(Debug, Default, Clone)]
pub struct Users {
    pub users: FxHashMap<u32, UserInfo>,
    pub groups: FxHashMap<u32, GroupInfo>,
}

impl Users {
    pub fn add_user(&mut self, u: UserInfo) {
        self.users.insert(u.uid, u);
    }
    pub fn add_group(&mut self, g: GroupInfo) {
        self.groups.insert(g.gid, g);
    }

    /// User name as `user.name` shows it: `root` for uid 0 if unknown, else `<NA>`.
    pub fn user_name(&self, uid: u32) -> &[u8] {
        match self.users.get(&uid) {
            Some(u) => &u.name,
            None if uid == 0 => b"root",
            None => b"<NA>",
        }
    }

    pub fn group_name(&self, gid: u32) -> &[u8] {
        match self.groups.get(&gid) {
            Some(g) => &g.name,
            None if gid == 0 => b"root",
            None => b"<NA>",
        }
    }
}

fn parse_id(s: &[u8]) -> Option<u32> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Parses passwd-format text (`name:x:uid:gid:gecos:home:shell`); bad lines are skipped.
pub fn parse_passwd(text: &[u8]) -> Vec<UserInfo> {
    text.split(|&c| c == b'\n')
        .filter_map(|line| {
            let f: Vec<&[u8]> = line.split(|&c| c == b':').collect();
            if f.len() < 7 || line.starts_with(b"#") {
                return None;
            }
            Some(UserInfo {
                uid: parse_id(f[2])?,
                gid: parse_id(f[3])?,
                name: f[0].to_vec(),
                homedir: f[5].to_vec(),
                shell: f[6].to_vec(),
            })
        })
        .collect()
}

/// Parses group-format text (`name:x:gid:members`).
pub fn parse_group(text: &[u8]) -> Vec<GroupInfo> {
    text.split(|&c| c == b'\n')
        .filter_map(|line| {
            let f: Vec<&[u8]> = line.split(|&c| c == b':').collect();
            if f.len() < 3 || line.starts_with(b"#") {
                return None;
            }
            Some(GroupInfo {
                gid: parse_id(f[2])?,
                name: f[0].to_vec(),
            })
        })
        .collect()
}

/// Reads `<root>/etc/passwd` and `<root>/etc/group` (live mode).
pub fn load_host_users(root: &Path) -> Result<(Vec<UserInfo>, Vec<GroupInfo>), Error> {
    let read = |rel: &str| {
        let p = root.join(rel);
        std::fs::read(&p).map_err(|source| Error::Read { path: p, source })
    };
    Ok((
        parse_passwd(&read("etc/passwd")?),
        parse_group(&read("etc/group")?),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd_and_group() {
        let u = parse_passwd(
            b"root:x:0:0:root:/root:/bin/bash\n# c\nbad\nbob:x:1000:100::/home/bob:/bin/sh\n",
        );
        assert_eq!(u.len(), 2);
        assert_eq!(u[1].name, b"bob");
        assert_eq!(u[1].uid, 1000);
        assert_eq!(u[1].homedir, b"/home/bob");
        let g = parse_group(b"root:x:0:\nstaff:x:50:bob\n");
        assert_eq!(g[1].gid, 50);
        let mut t = Users::default();
        u.into_iter().for_each(|x| t.add_user(x));
        assert_eq!(t.user_name(1000), b"bob");
        assert_eq!(t.user_name(7), b"<NA>");
        assert_eq!(Users::default().user_name(0), b"root");
    }

    #[test]
    fn host_users_load_and_error_names_path() {
        let (u, g) = load_host_users(Path::new("/")).unwrap();
        assert!(u.iter().any(|x| x.uid == 0 && x.name == b"root"));
        assert!(g.iter().any(|x| x.gid == 0));
        let e = load_host_users(Path::new("/nonexistent-root")).unwrap_err();
        assert!(
            e.to_string().contains("/nonexistent-root/etc/passwd"),
            "{e}"
        );
    }
}
