//! Conversion of old-style streams (enter/exit pairs, old event versions) to the
//! current exit-only model, following what libscap's savefile converter does:
//!
//! * syscall enter events are stored per thread and dropped, except the five
//!   TOCTOU enter events (open, openat, openat2, creat, connect) the current
//!   probe still emits: those pass through (padded to the current parameter list)
//!   and are also stored;
//! * an exit event is rewritten to the current version of its event (same name,
//!   newest non-old id) with the current parameter list: parameters present in the
//!   old exit are kept, missing ones are taken by name from the stored enter event
//!   of the same pair, and anything else is left empty;
//! * old tracepoint/meta versions (procexit, switch, container) are upgraded the same way.

use std::sync::OnceLock;

use saker_event::table::{self, Dir, ParamType, EC_SYSCALL, EVENT_MAX};
use saker_event::Event;

/// TOCTOU enter events kept by the exit-only model.
pub const TOCTOU_ENTER: [u16; 5] = [2, 22, 58, 306, 326];

const CONTAINER_E: u16 = 228;
const PROCEXIT_E: u16 = 16;
const PROCEXIT_1_E: u16 = 186;
const CONTAINER_JSON_2_E: u16 = 324;

/// Current id for every event id.
fn targets() -> &'static [u16; EVENT_MAX as usize] {
    static T: OnceLock<[u16; EVENT_MAX as usize]> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = [0u16; EVENT_MAX as usize];
        for (id, slot) in t.iter_mut().enumerate() {
            let id = id as u16;
            *slot = id;
            let Some(info) = table::info(id) else {
                continue;
            };
            if !info.is_old_version() || info.name == "NA" {
                continue;
            }
            // accept4's first versions were named "accept".
            let name = match id {
                56 | 57 | 248 | 249 => "accept4",
                _ => info.name,
            };
            if let Some(&cur) = table::ids_for_name(name).iter().rev().find(|&&c| {
                let ci = table::info(c).expect("ids_for_name returns table ids");
                ci.dir == info.dir && !ci.is_old_version() && ci.name == name
            }) {
                *slot = cur;
            }
        }
        t
    })
}

/// Current id of an event id (itself when it is current).
pub fn current_id(etype: u16) -> u16 {
    targets().get(etype as usize).copied().unwrap_or(etype)
}

/// `Event::etype` of an enter slot with nothing pending (slots are kept per thread so that
/// their buffers are reused by the next enter event).
const NO_ENTER: u16 = u16::MAX;

#[derive(Default)]
pub struct Converter {
    /// Last stored enter event per thread (`NO_ENTER` once its exit took it).
    enters: rustc_hash::FxHashMap<i64, Event>,
    scratch: Event,
    /// Where each parameter of a rebuilt event comes from, per (old type, old parameter
    /// count, target type, enter type, enter parameter count): found by name once, not per event.
    plans: rustc_hash::FxHashMap<u64, Box<[Src]>>,
}

/// The source of one parameter of a rebuilt event.
#[derive(Clone, Copy)]
enum Src {
    /// Parameter `j` of the old event, of this type (when the table lists it).
    Old(usize, Option<ParamType>),
    /// Parameter `j` of the stored enter event.
    Enter(usize, ParamType),
    /// libscap never leaves an exit event's result empty: it defaults to 0 (this many bytes).
    Zero(usize),
    Empty,
}

impl Converter {
    /// Converts `ev` in place. Returns false when the event is consumed (an
    /// old-style enter event stored for its exit).
    pub fn convert(&mut self, ev: &mut Event) -> bool {
        let Some(info) = table::info(ev.etype) else {
            return true;
        };
        let syscall = info.category & EC_SYSCALL != 0;
        if info.dir == Dir::Enter && syscall {
            // Old versions of the TOCTOU enter events (e.g. OPENAT_E) pass as their current version.
            let cur = current_id(ev.etype);
            self.enters.entry(ev.tid).or_default().clone_from(ev);
            if !TOCTOU_ENTER.contains(&cur) {
                return false;
            }
            rebuild(&mut self.scratch, &mut self.plans, ev, cur, None);
            return true;
        }
        if matches!(ev.etype, PROCEXIT_E | PROCEXIT_1_E) {
            // The thread is gone: forget its pending enter event.
            self.enters.remove(&ev.tid);
        }
        let target = current_id(ev.etype);
        let enter = if info.dir == Dir::Exit && syscall {
            // Taken by this exit (the slot keeps its buffers); an unrelated enter (its exit
            // was lost) is forgotten.
            self.enters.get_mut(&ev.tid).and_then(|e| {
                let t = std::mem::replace(&mut e.etype, NO_ENTER);
                (t != NO_ENTER && t + 1 == ev.etype).then_some((&*e, t))
            })
        } else {
            None
        };
        if ev.etype == CONTAINER_E {
            container_to_json(ev);
            return true;
        }
        let need = table::info(target).map_or(0, |t| t.params.len());
        if target == ev.etype && ev.nparams() == need && enter.is_none() {
            return true;
        }
        rebuild(&mut self.scratch, &mut self.plans, ev, target, enter);
        true
    }
}

