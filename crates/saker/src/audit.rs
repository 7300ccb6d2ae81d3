//! The `k8s_audit` source in the binary: `saker replay FILE.json`, and the audit inputs of
//! `saker run` (webhook, EKS CloudWatch Logs), which run on their own threads and hand events
//! to the event loop over a channel.

use std::sync::Arc;

use saker_k8saudit::AuditEvent;
use saker_rules::Alert;

use crate::cmd::replay::ReplayArgs;
use crate::pipeline::Detector;

/// Numbers audit events and runs the `k8s_audit` rules over them.
#[derive(Default)]
pub struct AuditStream {
    num: u64,
    first_ns: Option<u64>,
    matches: Vec<usize>,
}

impl AuditStream {
    /// Evaluates one audit event; syscall rules never see it.
    pub fn on_event(
        &mut self,
        det: &mut Detector,
        mut ev: AuditEvent,
        emit: &mut dyn FnMut(Alert),
    ) {
        self.num += 1;
        ev.num = self.num;
        let first = *self.first_ns.get_or_insert(ev.time_ns);
        det.stats.events += 1;
        self.matches.clear();
        let view = ev.view(&det.hostname, first);
        det.ruleset
            .matches_source(saker_k8saudit::SOURCE, &view, &mut self.matches);
        for &m in &self.matches {
            let a = det
                .ruleset
                .alert(m, &view, ev.time_ns, &det.hostname, &det.alert_opts);
            det.stats.alerts += 1;
            *det.stats.alerts_by_rule.entry(a.rule.clone()).or_default() += 1;
            emit(a);
        }
    }
}

/// Logs a dropped payload or event as the k8saudit plugin does (`[k8saudit] <message>`).
pub fn log_drop(msg: &str) {
    tracing::warn!("[k8saudit] {msg}");
}

/// `saker replay FILE` when FILE (or a directory) holds audit events: evaluates the
/// `k8s_audit` rules only, prints the summary, exits 0 at the end of the input.
pub fn replay(cfg: saker_config::Config, a: &ReplayArgs) -> anyhow::Result<i32> {
    if a.filter.is_some() {
        anyhow::bail!("--filter is not supported for audit inputs; use rules (-r) instead");
    }
    let rules = crate::rules::load(&cfg, a.rules)?;
    let metrics = Arc::new(saker_outputs::Metrics::new());
    let outputs = saker_outputs::Outputs::start(&cfg, metrics)?;
    let max = crate::audit::max_event_size(&cfg)?;
    let mut det = Detector::new(
        saker_state::State::new(saker_state::Config::default()),
        Arc::new(rules.ruleset),
        saker_outputs::default_hostname(&cfg),
        saker_rules::ruleset::AlertOptions {
            time_format_iso_8601: cfg.time_format_iso_8601,
        },
    );
    let mut stream = AuditStream::default();
    let res = saker_k8saudit::reader::read_path(
        a.file,
        max,
        &mut |ev| stream.on_event(&mut det, ev, &mut |al| outputs.send(Arc::new(al))),
        &mut |e| log_drop(&e),
    );
    let report = outputs.shutdown(cfg.outputs.shutdown_timeout);
    res.map_err(|e| anyhow::anyhow!("reading {}: {e}", a.file.display()))?;
    eprint!("{}", det.stats.summary());
    eprint!("{report}");
    Ok(0)
}

/// `maxEventSize` of the configured k8saudit plugin's `init_config` (default 262144).
pub fn max_event_size(cfg: &saker_config::Config) -> anyhow::Result<usize> {
    Ok(crate::audit_config::AuditConfig::from_config(cfg)?.max_event_size)
}
