//! Loading, attaching and reading the probe.

use crate::config::{AttachMode, ProbeConfig, SyscallDef, Variant};
use crate::error::ProbeError;
use crate::record::parse_record_into;
use libbpf_rs::btf::{
    types::{DataSec, Func, Var},
    Btf,
};
use libbpf_rs::{
    Link, MapCore, MapFlags, MapHandle, MapType, Object, ObjectBuilder, OpenObject, RingBuffer,
    RingBufferBuilder,
};
use saker_event::Event;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The two objects compiled from bpf/probe.bpf.c (see bpf/compat.h).
static PROBE_OBJ_MODERN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/probe.bpf.o"));
static PROBE_OBJ_CORE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/probe_core.bpf.o"));

const BTF_PATH: &str = "/sys/kernel/btf/vmlinux";
const TRACEFS: &str = "/sys/kernel/tracing";
/// How long the consumer sleeps when both rings are empty (the probe never
/// wakes it: records are submitted with BPF_RB_NO_WAKEUP).
const IDLE_SLEEP: Duration = Duration::from_millis(1);

/// Counter families, as indexed in the probe's `counters` map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Clone = 0,
    Exec = 1,
    Exit = 2,
    Open = 3,
    Close = 4,
    Net = 5,
    FileOp = 6,
    Other = 7,
}

impl Family {
    pub const ALL: [Family; 8] = [
        Family::Clone,
        Family::Exec,
        Family::Exit,
        Family::Open,
        Family::Close,
        Family::Net,
        Family::FileOp,
        Family::Other,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Family::Clone => "clone_fork",
            Family::Exec => "execve",
            Family::Exit => "procexit",
            Family::Open => "open",
            Family::Close => "close",
            Family::Net => "net",
            Family::FileOp => "dir_file",
            Family::Other => "other",
        }
    }
    /// Clone, exec and exit use the dedicated state ring.
    pub fn is_state(self) -> bool {
        matches!(self, Family::Clone | Family::Exec | Family::Exit)
    }
}

use crate::wire::{Counters, Record, Settings};

/// Offset of a `const volatile` variable in the object's `.rodata`, from its BTF.
fn rodata_offset(object: &[u8], var: &str) -> Option<usize> {
    let btf = Btf::from_raw("probe", object).ok()??;
    let sec = btf.type_by_name::<DataSec<'_>>(".rodata")?;
    let found = sec.iter().find_map(|info| {
        let v = btf.type_by_id::<Var<'_>>(info.ty)?;
        (v.name()?.to_str()? == var).then_some(info.offset as usize)
    });
    found
}

/// Snapshot of the probe's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeStats {
    /// `per_cpu[cpu][family as usize]`.
    pub per_cpu: Vec<[Counters; 8]>,
    /// Records userspace rejected as malformed.
    pub bad_records: u64,
    /// Events handed to `poll` callbacks.
    pub delivered: u64,
}

impl ProbeStats {
    pub fn events(&self) -> u64 {
        self.per_cpu.iter().flatten().map(|c| c.events).sum()
    }
    pub fn drops(&self) -> u64 {
        self.per_cpu
            .iter()
            .flatten()
            .map(|c| c.drops_buffer + c.drops_size)
            .sum()
    }
    pub fn family(&self, f: Family) -> Counters {
        let mut t = Counters::default();
        for cpu in &self.per_cpu {
            let c = cpu[f as usize];
            t.events += c.events;
            t.drops_buffer += c.drops_buffer;
            t.drops_size += c.drops_size;
            t.filtered += c.filtered;
        }
        t
    }