/// Rewrites `ev` as event `target` with the current parameter list (`out` is scratch space).
fn rebuild(
    out: &mut Event,
    plans: &mut rustc_hash::FxHashMap<u64, Box<[Src]>>,
    ev: &mut Event,
    target: u16,
    enter: Option<(&Event, u16)>,
) {
    let onp = ev.nparams().min(255);
    // The stored enter's own type field is already marked taken: its type comes alongside.
    let (ety, enp) = enter.map_or((NO_ENTER, 0), |(e, t)| (t, e.nparams().min(255)));
    let key = (ev.etype as u64) << 48
        | (onp as u64) << 40
        | (target as u64) << 24
        | (ety as u64) << 8
        | enp as u64;
    let plan = match plans.get(&key) {
        Some(p) => p,
        None => {
            let Some(p) = plan(
                ev.etype,
                onp,
                target,
                enter.and_then(|(_, t)| table::info(t)),
                enp,
            ) else {
                return;
            };
            plans.entry(key).or_insert(p)
        }
    };
    out.clear();
    out.num = ev.num;
    out.ts = ev.ts;
    out.tid = ev.tid;
    out.cpu = ev.cpu;
    out.etype = target;
    let new = table::info(target).expect("planned for a table id");
    for (src, np) in plan.iter().zip(new.params) {
        match *src {
            Src::Old(j, ty) => push_converted(out, ev.param(j).unwrap_or_default(), ty, np.ty),
            Src::Enter(j, ty) => {
                let b = enter.and_then(|(e, _)| e.param(j)).unwrap_or_default();
                push_converted(out, b, Some(ty), np.ty)
            }
            Src::Zero(n) => out.push_param(&[0u8; 8][..n]),
            Src::Empty => out.push_param(&[]),
        }
    }
    std::mem::swap(ev, out);
}

/// Finds each parameter of `target` by name in the old event (of `onp` parameters), then in
/// the enter event (of `enp`).
fn plan(
    old_ty: u16,
    onp: usize,
    target: u16,
    enter: Option<&'static table::EventInfo>,
    enp: usize,
) -> Option<Box<[Src]>> {
    let (old, new) = (table::info(old_ty)?, table::info(target)?);
    let same = target == old_ty;
    let old_has = |name: &str| old.params.iter().take(onp).any(|p| p.name == name);
    let plan = new.params.iter().enumerate().map(|(i, np)| {
        let from_old = if same {
            (i < onp).then(|| Src::Old(i, old.params.get(i).map(|p| p.ty)))
        } else {
            // libs renamed the namespace-local "pgid" to "vpgid" when adding the real pgid.
            let name = match np.name {
                "vpgid" if !old_has("vpgid") => "pgid",
                "pgid" if !old_has("vpgid") => "",
                n => n,
            };
            old.param_index(name)
                .filter(|&j| j < onp)
                .map(|j| Src::Old(j, Some(old.params[j].ty)))
        };
        let from_enter = || {
            let ei = enter?;
            let j = ei.param_index(np.name).filter(|&j| j < enp)?;
            Some(Src::Enter(j, ei.params[j].ty))
        };
        from_old
            .or_else(from_enter)
            .unwrap_or(if i == 0 && np.name == "res" {
                Src::Zero(np.ty.fixed_size().unwrap_or(0).min(8))
            } else {
                Src::Empty
            })
    });
    Some(plan.collect())
}

/// Appends `b` (of type `from`) as a parameter of type `to`, widening or
/// narrowing fixed-size integers when old and new widths differ.
fn push_converted(out: &mut Event, b: &[u8], from: Option<ParamType>, to: ParamType) {
    match to.fixed_size() {
        Some(w) if !b.is_empty() && b.len() != w && w <= 8 && b.len() <= 8 => {
            let signed = matches!(
                from,
                Some(
                    ParamType::Int8
                        | ParamType::Int16
                        | ParamType::Int32
                        | ParamType::Int64
                        | ParamType::Errno
                        | ParamType::Fd
                        | ParamType::Pid
                        | ParamType::Fd32
                        | ParamType::Pid32
                )
            );
            let neg = signed && b.last().is_some_and(|&x| x & 0x80 != 0);
            let mut v = [if neg { 0xff } else { 0 }; 8];
            v[..b.len()].copy_from_slice(b);
            out.push_param(&v[..w]);
        }
        _ => out.push_param(b),
    }
}

