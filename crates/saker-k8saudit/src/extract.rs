//! `ka.*`, `json.*`/`jevt.*` and the generic `evt.*` fields of audit events.
//!
//! Semantics follow the k8saudit plugin (see ../shared/spec/k8s-audit.md §7–8), with two
//! deliberate differences: `ka.sourceips` reads the top-level `sourceIPs` and
//! `eff_run_as_user`/`eff_run_as_group` read the container's then the pod's
//! `securityContext` (upstream reads paths that never exist).

use std::borrow::Cow;
use std::sync::OnceLock;

use saker_fields::{FieldArg, FieldRef, Value, FIELDS};
use serde_json::Value as Json;

use crate::AuditView;

/// What a field reads, decided once per field id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    NotAudit,
    // generic
    Num,
    Time,
    RawS,
    RawNs,
    Rel,
    RelS,
    RelNs,
    Source,
    Hostname,
    IsAsync,
    /// Served but never present on audit events (`evt.asynctype`).
    Missing,
    PluginName,
    PluginInfo,
    // json plugin
    JsonValue,
    JsonObj,
    JsonRawTime,
    // ka, top level
    Path(&'static [&'static str]),
    UserGroups,
    UriParam,
    TargetPodName,
    Subjects,
    SubjectNames(&'static str),
    SubjectSaNs,
    HasName,
    ConfigMapObj,
    Container(&'static str, CField),
    FirstImage,
    FirstImageRepo,
    AnyPrivileged,
    SupplementalGroups,
    VolHostPath,
    VolFlex,
    VolType,
    VolumeHostPathMatch,
    RoleRules,
    RoleRulesKey(&'static str),
    ServicePorts,
    SourceIps,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CField {
    Name,
    Image,
    ImageRepo,
    Command,
    Args,
    Sc(&'static str),
    AddCaps,
    EffUser,
    EffGroup,
    HostPort,
}

const ANN: &str = "annotations";

fn kind_of(name: &str) -> Kind {
    use Kind::*;
    match name {
        "evt.num" => Num,
        "evt.time" | "evt.time.s" | "evt.time.iso8601" | "evt.datetime" | "evt.datetime.s"
        | "evt.rawtime" | "evt.outputtime" => Time,
        "evt.rawtime.s" => RawS,
        "evt.rawtime.ns" => RawNs,
        "evt.reltime" => Rel,
        "evt.reltime.s" => RelS,
        "evt.reltime.ns" => RelNs,
        "evt.source" => Source,
        "evt.hostname" => Hostname,
        "evt.is_async" => IsAsync,
        "evt.asynctype" => Missing,
        "evt.pluginname" => PluginName,
        "evt.plugininfo" => PluginInfo,
        "json.value" | "jevt.value" => JsonValue,
        "json.obj" | "jevt.obj" => JsonObj,
        "json.rawtime" | "jevt.rawtime" => JsonRawTime,
        "ka.auditid" => Path(&["auditID"]),
        "ka.stage" => Path(&["stage"]),
        "ka.auth.decision" => Path(&[ANN, "authorization.k8s.io/decision"]),
        "ka.auth.reason" => Path(&[ANN, "authorization.k8s.io/reason"]),
        "ka.auth.openshift.decision" => Path(&[ANN, "authentication.openshift.io/decision"]),
        "ka.auth.openshift.username" => Path(&[ANN, "authentication.openshift.io/username"]),
        "ka.validations.admission.policy.failure" => {
            Path(&[ANN, "validation.policy.admission.k8s.io/validation_failure"])
        }
        "ka.security.pod.violations" => Path(&[ANN, "pod-security.kubernetes.io/audit-violations"]),
        "ka.cluster.name" => Path(&[ANN, "cluster_name"]),
        "ka.user.name" => Path(&["user", "username"]),
        "ka.user.groups" => UserGroups,
        "ka.impuser.name" => Path(&["impersonatedUser", "username"]),
        "ka.verb" => Path(&["verb"]),
        "ka.uri" => Path(&["requestURI"]),
        "ka.uri.param" => UriParam,
        "ka.useragent" => Path(&["userAgent"]),
        "ka.target.name" | "ka.req.configmap.name" => Path(&["objectRef", "name"]),
        "ka.target.namespace" => Path(&["objectRef", "namespace"]),
        "ka.target.resource" => Path(&["objectRef", "resource"]),
        "ka.target.subresource" => Path(&["objectRef", "subresource"]),
        "ka.target.pod.name" => TargetPodName,
        "ka.resp.name" => Path(&["responseObject", "metadata", "name"]),
        "ka.response.code" => Path(&["responseStatus", "code"]),
        "ka.response.reason" => Path(&["responseStatus", "reason"]),
        "ka.req.binding.subjects" => Subjects,
        "ka.req.binding.subjects.user_names" => SubjectNames("User"),
        "ka.req.binding.subjects.group_names" => SubjectNames("Group"),
        "ka.req.binding.subjects.serviceaccount_names" => SubjectNames("ServiceAccount"),
        "ka.req.binding.subjects.serviceaccount_ns_names" => SubjectSaNs,
        "ka.req.binding.role" => Path(&["requestObject", "roleRef", "name"]),
        "ka.req.binding.subject.has_name" => HasName,
        "ka.req.configmap.obj" => ConfigMapObj,
        "ka.req.container.image" => FirstImage,
        "ka.req.container.image.repository" => FirstImageRepo,
        "ka.req.container.privileged" => AnyPrivileged,
        "ka.req.pod.host_network" | "ka.req.container.host_network" => {
            Path(&["requestObject", "spec", "hostNetwork"])
        }
        "ka.req.pod.host_pid" => Path(&["requestObject", "spec", "hostPID"]),
        "ka.req.pod.host_ipc" => Path(&["requestObject", "spec", "hostIPC"]),
        "ka.req.pod.run_as_user" => {
            Path(&["requestObject", "spec", "securityContext", "runAsUser"])
        }
        "ka.req.pod.run_as_group" => {
            Path(&["requestObject", "spec", "securityContext", "runAsGroup"])
        }
        "ka.req.pod.fs_group" => Path(&["requestObject", "spec", "securityContext", "fsGroup"]),
        "ka.req.pod.supplemental_groups" => SupplementalGroups,
        "ka.req.pod.volumes.hostpath" => VolHostPath,
        "ka.req.pod.volumes.flexvolume_driver" => VolFlex,
        "ka.req.pod.volumes.volume_type" => VolType,
        "ka.req.volume.hostpath" => VolumeHostPathMatch,
        "ka.req.role.rules" => RoleRules,
        "ka.req.role.rules.verbs" => RoleRulesKey("verbs"),
        "ka.req.role.rules.resources" => RoleRulesKey("resources"),
        "ka.req.role.rules.apiGroups" => RoleRulesKey("apiGroups"),
        "ka.req.role.rules.nonResourceURLs" => RoleRulesKey("nonResourceURLs"),
        "ka.req.service.type" => Path(&["requestObject", "spec", "type"]),
        "ka.req.service.ports" => ServicePorts,
        "ka.sourceips" => SourceIps,
        n => match container_kind(n) {
            Some(k) => k,
            None => NotAudit,
        },
    }
}

fn container_kind(name: &str) -> Option<Kind> {
    let rest = name.strip_prefix("ka.req.pod.")?;
    let (list, f) = rest.split_once('.')?;
    let list: &'static str = match list {
        "containers" => "containers",
        "initContainers" => "initContainers",
        "ephemeralContainers" => "ephemeralContainers",
        _ => return None,
    };
    let f = match f {
        "name" => CField::Name,
        "image" => CField::Image,
        "image.repository" => CField::ImageRepo,
        "command" => CField::Command,
        "args" => CField::Args,
        "privileged" => CField::Sc("privileged"),
        "allow_privilege_escalation" => CField::Sc("allowPrivilegeEscalation"),
        "read_only_fs" => CField::Sc("readOnlyRootFilesystem"),
        "run_as_user" => CField::Sc("runAsUser"),
        "run_as_group" => CField::Sc("runAsGroup"),
        "proc_mount" => CField::Sc("procMount"),
        "add_capabilities" => CField::AddCaps,
        "eff_run_as_user" => CField::EffUser,
        "eff_run_as_group" => CField::EffGroup,
        "host_port" => CField::HostPort,
        _ => return None,
    };
    Some(Kind::Container(list, f))
}

fn kind(f: &FieldRef) -> Kind {
    static TABLE: OnceLock<Vec<Kind>> = OnceLock::new();
    TABLE
        .get_or_init(|| FIELDS.iter().map(|f| kind_of(f.name)).collect())
        .get(f.id.0 as usize)
        .copied()
        .unwrap_or(Kind::NotAudit)
}

/// A JSON value as upstream renders it: strings raw, anything else compact JSON.
fn text(v: &Json) -> Cow<'_, str> {
    match v {
        Json::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

fn val(c: Cow<'_, str>) -> Value<'_> {
    match c {
        Cow::Borrowed(s) => Value::str(s),
        Cow::Owned(s) => Value::string(s),
    }
}

fn list(items: Vec<Value<'_>>) -> Option<Value<'_>> {
    // An empty list counts as missing (libsinsp: nothing extracted).
    (!items.is_empty()).then_some(Value::List(items))
}

fn path<'j>(mut v: &'j Json, p: &[&str]) -> Option<&'j Json> {
    for k in p {
        v = v.get(*k)?;
    }
    Some(v)
}

/// `[N]` of an index field: element N only (out of range: nothing); otherwise all.
fn select<'j>(arr: &'j [Json], arg: &FieldArg) -> &'j [Json] {
    match arg {
        FieldArg::Index(i) => arr.get(*i as usize).map_or(&[], std::slice::from_ref),
        _ => arr,
    }
}

fn array<'j>(v: &'j Json, p: &[&str]) -> Option<&'j [Json]> {
    path(v, p)?.as_array().map(Vec::as_slice)
}