    /// Events the prefilter kept in the kernel, over every family.
    pub fn filtered(&self) -> u64 {
        self.per_cpu.iter().flatten().map(|c| c.filtered).sum()
    }
    /// The counters under Falco's scap stat names (`n_evts`,
    /// `n_drops_buffer_total`, per-category `n_drops_buffer_*`,
    /// `n_drops_max_event_size`, `n_drops`), summed over CPUs. The `net`
    /// family (socket, bind, connect, accept, listen, send) is reported as
    /// `n_drops_buffer_connect_exit`.
    pub fn falco_counters(&self) -> Vec<(&'static str, u64)> {
        let buf = |f: Family| self.family(f).drops_buffer;
        let size: u64 = Family::ALL.iter().map(|f| self.family(*f).drops_size).sum();
        let total_buf: u64 = Family::ALL.iter().map(|f| buf(*f)).sum();
        vec![
            ("n_evts", self.events()),
            ("n_drops_buffer_total", total_buf),
            ("n_drops_buffer_clone_fork_exit", buf(Family::Clone)),
            ("n_drops_buffer_execve_exit", buf(Family::Exec)),
            ("n_drops_buffer_proc_exit", buf(Family::Exit)),
            ("n_drops_buffer_open_exit", buf(Family::Open)),
            ("n_drops_buffer_close_exit", buf(Family::Close)),
            ("n_drops_buffer_connect_exit", buf(Family::Net)),
            ("n_drops_buffer_dir_file_exit", buf(Family::FileOp)),
            ("n_drops_buffer_other_interest_exit", buf(Family::Other)),
            ("n_drops_max_event_size", size),
            ("n_drops", total_buf + size),
        ]
    }

    pub fn cpu_drops(&self, cpu: usize) -> u64 {
        self.per_cpu
            .get(cpu)
            .map(|c| c.iter().map(|x| x.drops_buffer + x.drops_size).sum())
            .unwrap_or(0)
    }
}

/// The running kernel's release (`uname -r`).
pub fn kernel_release() -> String {
    // SAFETY: uname fills a zeroed utsname; the release is NUL-terminated.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return "unknown".into();
        }
        std::ffi::CStr::from_ptr(u.release.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

/// (major, minor) of a release string such as `6.1.0-50-cloud-amd64`.
fn parse_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Root, a kernel >= 5.8 and its BTF: what the probe cannot work without.
/// Each failure is one line naming the kernel and what is missing.
pub fn check_environment() -> Result<(), ProbeError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(ProbeError::NotRoot);
    }
    let release = kernel_release();
    if parse_version(&release).is_some_and(|v| v < (5, 8)) {
        return Err(ProbeError::KernelTooOld { release });
    }
    if !Path::new(BTF_PATH).exists() {
        return Err(ProbeError::NoBtf {
            release,
            path: BTF_PATH.into(),
        });
    }
    Ok(())
}

/// Kernel features every object needs, probed the way libbpf does.
fn check_features() -> Result<(), ProbeError> {
    let missing = |feature: &str| ProbeError::MissingFeature {
        release: kernel_release(),
        feature: feature.into(),
    };
    if !MapType::RingBuf.is_supported().unwrap_or(false) {
        return Err(missing("BPF ring buffers (Linux 5.8)"));
    }
    Ok(())
}

/// The object for this kernel: modern where `bpf_rdonly_cast` (6.2) exists,
/// with `SAKER_PROBE_VARIANT` or the config overriding.
fn pick_variant(config: &ProbeConfig, btf: Option<&Btf<'_>>) -> Variant {
    match std::env::var("SAKER_PROBE_VARIANT").as_deref() {
        Ok("core") => return Variant::Core,
        Ok("modern") => return Variant::Modern,
        _ => {}
    }
    if let Some(v) = config.variant {
        return v;
    }
    match btf {
        Some(b) if b.type_by_name::<Func<'_>>("bpf_rdonly_cast").is_some() => Variant::Modern,
        _ => Variant::Core,
    }
}

fn object_bytes(variant: Variant) -> &'static [u8] {
    match variant {
        Variant::Modern => PROBE_OBJ_MODERN,
        Variant::Core => PROBE_OBJ_CORE,
    }
}

