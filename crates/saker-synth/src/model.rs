//! The fixture file format (docs/testing-rules.md), as serde types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_norway::Value;

/// One fixture file: an optional default rule and its cases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureFile {
    /// The rule the cases are about: `expect: fire` / `expect: no_fire` refer to it.
    #[serde(default)]
    pub rule: Option<String>,
    pub cases: Vec<Case>,
}

/// One test case: an input and what must (not) fire on it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// Processes that exist before the first event, parents before children.
    #[serde(default)]
    pub processes: Vec<ProcSpec>,
    /// Containers by a short key that processes refer to.
    #[serde(default)]
    pub containers: BTreeMap<String, ContainerSpec>,
    /// Users besides root (users named by processes are created when missing).
    #[serde(default)]
    pub users: Vec<UserSpec>,
    /// Syscalls, in order: each a one-key map `{<syscall>: {<param>: <value>, ...}}`.
    #[serde(default)]
    pub events: Vec<Value>,
    /// A capture (or a slice of one) instead of a scenario.
    #[serde(default)]
    pub scap: Option<ScapSpec>,
    /// Kubernetes audit events (JSON lines) for the k8s_audit source.
    #[serde(default)]
    pub k8s_audit: Option<AuditInput>,
    pub expect: Expect,
}

/// The input of a case, once checked.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    Scenario,
    Scap(&'a ScapSpec),
    Audit(&'a AuditInput),
}

impl Case {
    /// Which input form the case uses; the forms exclude each other.
    pub fn input(&self) -> Result<Input<'_>, String> {
        let scenario = !self.events.is_empty() || !self.processes.is_empty();
        match (scenario, &self.scap, &self.k8s_audit) {
            (false, None, None) => {
                Err("no input: give `events:` (with `processes:`), `scap:` or `k8s_audit:`".into())
            }
            (true, None, None) => Ok(Input::Scenario),
            (false, Some(s), None) => Ok(Input::Scap(s)),
            (false, None, Some(a)) => Ok(Input::Audit(a)),
            _ => Err("`events`/`processes`, `scap` and `k8s_audit` are exclusive: use one".into()),
        }
    }
}

/// One process of the tree. Every key but `name` has a default (docs/testing-rules.md).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProcSpec {
    /// The comm name (`proc.name`); also how other entries refer to this process.
    pub name: String,
    pub pid: Option<i64>,
    /// Thread id when not the main thread (default: `pid`).
    pub tid: Option<i64>,
    /// pid inside the process's pid namespace (default: `pid`; 1 for a container's init).
    pub vpid: Option<i64>,
    /// The parent, by name (default: the host's init, pid 1).
    pub parent: Option<String>,
    /// `argv[0]` (`proc.exe`; default: `name`).
    pub exe: Option<String>,
    /// The executable's path (`proc.exepath`; default: `/usr/bin/<name>`).
    pub exepath: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    pub cwd: Option<String>,
    /// User name (`user.name`); created with a fresh uid when not in `users`.
    pub user: Option<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Login uid (`user.loginuid`; default: unset, -1).
    pub loginuid: Option<i64>,
    /// Terminal: a device number, or `true` for /dev/pts/0 (34816). Default: none (0).
    pub tty: Option<Value>,
    /// Key of the container the process runs in (default: the host).
    pub container: Option<String>,
    /// The executable was loaded from a memfd (`proc.is_exe_from_memfd`).
    #[serde(default)]
    pub exe_from_memfd: bool,
    /// The executable is writable by the process's user (`proc.is_exe_writable`).
    #[serde(default)]
    pub exe_writable: bool,
    /// The executable lives in an overlay upper layer (`proc.is_exe_upper_layer`).
    #[serde(default)]
    pub exe_upper_layer: bool,
    /// Session id and process group (default: the process's own pid).
    pub sid: Option<i64>,
    pub pgid: Option<i64>,
    /// Capabilities, as hex or decimal masks (default: full for root, none otherwise).
    pub cap_effective: Option<u64>,
    pub cap_permitted: Option<u64>,
}

