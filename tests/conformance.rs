//! Transparency against the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`, pinned in `scripts/install-peers.sh`
//! and run on the node 22 installed beside it).
//!
//! The backend is `tests/conformance/server.py`, written with the official
//! Python SDK to implement every server scenario of the suite. The suite runs
//! twice, `--suite all` both times:
//!
//! 1. directly against the backend, served over Streamable HTTP
//!    (`server.py --http 0`);
//! 2. against the gateway's `/mcp`, with the same backend behind it as its
//!    only stdio backend (`server.py --stdio`, no prefix).
//!
//! It prints a scenario × {direct, gateway} table to stderr (visible even when
//! the test passes) and fails:
//!
//! - if the backend itself fails a scenario directly (the backend or the suite
//!   needs updating, not the gateway);
//! - on every scenario that does worse through the gateway than directly, and on
//!   every scenario in which the gateway run raises a warning or failure check
//!   the direct run did not.
//!
//! How the suite reports: with `-o DIR` it writes, per scenario, a directory
//! `DIR/server-<scenario>-<ISO time>/checks.json`, an array of checks
//! `{id, status, errorMessage?, ...}` with status SUCCESS, FAILURE, WARNING,
//! INFO or SKIPPED. A scenario that throws writes no file; the CLI then prints
//! `Failed to run scenario <name>: ...` to stderr. Each scenario's start is
//! announced on stdout as `=== Running scenario: <name> ===`, which gives the
//! list and order of scenarios.
//!
//! Peers come from `scripts/install-peers.sh`: missing, the test is skipped
//! with a SKIPPED line, except under CI=true where it fails. Traffic stays on
//! 127.0.0.1; every process is killed by PID; every wait is bounded.

mod common;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{
    conformance_suite, parse_listen_addr, python, run_bounded, spawn_logged, ConformanceSuite, Gateway, TempDir,
};
use serde_json::{json, Value};

/// Bound on one whole `--suite all` run. A run takes seconds; a call the
/// gateway never answers would make the suite's client wait 60 s per request.
const SUITE_TIMEOUT: Duration = Duration::from_secs(600);
const SERVER_READY: &str = "listening on http://";

/// `tests/conformance/server.py`.
fn backend_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/server.py")
}

// ---------------------------------------------------------------------------
// One scenario's result
// ---------------------------------------------------------------------------

/// A scenario's verdict, worst first (so `<` reads "worse than").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    /// At least one FAILURE check, or no result at all. The suite's own summary
    /// marks these ✗.
    Fail,
    /// No FAILURE, but WARNING checks (or no SUCCESS check). The summary marks
    /// these ✓; the suite's `--expected-failures` mode counts them as failing.
    Warn,
    /// At least one SUCCESS check and nothing else but INFO/SKIPPED.
    Pass,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Fail => "FAIL",
            Verdict::Warn => "warn",
            Verdict::Pass => "pass",
        })
    }
}

/// A FAILURE or WARNING check.
#[derive(Clone, Debug)]
struct Problem {
    id: String,
    status: String,
    message: String,
}

#[derive(Clone, Debug)]
struct ScenarioResult {
    verdict: Verdict,
    problems: Vec<Problem>,
}

impl ScenarioResult {
    fn missing(why: String) -> ScenarioResult {
        ScenarioResult {
            verdict: Verdict::Fail,
            problems: vec![Problem { id: "no-result".into(), status: "FAILURE".into(), message: why }],
        }
    }

    /// From the parsed `checks.json` array.
    fn from_checks(checks: &Value) -> ScenarioResult {
        let Some(checks) = checks.as_array() else {
            return ScenarioResult::missing("checks.json is not a JSON array".into());
        };
        let mut problems = Vec::new();
        let mut successes = 0;
        for check in checks {
            let status = check["status"].as_str().unwrap_or("?");
            match status {
                "SUCCESS" => successes += 1,
                "FAILURE" | "WARNING" => problems.push(Problem {
                    id: check["id"].as_str().unwrap_or("?").to_owned(),
                    status: status.to_owned(),
                    message: one_line(&message_of(check)),
                }),
                _ => {}
            }
        }
        let verdict = if problems.iter().any(|p| p.status == "FAILURE") {
            Verdict::Fail
        } else if !problems.is_empty() || successes == 0 {
            Verdict::Warn
        } else {
            Verdict::Pass
        };
        ScenarioResult { verdict, problems }
    }

