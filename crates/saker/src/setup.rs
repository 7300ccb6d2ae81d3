//! What every command sets up before events flow: config and rules inputs, the probe's
//! syscall selection, seeded state, container runtimes, signals. Commands compose these; none
//! of them imports another command.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use saker_config::Config;
use saker_outputs::{Metrics, Outputs};
use saker_probe::ProbeConfig;
use saker_state::State;

/// Where config and rules come from and which rules to keep: what every command that loads
/// rules takes (the command line's `RulesOpts` converts into it).
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Config file (None: the default location when it exists).
    pub config: Option<PathBuf>,
    /// Rules files or directories; non-empty replaces the configured rules files.
    pub rules: Vec<PathBuf>,
    /// `KEY=VALUE` config overrides.
    pub options: Vec<String>,
    pub enable_rule: Vec<String>,
    pub disable_rule: Vec<String>,
    pub disable_tag: Vec<String>,
    pub enable_tag: Vec<String>,
}

/// The outputs, their metrics and the web server (health, metrics), started before events flow.
pub struct Services {
    pub outputs: Outputs,
    /// `/healthz` answers OK while this is set.
    pub health: Arc<AtomicBool>,
    _web: Option<saker_outputs::web::WebServer>,
}

impl Services {
    pub fn start(cfg: &Config, metrics: Arc<Metrics>) -> anyhow::Result<Services> {
        let outputs = crate::outputs_cfg::start(cfg, metrics.clone())?;
        let health = Arc::new(AtomicBool::new(false));
        let web = if cfg.webserver.enabled {
            let addr = crate::outputs_cfg::web_addr(cfg)?;
            let wo = crate::outputs_cfg::web_options(cfg);
            let web =
                saker_outputs::web::WebServer::start(addr, metrics.clone(), health.clone(), wo)?;
            let scheme = if cfg.webserver.ssl_enabled {
                "https"
            } else {
                "http"
            };
            tracing::info!("web server on {scheme}://{}", web.addr());
            Some(web)
        } else {
            None
        };
        Ok(Services {
            outputs,
            health,
            _web: web,
        })
    }

    /// Stops the outputs (the web server stops when dropped); returns their delivery report.
    pub fn shutdown(self, deadline: std::time::Duration) -> saker_outputs::ShutdownReport {
        self.outputs.shutdown(deadline)
    }
}

/// Flags set by signal handlers.
pub struct Signals {
    pub stop: Arc<AtomicBool>,
    pub reload: Arc<AtomicBool>,
    /// SIGUSR1: reopen output files (log rotation), as Falco does.
    pub reopen: Arc<AtomicBool>,
}

impl Signals {
    pub fn install() -> anyhow::Result<Signals> {
        let stop = Arc::new(AtomicBool::new(false));
        let reload = Arc::new(AtomicBool::new(false));
        for s in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(s, stop.clone())?;
        }
        signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone())?;
        let reopen = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGUSR1, reopen.clone())?;
        Ok(Signals {
            stop,
            reload,
            reopen,
        })
    }
}

pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Loads the config, applies its logging settings, then logs its warnings.
pub fn load_config(opts: &Inputs) -> anyhow::Result<Config> {
    Ok(load_config_full(opts)?.config)
}

pub fn load_config_full(opts: &Inputs) -> anyhow::Result<saker_config::Loaded> {
    let loaded = saker_config::load(opts.config.as_deref(), &opts.options)?;
    crate::logging::configure(&loaded.config);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    Ok(loaded)
}

/// Syscalls Saker adds for `base_syscalls.repair` (instead of the whole state set): process
/// lifecycle and credentials always, fd bookkeeping when a rule looks at fds.
const REPAIR_BASE: &[&str] = &[
    "clone",
    "clone3",
    "fork",
    "vfork",
    "execve",
    "execveat",
    "setuid",
    "setgid",
    "setresuid",
    "setresgid",
    "setreuid",
    "setregid",
    "capset",
    "setsid",
];
const REPAIR_FD: &[&str] = &[
    "close",
    "dup",
    "dup2",
    "dup3",
    "chdir",
    "fchdir",
    "open",
    "openat",
    "openat2",
    "creat",
    "socket",
    "connect",
    "accept",
    "accept4",
    "bind",
    "pipe",
    "pipe2",
    "memfd_create",
];
/// Syscalls whose events refer to an fd or a path (then `repair` adds [`REPAIR_FD`]).
const FD_USERS: &[&str] = &[
    "open",
    "openat",
    "openat2",
    "creat",
    "close",
    "connect",
    "accept",
    "accept4",
    "bind",
    "listen",
    "sendto",
    "sendmsg",
    "dup",
    "dup2",
    "dup3",
    "fchmod",
    "fchown",
    "fchdir",
    "socket",
    "pipe",
    "pipe2",
    "memfd_create",
];

