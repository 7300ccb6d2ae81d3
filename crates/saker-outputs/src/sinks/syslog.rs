//! syslog: RFC 3164 datagrams to a unix socket (`/dev/log`), severity = the
//! rule priority (Falco's priorities are syslog's severities, 0..7).

use tokio::net::UnixDatagram;

use std::path::PathBuf;

use saker_rules::Priority;

use super::SinkCtx;
use crate::format::civil;
use crate::report::Reason;

/// `syslog_output` (falco.yaml).
#[derive(Debug, Clone, PartialEq)]
pub struct SyslogOptions {
    pub enabled: bool,
    /// Unix datagram socket of the syslog daemon.
    pub path: PathBuf,
    /// RFC 3164 facility number (1 = user, 4 = auth, 16..23 = local0..7).
    pub facility: u8,
    pub ident: String,
    pub min_priority: Option<Priority>,
}

impl Default for SyslogOptions {
    fn default() -> Self {
        SyslogOptions {
            enabled: false,
            path: PathBuf::from("/dev/log"),
            facility: 1,
            ident: "saker".into(),
            min_priority: None,
        }
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `<PRI>Mmm dd hh:mm:ss ident[pid]: line` (timestamp in UTC, day space-padded).
pub fn rfc3164(
    facility: u8,
    severity: u8,
    time_ns: u64,
    ident: &str,
    pid: u32,
    line: &str,
) -> String {
    let pri = u32::from(facility) * 8 + u32::from(severity);
    let (_, mo, d, h, mi, s) = civil(time_ns / 1_000_000_000);
    let mon = MONTHS[(mo as usize).saturating_sub(1) % 12];
    format!("<{pri}>{mon} {d:>2} {h:02}:{mi:02}:{s:02} {ident}[{pid}]: {line}")
}

pub async fn run(mut ctx: SinkCtx, cfg: SyslogOptions) {
    let pid = std::process::id();
    let mut sock: Option<UnixDatagram> = None;
    while let Some(a) = ctx.recv().await {
        let line = ctx.fmt.line(&a);
        let msg = rfc3164(
            cfg.facility,
            a.priority as u8,
            now_ns(),
            &cfg.ident,
            pid,
            &line,
        );
        let t0 = std::time::Instant::now();
        let res = async {
            if sock.is_none() {
                let s = UnixDatagram::unbound()?;
                s.connect(&cfg.path)?;
                sock = Some(s);
            }
            match sock.as_ref() {
                Some(s) => s.send(msg.as_bytes()).await.map(|_| ()),
                None => Ok(()),
            }
        }
        .await;
        ctx.check_slow(t0);
        match res {
            Ok(()) => ctx.delivered(1),
            Err(e) => {
                // Reconnect next time: the daemon may have restarted.
                sock = None;
                ctx.give_up(
                    1,
                    Reason::GaveUp,
                    &format!("send to {} failed: {e}", cfg.path.display()),
                );
            }
        }
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn header() {
        assert_eq!(
            super::rfc3164(1, 4, 1_714_564_800_000_000_001, "saker", 42, "x"),
            "<12>May  1 12:00:00 saker[42]: x"
        );
    }
}