/// `struct pf_key` for a path pattern: an exact name includes its NUL, so it
/// matches only itself; a prefix matches every path that starts with it.
/// Patterns are cut to the key's size (the planner already does).
fn prefilter_key(path: &[u8], exact: bool) -> Vec<u8> {
    let max = crate::config::PREFILTER_KEY_MAX;
    let mut data = path[..path.len().min(max - 1)].to_vec();
    if exact && path.len() < max - 1 {
        data.push(0);
    }
    let mut key = ((data.len() * 8) as u32).to_ne_bytes().to_vec();
    key.extend_from_slice(&data);
    key.resize(4 + max, 0);
    key
}

fn open_object(variant: Variant) -> Result<OpenObject, ProbeError> {
    ObjectBuilder::default()
        .open_memory(object_bytes(variant))
        .map_err(ProbeError::bpf("opening the embedded object"))
}

/// Whether this kernel attaches fexit programs: loads and attaches the tiny
/// `fexit_probe` alone. Some kernels build trampolines but refuse them (EPERM).
fn fexit_works(variant: Variant, btf: Option<&Btf<'_>>) -> Result<(), String> {
    let has_wrappers = btf.is_some_and(|b| b.type_by_name::<Func<'_>>("__x64_sys_close").is_some());
    if !has_wrappers {
        return Err("the kernel's BTF has no __x64_sys_* syscall functions to attach to".into());
    }
    // A refusal is an answer here, not an error: keep libbpf quiet meanwhile.
    let prev = libbpf_rs::set_print(None);
    let r = fexit_attach_probe(variant);
    libbpf_rs::set_print(prev);
    r
}

fn fexit_attach_probe(variant: Variant) -> Result<(), String> {
    let mut open = open_object(variant).map_err(|e| e.to_string())?;
    for mut p in open.progs_mut() {
        let on = p.name() == "fexit_probe";
        p.set_autoload(on);
    }
    for mut m in open.maps_mut() {
        // Keep the probe load small: every map is created even when unused.
        let small = match m.name().to_str() {
            Some("rb_state") | Some("rb_main") => Some(4096),
            Some("auxmap") => Some(1),
            _ => None,
        };
        if let Some(n) = small {
            let _ = m.set_max_entries(n);
        }
    }
    let obj = open
        .load()
        .map_err(|e| format!("loading an fexit program: {e}"))?;
    let prog = obj
        .progs_mut()
        .find(|p| p.name() == "fexit_probe")
        .ok_or("fexit_probe missing from the object")?;
    let link = prog
        .attach()
        .map_err(|e| format!("attaching an fexit program: {e}"))?;
    drop(link);
    Ok(())
}

/// The hook each selected syscall gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hook {
    Fexit,
    Tracepoint,
    Generic,
}

fn raise_memlock() {
    // Best effort: kernels >= 5.11 charge BPF memory to the memcg anyway.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid pointers to a local rlimit.
    unsafe {
        let inf = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        if libc::setrlimit(libc::RLIMIT_MEMLOCK, &inf) != 0
            && libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) == 0
        {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim);
        }
    }
}