/// The probe selection, as Falco selects its syscalls: what the rules need ∪ the state set,
/// with `base_syscalls` (custom_set replaces the state set, `!name` removes, repair adds only
/// what the rules' state needs, all takes every syscall the probe has), and the ring sizes
/// from `engine.modern_ebpf` presets.
pub fn probe_config(
    rules: &saker_rules::ruleset::Ruleset,
    cfg: &Config,
) -> anyhow::Result<ProbeConfig> {
    let bs = &cfg.base_syscalls;
    let all: Vec<&str> = saker_probe::SYSCALLS.iter().map(|d| d.name).collect();
    let rule_names: std::collections::BTreeSet<String> = match rules.needed_event_types() {
        Some(names) => names,
        // A rule without an event-type restriction needs everything the probe can report.
        None => all.iter().map(|s| s.to_string()).collect(),
    };
    let (pos, neg): (Vec<&str>, Vec<&str>) = bs
        .custom_set
        .iter()
        .map(String::as_str)
        .partition(|n| !n.starts_with('!'));
    let neg: Vec<&str> = neg.iter().map(|n| &n[1..]).collect();
    let known = |n: &&str| saker_event::table::is_known_name(n);
    let bad: Vec<&str> = pos
        .iter()
        .chain(&neg)
        .copied()
        .filter(|n| !known(n))
        .collect();
    if !bad.is_empty() {
        tracing::warn!(
            "Invalid syscall names in base_syscalls.custom_set: {}",
            bad.join(", ")
        );
    }
    let mut names: std::collections::BTreeSet<String> = rule_names.clone();
    if bs.all {
        names.extend(all.iter().map(|s| s.to_string()));
    }
    if !pos.is_empty() {
        names.extend(pos.iter().map(|s| s.to_string()));
    } else if bs.repair {
        names.extend(REPAIR_BASE.iter().map(|s| s.to_string()));
        if rule_names.iter().any(|n| FD_USERS.contains(&n.as_str())) {
            names.extend(REPAIR_FD.iter().map(|s| s.to_string()));
        }
    } else {
        names.extend(saker_probe::STATE_SET.iter().map(|s| s.to_string()));
    }
    for n in &neg {
        names.remove(*n);
        if *n == "umount" {
            names.remove("umount2");
        }
    }
    let mut pc = ProbeConfig::for_event_types(names);
    // The state set is already in `names` (or deliberately replaced).
    pc.state_set = false;
    pc.generic_fallback = cfg.engine.modern_ebpf.generic_fallback;
    let me = &cfg.engine.modern_ebpf;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let (main, state) =
        saker_config::buffer_sizes(me.buf_size_preset, me.cpus_for_each_buffer, cpus);
    pc.main_ring_bytes = main;
    pc.state_ring_bytes = state;
    pc.attach = attach_mode(cfg)?;
    if cfg.engine.modern_ebpf.prefilter {
        pc.prefilter = Some(kernel_prefilter(
            &saker_rules::prefilter::Plan::for_ruleset(rules),
        ));
    }
    Ok(pc)
}

/// The probe's form of a prefilter plan; a plan that passes every open
/// becomes "every class admits any path" so a reload can narrow it again.
pub fn kernel_prefilter(plan: &saker_rules::prefilter::Plan) -> saker_probe::Prefilter {
    use saker_rules::prefilter::PathPat;
    if !plan.open.enabled {
        return saker_probe::Prefilter {
            any_mask: 0xf,
            suppress_closes: false,
            paths: vec![],
        };
    }
    saker_probe::Prefilter {
        any_mask: plan.open.any_mask,
        suppress_closes: plan.suppress_closes,
        paths: plan
            .open
            .entries
            .iter()
            .map(|(p, m)| match p {
                PathPat::Exact(b) => (b.clone(), true, *m),
                PathPat::Prefix(b) => (b.clone(), false, *m),
            })
            .collect(),
    }
}

/// `engine.modern_ebpf.attach`: auto, fexit, tracepoint or generic.
pub fn attach_mode(cfg: &Config) -> anyhow::Result<saker_probe::AttachMode> {
    cfg.engine
        .modern_ebpf
        .attach
        .parse()
        .map_err(|e| anyhow::anyhow!("engine.modern_ebpf.attach: {e}"))
}

