//! Mapping of a Docker-compatible `/containers/<id>/json` answer (docker, podman) to
//! `ContainerMeta`.

use saker_types::{ContainerMeta, Mount};
use serde_json::Value as J;

/// Splits an image reference into (repository, tag, digest).
/// `reg:5000/ns/app:1.2@sha256:ab` → (`reg:5000/ns/app`, `1.2`, `sha256:ab`).
pub fn split_image(image: &str) -> (String, String, String) {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, d.to_string()),
        None => (image, String::new()),
    };
    // A ':' after the last '/' separates the tag; earlier ones belong to a registry port.
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[last_slash..].rfind(':') {
        Some(i) => (
            name[..last_slash + i].to_string(),
            name[last_slash + i + 1..].to_string(),
            digest,
        ),
        None => (name.to_string(), String::new(), digest),
    }
}

/// RFC 3339 timestamp (`2026-11-24T13:55:01.123456789Z` or with a `+hh:mm` offset) to ns
/// since the epoch; None when it does not parse.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut frac_ns = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        let mut scaled = String::from(&digits[..digits.len().min(9)]);
        while scaled.len() < 9 {
            scaled.push('0');
        }
        frac_ns = scaled.parse().ok()?;
    }
    let offset_s = match b.get(i)? {
        b'Z' | b'z' => 0,
        sign @ (b'+' | b'-') => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let o = oh * 3600 + om * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    // Days from civil (proleptic Gregorian), valid for any year we meet.
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset_s;
    if secs < 0 {
        return None;
    }
    // Past 2554 the nanoseconds do not fit in a u64 (found by fuzz/container).
    (secs as u64)
        .checked_mul(1_000_000_000)?
        .checked_add(frac_ns as u64)
}

/// The command line a healthcheck runs as, in the form `proc.is_container_healthcheck`
/// compares with (`exe args...`): `["CMD", exe, args...]` runs as is, `["CMD-SHELL", cmd]`
/// through `/bin/sh -c`; `["NONE"]` or nothing is no healthcheck.
pub fn healthcheck_cmdline(test: &[&str]) -> String {
    match test.split_first() {
        Some((&"CMD", rest)) => rest.join(" "),
        Some((&"CMD-SHELL", rest)) if !rest.is_empty() => format!("/bin/sh -c {}", rest.join(" ")),
        _ => String::new(),
    }
}