fn ensure_tracefs() -> Result<(), ProbeError> {
    if Path::new(TRACEFS).join("events").exists() {
        return Ok(());
    }
    let c = |s: &str| std::ffi::CString::new(s).unwrap_or_default();
    let (src, dst, fs) = (c("nodev"), c(TRACEFS), c("tracefs"));
    // SAFETY: NUL-terminated strings that outlive the call.
    let rc = unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), fs.as_ptr(), 0, std::ptr::null()) };
    if rc != 0 {
        return Err(ProbeError::Tracefs(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Whether `syscalls:sys_exit_<name>` exists on this kernel.
pub fn has_exit_tracepoint(name: &str) -> bool {
    Path::new(TRACEFS)
        .join("events/syscalls")
        .join(format!("sys_exit_{name}"))
        .exists()
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a local timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn check_ring(which: &'static str, bytes: u32) -> Result<(), ProbeError> {
    if bytes < 8192 || !bytes.is_power_of_two() {
        return Err(ProbeError::RingSize { which, bytes });
    }
    Ok(())
}

/// Events drained from the rings; the Event buffers are reused across polls.
#[derive(Default)]
struct Batch {
    evs: Vec<Event>,
    len: usize,
}

impl Batch {
    fn push_record(&mut self, rec: &[u8]) -> bool {
        if self.len == self.evs.len() {
            self.evs.push(Event::default());
        }
        let ok = parse_record_into(rec, &mut self.evs[self.len]).is_ok();
        if ok {
            self.len += 1;
        }
        ok
    }
}

/// The loaded, attached probe. Not `Send`: poll it from the thread that loaded it; what
/// other threads need of it goes through [`Probe::control`].
pub struct Probe {
    // Field order is drop order: stop consuming, detach, then unload.
    rb: RingBuffer<'static>,
    links: Vec<Link>,
    /// Owns the programs and maps; only dropped (the maps live on in [`ProbeControl`]).
    _obj: Object,
    pending: Rc<RefCell<Batch>>,
    next_num: u64,
    control: ProbeControl,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.control.0;
        f.debug_struct("Probe")
            .field("attached", &c.attached)
            .field("unavailable", &c.unavailable)
            .field("mode", &c.mode)
            .field("variant", &c.variant)
            .finish()
    }
}

/// A loaded probe's counters, prefilter and attach report, usable from any thread while the
/// probe itself is polled on another (`engine.workers: 2`). The maps are reached through file
/// descriptors of its own, so this keeps working after the probe is dropped: the counters
/// then hold their final values. Clones share everything.
#[derive(Clone)]
pub struct ProbeControl(Arc<Control>);

struct Control {
    counters: MapHandle,
    settings_map: MapHandle,
    /// Only with a prefilter loaded (only those can change it).
    pf_paths: Option<MapHandle>,
    /// The settings written at load; the prefilter part is replaced on each update.
    settings: Settings,
    /// Records userspace rejected as malformed (counted by the ring callback).
    bad: Arc<AtomicU64>,
    /// Events handed on by `poll` (added once per batch).
    delivered: AtomicU64,
    links: usize,
    attached: Vec<String>,
    unavailable: Vec<String>,
    mode: AttachMode,
    variant: Variant,
}

impl std::fmt::Debug for ProbeControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeControl")
            .field("mode", &self.0.mode)
            .field("variant", &self.0.variant)
            .finish()
    }
}

impl Probe {
    /// Loads and attaches only the programs the configuration selects.
    pub fn load(config: &ProbeConfig) -> Result<Probe, ProbeError> {
        check_environment()?;
        check_ring("state ring", config.state_ring_bytes)?;
        check_ring("main ring", config.main_ring_bytes)?;
        raise_memlock();
        check_features()?;
        let release = kernel_release();
        let btf = Btf::from_vmlinux().ok();
        let variant = pick_variant(config, btf.as_ref());

        // fexit first where the kernel allows it (Auto), or when forced.
        let fexit = match config.attach {
            AttachMode::Auto => fexit_works(variant, btf.as_ref()).is_ok(),
            AttachMode::Fexit => {
                fexit_works(variant, btf.as_ref()).map_err(|why| {
                    ProbeError::AttachUnavailable {
                        mode: "fexit",
                        release: release.clone(),
                        why,
                    }
                })?;
                true
            }
            AttachMode::Tracepoint | AttachMode::Generic => false,
        };
        let tracefs = ensure_tracefs();
        let has_tp = |d: &SyscallDef| tracefs.is_ok() && has_exit_tracepoint(d.tracepoint);
        let has_fexit = |d: &SyscallDef| {
            btf.as_ref().is_some_and(|b| {
                b.type_by_name::<Func<'_>>(&format!("__x64_sys_{}", d.tracepoint))
                    .is_some()
            })
        };

        let (defs, mut unavailable) = config.selected();
        let mut hooks: Vec<(&SyscallDef, Hook)> = Vec::new();
        for d in defs {
            let hook = if config.attach == AttachMode::Generic {
                Some(Hook::Generic)
            } else if fexit && has_fexit(d) {
                Some(Hook::Fexit)
            } else if has_tp(d) {
                Some(Hook::Tracepoint)
            } else if config.generic_fallback {
                Some(Hook::Generic)
            } else {
                None
            };
            match hook {
                Some(h) => hooks.push((d, h)),
                None => unavailable.push(d.name.to_string()),
            }
        }
        if config.attach == AttachMode::Tracepoint {
            tracefs?;
        }
        // Without fexit, once the generic hook runs on every syscall anyway it
        // serves every selected syscall by tail call, instead of also paying the
        // per-syscall (perf) tracepoint dispatch on top.
        if hooks.iter().any(|(_, h)| *h == Hook::Generic) {
            for (_, h) in hooks.iter_mut() {
                if *h == Hook::Tracepoint {
                    *h = Hook::Generic;
                }
            }
        }
        let generic = hooks.iter().any(|(_, h)| *h == Hook::Generic);
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        let mut tail: Vec<(u32, String)> = Vec::new();
        let mut clone_mask = 0u32;
        for (d, h) in &hooks {
            match h {
                Hook::Fexit => {
                    wanted.insert(format!("f_{}", d.name));
                    clone_mask |= match d.name {
                        "clone" => 1,
                        "fork" => 2,
                        "vfork" => 4,
                        "clone3" => 8,
                        _ => 0,
                    };
                }
                Hook::Tracepoint => {
                    wanted.insert(d.prog.to_string());
                }
                Hook::Generic => {
                    let g = format!("g_{}", d.name);
                    tail.push((d.nr, g.clone()));
                    wanted.insert(g);
                }
            }
        }
        if generic {
            wanted.insert("sys_exit_dispatch".into());
        }
        if clone_mask != 0 {
            wanted.insert("f_clone_child".into());
        }
        wanted.insert("sched_exit".into());
        if hooks
            .iter()
            .any(|(d, _)| matches!(d.name, "execve" | "execveat"))
        {
            wanted.insert("sched_exec".into());
        }
        let mode = if hooks.is_empty() || hooks.iter().all(|(_, h)| *h == Hook::Generic) {
            if hooks.is_empty() && fexit {
                AttachMode::Fexit
            } else if hooks.is_empty() {
                AttachMode::Tracepoint
            } else {
                AttachMode::Generic
            }
        } else if hooks.iter().any(|(_, h)| *h == Hook::Fexit) {
            AttachMode::Fexit
        } else {
            AttachMode::Tracepoint
        };

        let mut open = open_object(variant)?;
        for mut p in open.progs_mut() {
            let name = p.name().to_string_lossy().into_owned();
            p.set_autoload(wanted.contains(name.as_str()));
        }
        let ncpu = libbpf_rs::num_possible_cpus()
            .map_err(ProbeError::bpf("counting possible CPUs"))? as u32;
        let pf = config.prefilter.as_ref();
        let pf_on_at = match pf {
            Some(_) => Some(
                rodata_offset(object_bytes(variant), "pf_on")
                    .ok_or_else(|| missing_map("pf_on in .rodata"))?,
            ),
            None => None,
        };
        for mut m in open.maps_mut() {
            if let (Some(off), true) = (pf_on_at, m.name().to_string_lossy().ends_with(".rodata")) {
                if let Some(v) = m.initial_value_mut() {
                    if let Some(w) = v.get_mut(off..off + 4) {
                        w.copy_from_slice(&1u32.to_ne_bytes());
                    }
                }
            }
            let size = match m.name().to_str() {
                Some("auxmap") => Some(ncpu),
                Some("rb_state") => Some(config.state_ring_bytes),
                Some("rb_main") => Some(config.main_ring_bytes),
                _ => None,
            };
            if let Some(n) = size {
                let what = format!("sizing map {:?}", m.name());
                m.set_max_entries(n).map_err(ProbeError::bpf(what))?;
            }
        }
        let obj = open.load().map_err(ProbeError::bpf(format!(
            "loading programs (verifier), {} object on kernel {release}",
            variant.name()
        )))?;

        let boot_ts = clock_ns(libc::CLOCK_REALTIME).saturating_sub(clock_ns(libc::CLOCK_BOOTTIME));
        let mut settings = None;
        let mut sc_progs = None;
        let mut pf_paths = None;
        let mut rings = Vec::new();
        for m in obj.maps() {
            match m.name().to_str() {
                Some("settings") => settings = Some(m),
                Some("pf_paths") => pf_paths = Some(m),
                Some("sc_progs") => sc_progs = Some(m),
                Some("rb_state") | Some("rb_main") => rings.push(m),
                _ => {}
            }
        }
        let settings = settings.ok_or_else(|| missing_map("settings"))?;
        let value = Settings {
            boot_ts,
            clone_mask,
            pf_any: pf.map_or(0, |p| p.any_mask),
            pf_close: pf.is_some_and(|p| p.suppress_closes) as u8,
            pad: 0,
        };
        settings
            .update(&0u32.to_ne_bytes(), value.as_bytes(), MapFlags::ANY)
            .map_err(ProbeError::bpf("writing settings"))?;
        if let Some(pf) = pf {
            let map = pf_paths.ok_or_else(|| missing_map("pf_paths"))?;
            for (path, exact, mask) in &pf.paths {
                let key = prefilter_key(path, *exact);
                map.update(&key, &[*mask], MapFlags::ANY)
                    .map_err(ProbeError::bpf("writing prefilter paths"))?;
            }
        }
        let sc_progs = sc_progs.ok_or_else(|| missing_map("sc_progs"))?;
        for (nr, name) in &tail {
            let prog = obj
                .progs()
                .find(|p| p.name().to_str() == Some(name.as_str()))
                .ok_or_else(|| missing_prog(name))?;
            let fd = prog.as_fd().as_raw_fd() as u32;
            sc_progs
                .update(&nr.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)
                .map_err(ProbeError::bpf(format!(
                    "adding {name} to the dispatch table"
                )))?;
        }

        let pending: Rc<RefCell<Batch>> = Rc::default();
        let bad: Arc<AtomicU64> = Arc::default();
        let mut builder = RingBufferBuilder::new();
        // The main ring is consumed first, then the state ring: a clone or
        // exec that happened before a file event caught in this pass is then
        // in this pass too (consumed the other way round, a busy main ring let
        // a process's first file events overtake its exec: unknown process).
        rings.sort_by_key(|m| m.name().to_str() != Some("rb_main"));
        for m in &rings {
            let (p, b) = (pending.clone(), bad.clone());
            builder
                .add(m, move |rec: &[u8]| {
                    if !p.borrow_mut().push_record(rec) {
                        b.fetch_add(1, Ordering::Relaxed);
                    }
                    0
                })
                .map_err(ProbeError::bpf("adding a ring buffer"))?;
        }
        let rb = builder
            .build()
            .map_err(ProbeError::bpf("creating the ring buffer consumer"))?;
        drop(rings);

        let mut links = Vec::new();
        let mut attached = Vec::new();
        for p in obj.progs_mut() {
            let name = p.name().to_string_lossy().into_owned();
            // Tail-call targets run from the dispatcher, never attached.
            if !wanted.contains(name.as_str()) || name.starts_with("g_") {
                continue;
            }
            let link = p
                .attach()
                .map_err(ProbeError::bpf(format!("attaching {name}")))?;
            links.push(link);
            attached.push(name);
        }
        attached.sort();
        let handle = |m: Option<libbpf_rs::Map<'_>>, name: &str| -> Result<MapHandle, ProbeError> {
            let m = m.ok_or_else(|| missing_map(name))?;
            MapHandle::try_from(&m).map_err(ProbeError::bpf(format!("opening map {name}")))
        };
        let find = |name: &str| obj.maps().find(|m| m.name() == name);
        let control = Control {
            counters: handle(find("counters"), "counters")?,
            settings_map: handle(find("settings"), "settings")?,
            pf_paths: match pf {
                Some(_) => Some(handle(find("pf_paths"), "pf_paths")?),
                None => None,
            },
            settings: value,
            bad,
            delivered: AtomicU64::new(0),
            links: links.len(),
            attached,
            unavailable,
            mode,
            variant,
        };
        Ok(Probe {
            rb,
            links,
            _obj: obj,
            pending,
            next_num: 0,
            control: ProbeControl(Arc::new(control)),
        })
    }

    /// The handle other threads use: counters, prefilter updates, what was attached.
    pub fn control(&self) -> ProbeControl {
        self.control.clone()
    }

    /// Whether the probe was loaded with a prefilter (only those can change it).
    pub fn has_prefilter(&self) -> bool {
        self.control.has_prefilter()
    }

    /// Replaces the prefilter (rules reload); see [`ProbeControl::set_prefilter`].
    pub fn set_prefilter(&mut self, pf: &crate::config::Prefilter) -> Result<(), ProbeError> {
        self.control.set_prefilter(pf)
    }

    /// See [`ProbeControl::attach_mode`].
    pub fn attach_mode(&self) -> AttachMode {
        self.control.attach_mode()
    }

    /// The object loaded (modern for 6.2+, core otherwise).
    pub fn variant(&self) -> Variant {
        self.control.variant()
    }

    /// Program names attached (e.g. `x_openat`, `sched_exec`).
    pub fn attached(&self) -> &[String] {
        self.control.attached()
    }

    /// Requested syscalls the probe cannot report on this kernel/config.
    pub fn unavailable(&self) -> &[String] {
        self.control.unavailable()
    }

    /// Drains both rings, merges them by timestamp, numbers the events and
    /// hands each to `f`. Returns as soon as a batch was delivered, or after
    /// `timeout` with 0. Sleeps ~1 ms between empty checks.
    pub fn poll<F: FnMut(&Event)>(&mut self, timeout: Duration, f: F) -> Result<usize, ProbeError> {
        let n = self.next_batch(timeout)?;
        let mut batch = self.pending.borrow_mut();
        batch.evs[..n].iter().for_each(f);
        batch.len = 0;
        Ok(n)
    }

    /// As [`Probe::poll`], but the batch's events are handed over whole: they end up in
    /// `evs[..n]` by swapping vectors (the probe keeps `evs`' old one to refill), so a
    /// consumer on another thread gets them without a copy.
    pub fn poll_swap(
        &mut self,
        timeout: Duration,
        evs: &mut Vec<Event>,
    ) -> Result<usize, ProbeError> {
        let n = self.next_batch(timeout)?;
        if n > 0 {
            let mut batch = self.pending.borrow_mut();
            std::mem::swap(&mut batch.evs, evs);
            batch.len = 0;
        }
        Ok(n)
    }

    /// Consumes the rings until a batch is pending (or `timeout`); sorts and numbers it.
    fn next_batch(&mut self, timeout: Duration) -> Result<usize, ProbeError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.rb
                .consume()
                .map_err(ProbeError::bpf("consuming the ring buffers"))?;
            let mut batch = self.pending.borrow_mut();
            let n = batch.len;
            if n > 0 {
                let evs = &mut batch.evs[..n];
                // The two rings are merged by timestamp (stable: a ring's own
                // order is kept for equal stamps).
                evs.sort_by_key(|e| e.ts);
                for ev in evs.iter_mut() {
                    self.next_num += 1;
                    ev.num = self.next_num;
                }
                self.control
                    .0
                    .delivered
                    .fetch_add(n as u64, Ordering::Relaxed);
                return Ok(n);
            }
            drop(batch);
            let now = Instant::now();
            if now >= deadline {
                return Ok(0);
            }
            std::thread::sleep(IDLE_SLEEP.min(deadline - now));
        }
    }

    /// Per-CPU event and drop counters by family.
    pub fn stats(&self) -> Result<ProbeStats, ProbeError> {
        self.control.stats()
    }

    /// Number of attached links (programs).
    pub fn link_count(&self) -> usize {
        self.links.len()
    }
}