/// Text before the first `:`, then before the first `@` (upstream's split, kept because
/// rules compare against it).
fn repository(image: &str) -> &str {
    let s = image.split(':').next().unwrap_or(image);
    s.split('@').next().unwrap_or(s)
}

pub(crate) fn extract<'a>(v: &AuditView<'a>, f: &FieldRef) -> Option<Value<'a>> {
    let ev = v.ev;
    let j = &ev.json;
    let k = kind(f);
    let ts = ev.time_ns;
    let rel = ts.saturating_sub(v.first_ns);
    match k {
        Kind::NotAudit | Kind::Missing => return None,
        Kind::Num => return Some(Value::U64(ev.num)),
        Kind::Time => return Some(Value::U64(ts)),
        Kind::RawS => return Some(Value::U64(ts / 1_000_000_000)),
        Kind::RawNs => return Some(Value::U64(ts % 1_000_000_000)),
        Kind::Rel => return Some(Value::U64(rel)),
        Kind::RelS => return Some(Value::U64(rel / 1_000_000_000)),
        Kind::RelNs => return Some(Value::U64(rel % 1_000_000_000)),
        Kind::Source => return Some(Value::str(crate::SOURCE)),
        Kind::Hostname => return (!v.hostname.is_empty()).then(|| Value::str(v.hostname)),
        Kind::IsAsync => return Some(Value::Bool(false)),
        Kind::PluginName => return Some(Value::str(crate::PLUGIN_NAME)),
        Kind::PluginInfo => return Some(Value::str(&ev.payload)),
        Kind::JsonValue => {
            let FieldArg::Key(p) = &f.arg else {
                return None;
            };
            let found = if p.is_empty() || p.starts_with('/') {
                j.pointer(p)
            } else {
                j.pointer(&format!("/{p}"))
            };
            return found.map(|x| val(text(x)));
        }
        Kind::JsonObj => {
            return Some(Value::str(
                ev.pretty
                    .get_or_init(|| crate::payload::pretty(&ev.payload)),
            ))
        }
        Kind::JsonRawTime => return Some(Value::string(ts.to_string())),
        _ => {}
    }
    // Without an auditID nothing is a k8s audit field.
    j.get("auditID")?;
    let req = |p: &[&str]| -> Option<&'a Json> { path(j.get("requestObject")?, p) };
    match k {
        Kind::Path(p) => path(j, p).map(|x| val(text(x))),
        Kind::UserGroups => {
            let g = array(j, &["user", "groups"])?;
            list(g.iter().map(|x| val(text(x))).collect())
        }
        Kind::UriParam => {
            let FieldArg::Key(key) = &f.arg else {
                return None;
            };
            let q = ev.query.get_or_init(|| {
                let uri = j.get("requestURI")?.as_str()?;
                parse_query(uri.split_once('?').map_or("", |(_, q)| q))
            });
            q.as_ref()?
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| Value::str(v.as_str()))
        }
        Kind::TargetPodName => {
            let o = j.get("objectRef")?;
            if o.get("resource")?.as_str()? != "pods" || o.get("subresource").is_some() {
                return None;
            }
            path(j, &["responseObject", "metadata", "name"]).map(|x| val(text(x)))
        }
        Kind::Subjects => {
            let s = req(&["subjects"])?.as_array()?;
            list(s.iter().map(|x| Value::string(x.to_string())).collect())
        }
        Kind::SubjectNames(want) => {
            let s = req(&["subjects"])?.as_array()?;
            list(
                s.iter()
                    .filter(|x| x.get("kind").and_then(Json::as_str) == Some(want))
                    .filter_map(|x| x.get("name").map(|n| val(text(n))))
                    .collect(),
            )
        }
        Kind::SubjectSaNs => {
            let s = req(&["subjects"])?.as_array()?;
            list(
                s.iter()
                    .filter(|x| x.get("kind").and_then(Json::as_str) == Some("ServiceAccount"))
                    .filter_map(|x| {
                        let ns = x.get("namespace")?;
                        let n = x.get("name")?;
                        Some(Value::string(format!("{}:{}", text(ns), text(n))))
                    })
                    .collect(),
            )
        }
        Kind::HasName => Some(Value::str("true")),
        Kind::ConfigMapObj => req(&["data"]).map(|d| Value::string(d.to_string())),
        Kind::Container(c, cf) => container_field(j, c, cf, &f.arg),
        Kind::FirstImage | Kind::FirstImageRepo => {
            let img = req(&["spec", "containers"])?
                .as_array()?
                .first()?
                .get("image")?;
            let t = text(img);
            Some(if k == Kind::FirstImage {
                val(t)
            } else {
                Value::string(repository(&t).to_string())
            })
        }
        Kind::AnyPrivileged => {
            let cs = req(&["spec", "containers"])?.as_array()?;
            let any = cs.iter().any(|c| {
                path(c, &["securityContext", "privileged"]).and_then(Json::as_bool) == Some(true)
            });
            Some(Value::str(if any { "true" } else { "false" }))
        }
        Kind::SupplementalGroups => {
            let g = req(&["spec", "securityContext", "supplementalGroups"])?.as_array()?;
            list(g.iter().map(|x| val(text(x))).collect())
        }
        Kind::VolHostPath | Kind::VolFlex | Kind::VolType => {
            let vols = select(req(&["spec", "volumes"])?.as_array()?, &f.arg);
            let mut out = Vec::new();
            for vol in vols {
                match k {
                    Kind::VolHostPath => {
                        out.extend(path(vol, &["hostPath", "path"]).map(|x| val(text(x))))
                    }
                    Kind::VolFlex => {
                        out.extend(path(vol, &["flexVolume", "driver"]).map(|x| val(text(x))))
                    }
                    _ => {
                        if let Some(o) = vol.as_object() {
                            out.extend(o.keys().filter(|k| *k != "name").map(|k| Value::str(k)));
                        }
                    }
                }
            }
            list(out)
        }
        Kind::VolumeHostPathMatch => {
            let FieldArg::Key(want) = &f.arg else {
                return None;
            };
            let vols = req(&["spec", "volumes"])?.as_array()?;
            let hit = vols.iter().any(|vol| {
                let Some(p) = path(vol, &["hostPath", "path"]).and_then(Json::as_str) else {
                    return false;
                };
                match want.strip_suffix('*') {
                    Some(prefix) => p.starts_with(prefix),
                    None => p == want,
                }
            });
            Some(Value::str(if hit { "true" } else { "false" }))
        }
        Kind::RoleRules => {
            let r = req(&["rules"])?.as_array()?;
            list(r.iter().map(|x| Value::string(x.to_string())).collect())
        }
        Kind::RoleRulesKey(key) => {
            let rules = select(req(&["rules"])?.as_array()?, &f.arg);
            let mut out = Vec::new();
            for r in rules {
                if let Some(a) = r.get(key).and_then(Json::as_array) {
                    out.extend(a.iter().map(|x| val(text(x))));
                }
            }
            list(out)
        }
        Kind::ServicePorts => {
            // Upstream quirk kept: one element, the whole array as JSON; the index is ignored.
            let p = req(&["spec", "ports"])?;
            Some(Value::List(vec![Value::string(p.to_string())]))
        }
        Kind::SourceIps => {
            let ips = select(j.get("sourceIPs")?.as_array()?, &f.arg);
            list(ips.iter().map(|x| val(text(x))).collect())
        }
        _ => None,
    }
}

