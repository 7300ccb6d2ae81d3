//! The one place where the parsed configuration becomes the outputs stage's options:
//! saker-outputs knows nothing of saker-config, each sink takes its own options struct.

use std::net::SocketAddr;
use std::sync::Arc;

use saker_config::Config;
use saker_outputs::metrics::MetricGroups;
use saker_outputs::ratelimit::RateLimits;
use saker_outputs::sinks::cloudwatch::{CloudwatchMetricsOptions, CloudwatchOptions};
use saker_outputs::sinks::file::FileOptions;
use saker_outputs::sinks::http::HttpOptions;
use saker_outputs::sinks::program::ProgramOptions;
use saker_outputs::sinks::stdout::StdoutOptions;
use saker_outputs::sinks::syslog::SyslogOptions;
use saker_outputs::{
    JsonOptions, Metrics, Outputs, OutputsError, OutputsOptions, QueueOptions, WebOptions,
};

/// The hub's and every sink's options from the config.
pub fn outputs_options(c: &Config) -> OutputsOptions {
    let (h, cw) = (&c.http_output, &c.cloudwatch_output);
    OutputsOptions {
        json_output: c.json_output,
        json_include: JsonOptions {
            include_output: c.json_include_output_property,
            include_message: c.json_include_message_property,
            include_output_fields: c.json_include_output_fields_property,
            include_tags: c.json_include_tags_property,
        },
        buffered_outputs: c.buffered_outputs,
        hostname: c.hostname.clone(),
        output_timeout: c.output_timeout,
        outputs_queue: QueueOptions {
            capacity: c.outputs_queue.capacity,
            spool_dir: c.outputs_queue.spool_dir.clone(),
            spool_max_bytes: c.outputs_queue.spool_max_bytes,
        },
        outputs: RateLimits {
            rate: c.outputs.rate,
            max_burst: c.outputs.max_burst,
            per_rule_rate: c.outputs.per_rule_rate,
            per_rule_max_burst: c.outputs.per_rule_max_burst,
            summary_interval_s: c.outputs.summary_interval_s,
        },
        stdout_output: StdoutOptions {
            enabled: c.stdout_output.enabled,
            min_priority: c.stdout_output.min_priority,
        },
        file_output: FileOptions {
            enabled: c.file_output.enabled,
            keep_alive: c.file_output.keep_alive,
            filename: c.file_output.filename.clone(),
            min_priority: c.file_output.min_priority,
        },
        syslog_output: SyslogOptions {
            enabled: c.syslog_output.enabled,
            path: c.syslog_output.path.clone(),
            facility: c.syslog_output.facility,
            ident: c.syslog_output.ident.clone(),
            min_priority: c.syslog_output.min_priority,
        },
        program_output: ProgramOptions {
            enabled: c.program_output.enabled,
            keep_alive: c.program_output.keep_alive,
            program: c.program_output.program.clone(),
            min_priority: c.program_output.min_priority,
        },
        http_output: HttpOptions {
            enabled: h.enabled,
            url: h.url.clone(),
            user_agent: h.user_agent.clone(),
            insecure: h.insecure,
            ca_cert: h.ca_cert.clone(),
            ca_bundle: h.ca_bundle.clone(),
            ca_path: h.ca_path.clone(),
            mtls: h.mtls,
            client_cert: h.client_cert.clone(),
            client_key: h.client_key.clone(),
            echo: h.echo,
            compress_uploads: h.compress_uploads,
            keep_alive: h.keep_alive,
            custom_headers: h.custom_headers.clone(),
            timeout_ms: h.timeout_ms,
            retries: h.retries,
            backoff_ms: h.backoff_ms,
            min_priority: h.min_priority,
        },
        cloudwatch_output: CloudwatchOptions {
            enabled: cw.enabled,
            log_group: cw.log_group.clone(),
            log_stream: cw.log_stream.clone(),
            region: cw.region.clone(),
            endpoint: cw.endpoint.clone(),
            create_log_group: cw.create_log_group,
            min_priority: cw.min_priority,
            batch_max_events: cw.batch_max_events,
            batch_max_bytes: cw.batch_max_bytes,
            flush_interval_ms: cw.flush_interval_ms,
            retries: cw.retries,
            backoff_ms: cw.backoff_ms,
            metrics: CloudwatchMetricsOptions {
                enabled: cw.metrics.enabled,
                namespace: cw.metrics.namespace.clone(),
                log_stream: cw.metrics.log_stream.clone(),
                interval_s: cw.metrics.interval_s,
            },
        },
    }
}

