//! The `refclock test` report: sections (NMEA, PPS) and findings, rendered by one function for
//! people and one for `--json`. Sans-IO: sections are built from counters and events by each
//! driver's own diagnosis, whose findings are a table of [`Rule`]s.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Map, Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Severity {
    /// Worth knowing; the receiver works.
    Note,
    /// Something to fix; exit code 1.
    Problem,
    /// Nothing usable arrived at all; exit code 2.
    NoData,
}

/// One thing seen, and the concrete fix for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Finding {
    pub(crate) severity: Severity,
    /// Stable machine-readable name (`no_data`, `wrong_baud`, `no_fix`…).
    pub(crate) code: &'static str,
    pub(crate) problem: String,
    pub(crate) fix: String,
}

/// One thing a diagnosis can find: when it applies to the facts `F`, and what to tell the
/// operator. A diagnosis is a table of these, checked in order.
pub(crate) struct Rule<F> {
    /// Stable machine-readable name (`no_data`, `wrong_baud`, `no_fix`…); rules may share one.
    pub(crate) code: &'static str,
    pub(crate) severity: Severity,
    /// The problem in words, when the rule applies.
    pub(crate) applies: fn(&F) -> Option<String>,
    /// The concrete fix.
    pub(crate) fix: fn(&F) -> String,
}

/// The findings of `rules` on `facts`, in table order. A [`Severity::NoData`] finding ends the
/// list: without data nothing else can be judged.
pub(crate) fn findings<F>(rules: &[Rule<F>], facts: &F) -> Vec<Finding> {
    let mut out = Vec::new();
    for r in rules {
        if let Some(problem) = (r.applies)(facts) {
            out.push(Finding { severity: r.severity, code: r.code, problem, fix: (r.fix)(facts) });
            if r.severity == Severity::NoData {
                break;
            }
        }
    }
    out
}

/// A titled block of `key: value` lines, plus its JSON form for the summary line.
#[derive(Clone, Debug, Default)]
pub(crate) struct Section {
    pub(crate) title: String,
    /// Key of this section in the JSON summary (`nmea`, `pps`).
    pub(crate) key: String,
    pub(crate) lines: Vec<(String, String)>,
    pub(crate) json: Value,
}

impl Section {
    pub(crate) fn new(title: &str, key: &str) -> Self {
        Section { title: title.into(), key: key.into(), lines: Vec::new(), json: Value::Null }
    }

    pub(crate) fn line(&mut self, key: &str, value: impl std::fmt::Display) {
        self.lines.push((key.into(), value.to_string()));
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Report {
    /// `live` or `replay`.
    pub(crate) mode: String,
    pub(crate) sections: Vec<Section>,
    pub(crate) findings: Vec<Finding>,
}

impl Report {
    pub(crate) fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// 0 healthy, 1 problems, 2 no data.
    pub(crate) fn exit_code(&self) -> u8 {
        match self.worst() {
            Some(Severity::NoData) => 2,
            Some(Severity::Problem) => 1,
            _ => 0,
        }
    }

    pub(crate) fn verdict(&self) -> &'static str {
        match self.worst() {
            Some(Severity::NoData) => "no data",
            Some(Severity::Problem) => "problems",
            _ => "healthy",
        }
    }

    /// The human-readable report.
    pub(crate) fn render_text(&self) -> String {
        let mut out = String::new();
        for s in &self.sections {
            let _ = writeln!(out, "{}", s.title);
            let width = s.lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
            for (k, v) in &s.lines {
                let _ = writeln!(out, "  {k:<width$}  {v}");
            }
            out.push('\n');
        }
        let _ = writeln!(out, "verdict: {}", self.verdict());
        for f in &self.findings {
            let tag = match f.severity {
                Severity::Note => "note",
                Severity::Problem => "problem",
                Severity::NoData => "no data",
            };
            let _ = writeln!(out, "  [{tag}] {}\n      fix: {}", f.problem, f.fix);
        }
        out
    }

    /// The last `--json` line: `{"event":"summary", verdict, exit_code, findings, <sections>}`.
    pub(crate) fn summary_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("event".into(), json!("summary"));
        m.insert("mode".into(), json!(self.mode));
        m.insert("verdict".into(), json!(self.verdict()));
        m.insert("exit_code".into(), json!(self.exit_code()));
        m.insert("findings".into(), json!(self.findings));
        for s in &self.sections {
            m.insert(s.key.clone(), s.json.clone());
        }
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_follows_the_worst_finding() {
        let mut r = Report { mode: "replay".into(), ..Report::default() };
        assert_eq!((r.exit_code(), r.verdict()), (0, "healthy"));
        let f = |severity| Finding { severity, code: "x", problem: "p".into(), fix: "f".into() };
        r.findings.push(f(Severity::Note));
        assert_eq!(r.exit_code(), 0);
        r.findings.push(f(Severity::Problem));
        assert_eq!(r.exit_code(), 1);
        r.findings.push(f(Severity::NoData));
        assert_eq!((r.exit_code(), r.verdict()), (2, "no data"));
        let mut s = Section::new("NMEA", "nmea");
        s.line("sentences", 3);
        s.json = json!({"times": 3});
        r.sections.push(s);
        let j = r.summary_json();
        assert_eq!(j["event"], "summary");
        assert_eq!(j["nmea"]["times"], 3);
        assert!(r.render_text().contains("sentences  3"));
    }

    #[test]
    fn rules_apply_in_order_and_no_data_ends_the_list() {
        let rules: [Rule<u32>; 3] = [
            Rule {
                code: "odd",
                severity: Severity::Note,
                applies: |n| (n % 2 == 1).then(|| format!("{n} is odd")),
                fix: |_| "none".into(),
            },
            Rule {
                code: "zero",
                severity: Severity::NoData,
                applies: |n| (*n < 2).then(|| "nothing".into()),
                fix: |_| "count".into(),
            },
            Rule {
                code: "big",
                severity: Severity::Problem,
                applies: |n| (*n > 0).then(String::new),
                fix: |n| format!("take {}", n - 1),
            },
        ];
        let codes = |n| findings(&rules, &n).iter().map(|f| f.code).collect::<Vec<_>>();
        assert_eq!(codes(1), ["odd", "zero"]);
        assert_eq!(codes(3), ["odd", "big"]);
        assert_eq!(codes(4), ["big"]);
        assert_eq!(findings(&rules, &4)[0].fix, "take 3");
    }
}
