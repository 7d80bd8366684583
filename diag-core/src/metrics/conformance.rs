//! Test-only structural check of an OpenMetrics exposition: what a strict parser
//! (Prometheus' scraper) would reject, and the exemplar rules diag promises.

use std::collections::HashSet;

use super::exemplar::MAX_EXEMPLAR_LABEL_CODE_POINTS;

type Labels = Vec<(String, String)>;

struct Sample<'a> {
    name: &'a str,
    labels: Vec<(String, String)>,
    value: f64,
    exemplar: Option<(Vec<(String, String)>, f64)>,
}

fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut rest = s.strip_prefix('{').ok_or("labels must start with {")?;
    let mut labels = Vec::new();
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        if !labels.is_empty() {
            rest = rest
                .strip_prefix(',')
                .ok_or_else(|| format!("expected , at {rest}"))?;
        }
        let eq = rest
            .find("=\"")
            .ok_or_else(|| format!("no =\" in {rest}"))?;
        let name = &rest[..eq];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad label name {name:?}"));
        }
        rest = &rest[eq + 2..];
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.push((name.to_owned(), value));
        rest = &rest[end + 1..];
    }
}

fn parse_float(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("bad number {s:?}")),
    }
}

fn parse_sample(line: &str) -> Result<Sample<'_>, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    let (labels, rest) = if line[name_end..].starts_with('{') {
        parse_labels(&line[name_end..])?
    } else {
        (Vec::new(), &line[name_end..])
    };
    let rest = rest
        .strip_prefix(' ')
        .ok_or("expected space before value")?;
    let (value, exemplar) = match rest.split_once(" # ") {
        Some((v, ex)) => {
            let (ex_labels, ex_rest) = parse_labels(ex)?;
            let mut parts = ex_rest.trim_start().split(' ');
            let ex_value = parse_float(parts.next().unwrap_or_default())?;
            let ts = parts.next().ok_or("exemplar without timestamp")?;
            parse_float(ts)?;
            (v, Some((ex_labels, ex_value)))
        }
        None => (rest, None),
    };
    Ok(Sample {
        name,
        labels,
        value: parse_float(value)?,
        exemplar,
    })
}

/// Checks `text`; the error names the offending line.
pub(crate) fn check_openmetrics(text: &str) -> Result<(), String> {
    let body = text
        .strip_suffix("# EOF\n")
        .ok_or("must end with # EOF\\n")?;
    let mut families = HashSet::new();
    let mut family: Option<(String, String)> = None; // (name, type)
    let mut buckets: Vec<(f64, f64)> = Vec::new(); // (le, cumulative) of the current series
    for (n, line) in body.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line}", n + 1);
        if let Some(meta) = line.strip_prefix("# ") {
            let mut parts = meta.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            match kind {
                "TYPE" => {
                    if !families.insert(name.to_owned()) {
                        return Err(at("family declared twice".into()));
                    }
                    family = Some((name.to_owned(), parts.next().unwrap_or("").to_owned()));
                }
                "HELP" | "UNIT" => {
                    if kind == "UNIT"
                        && !name.ends_with(&format!("_{}", parts.next().unwrap_or("?")))
                    {
                        return Err(at("UNIT must be the name's suffix".into()));
                    }
                }
                _ => return Err(at("unknown metadata".into())),
            }
            continue;
        }
        let s = parse_sample(line).map_err(at)?;
        let (fname, ftype) = family
            .as_ref()
            .ok_or_else(|| at("sample before TYPE".into()))?;
        let suffix = s
            .name
            .strip_prefix(fname.as_str())
            .ok_or_else(|| at("sample outside its family".into()))?;
        let allowed: &[&str] = match ftype.as_str() {
            "counter" => &["_total"],
            "gauge" => &[""],
            "histogram" => &["_bucket", "_count", "_sum"],
            t => return Err(at(format!("type {t}"))),
        };
        if !allowed.contains(&suffix) {
            return Err(at(format!("suffix {suffix:?} not allowed for {ftype}")));
        }
        if let Some((labels, value)) = &s.exemplar {
            let points: usize = labels
                .iter()
                .map(|(k, v)| k.chars().count() + v.chars().count())
                .sum();
            if points > MAX_EXEMPLAR_LABEL_CODE_POINTS {
                return Err(at("exemplar labels too long".into()));
            }
            if suffix == "_bucket" {
                let le = s
                    .labels
                    .iter()
                    .find(|(k, _)| k == "le")
                    .map(|(_, v)| parse_float(v));
                let le = le
                    .ok_or_else(|| at("bucket without le".into()))?
                    .map_err(at)?;
                let lower = buckets.last().map_or(f64::NEG_INFINITY, |b| b.0);
                if !(*value > lower && *value <= le) {
                    return Err(at(format!("exemplar {value} outside ({lower}, {le}]")));
                }
            } else if suffix != "_total" {
                return Err(at("exemplar on a sample that cannot have one".into()));
            }
        }
        if suffix == "_bucket" {
            let le = s
                .labels
                .iter()
                .find(|(k, _)| k == "le")
                .ok_or_else(|| at("no le".into()))?;
            let le = parse_float(&le.1).map_err(at)?;
            if let Some(&(prev_le, prev)) = buckets.last()
                && (le <= prev_le || s.value < prev)
            {
                return Err(at("buckets out of order or not cumulative".into()));
            }
            buckets.push((le, s.value));
        } else if suffix == "_count" {
            match buckets.last() {
                Some(&(le, total)) if le == f64::INFINITY && total == s.value => buckets.clear(),
                _ => return Err(at("_count without a matching +Inf bucket".into())),
            }
        }
    }
    Ok(())
}

/// Runs `promtool check metrics` (the Debian package `prometheus` brings it) on a
/// classic exposition; the error carries promtool's complaints.
pub(crate) fn check_with_promtool(text: &str) -> Result<(), String> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!(
                "promtool is needed to check the classic exposition ({e}); install the Debian package `prometheus` (apt-get install prometheus)"
            )
        })?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(text.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "promtool check metrics failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