/// Starts every enabled output of the config.
pub fn start(c: &Config, metrics: Arc<Metrics>) -> Result<Outputs, OutputsError> {
    Outputs::start(&outputs_options(c), metrics)
}

/// The hostname alerts carry (`hostname`, else `FALCO_HOSTNAME`, else the kernel's).
pub fn hostname(c: &Config) -> String {
    saker_outputs::default_hostname(c.hostname.as_deref())
}

/// As Falco: `/metrics` only when both `metrics.enabled` and
/// `webserver.prometheus_metrics_enabled` are true.
pub fn web_options(c: &Config) -> WebOptions {
    let w = &c.webserver;
    WebOptions {
        healthz_path: w.k8s_healthz_endpoint.clone(),
        prometheus: c.metrics.enabled && w.prometheus_metrics_enabled,
        ssl_certificate: w
            .ssl_enabled
            .then(|| std::path::PathBuf::from(&w.ssl_certificate)),
        threadiness: w.threadiness as usize,
        versions: crate::cmd::falco::versions().to_string(),
    }
}

/// `webserver.listen_address`/`listen_port`.
pub fn web_addr(c: &Config) -> Result<SocketAddr, OutputsError> {
    saker_outputs::web_addr(&c.webserver.listen_address, c.webserver.listen_port)
}

/// The `metrics.*_enabled` groups.
pub fn metric_groups(c: &Config) -> MetricGroups {
    let m = &c.metrics;
    MetricGroups {
        rules_counters: m.rules_counters_enabled,
        resource_utilization: m.resource_utilization_enabled,
        state_counters: m.state_counters_enabled,
        kernel_event_counters: m.kernel_event_counters_enabled,
        kernel_event_counters_per_cpu: m.kernel_event_counters_per_cpu_enabled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use saker_rules::Priority;

    fn cfg(yaml: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("saker.yaml");
        std::fs::write(&p, yaml).unwrap();
        saker_config::load(Some(&p), &[]).unwrap().config
    }

    /// The config's defaults and the outputs' own defaults agree, so a test that builds
    /// `OutputsOptions::default()` runs what a bare `saker run` runs.
    #[test]
    fn default_config_maps_to_default_options() {
        assert_eq!(
            outputs_options(&Config::default()),
            OutputsOptions::default()
        );
        assert_eq!(
            web_addr(&Config::default()).unwrap().to_string(),
            "127.0.0.1:8765"
        );
        let expected = WebOptions {
            versions: crate::cmd::falco::versions().to_string(),
            ..Default::default()
        };
        assert_eq!(web_options(&Config::default()), expected);
    }

    #[test]
    fn every_sink_gets_its_keys() {
        let c = cfg(
            "json_output: true\njson_include_tags_property: false\noutput_timeout: 750\n\
            hostname: h1\noutputs: {rate: 2, max_burst: 3}\n\
            file_output: {enabled: true, filename: /tmp/a.log, min_priority: error}\n\
            syslog_output: {enabled: true, facility: 4, ident: sk}\n\
            program_output: {enabled: true, program: 'cat', keep_alive: true}\n\
            http_output: {enabled: true, url: 'http://127.0.0.1:1/', retries: 2, \
              custom_headers: {X-A: b}}\n\
            cloudwatch_output: {enabled: true, log_group: g, metrics: {enabled: true, \
              namespace: N}}\n\
            outputs_queue: {capacity: 7, spool_dir: /tmp/s}\n",
        );
        let o = outputs_options(&c);
        assert!(o.json_output && !o.json_include.include_tags);
        assert_eq!((o.output_timeout, o.hostname.as_deref()), (750, Some("h1")));
        assert_eq!((o.outputs.rate, o.outputs.max_burst), (2.0, 3));
        assert_eq!(o.file_output.filename, "/tmp/a.log");
        assert_eq!(o.file_output.min_priority, Some(Priority::Error));
        assert_eq!(
            (o.syslog_output.facility, o.syslog_output.ident.as_str()),
            (4, "sk")
        );
        assert!(o.program_output.enabled && o.program_output.keep_alive);
        assert_eq!(o.http_output.retries, 2);
        assert_eq!(o.http_output.custom_headers["X-A"], "b");
        assert_eq!(o.cloudwatch_output.log_group, "g");
        assert_eq!(o.cloudwatch_output.metrics.namespace, "N");
        assert_eq!(o.outputs_queue.capacity, 7);
        assert_eq!(o.outputs_queue.spool_dir, "/tmp/s");
    }
}