/// CONTAINER_E (id, type, name, image) becomes CONTAINER_JSON_2_E with the
/// same `{"container":{...}}` JSON the later versions carry.
fn container_to_json(ev: &mut Event) {
    let s = |i: usize| {
        let b = ev.param(i).unwrap_or_default();
        let b = b.strip_suffix(&[0]).unwrap_or(b);
        json_escape(&String::from_utf8_lossy(b))
    };
    let ty = ev
        .param(1)
        .filter(|b| b.len() == 4)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let json = format!(
        "{{\"container\":{{\"id\":\"{}\",\"type\":{},\"name\":\"{}\",\"image\":\"{}\"}}}}\0",
        s(0),
        ty,
        s(2),
        s(3)
    );
    ev.clear();
    ev.etype = CONTAINER_JSON_2_E;
    ev.push_param(json.as_bytes());
}

fn json_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_ids() {
        assert_eq!(current_id(13), 293); // EXECVE_8_X
        assert_eq!(current_id(289), 293); // EXECVE_18_X
        assert_eq!(current_id(15), 223); // CLONE_11_X
        assert_eq!(current_id(27), 247); // ACCEPT_X
        assert_eq!(current_id(57), 389); // ACCEPT4_X
        assert_eq!(current_id(16), 186); // PROCEXIT_E
        assert_eq!(current_id(146), 152); // SCHEDSWITCH_1_E
        assert_eq!(current_id(272), 324); // CONTAINER_JSON_E
        assert_eq!(current_id(3), 3);
    }

    fn ev(etype: u16, tid: i64, params: &[&[u8]]) -> Event {
        let mut e = Event::new(0, 1, tid, 0, etype);
        for p in params {
            e.push_param(p);
        }
        e
    }

    #[test]
    fn read_pair_merges_enter_params() {
        let mut c = Converter::default();
        let mut e = ev(6, 7, &[&3i64.to_le_bytes(), &100u32.to_le_bytes()]);
        assert!(!c.convert(&mut e));
        let mut x = ev(7, 7, &[&5i64.to_le_bytes(), b"hello"]);
        assert!(c.convert(&mut x));
        assert_eq!(x.etype, 7);
        assert_eq!(x.nparams(), 4);
        assert_eq!(x.param(2), Some(&3i64.to_le_bytes()[..]));
        assert_eq!(x.param(3), Some(&100u32.to_le_bytes()[..]));
    }

    #[test]
    fn exit_without_enter_gets_empty_params() {
        let mut c = Converter::default();
        let mut x = ev(5, 9, &[&0i64.to_le_bytes()]); // close exit, no enter
        assert!(c.convert(&mut x));
        assert_eq!(x.nparams(), 2);
        assert_eq!(x.param(1), Some(&[][..]));
    }

    #[test]
    fn old_execve_upgraded() {
        let mut c = Converter::default();
        let mut e = ev(12, 4, &[]);
        assert!(!c.convert(&mut e));
        let mut x = ev(
            13,
            4,
            &[
                &0i64.to_le_bytes(),
                b"cat\0",
                b"",
                &4i64.to_le_bytes(),
                &4i64.to_le_bytes(),
                &1i64.to_le_bytes(),
                b"/\0",
                &1024u64.to_le_bytes(),
            ],
        );
        assert!(c.convert(&mut x));
        assert_eq!(x.etype, 293);
        assert_eq!(x.nparams(), 31);
        assert_eq!(x.param(1), Some(&b"cat\0"[..]));
        assert_eq!(x.param(7), Some(&1024u64.to_le_bytes()[..]));
        assert_eq!(x.param(13), Some(&[][..]));
    }

    #[test]
    fn old_openat_enter_passes_as_current() {
        let mut c = Converter::default();
        let mut e = ev(
            102,
            4,
            &[
                &(-100i64).to_le_bytes(),
                b"/etc/x\0",
                &1u32.to_le_bytes(),
                &0u32.to_le_bytes(),
            ],
        );
        assert!(c.convert(&mut e));
        assert_eq!((e.etype, e.nparams()), (306, 4));
        assert_eq!(e.param(1), Some(&b"/etc/x\0"[..]));
        let mut x = ev(103, 4, &[&3i64.to_le_bytes()]);
        assert!(c.convert(&mut x));
        assert_eq!((x.etype, x.nparams()), (307, 7));
        assert_eq!(
            x.param(2),
            Some(&b"/etc/x\0"[..]),
            "name from the old enter"
        );
        assert_eq!(x.param(1), Some(&(-100i64).to_le_bytes()[..]));
    }

    #[test]
    fn missing_result_defaults_to_zero() {
        let mut c = Converter::default();
        let mut x = ev(51, 4, &[]); // SENDMMSG_X with no parameters
        assert!(c.convert(&mut x));
        assert_eq!(x.param(0), Some(&0i64.to_le_bytes()[..]));
        assert!(x.nparams() > 1 && x.param(1) == Some(&[][..]));
    }

    #[test]
    fn toctou_enter_passes_padded() {
        let mut c = Converter::default();
        let mut e = ev(2, 4, &[]);
        assert!(c.convert(&mut e));
        assert_eq!((e.etype, e.nparams()), (2, 3));
    }
}
