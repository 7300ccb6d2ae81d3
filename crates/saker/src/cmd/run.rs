//! `saker run`: live detection. The event loop is single-threaded and never
//! waits on outputs; signals only flip flags that the loop checks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use saker_config::Config;
use saker_outputs::Metrics;
use saker_probe::{Probe, ProbeConfig};
use saker_rules::ruleset::AlertOptions;
use saker_state::State;

use crate::cli::RulesOpts;
use crate::hold::Hold;
use crate::pipeline::Detector;

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

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Loads the config, applies its logging settings, then logs its warnings.
pub fn load_config(opts: &RulesOpts) -> anyhow::Result<Config> {
    Ok(load_config_full(opts)?.config)
}

pub fn load_config_full(opts: &RulesOpts) -> anyhow::Result<saker_config::Loaded> {
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
pub(crate) fn watcher_config(cfg: &Config) -> saker_container::WatcherConfig {
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

pub fn run(
    opts: &RulesOpts,
    cfg: Config,
    duration: Option<f64>,
    stats: bool,
) -> anyhow::Result<i32> {
    saker_probe::check_environment().map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::caps::report();
    let loaded = crate::rules::load(&cfg, opts)?;
    let metrics = Arc::new(Metrics::new());
    metrics.record_reload(true, loaded.ruleset.enabled().len(), now_ns() as i64);
    let cfg_files = saker_config::load(opts.config.as_deref(), &opts.options)
        .map(|l| (l.files, l.folders))
        .unwrap_or_default();
    crate::stats::record_files(&metrics, &loaded.files, &cfg_files.0);
    crate::stats::record_static_info(&metrics, &cfg);
    metrics.set_groups(crate::outputs_cfg::metric_groups(&cfg));
    let outputs = crate::outputs_cfg::start(&cfg, metrics.clone())?;
    let health = Arc::new(AtomicBool::new(false));
    let _web = if cfg.webserver.enabled {
        let addr = crate::outputs_cfg::web_addr(&cfg)?;
        let wo = crate::outputs_cfg::web_options(&cfg);
        let web = saker_outputs::web::WebServer::start(addr, metrics.clone(), health.clone(), wo)?;
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
    let signals = Signals::install()?;
    let _watch = if cfg.watch_config_files {
        let mut paths = cfg_files.0.clone();
        paths.extend(cfg_files.1.iter().cloned());
        paths.extend(loaded.files.iter().cloned());
        paths.extend(loaded.folders.iter().cloned());
        Some(crate::watch::Watch::start(&paths, signals.reload.clone())?)
    } else {
        None
    };
    let wc = watcher_config(&cfg);
    // Holding alerts only makes sense when some runtime can answer.
    let runtime_present = !saker_container::resolve_sockets(&wc.docker_sockets).is_empty()
        || !saker_container::resolve_grpc_sockets(&wc.containerd_sockets).is_empty()
        || !saker_container::resolve_grpc_sockets(&wc.cri_sockets).is_empty();
    let mut containers =
        saker_container::Watcher::start(wc).context("starting the container metadata thread")?;
    let pc = probe_config(&loaded.ruleset, &cfg)?;
    let mut probe = Probe::load(&pc).context("loading the eBPF probe")?;
    let state = seeded_state(&cfg);
    let hostname = crate::outputs_cfg::hostname(&cfg);
    let n_rules = loaded.ruleset.enabled().len();
    let sources = loaded.sources.join(", ");
    let mut det = Detector::new(
        state,
        Arc::new(loaded.ruleset),
        hostname.clone(),
        AlertOptions {
            time_format_iso_8601: cfg.time_format_iso_8601,
        },
    );
    if runtime_present {
        let mut hold = Hold::new(Duration::from_millis(cfg.container_engines.hold_ms));
        hold.held_total = metrics.alerts_held.clone();
        hold.expired_total = metrics.alerts_hold_expired.clone();
        det.hold = Some(hold);
    }
    // The k8s_audit input, if configured, feeds the same loop (its own thread and channel).
    let mut audit = crate::audit::AuditInputs::start(&cfg)?;
    health.store(true, Ordering::Relaxed);
    tracing::info!(
        "started: {n_rules} rules from {sources}, {} programs attached ({} mode, {} object, kernel {}, prefilter {}){}",
        probe.link_count(),
        probe.attach_mode().name(),
        probe.variant().name(),
        saker_probe::kernel_release(),
        match &pc.prefilter {
            None => "off".to_string(),
            Some(p) if p.any_mask == 0xf => "passing every open".to_string(),
            Some(p) => format!("on, {} path patterns", p.paths.len()),
        },
        if probe.unavailable().is_empty() {
            String::new()
        } else {
            format!(" (not available here: {})", probe.unavailable().join(", "))
        }
    );
    let deadline = duration.map(|s| Instant::now() + Duration::from_secs_f64(s));
    let mut ticker = crate::stats::Ticker::new(&cfg, hostname);
    let mut cfg = cfg;
    let mut drop_failed = cfg.engine.modern_ebpf.drop_failed_exit;
    let mut exit_code = 0;
    let root = host_root();
    let mut flight = crate::flight::Flight::new(
        &cfg.capture,
        Box::new(move || saker_probe::procfs::scan(&root)),
    );
    while !signals.stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        let mut n = 0u64;
        // Held alerts wake the loop when their wait is over.
        let wait = det
            .hold
            .as_ref()
            .and_then(|h| h.next_due())
            .map_or(POLL_WAIT, |d| {
                d.saturating_duration_since(Instant::now()).min(POLL_WAIT)
            });
        probe.poll(wait, |ev| {
            n += 1;
            if drop_failed && ev.res().is_some_and(|r| r < 0) && ev.type_name() != "procexit" {
                return;
            }
            crate::flight::detect(&mut flight, &mut det, ev, &mut |a| {
                outputs.send(Arc::new(a))
            });
            request_container(&mut containers, &mut det, ev);
        })?;
        if let Some(a) = audit.as_mut() {
            a.drain(&mut det, &mut |x| outputs.send(Arc::new(x)));
        }
        ticker.poll_done(n, &outputs);
        sync_containers(&mut containers, &mut det);
        det.release_held(false, &mut |a| outputs.send(Arc::new(a)));
        if signals.reopen.swap(false, Ordering::Relaxed) {
            outputs.reopen_files();
        }
        if signals.reload.swap(false, Ordering::Relaxed) {
            cfg = reload(opts, cfg, &mut det, &metrics, &pc, &mut probe);
            drop_failed = cfg.engine.modern_ebpf.drop_failed_exit;
            ticker.reconfigure(&cfg);
        }
        if ticker.tick(&probe, &det, &metrics, &outputs) {
            tracing::error!("Exiting.");
            exit_code = 1;
            break;
        }
    }
    // Drain what the kernel already produced.
    probe.poll(Duration::from_millis(50), |ev| {
        crate::flight::detect(&mut flight, &mut det, ev, &mut |a| {
            outputs.send(Arc::new(a))
        })
    })?;
    if let Some(a) = audit.take() {
        a.stop(&mut det, &mut |x| outputs.send(Arc::new(x)));
    }
    if let Some(f) = flight.as_mut() {
        f.close();
    }
    det.release_held(true, &mut |a| outputs.send(Arc::new(a)));
    ticker.flush(&probe, &det, &metrics, &outputs, true);
    health.store(false, Ordering::Relaxed);
    let report = outputs.shutdown(cfg.outputs.shutdown_timeout);
    let ps = probe.stats().unwrap_or_default();
    tracing::info!(
        "stopped. Syscall events: {} seen, {} dropped, {} processed, {} kept in the kernel by the prefilter",
        ps.events(),
        ps.drops(),
        det.stats.events,
        ps.filtered()
    );
    if let Some(h) = det.hold.as_ref() {
        tracing::info!(
            "container hold: {} alerts waited for metadata, {} sent without it after {} ms",
            h.held_total.get(),
            h.expired_total.get(),
            cfg.container_engines.hold_ms
        );
    }
    eprint!("{}", det.stats.summary());
    if stats {
        eprint!("{}", det.stats.cost_table(det.ruleset()));
    }
    eprint!("{}", ticker.drop_summary());
    eprint!("{report}");
    Ok(exit_code)
}

/// Reloads config and rules; a reload that fails keeps the running rules.
/// The kernel-side selection is kept (reattaching would leave a gap in
/// events); rules that need syscalls it lacks are reported.
fn reload(
    opts: &RulesOpts,
    old: Config,
    det: &mut Detector,
    metrics: &Metrics,
    running: &ProbeConfig,
    probe: &mut Probe,
) -> Config {
    let attempt = load_config(opts).and_then(|cfg| Ok((crate::rules::load(&cfg, opts)?, cfg)));
    if attempt.is_err() {
        // The failed config may have changed the log settings: keep the running ones.
        crate::logging::configure(&old);
    }
    match attempt {
        Ok((loaded, cfg)) => {
            let n = loaded.ruleset.enabled().len();
            let (have, _) = running.selected();
            let wanted = probe_config(&loaded.ruleset, &cfg).ok();
            let (want, _) = match &wanted {
                Some(w) => w.selected(),
                None => running.selected(),
            };
            // The kernel filter follows the new rules (pass-all when turned off).
            let pf = wanted
                .and_then(|w| w.prefilter)
                .unwrap_or(saker_probe::Prefilter {
                    any_mask: 0xf,
                    suppress_closes: false,
                    paths: vec![],
                });
            if let Err(e) = probe.set_prefilter(&pf) {
                tracing::warn!("prefilter not updated, passing every open: {e}");
                let _ = probe.set_prefilter(&saker_probe::Prefilter {
                    any_mask: 0xf,
                    ..Default::default()
                });
            }
            let missing: Vec<&str> = want
                .iter()
                .filter(|d| !have.contains(d))
                .map(|d| d.name)
                .collect();
            if !missing.is_empty() {
                tracing::warn!(
                    "the reloaded rules need syscalls not captured since start ({}); restart saker to capture them",
                    missing.join(", ")
                );
            }
            det.set_ruleset(Arc::new(loaded.ruleset));
            metrics.record_reload(true, n, now_ns() as i64);
            let cfg_files = saker_config::load(opts.config.as_deref(), &opts.options)
                .map(|l| l.files)
                .unwrap_or_default();
            crate::stats::record_files(metrics, &loaded.files, &cfg_files);
            tracing::info!("reloaded: {n} rules");
            cfg
        }
        Err(e) => {
            metrics.record_reload(false, det.ruleset().enabled().len(), now_ns() as i64);
            tracing::error!("reload failed, keeping the running rules: {e:#}");
            old
        }
    }
}

/// Longest wait for events in one poll (signals, reloads and the stats tick are checked after).
const POLL_WAIT: Duration = Duration::from_millis(100);

/// Asks the metadata thread about the container of a process that starts or execs, and about
/// the containers whose alerts the hold just started waiting for.
fn request_container(
    w: &mut saker_container::Watcher,
    det: &mut Detector,
    ev: &saker_event::Event,
) {
    if let Some(h) = det.hold.as_mut() {
        for id in h.take_wanted() {
            // Already asked (and answered, or in flight): the answer reaches the hold anyway.
            w.request(&id);
        }
    }
    if !is_spawn_exit(ev.etype) {
        return;
    }
    if let Some(t) = det.state.thread(ev.tid) {
        if !t.container_id.is_empty()
            && det.state.container_meta(&t.container_id).is_none()
            && w.request(&t.container_id)
        {
            if let Some(h) = det.hold.as_mut() {
                h.lookup_started(&t.container_id);
            }
        }
    }
}

/// Exit events of the syscalls that start or exec a process (a table per type id: this runs
/// for every event).
fn is_spawn_exit(etype: u16) -> bool {
    static T: std::sync::OnceLock<Vec<bool>> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        (0..=saker_event::table::EVENT_MAX)
            .map(|i| {
                saker_event::table::info(i).is_some_and(|inf| {
                    inf.dir == saker_event::table::Dir::Exit
                        && matches!(
                            inf.name,
                            "execve" | "execveat" | "clone" | "clone3" | "fork" | "vfork"
                        )
                })
            })
            .collect()
    })
    .get(etype as usize)
    .copied()
    .unwrap_or(false)
}

/// Takes the metadata thread's answers into state and the hold.
fn sync_containers(w: &mut saker_container::Watcher, det: &mut Detector) {
    while let Some(a) = w.try_answer() {
        match a {
            saker_container::Answer::Found(id, meta) => {
                det.state.set_container_meta(id.as_bytes(), *meta);
                if let Some(h) = det.hold.as_mut() {
                    h.known(id.as_bytes());
                }
            }
            saker_container::Answer::Unknown(id) => {
                if let Some(h) = det.hold.as_mut() {
                    h.unknown(id.as_bytes());
                }
            }
        }
    }
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