/// Seeds state from /proc and the host's users, so that processes started
/// before Saker have ancestry and open fds.
pub fn seeded_state(cfg: &Config) -> State {
    // `scan` takes the host's root directory: it reads `proc/` and `etc/passwd` below it.
    let root = host_root();
    let mut state = State::new(saker_state::Config {
        proc_lookup: true,
        proc_root: root.join("proc"),
        max_threads: cfg.falco_libs.thread_table_size,
        ..Default::default()
    });
    state.seed(&saker_probe::procfs::scan(&root));
    state
}

/// Runtime sockets from `container_engines` (docker and podman share the Docker-compatible
/// API; containerd and cri are gRPC); the `SAKER_*_SOCKETS` environment variables win.
pub fn watcher_config(cfg: &Config) -> saker_container::WatcherConfig {
    let mut wc = saker_container::WatcherConfig::default();
    let configured: Vec<std::path::PathBuf> = ["docker", "podman"]
        .iter()
        .filter_map(|e| cfg.container_engines.get(e))
        .filter(|e| e.enabled)
        .flat_map(|e| e.sockets.iter().cloned())
        .collect();
    if !configured.is_empty() {
        wc.docker_sockets = configured;
    }
    for (key, list) in [
        ("containerd", &mut wc.containerd_sockets),
        ("cri", &mut wc.cri_sockets),
    ] {
        if let Some(e) = cfg.container_engines.get(key) {
            *list = if e.enabled {
                e.sockets.clone()
            } else {
                Vec::new()
            };
        }
    }
    wc.apply_env();
    wc
}

/// Falco's `HOST_ROOT`: where the host filesystem is mounted when Saker runs
/// in a container (the Helm chart mounts it at /host).
pub fn host_root() -> std::path::PathBuf {
    std::env::var_os("HOST_ROOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe_config(r: &saker_rules::ruleset::Ruleset, c: &Config) -> ProbeConfig {
        super::probe_config(r, c).unwrap()
    }

    fn ruleset(cond: &str) -> saker_rules::ruleset::Ruleset {
        let mut eng = saker_rules::engine::Engine::new(Default::default());
        let r = eng.load_text(
            "t.yaml",
            &format!("- rule: R\n  desc: d\n  condition: {cond}\n  output: o\n  priority: INFO\n"),
        );
        assert!(r.successful(), "{}", r.to_text());
        eng.ruleset()
    }

    fn cfg(yaml: &str) -> Config {
        saker_config::from_yaml_str(yaml, "t", &[]).unwrap().config
    }

    fn names(pc: &ProbeConfig) -> Vec<&'static str> {
        pc.selected().0.iter().map(|d| d.name).collect()
    }

    #[test]
    fn base_syscalls_select_like_falco() {
        let rs = ruleset("evt.type=ptrace");
        let default = names(&probe_config(&rs, &cfg("")));
        assert!(
            default.contains(&"ptrace")
                && default.contains(&"execve")
                && default.contains(&"openat")
        );
        // A positive custom_set replaces the state set.
        let custom = names(&probe_config(
            &rs,
            &cfg("base_syscalls: {custom_set: [kill]}"),
        ));
        assert!(custom.contains(&"ptrace") && custom.contains(&"kill"));
        assert!(!custom.contains(&"openat"), "{custom:?}");
        // `!name` removes, even a state syscall.
        let neg = names(&probe_config(
            &rs,
            &cfg("base_syscalls: {custom_set: [\"!openat\"]}"),
        ));
        assert!(neg.contains(&"execve") && !neg.contains(&"openat"));
        // repair: lifecycle and credentials; fd bookkeeping only when rules use fds.
        let rep = names(&probe_config(&rs, &cfg("base_syscalls: {repair: true}")));
        assert!(
            rep.contains(&"clone") && rep.contains(&"setuid") && !rep.contains(&"close"),
            "{rep:?}"
        );
        let fd_rules = ruleset("evt.type=connect");
        let rep = names(&probe_config(
            &fd_rules,
            &cfg("base_syscalls: {repair: true}"),
        ));
        assert!(rep.contains(&"close") && rep.contains(&"socket"));
        // all: every syscall the probe implements.
        let all = names(&probe_config(&rs, &cfg("base_syscalls: {all: true}")));
        assert_eq!(all.len(), saker_probe::SYSCALLS.len());
    }

    #[test]
    fn buffer_presets_size_the_rings() {
        let rs = ruleset("evt.type=ptrace");
        let pc = probe_config(
            &rs,
            &cfg("engine: {modern_ebpf: {buf_size_preset: 6, cpus_for_each_buffer: 0}}"),
        );
        // Preset 6 = 32 MiB, one buffer for all CPUs.
        assert_eq!(
            (pc.main_ring_bytes, pc.state_ring_bytes),
            (32 << 20, 8 << 20)
        );
    }
}