    /// `pass`, `warn (id, id)`, `FAIL (id)`: the verdict and the checks behind it.
    fn cell(&self) -> String {
        if self.problems.is_empty() {
            return self.verdict.to_string();
        }
        let ids: Vec<&str> = self.problems.iter().map(|p| p.id.as_str()).collect();
        format!("{} ({})", self.verdict, ids.join(", "))
    }
}

/// A check's `errorMessage`, plus the text a tool answered with when the
/// check recorded the tool's result (`details.result.content`): that is where
/// the reason shows when the tool itself reported a failure.
fn message_of(check: &Value) -> String {
    let mut message = check["errorMessage"].as_str().unwrap_or("").to_owned();
    let texts: Vec<&str> = check["details"]["result"]["content"]
        .as_array()
        .map(|items| items.iter().filter_map(|c| c["text"].as_str()).collect())
        .unwrap_or_default();
    if !texts.is_empty() {
        message.push_str(&format!(" (tool result: {:?})", texts.join(" ")));
    }
    message
}

/// Collapses whitespace and cuts to 240 characters, for a table cell.
fn one_line(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match s.char_indices().nth(240) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

// ---------------------------------------------------------------------------
// One run of the suite
// ---------------------------------------------------------------------------

struct SuiteRun {
    /// Scenario names in the order the suite ran them.
    order: Vec<String>,
    results: BTreeMap<String, ScenarioResult>,
}

/// `server-<scenario>-<ISO time with : and . as ->` → `<scenario>`.
fn scenario_of_dir(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("server-")?;
    // e.g. "2026-12-01T18-27-10-641Z": 24 characters.
    let cut = rest.len().checked_sub(25)?;
    let scenario = rest.get(..cut)?;
    let stamp = rest.get(cut..)?.strip_prefix('-')?;
    let shaped = stamp.len() == 24 && stamp.ends_with('Z') && stamp.as_bytes().get(10) == Some(&b'T');
    shaped.then_some(scenario)
}

/// Runs `conformance server --url URL --suite all -o DIR` and reads its results.
fn run_suite(suite: &ConformanceSuite, label: &str, url: &str) -> SuiteRun {
    let out_dir = TempDir::new(&format!("conformance-{label}"));
    let results_dir = out_dir.path.join("results");
    let mut cmd = Command::new(&suite.node);
    cmd.arg(&suite.cli)
        .args(["server", "--url", url, "--suite", "all", "-o"])
        .arg(&results_dir)
        .current_dir(&out_dir.path)
        .env("NO_COLOR", "1")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env("NO_PROXY", "127.0.0.1,localhost");
    let out = run_bounded(&format!("conformance:{label}"), &mut cmd, SUITE_TIMEOUT);
    let order: Vec<String> = out
        .stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("=== Running scenario: "))
        .filter_map(|l| l.strip_suffix(" ==="))
        .map(str::to_owned)
        .collect();
    assert!(
        !order.is_empty(),
        "the conformance suite ({label}) ran no scenario (status {:?}, timed out: {})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.timed_out,
        out.stdout,
        out.stderr
    );
    let mut results = BTreeMap::new();
    let entries = std::fs::read_dir(&results_dir).map(|d| d.flatten().collect::<Vec<_>>()).unwrap_or_default();
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(scenario) = scenario_of_dir(&name) else { continue };
        let path = entry.path().join("checks.json");
        let result = match std::fs::read_to_string(&path).map(|t| serde_json::from_str::<Value>(&t)) {
            Ok(Ok(checks)) => ScenarioResult::from_checks(&checks),
            Ok(Err(e)) => ScenarioResult::missing(format!("{}: not JSON: {e}", path.display())),
            Err(e) => ScenarioResult::missing(format!("{}: {e}", path.display())),
        };
        results.insert(scenario.to_owned(), result);
    }
    for scenario in &order {
        if results.contains_key(scenario) {
            continue;
        }
        // The suite catches a scenario that throws and writes no checks.json.
        let needle = format!("Failed to run scenario {scenario}:");
        let why = match out.stderr.lines().find(|l| l.contains(&needle)) {
            Some(line) => one_line(line),
            None if out.timed_out => format!("no result: the suite was killed after {SUITE_TIMEOUT:?}"),
            None => "no checks.json written".to_owned(),
        };
        results.insert(scenario.clone(), ScenarioResult::missing(why));
    }
    // Exit 0: every scenario passed; 1: some failed. Anything else means the
    // suite itself did not run properly. (Killed for time: the scenarios it
    // did not finish count as failed.)
    let status = out.status.and_then(|s| s.code());
    assert!(
        out.timed_out || matches!(status, Some(0) | Some(1)),
        "the conformance suite ({label}) exited with {:?}\nstderr:\n{}",
        out.status,
        out.stderr
    );
    SuiteRun { order, results }
}

