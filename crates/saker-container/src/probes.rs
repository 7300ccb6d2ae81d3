//! Kubernetes liveness and readiness probe commands of a container, read from the pod spec
//! that `kubectl apply` leaves in the `kubectl.kubernetes.io/last-applied-configuration`
//! annotation, as `proc.is_container_liveness_probe` / `..._readiness_probe` compare them
//! (the exec command's words joined by spaces).

use serde_json::Value as J;

/// The pod annotation holding the applied pod spec.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// (liveness, readiness) exec commands of container `name` in an applied pod (or pod
/// template) JSON; empty strings where there is none.
pub fn exec_probes(last_applied: &str, name: &str) -> (String, String) {
    let Ok(root) = serde_json::from_str::<J>(last_applied) else {
        return Default::default();
    };
    // A bare pod has spec.containers; a workload has spec.template.spec.containers.
    let containers = root
        .pointer("/spec/containers")
        .or_else(|| root.pointer("/spec/template/spec/containers"))
        .and_then(J::as_array);
    let Some(c) = containers.and_then(|cs| {
        cs.iter()
            .find(|c| c.get("name").and_then(J::as_str) == Some(name))
    }) else {
        return Default::default();
    };
    let cmd = |probe: &str| {
        c.get(probe)
            .and_then(|p| p.pointer("/exec/command"))
            .and_then(J::as_array)
            .map(|a| a.iter().filter_map(J::as_str).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    (cmd("livenessProbe"), cmd("readinessProbe"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_of_the_named_container() {
        let pod = r#"{"kind":"Pod","spec":{"containers":[
            {"name":"side","livenessProbe":{"exec":{"command":["true"]}}},
            {"name":"app","livenessProbe":{"exec":{"command":["cat","/tmp/healthy"]}},
             "readinessProbe":{"httpGet":{"path":"/"}}}]}}"#;
        assert_eq!(
            exec_probes(pod, "app"),
            ("cat /tmp/healthy".to_string(), String::new())
        );
        assert_eq!(exec_probes(pod, "side").0, "true");
        assert_eq!(exec_probes(pod, "none"), Default::default());
        let deploy = r#"{"spec":{"template":{"spec":{"containers":[
            {"name":"app","readinessProbe":{"exec":{"command":["/bin/ready","-q"]}}}]}}}}"#;
        assert_eq!(exec_probes(deploy, "app").1, "/bin/ready -q");
        assert_eq!(exec_probes("not json", "app"), Default::default());
    }
}
