//! `saker run`: live detection. The event loop is single-threaded and never
//! waits on outputs; signals only flip flags that the loop checks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use saker_config::Config;
use saker_outputs::{Metrics, Outputs, WebOptions};
use saker_probe::{Probe, ProbeConfig};
use saker_rules::ruleset::AlertOptions;
use saker_rules::{Alert, OutputValue, Priority};
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

pub fn load_config(opts: &RulesOpts) -> anyhow::Result<Config> {
    let loaded = saker_config::load(opts.config.as_deref(), &opts.options)?;
    for w in &loaded.warnings {
        eprintln!("saker: warning: {w}");
    }
    Ok(loaded.config)
}

/// The probe selection: what the rules need plus the state set.
pub fn probe_config(
    rules: &saker_rules::ruleset::Ruleset,
    cfg: &Config,
) -> anyhow::Result<ProbeConfig> {
    let mut pc = match rules.needed_event_types() {
        Some(names) => ProbeConfig::for_event_types(names),
        // A rule without an event-type restriction needs everything the probe can report.
        None => ProbeConfig::for_event_types(saker_probe::SYSCALLS.iter().map(|d| d.name)),
    };
    pc.generic_fallback = cfg.engine.modern_ebpf.generic_fallback;
    pc.attach = attach_mode(cfg)?;
    Ok(pc)
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
pub fn seeded_state() -> State {
    // `scan` takes the host's root directory: it reads `proc/` and `etc/passwd` below it.
    let root = host_root();
    let mut state = State::new(saker_state::Config {
        proc_lookup: true,
        proc_root: root.join("proc"),
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
        .filter_map(|e| cfg.container_engines.get(*e))
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

/// Longest wait of an alert for its container's metadata (inspecting a new container takes
/// 10–40 ms on podman; a container the runtimes do not know is given up after this).
const CONTAINER_WAIT: Duration = Duration::from_millis(1500);

pub fn run(opts: &RulesOpts, duration: Option<f64>) -> anyhow::Result<i32> {
    saker_probe::check_environment().map_err(|e| anyhow::anyhow!("{e}"))?;
    let cfg = load_config(opts)?;
    let loaded = crate::rules::load(&cfg, opts)?;
    let metrics = Arc::new(Metrics::new());
    metrics.record_reload(true, loaded.ruleset.enabled().len(), now_ns() as i64);
    let outputs = Outputs::start(&cfg, metrics.clone())?;
    let health = Arc::new(AtomicBool::new(false));
    if cfg.webserver.enabled {
        let addr = saker_outputs::web_addr(&cfg.webserver)?;
        let bound = outputs.spawn_web(
            addr,
            health.clone(),
            WebOptions::from_config(&cfg.webserver),
        )?;
        eprintln!("saker: web server on http://{bound}");
    }
    let signals = Signals::install()?;
    let wc = watcher_config(&cfg);
    // Holding alerts only makes sense when some runtime can answer.
    let runtime_present = !saker_container::resolve_sockets(&wc.docker_sockets).is_empty()
        || !saker_container::resolve_grpc_sockets(&wc.containerd_sockets).is_empty()
        || !saker_container::resolve_grpc_sockets(&wc.cri_sockets).is_empty();
    let mut containers =
        saker_container::Watcher::start(wc).context("starting the container metadata thread")?;
    let pc = probe_config(&loaded.ruleset, &cfg)?;
    let mut probe = Probe::load(&pc).context("loading the eBPF probe")?;
    let state = seeded_state();
    let hostname = saker_outputs::default_hostname(&cfg);
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
        det.hold = Some(Hold::new(CONTAINER_WAIT));
    }
    health.store(true, Ordering::Relaxed);
    eprintln!(
        "saker: started: {n_rules} rules from {sources}, {} programs attached ({} mode, {} object, kernel {}){}",
        probe.link_count(),
        probe.attach_mode().name(),
        probe.variant().name(),
        saker_probe::kernel_release(),
        if probe.unavailable().is_empty() {
            String::new()
        } else {
            format!(" (not available here: {})", probe.unavailable().join(", "))
        }
    );
    let deadline = duration.map(|s| Instant::now() + Duration::from_secs_f64(s));
    let mut ticker = Ticker::new(&cfg, hostname);
    let mut cfg = cfg;
    while !signals.stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        probe.poll(Duration::from_millis(100), |ev| {
            det.on_event(ev, &mut |a| outputs.send(Arc::new(a)));
            request_container(&mut containers, &det.state, ev);
        })?;
        while let Some((id, meta)) = containers.try_recv() {
            det.state.set_container_meta(id.as_bytes(), meta);
            if let Some(h) = det.hold.as_mut() {
                h.known(id.as_bytes());
            }
        }
        det.release_held(false, &mut |a| outputs.send(Arc::new(a)));
        if signals.reopen.swap(false, Ordering::Relaxed) {
            outputs.reopen_files();
        }
        if signals.reload.swap(false, Ordering::Relaxed) {
            cfg = reload(opts, cfg, &mut det, &metrics, &pc);
        }
        ticker.tick(&probe, &det, &metrics, &outputs);
    }
    // Drain what the kernel already produced.
    probe.poll(Duration::from_millis(50), |ev| {
        det.on_event(ev, &mut |a| outputs.send(Arc::new(a)))
    })?;
    det.release_held(true, &mut |a| outputs.send(Arc::new(a)));
    ticker.flush(&probe, &det, &metrics, &outputs, true);
    health.store(false, Ordering::Relaxed);
    outputs.shutdown(Duration::from_secs(5));
    let ps = probe.stats().unwrap_or_default();
    eprintln!(
        "saker: stopped. Syscall events: {} seen, {} dropped, {} processed",
        ps.events(),
        ps.drops(),
        det.stats.events
    );
    eprint!("{}", det.stats.summary());
    Ok(0)
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
) -> Config {
    let attempt = load_config(opts).and_then(|cfg| Ok((crate::rules::load(&cfg, opts)?, cfg)));
    match attempt {
        Ok((loaded, cfg)) => {
            let n = loaded.ruleset.enabled().len();
            let (have, _) = running.selected();
            let (want, _) = match probe_config(&loaded.ruleset, &cfg) {
                Ok(wanted) => wanted.selected(),
                Err(_) => running.selected(),
            };
            let missing: Vec<&str> = want
                .iter()
                .filter(|d| !have.contains(d))
                .map(|d| d.name)
                .collect();
            if !missing.is_empty() {
                eprintln!(
                    "saker: warning: the reloaded rules need syscalls not captured since start ({}); restart saker to capture them",
                    missing.join(", ")
                );
            }
            det.set_ruleset(Arc::new(loaded.ruleset));
            metrics.record_reload(true, n, now_ns() as i64);
            eprintln!("saker: reloaded: {n} rules");
            cfg
        }
        Err(e) => {
            metrics.record_reload(false, det.ruleset().enabled().len(), now_ns() as i64);
            eprintln!("saker: reload failed, keeping the running rules: {e:#}");
            old
        }
    }
}

/// Once a second: counters into metrics, and Falco's drop alert when the kernel dropped events.
struct Ticker {
    last: Instant,
    last_drops: u64,
    last_alert: Option<Instant>,
    flushed_types: Vec<u64>,
    alert_on_drops: bool,
    hostname: String,
}

impl Ticker {
    fn new(cfg: &Config, hostname: String) -> Ticker {
        Ticker {
            last: Instant::now(),
            last_drops: 0,
            last_alert: None,
            flushed_types: vec![0; 1024],
            alert_on_drops: cfg
                .syscall_event_drops
                .actions
                .iter()
                .any(|a| matches!(a, saker_config::DropAction::Alert)),
            hostname,
        }
    }

    fn tick(&mut self, probe: &Probe, det: &Detector, metrics: &Metrics, outputs: &Outputs) {
        if self.last.elapsed() >= Duration::from_secs(1) {
            self.flush(probe, det, metrics, outputs, false);
        }
    }

    fn flush(
        &mut self,
        probe: &Probe,
        det: &Detector,
        metrics: &Metrics,
        outputs: &Outputs,
        last: bool,
    ) {
        self.last = Instant::now();
        for (id, (&now, prev)) in det
            .stats
            .by_type
            .iter()
            .zip(self.flushed_types.iter_mut())
            .enumerate()
        {
            if now > *prev {
                let name = saker_event::table::info(id as u16)
                    .map(|i| i.name)
                    .unwrap_or("unknown");
                metrics.event_counter(name).inc_by(now - *prev);
                *prev = now;
            }
        }
        let Ok(ps) = probe.stats() else { return };
        for (cpu, fams) in ps.per_cpu.iter().enumerate() {
            let evts: u64 = fams.iter().map(|c| c.events).sum();
            metrics.record_kernel_totals(cpu as u32, evts, ps.cpu_drops(cpu));
        }
        let drops = ps.drops();
        let new = drops.saturating_sub(self.last_drops);
        self.last_drops = drops;
        if new == 0 {
            return;
        }
        eprintln!("saker: {new} syscall events dropped by the kernel (ring buffer full)");
        // Rate-limited to one alert per 10 s, like Falco's default syscall_event_drops.rate.
        let due = self
            .last_alert
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
        if self.alert_on_drops && due && !last {
            self.last_alert = Some(Instant::now());
            outputs.send(Arc::new(drop_alert(new, &ps, &self.hostname)));
        }
    }
}

/// Falco's "syscall event drop" internal alert.
fn drop_alert(n: u64, ps: &saker_probe::ProbeStats, hostname: &str) -> Alert {
    let t = now_ns();
    let msg =
        format!("Falco internal: syscall event drop. {n} system calls dropped in last second.");
    Alert {
        time_ns: t,
        rule: "Falco internal: syscall event drop".into(),
        priority: Priority::Debug,
        source: "syscall".into(),
        hostname: hostname.to_string(),
        output: format!(
            "{}: {} {msg}",
            saker_rules::format::date_text(t),
            Priority::Debug
        ),
        output_fields: vec![
            ("ebpf_enabled".into(), OutputValue::Str("1".into())),
            ("n_drops".into(), OutputValue::U64(n)),
            ("n_drops_buffer_total".into(), OutputValue::U64(ps.drops())),
            ("n_evts".into(), OutputValue::U64(ps.events())),
        ],
        tags: vec![],
    }
}

/// Asks the metadata thread about the container of a process that starts or execs, once.
fn request_container(w: &mut saker_container::Watcher, state: &State, ev: &saker_event::Event) {
    let spawn = matches!(
        ev.type_name(),
        "execve" | "execveat" | "clone" | "clone3" | "fork" | "vfork"
    );
    if !spawn || !ev.is_exit() {
        return;
    }
    if let Some(t) = state.thread(ev.tid) {
        if !t.container_id.is_empty() && state.container_meta(&t.container_id).is_none() {
            w.request(&t.container_id);
        }
    }
}