// ---------------------------------------------------------------------------
// The comparison
// ---------------------------------------------------------------------------

/// Why `gateway` counts as a regression from `direct`, if it does.
fn regression(direct: &ScenarioResult, gateway: &ScenarioResult) -> Option<String> {
    let added: Vec<&Problem> =
        gateway.problems.iter().filter(|p| !direct.problems.iter().any(|d| d.id == p.id)).collect();
    if gateway.verdict >= direct.verdict && added.is_empty() {
        return None;
    }
    let shown: Vec<&Problem> = if added.is_empty() { gateway.problems.iter().collect() } else { added };
    let why: Vec<String> = shown.iter().map(|p| format!("{} {}: {}", p.status, p.id, p.message)).collect();
    Some(format!("{} directly, {} through the gateway; {}", direct.verdict, gateway.verdict, why.join("; ")))
}

/// The markdown table: scenario, the two verdicts, and the gateway run's
/// failing and warning checks with their messages.
fn table(direct: &SuiteRun, gateway: &SuiteRun) -> String {
    let mut names = direct.order.clone();
    for n in &gateway.order {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    let mut s = String::from("| Scenario | Direct | Gateway | Why, through the gateway |\n|---|---|---|---|\n");
    let none = ScenarioResult::missing("not run".into());
    for name in &names {
        let d = direct.results.get(name).unwrap_or(&none);
        let g = gateway.results.get(name).unwrap_or(&none);
        let why: Vec<String> = g.problems.iter().map(|p| format!("{}: {}", p.id, p.message)).collect();
        s.push_str(&format!("| {name} | {} | {} | {} |\n", d.cell(), g.verdict, why.join("; ").replace('|', "\\|")));
    }
    let count = |run: &SuiteRun, v: Verdict| run.results.values().filter(|r| r.verdict == v).count();
    s.push_str(&format!(
        "\nDirect: {} pass, {} warn, {} fail. Gateway: {} pass, {} warn, {} fail ({} scenarios).\n",
        count(direct, Verdict::Pass),
        count(direct, Verdict::Warn),
        count(direct, Verdict::Fail),
        count(gateway, Verdict::Pass),
        count(gateway, Verdict::Warn),
        count(gateway, Verdict::Fail),
        names.len()
    ));
    s
}

#[test]
fn conformance_suite_passes_through_the_gateway_as_it_does_directly() {
    let Some(py) = python() else { return };
    let Some(suite) = conformance_suite() else { return };
    let script = backend_script();

    // (a) The backend on its own, over Streamable HTTP on a free loopback port.
    let state = TempDir::new("conformance-backend");
    let mut backend =
        spawn_logged(Command::new(&py).arg(&script).args(["--http", "0"]).env("PYTHONUNBUFFERED", "1"), &state.path);
    let log = backend.wait_for(SERVER_READY, Duration::from_secs(60));
    let addr = parse_listen_addr(&log, SERVER_READY)
        .unwrap_or_else(|| panic!("server.py --http 0 printed no {SERVER_READY:?} line:\n{log}"));
    let direct = run_suite(&suite, "direct", &format!("http://{addr}/mcp"));
    backend.stop();

    // (b) The same backend behind the gateway, over stdio. The suite's
    // scenarios are of the session revisions, and the suite spoke one to
    // the backend directly; so does the gateway here ("protocol":
    // "legacy"): the fixture server is dual-era, and its fixtures fail
    // the 2026-07-28 result checks of the SDK, which the gateway's era
    // probe would otherwise choose.
    let gw = Gateway::start(&json!({
        "mcpServers": {
            "conformance": { "command": py, "args": [script, "--stdio"], "protocol": "legacy" }
        }
    }));
    let gateway = run_suite(&suite, "gateway", &gw.url("/mcp"));
    let gw_log = gw.log();
    drop(gw);

    // (c) The table, straight to stderr: the test runner would hide
    // eprintln! output of a passing test.
    let table = table(&direct, &gateway);
    let _ = writeln!(std::io::stderr(), "\nconformance suite: direct vs through the gateway\n\n{table}");

    // (d) The verdicts.
    let broken: Vec<String> = direct
        .order
        .iter()
        .filter_map(|n| {
            let r = direct.results.get(n)?;
            (r.verdict == Verdict::Fail).then(|| format!("{n} ({})", r.cell()))
        })
        .collect();
    assert!(
        broken.is_empty(),
        "the conformance backend fails these scenarios on its own, without the gateway; fix \
         tests/conformance/server.py (or the suite changed):\n  {}",
        broken.join("\n  ")
    );
    let none = ScenarioResult::missing("not run".into());
    let regressions: Vec<String> = direct
        .order
        .iter()
        .filter_map(|n| {
            let d = direct.results.get(n).unwrap_or(&none);
            let g = gateway.results.get(n).unwrap_or(&none);
            regression(d, g).map(|why| format!("{n}: {why}"))
        })
        .collect();
    assert!(
        regressions.is_empty(),
        "{} of {} conformance scenarios do worse through the gateway than against the backend directly \
         (table above):\n  {}\n\ngateway log:\n{gw_log}",
        regressions.len(),
        direct.order.len(),
        regressions.join("\n  ")
    );
}

#[test]
fn result_directory_names_give_the_scenario() {
    assert_eq!(
        scenario_of_dir("server-tools-call-with-logging-2026-12-01T18-27-10-641Z"),
        Some("tools-call-with-logging")
    );
    assert_eq!(scenario_of_dir("server-ping-2026-12-01T18-27-08-303Z"), Some("ping"));
    assert_eq!(scenario_of_dir("server-ping"), None);
    assert_eq!(scenario_of_dir("client-ping-2026-12-01T18-27-08-303Z"), None);
    assert_eq!(scenario_of_dir("server-ping-2026-12-01 18-27-08-303Z"), None);
}

#[test]
fn verdicts_and_regressions() {
    let checks = |statuses: &[(&str, &str)]| {
        let v: Vec<Value> = statuses
            .iter()
            .map(|(id, s)| json!({"id": id, "status": s, "errorMessage": format!("{id} broke")}))
            .collect();
        ScenarioResult::from_checks(&Value::Array(v))
    };
    let pass = checks(&[("a", "SUCCESS"), ("info", "INFO")]);
    let warn = checks(&[("a", "SUCCESS"), ("w", "WARNING")]);
    let only_info = checks(&[("info", "INFO")]);
    let fail = checks(&[("a", "FAILURE"), ("w", "WARNING")]);
    assert_eq!(pass.verdict, Verdict::Pass);
    assert_eq!(warn.verdict, Verdict::Warn);
    assert_eq!(only_info.verdict, Verdict::Warn);
    assert_eq!(fail.verdict, Verdict::Fail);
    assert_eq!(ScenarioResult::from_checks(&json!({})).verdict, Verdict::Fail);

    assert!(regression(&pass, &pass).is_none());
    assert!(regression(&warn, &warn).is_none());
    assert!(regression(&fail, &pass).is_none());
    let why = regression(&pass, &fail).expect("pass → fail is a regression");
    assert!(why.contains("FAILURE a: a broke"), "{why}");
    assert!(regression(&pass, &warn).is_some(), "pass → warn is a regression");
    // Same verdict, but a warning the direct run did not have.
    let other_warn = checks(&[("a", "SUCCESS"), ("x", "WARNING")]);
    let why = regression(&warn, &other_warn).expect("a new warning is a regression");
    assert!(why.contains("WARNING x") && !why.contains("WARNING w"), "{why}");
}