impl ProbeControl {
    /// Per-CPU event and drop counters by family.
    pub fn stats(&self) -> Result<ProbeStats, ProbeError> {
        let c = &self.0;
        let mut per_cpu: Vec<[Counters; 8]> = Vec::new();
        for fam in Family::ALL {
            let vals = c
                .counters
                .lookup_percpu(&(fam as u32).to_ne_bytes(), MapFlags::ANY)
                .map_err(ProbeError::bpf("reading counters"))?
                .unwrap_or_default();
            if per_cpu.len() < vals.len() {
                per_cpu.resize(vals.len(), [Counters::default(); 8]);
            }
            for (cpu, v) in vals.iter().enumerate() {
                per_cpu[cpu][fam as usize] = Counters::from_bytes(v);
            }
        }
        Ok(ProbeStats {
            per_cpu,
            bad_records: c.bad.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
        })
    }

    /// Whether the probe was loaded with a prefilter (only those can change it).
    pub fn has_prefilter(&self) -> bool {
        self.0.pf_paths.is_some()
    }

    /// Replaces the prefilter (rules reload). Everything passes while the
    /// path table is rewritten, so no event a new rule needs is dropped.
    /// Safe while the probe is polled elsewhere: only kernel maps change.
    pub fn set_prefilter(&self, pf: &crate::config::Prefilter) -> Result<(), ProbeError> {
        let c = &self.0;
        let Some(paths) = &c.pf_paths else {
            return Ok(());
        };
        let write = |s: &Settings| -> Result<(), ProbeError> {
            c.settings_map
                .update(&0u32.to_ne_bytes(), s.as_bytes(), MapFlags::ANY)
                .map_err(ProbeError::bpf("writing settings"))
        };
        write(&Settings {
            pf_any: 0xf,
            pf_close: 0,
            ..c.settings
        })?;
        let old: Vec<Vec<u8>> = paths.keys().collect();
        for k in old {
            let _ = paths.delete(&k);
        }
        for (path, exact, mask) in &pf.paths {
            paths
                .update(&prefilter_key(path, *exact), &[*mask], MapFlags::ANY)
                .map_err(ProbeError::bpf("writing prefilter paths"))?;
        }
        // Every field the prefilter owns comes from `pf`; the rest never changes.
        write(&Settings {
            pf_any: pf.any_mask,
            pf_close: pf.suppress_closes as u8,
            ..c.settings
        })
    }

    /// How syscall exits are hooked: fexit, tracepoint or generic (never auto).
    /// Fexit when any selected syscall is on fexit; a syscall without an fexit
    /// target may still use its tracepoint or the generic hook.
    pub fn attach_mode(&self) -> AttachMode {
        self.0.mode
    }

    /// The object loaded (modern for 6.2+, core otherwise).
    pub fn variant(&self) -> Variant {
        self.0.variant
    }

    /// Program names attached (e.g. `x_openat`, `sched_exec`).
    pub fn attached(&self) -> &[String] {
        &self.0.attached
    }

    /// Requested syscalls the probe cannot report on this kernel/config.
    pub fn unavailable(&self) -> &[String] {
        &self.0.unavailable
    }

    /// Number of attached links (programs).
    pub fn link_count(&self) -> usize {
        self.0.links
    }
}

fn missing_prog(name: &str) -> ProbeError {
    ProbeError::Bpf {
        what: format!("finding program {name}"),
        source: libbpf_rs::Error::from(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "program missing from the embedded object",
        )),
    }
}

fn missing_map(name: &str) -> ProbeError {
    ProbeError::Bpf {
        what: format!("finding map {name}"),
        source: libbpf_rs::Error::from(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "map missing from the embedded object",
        )),
    }
}