fn pairs(v: Option<&J>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = v
        .and_then(J::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Builds metadata from an inspect answer. `runtime` names the engine (`docker`, `podman`).
/// Returns None when the answer has no `Id`.
pub fn meta_from_inspect(json: &[u8], runtime: &str) -> Option<ContainerMeta> {
    let root: J = serde_json::from_slice(json).ok()?;
    let st = |v: Option<&J>| v.and_then(J::as_str).unwrap_or("").to_string();
    let full_id = st(root.get("Id"));
    if full_id.is_empty() {
        return None;
    }
    let config = root.get("Config");
    let host = root.get("HostConfig");
    let image = st(config.and_then(|c| c.get("Image")));
    let (image_repository, image_tag, image_digest) = split_image(&image);
    let labels = pairs(config.and_then(|c| c.get("Labels")));
    let label = |k: &str| {
        labels
            .iter()
            .find(|(lk, _)| lk == k)
            .map_or(String::new(), |(_, v)| v.clone())
    };
    let mounts = root
        .get("Mounts")
        .and_then(J::as_array)
        .map(|a| {
            a.iter()
                .map(|m| Mount {
                    source: st(m.get("Source")),
                    dest: st(m.get("Destination")),
                    mode: st(m.get("Mode")),
                    rdwr: m.get("RW").and_then(J::as_bool).unwrap_or(false),
                    propagation: st(m.get("Propagation")),
                })
                .collect()
        })
        .unwrap_or_default();
    let mode_is = |k: &str, want: &str| {
        host.and_then(|h| h.get(k))
            .and_then(J::as_str)
            .map(|m| m == want)
    };
    let created = root
        .get("Created")
        .and_then(J::as_str)
        .and_then(parse_rfc3339);
    let ip = st(root.get("NetworkSettings").and_then(|n| n.get("IPAddress")));
    let sandbox = label("io.kubernetes.sandbox.id");
    let health: Vec<&str> = config
        .and_then(|c| c.pointer("/Healthcheck/Test"))
        .and_then(J::as_array)
        .map(|a| a.iter().filter_map(J::as_str).collect())
        .unwrap_or_default();
    // dockershim-era Kubernetes containers carry the pod's annotations as labels.
    let (liveness_probe, readiness_probe) = crate::probes::exec_probes(
        &label(&format!("annotation.{}", crate::probes::LAST_APPLIED)),
        &label("io.kubernetes.container.name"),
    );
    Some(ContainerMeta {
        healthcheck: healthcheck_cmdline(&health),
        liveness_probe,
        readiness_probe,
        runtime: runtime.to_string(),
        name: st(root.get("Name")).trim_start_matches('/').to_string(),
        image_id: st(root.get("Image"))
            .trim_start_matches("sha256:")
            .to_string(),
        image,
        image_repository,
        image_tag,
        image_digest,
        privileged: host.and_then(|h| h.get("Privileged")).and_then(J::as_bool),
        mounts,
        start_ts: created.unwrap_or(0),
        ip,
        host_pid: mode_is("PidMode", "host"),
        host_network: mode_is("NetworkMode", "host"),
        host_ipc: mode_is("IpcMode", "host"),
        pod_name: label("io.kubernetes.pod.name"),
        pod_namespace: label("io.kubernetes.pod.namespace"),
        pod_uid: label("io.kubernetes.pod.uid"),
        pod_sandbox_id: sandbox[..sandbox.len().min(12)].to_string(),
        labels,
        full_id,
        ..ContainerMeta::default()
    })
}

/// Full ids of the containers in a `/containers/json` answer.
pub fn ids_from_list(json: &[u8]) -> Vec<String> {
    let Ok(J::Array(a)) = serde_json::from_slice::<J>(json) else {
        return Vec::new();
    };
    a.iter()
        .filter_map(|c| c.get("Id").and_then(J::as_str).map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_out_of_range_is_none() {
        assert_eq!(
            parse_rfc3339("2024-05-01T12:00:00.5Z"),
            Some(1_714_564_800_500_000_000)
        );
        // Found by fuzz/container: the year 4046 overflowed the nanosecond count.
        assert_eq!(parse_rfc3339("4046-05-01T12:00:00.123456789Z"), None);
        assert_eq!(parse_rfc3339("9999-12-31T23:59:59Z"), None);
    }

    #[test]
    fn image_references_split() {
        let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(split_image("localhost/bb:1"), s("localhost/bb", "1", ""));
        assert_eq!(split_image("nginx"), s("nginx", "", ""));
        assert_eq!(
            split_image("reg:5000/ns/app:1.2@sha256:ab"),
            s("reg:5000/ns/app", "1.2", "sha256:ab")
        );
        assert_eq!(split_image("reg:5000/app"), s("reg:5000/app", "", ""));
    }

    #[test]
    fn healthchecks_become_command_lines() {
        assert_eq!(
            healthcheck_cmdline(&["CMD", "/bin/check", "-q"]),
            "/bin/check -q"
        );
        assert_eq!(
            healthcheck_cmdline(&["CMD-SHELL", "curl -f x"]),
            "/bin/sh -c curl -f x"
        );
        assert_eq!(healthcheck_cmdline(&["NONE"]), "");
        assert_eq!(healthcheck_cmdline(&[]), "");
    }

    #[test]
    fn timestamps_parse() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.5Z"),
            Some(1_700_000_000_500_000_000)
        );
        assert_eq!(
            parse_rfc3339("2023-11-15T00:13:20.000000001+02:00"),
            Some(1_700_000_000_000_000_001)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn inspect_answer_maps_to_meta() {
        let id = "ab".repeat(32);
        let j = format!(
            r#"{{"Id":"{id}","Name":"/web","Created":"2023-11-14T22:13:20Z","Image":"sha256:ff00",
            "Config":{{"Image":"localhost/bb:1","Healthcheck":{{"Test":["CMD-SHELL","cat /etc/passwd"]}},"Labels":{{"io.kubernetes.pod.name":"p","io.kubernetes.pod.namespace":"ns",
              "io.kubernetes.pod.uid":"u-1","io.kubernetes.sandbox.id":"{id}"}}}},
            "HostConfig":{{"Privileged":true,"PidMode":"host","NetworkMode":"bridge"}},
            "NetworkSettings":{{"IPAddress":"10.88.0.2"}},
            "Mounts":[{{"Source":"/srv","Destination":"/data","Mode":"z","RW":false,"Propagation":"rprivate"}}]}}"#
        );
        let m = meta_from_inspect(j.as_bytes(), "podman").unwrap();
        assert_eq!(m.full_id, id);
        assert_eq!(m.name, "web");
        assert_eq!(m.runtime, "podman");
        assert_eq!(m.image, "localhost/bb:1");
        assert_eq!(
            (m.image_repository.as_str(), m.image_tag.as_str()),
            ("localhost/bb", "1")
        );
        assert_eq!(m.image_id, "ff00");
        assert_eq!(m.privileged, Some(true));
        assert_eq!((m.host_pid, m.host_network), (Some(true), Some(false)));
        assert_eq!(m.start_ts, 1_700_000_000_000_000_000);
        assert_eq!((m.pod_name.as_str(), m.pod_namespace.as_str()), ("p", "ns"));
        assert_eq!(m.pod_uid, "u-1");
        assert_eq!(m.pod_sandbox_id, "abababababab");
        assert_eq!(m.ip, "10.88.0.2");
        assert_eq!(m.healthcheck, "/bin/sh -c cat /etc/passwd");
        assert_eq!(m.mounts[0].dest, "/data");
        assert!(!m.mounts[0].rdwr);
        assert_eq!(m.label("io.kubernetes.pod.name"), Some("p"));
        assert!(meta_from_inspect(b"{}", "docker").is_none());
        assert!(meta_from_inspect(b"nope", "docker").is_none());
        assert_eq!(
            ids_from_list(br#"[{"Id":"a1"},{"Id":"b2"},{"Names":[]}]"#),
            vec!["a1", "b2"]
        );
        assert!(ids_from_list(b"{}").is_empty());
    }
}