/// A container's metadata (what the runtime would report).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSpec {
    /// Full 64-hex id (default: derived from the key).
    pub id: Option<String>,
    /// Name (default: the key).
    pub name: Option<String>,
    /// Image reference, e.g. `docker.io/library/nginx:1.25`.
    pub image: Option<String>,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub host_pid: bool,
    #[serde(default)]
    pub host_network: bool,
    /// `docker`, `containerd`, `cri-o`, `podman` (default: docker, containerd with a pod).
    pub runtime: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Mounts as `source:dest[:ro]`.
    #[serde(default)]
    pub mounts: Vec<String>,
    /// The Kubernetes pod it belongs to.
    pub pod: Option<PodSpec>,
    pub ip: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodSpec {
    pub name: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub uid: Option<String>,
}

fn default_namespace() -> String {
    "default".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    pub name: String,
    pub uid: u32,
    pub gid: Option<u32>,
    pub home: Option<String>,
    pub shell: Option<String>,
}

/// A capture file, or the events `from..=to` (by `evt.num`) of one. Earlier events still
/// update state; only alerts of events in the range count.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScapSpec {
    /// Path, relative to the fixture file (or `../shared/...` from the repository).
    pub file: String,
    pub from: Option<u64>,
    pub to: Option<u64>,
}

/// Kubernetes audit events for the k8s_audit source: reserved so fixtures can be written
/// once that source exists; `saker test` refuses them with a clear message until then.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditInput {
    /// Audit events, one JSON object each (as the webhook receives them).
    #[serde(default)]
    pub events: Vec<Value>,
    /// Or a file of JSON lines, relative to the fixture file.
    pub file: Option<String>,
}

/// What must fire: `fire` / `no_fire` (about the file's `rule`), or lists.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Expect {
    Short(String),
    Full {
        #[serde(default)]
        fire: Vec<FireSpec>,
        #[serde(default)]
        not_fire: Vec<String>,
    },
}

/// A rule that must fire: a name, or a name with a count and output checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FireSpec {
    Name(String),
    Full(ExpectFire),
}

/// A rule that must fire, resolved.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectFire {
    pub rule: String,
    /// Exact number of alerts (default: at least one).
    pub count: Option<u64>,
    /// Output fields (`output_fields` of the JSON alert) every alert of the rule must have.
    #[serde(default)]
    pub output_fields: BTreeMap<String, Value>,
    /// Text the output line must contain.
    pub output_contains: Option<String>,
}

impl Expect {
    /// The rules that must fire and those that must not, with the file's `rule` for shorthands.
    pub fn resolve(&self, rule: Option<&str>) -> Result<(Vec<ExpectFire>, Vec<String>), String> {
        let need_rule = || {
            rule.map(str::to_string)
                .ok_or_else(|| "`expect: fire`/`no_fire` needs a top-level `rule:`".to_string())
        };
        match self {
            Expect::Short(s) => match s.as_str() {
                "fire" => Ok((
                    vec![ExpectFire {
                        rule: need_rule()?,
                        ..Default::default()
                    }],
                    Vec::new(),
                )),
                "no_fire" | "not_fire" => Ok((Vec::new(), vec![need_rule()?])),
                other => Err(format!(
                    "unknown expectation '{other}': use `fire`, `no_fire`, or a map with `fire:`/`not_fire:` lists"
                )),
            },
            Expect::Full { fire, not_fire } => {
                if fire.is_empty() && not_fire.is_empty() {
                    return Err("`expect` names no rule: give `fire:` or `not_fire:`".into());
                }
                let fire = fire
                    .iter()
                    .map(|f| match f {
                        FireSpec::Name(n) => ExpectFire {
                            rule: n.clone(),
                            ..Default::default()
                        },
                        FireSpec::Full(e) => e.clone(),
                    })
                    .collect::<Vec<_>>();
                for f in &fire {
                    if not_fire.contains(&f.rule) {
                        return Err(format!(
                            "rule '{}' is both in `fire` and `not_fire`",
                            f.rule
                        ));
                    }
                }
                Ok((fire, not_fire.clone()))
            }
        }
    }
}
