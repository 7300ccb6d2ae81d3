//! A strict reader of the Prometheus/OpenMetrics text exposition, for the web and metrics tests.

use std::collections::BTreeMap;

/// One sample of a Prometheus/OpenMetrics text exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

fn valid_metric_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn valid_label_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

fn parse_value(v: &str) -> Result<f64, String> {
    match v {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => v.parse().map_err(|_| format!("bad sample value {v:?}")),
    }
}

/// Parses `{k="v",...}` starting after `{`; returns the labels and the rest after `}`.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches(',');
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without '='")?;
        let name = &rest[..eq];
        if !valid_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        let r = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = r.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    other => return Err(format!("bad escape in label value: {other:?}")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("duplicate label {name}"));
        }
        rest = &r[end + 1..];
        if !(rest.starts_with(',') || rest.starts_with('}')) {
            return Err(format!("expected ',' or '}}' after label {name}"));
        }
    }
}

/// A strict parser of the Prometheus text / OpenMetrics exposition: every line is a comment
/// (`# HELP`, `# TYPE`, `# UNIT`, `# EOF`) or a well-formed sample; every sample belongs to a
/// family declared with `# TYPE` before it.
pub fn parse_metrics(text: &str) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    let mut families: Vec<String> = Vec::new();
    let mut eof = false;
    for (n, line) in text.lines().enumerate() {
        let err = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if eof {
            return Err(err("content after # EOF".into()));
        }
        if line.is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            let mut parts = c.trim_start().splitn(3, ' ');
            match parts.next() {
                Some("EOF") => eof = true,
                Some("HELP") | Some("UNIT") => {
                    let name = parts.next().ok_or_else(|| err("no name".into()))?;
                    if !valid_metric_name(name) {
                        return Err(err("bad metric name".into()));
                    }
                }
                Some("TYPE") => {
                    let name = parts.next().ok_or_else(|| err("no name".into()))?;
                    let ty = parts.next().ok_or_else(|| err("no type".into()))?;
                    let known = [
                        "counter",
                        "gauge",
                        "histogram",
                        "summary",
                        "untyped",
                        "unknown",
                        "info",
                        "stateset",
                        "gaugehistogram",
                    ];
                    if !valid_metric_name(name) || !known.contains(&ty) {
                        return Err(err("bad TYPE line".into()));
                    }
                    families.push(name.to_string());
                }
                _ => return Err(err("unknown comment".into())),
            }
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| err("no value".into()))?;
        let name = &line[..name_end];
        if !valid_metric_name(name) {
            return Err(err("bad metric name".into()));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end + 1..]).map_err(err)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let mut vals = rest.split_whitespace();
        let value = parse_value(vals.next().ok_or_else(|| err("no value".into()))?).map_err(err)?;
        if let Some(ts) = vals.next() {
            ts.parse::<f64>().map_err(|_| err("bad timestamp".into()))?;
        }
        if vals.next().is_some() {
            return Err(err("trailing text".into()));
        }
        let owned = families.iter().any(|f| {
            name == f
                || ["_total", "_created", "_bucket", "_sum", "_count", "_info"]
                    .iter()
                    .any(|s| name.strip_prefix(f.as_str()) == Some(s))
        });
        if !owned {
            return Err(err("sample without a preceding # TYPE".into()));
        }
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(samples)
}

/// The samples named `name` whose labels include all of `labels`.
pub fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}