fn container_field<'a>(j: &'a Json, c: &str, cf: CField, arg: &FieldArg) -> Option<Value<'a>> {
    let spec = path(j, &["requestObject", "spec"])?;
    let cs = select(spec.get(c)?.as_array()?, arg);
    let mut out = Vec::with_capacity(cs.len());
    for ct in cs {
        match cf {
            // A container without name/image makes the whole field missing.
            CField::Name => out.push(val(text(ct.get("name")?))),
            CField::Image => out.push(val(text(ct.get("image")?))),
            CField::ImageRepo => {
                let t = text(ct.get("image")?);
                out.push(Value::string(repository(&t).to_string()));
            }
            CField::Command | CField::Args => {
                let key = if cf == CField::Command {
                    "command"
                } else {
                    "args"
                };
                if let Some(a) = ct.get(key).and_then(Json::as_array) {
                    let parts: Vec<Cow<str>> = a.iter().map(text).collect();
                    out.push(Value::string(parts.join(" ")));
                }
            }
            CField::Sc(key) => {
                if let Some(x) = path(ct, &["securityContext", key]) {
                    out.push(val(text(x)));
                }
            }
            CField::AddCaps => {
                if let Some(x) = path(ct, &["securityContext", "capabilities", "add"]) {
                    out.push(Value::string(x.to_string()));
                }
            }
            CField::EffUser | CField::EffGroup => {
                let key = if cf == CField::EffUser {
                    "runAsUser"
                } else {
                    "runAsGroup"
                };
                let v = path(ct, &["securityContext", key])
                    .or_else(|| path(spec, &["securityContext", key]));
                out.push(v.map_or(Value::str("0"), |x| val(text(x))));
            }
            CField::HostPort => {
                if let Some(ports) = ct.get("ports").and_then(Json::as_array) {
                    for p in ports {
                        if let Some(x) = p.get("hostPort").or_else(|| p.get("containerPort")) {
                            out.push(val(text(x)));
                        }
                    }
                }
            }
        }
    }
    list(out)
}

