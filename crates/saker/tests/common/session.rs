//! The start/stop driver of the `saker` binary: start it as a child, wait until it is ready,
//! watch its output while it runs, stop it with a signal and keep what it printed.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{saker_bin, Alert};

pub const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A running `saker` child whose stdout and stderr lines are collected as they arrive.
pub struct Session {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
}

fn collect(r: impl Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            into.lock().unwrap_or_else(|p| p.into_inner()).push(line);
        }
    })
}

fn lines(v: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    v.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// What a stopped session left behind.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

impl Finished {
    pub fn alerts(&self) -> Vec<Alert> {
        self.stdout.iter().filter_map(|l| Alert::parse(l)).collect()
    }

    /// The alerts that mention this test's token.
    pub fn alerts_mentioning(&self, tok: &str) -> Vec<Alert> {
        self.alerts()
            .into_iter()
            .filter(|a| a.mentions(tok))
            .collect()
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.join("\n")
    }
}

impl Session {
    /// `saker run -r RULES -o OPT...`, the shape most live tests start.
    pub fn run(rules: &std::path::Path, opts: &[&str]) -> Session {
        let mut args: Vec<&OsStr> = vec![OsStr::new("run"), OsStr::new("-r"), rules.as_os_str()];
        for o in opts {
            args.push(OsStr::new("-o"));
            args.push(OsStr::new(o));
        }
        Session::start(&args)
    }

    /// Starts `saker ARGS` and waits for its `saker: started` line.
    pub fn start(args: &[&OsStr]) -> Session {
        Session::start_with_env(args, &[])
    }

    /// Like [`Session::start`], with environment variables for the child.
    pub fn start_with_env(args: &[&OsStr], env: &[(&str, &OsStr)]) -> Session {
        let mut child = Command::new(saker_bin())
            .envs(env.iter().copied())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn saker");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().expect("stdout"), stdout.clone()),
            collect(child.stderr.take().expect("stderr"), stderr.clone()),
        ];
        let mut s = Session {
            child,
            stdout,
            stderr,
            readers,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while !s.stderr_has("saker: started") {
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!(
                    "saker {args:?} exited before starting ({st}):\n{}",
                    s.stderr_lines().join("\n")
                );
            }
            if Instant::now() > deadline {
                let _ = s.child.kill();
                panic!(
                    "saker {args:?} did not start within {START_TIMEOUT:?}:\n{}",
                    s.stderr_lines().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(st.success(), "kill -{sig} failed");
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        lines(&self.stderr)
    }

    pub fn stderr_has(&self, part: &str) -> bool {
        self.stderr_count(part) > 0
    }

    /// Number of stderr lines containing `part`.
    pub fn stderr_count(&self, part: &str) -> usize {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|l| l.contains(part))
            .count()
    }

    pub fn alerts(&self) -> Vec<Alert> {
        self.stdout
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|l| Alert::parse(l))
            .collect()
    }

    /// Waits until `pred` holds for the alerts printed so far.
    pub fn wait_alerts(&self, what: &str, timeout: Duration, pred: impl Fn(&[Alert]) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.alerts()) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; alerts so far:\n{}\nstderr:\n{}",
                    self.alerts()
                        .iter()
                        .map(|a| format!("  [{}] {}", a.rule, a.output))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    self.stderr_lines().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until a stderr line contains `part` at least `n` times.
    pub fn wait_stderr(&self, part: &str, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.stderr_count(part) < n {
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for stderr '{part}' x{n}:\n{}",
                    self.stderr_lines().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Lets in-flight events drain, sends SIGTERM and waits for the exit.
    pub fn stop(self) -> Finished {
        self.stop_with("TERM", Duration::from_millis(1500))
    }

    /// Waits `drain` for in-flight events, sends `sig` and waits (60 s at most) for the exit.
    pub fn stop_with(mut self, sig: &str, drain: Duration) -> Finished {
        std::thread::sleep(drain);
        self.signal(sig);
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "saker did not exit within 60 s of SIG{sig}:\n{}",
                    self.stderr_lines().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Finished {
            status,
            stdout: lines(&self.stdout),
            stderr: lines(&self.stderr),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // A panicking test must not leave a probe attached.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A running `saker run -o json_output=true`, asking the shared podman service about
/// containers (so container metadata reaches the alerts).
pub struct Saker(Session);

impl Saker {
    /// Starts Saker with the given extra arguments (e.g. `-r FILE`) and waits until it started.
    pub fn start(extra: &[&OsStr]) -> Saker {
        Saker::start_with_env(extra, &[])
    }

    /// Like [`Saker::start`], with environment variables that win over the defaults.
    pub fn start_with_env(extra: &[&OsStr], env: &[(&str, &OsStr)]) -> Saker {
        let api = saker_testkit::podman::shared_api_dir();
        let mut vars: HashMap<&str, &OsStr> = HashMap::new();
        vars.insert("SAKER_CONTAINER_SOCKETS", api.as_os_str());
        vars.extend(env.iter().copied());
        let vars: Vec<(&str, &OsStr)> = vars.into_iter().collect();
        let mut args: Vec<&OsStr> =
            vec!["run".as_ref(), "-o".as_ref(), "json_output=true".as_ref()];
        args.extend_from_slice(extra);
        Saker(Session::start_with_env(&args, &vars))
    }

    /// Lets in-flight events drain, stops Saker with SIGINT and returns every alert it printed.
    pub fn stop(self) -> Vec<Alert> {
        let done = self.0.stop_with("INT", Duration::from_millis(2000));
        let n = done.stderr.len();
        eprintln!(
            "saker stderr (last lines):\n{}",
            done.stderr[n.saturating_sub(15)..].join("\n")
        );
        done.alerts()
    }
}