/// A URL query as Go's `url.ParseQuery` reads it; `None` where Go reports an error (a `;`
/// or a bad `%` escape), which makes `ka.uri.param` missing.
fn parse_query(q: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for part in q.split('&') {
        if part.is_empty() {
            continue;
        }
        if part.contains(';') {
            return None;
        }
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        out.push((unescape(k)?, unescape(v)?));
    }
    Some(out)
}

fn unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_audit_field_of_the_registry_is_served() {
        for f in FIELDS {
            if f.in_source(crate::SOURCE) {
                assert_ne!(
                    kind_of(f.name),
                    Kind::NotAudit,
                    "{} is not extracted",
                    f.name
                );
            }
        }
    }

    #[test]
    fn query_parsing_like_go() {
        assert_eq!(
            parse_query("command=bash&container=nginx1&command=sh&x=a%20b+c"),
            Some(vec![
                ("command".into(), "bash".into()),
                ("container".into(), "nginx1".into()),
                ("command".into(), "sh".into()),
                ("x".into(), "a b c".into())
            ])
        );
        assert_eq!(parse_query("a=%zz"), None);
        assert_eq!(parse_query("a=1;b=2"), None);
        assert_eq!(parse_query("a="), Some(vec![("a".into(), String::new())]));
        assert_eq!(repository("reg:5000/x:1"), "reg");
        assert_eq!(repository("nginx@sha256:abc"), "nginx");
        assert_eq!(
            repository("docker.io/library/nginx:1.25"),
            "docker.io/library/nginx"
        );
    }
}
