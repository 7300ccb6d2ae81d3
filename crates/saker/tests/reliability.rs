//! Issue #18 (reliability) through the `saker` binary and real endpoints on
//! loopback: every alert of a replay reaches CloudWatch (moto) before exit, a
//! refused HTTP endpoint is reported on stderr and in the exit summary, the
//! disk spool outlives SIGKILL, and a stdout reader that stops reading cannot
//! hold Saker past `outputs.shutdown_timeout`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn saker() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_saker"));
    c.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    c
}

fn capture(name: &str) -> PathBuf {
    std::env::var_os("SAKER_CAPTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/captures"))
        .join(name)
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!(
            "saker-reliab-{label}-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// 8 alerts on cat_write.scap (one per open/openat of `cat`), numbered by evt.num.
const OPEN_RULE: &str = "- rule: Reliab open\n  desc: every open\n  \
    condition: evt.type in (open, openat)\n  \
    output: \"open num=%evt.num file=%fd.name proc=%proc.name\"\n  priority: WARNING\n";

/// Every event of the capture.
const ALL_RULE: &str = "- rule: Reliab every event\n  desc: storm\n  \
    condition: evt.num > 0\n  output: \"num=%evt.num %evt.type %proc.name\"\n  priority: NOTICE\n";

/// Matches nothing in the captures.
const NONE_RULE: &str = "- rule: Reliab nothing\n  desc: never\n  \
    condition: proc.name = no-such-process-here\n  output: \"never\"\n  priority: NOTICE\n";

fn rules(dir: &Scratch, name: &str, text: &str) -> PathBuf {
    let p = dir.0.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A minimal HTTP/1.1 webhook on loopback (keep-alive, Content-Length bodies)
/// that records the bodies in arrival order.
struct Webhook {
    bodies: Arc<Mutex<Vec<String>>>,
}

fn serve_conn(s: TcpStream, bodies: Arc<Mutex<Vec<String>>>) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    loop {
        let mut len = 0usize;
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        bodies.lock().unwrap().push(text(&body));
        if w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
}

impl Webhook {
    fn start(port: u16) -> Webhook {
        let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let b = bodies.clone();
        std::thread::spawn(move || {
            for s in l.incoming().map_while(Result::ok) {
                let b = b.clone();
                std::thread::spawn(move || serve_conn(s, b));
            }
        });
        Webhook { bodies }
    }

    /// The `num=` of each alert received, in order.
    fn nums(&self) -> Vec<u64> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|b| {
                let v: serde_json::Value = serde_json::from_str(b).unwrap();
                let o = v["output"].as_str().unwrap();
                let n = &o[o.find("num=").unwrap() + 4..];
                n.split_whitespace().next().unwrap().parse().unwrap()
            })
            .collect()
    }
}

struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    fn start() -> Moto {
        let port = free_port();
        let p = port.to_string();
        let child = Command::new("moto_server")
            .args(["-p", &p])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .or_else(|_| {
                Command::new("python3")
                    .args(["-m", "moto.server", "-p", &p])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
            })
            .expect("moto is not installed: pip install 'moto[server]'");
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t0.elapsed() < Duration::from_secs(90), "moto did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
        Moto { child, port }
    }

    /// Messages of one stream, read back with boto3 (installed with moto).
    fn messages(&self, group: &str, stream: &str) -> Vec<String> {
        let script = format!(
            "import boto3, json\n\
             c = boto3.client('logs', endpoint_url='http://127.0.0.1:{}', region_name='us-east-1',\n\
                 aws_access_key_id='t', aws_secret_access_key='t')\n\
             ev = c.get_log_events(logGroupName='{group}', logStreamName='{stream}', startFromHead=True)['events']\n\
             print(json.dumps([e['message'] for e in ev]))\n",
            self.port
        );
        let out = Command::new("python3")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        assert!(out.status.success(), "boto3: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn summary_line<'a>(stderr: &'a str, output: &str) -> &'a str {
    let p = format!("saker: output {output}: ");
    stderr
        .lines()
        .find(|l| l.starts_with(&p))
        .unwrap_or_else(|| panic!("no exit summary for {output}:\n{stderr}"))
}

/// Issue #18: the replay used to exit before the CloudWatch sink flushed (0 of 8 arrived),
/// and the capture's 2016 timestamps were refused by the service. Now 8 of 8 arrive.
#[test]
fn replay_delivers_every_alert_to_cloudwatch_before_exit() {
    let moto = Moto::start();
    let dir = Scratch::new("cw");
    let r = rules(&dir, "open.yaml", OPEN_RULE);
    let out = saker()
        .args(["replay", "--no-progress", "-r"])
        .arg(&r)
        .args([
            "-o",
            "stdout_output.enabled=false",
            "-o",
            "json_output=true",
        ])
        .args(["-o", "cloudwatch_output.enabled=true"])
        .args(["-o", "cloudwatch_output.region=us-east-1"])
        .args(["-o", "cloudwatch_output.log_group=/saker/replay"])
        .args(["-o", "cloudwatch_output.log_stream=replay-1"])
        .arg("-o")
        .arg(format!(
            "cloudwatch_output.endpoint=http://127.0.0.1:{}",
            moto.port
        ))
        .arg(capture("cat_write.scap"))
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        summary_line(&err, "cloudwatch"),
        "saker: output cloudwatch: 8 delivered, 0 dropped"
    );
    let msgs = moto.messages("/saker/replay", "replay-1");
    assert_eq!(msgs.len(), 8, "{msgs:?}");
    let mut nums: Vec<u64> = msgs
        .iter()
        .map(|m| {
            let v: serde_json::Value = serde_json::from_str(m).unwrap();
            assert_eq!(v["rule"], "Reliab open");
            // The alert keeps the capture's own time.
            assert!(v["time"].as_str().unwrap().starts_with("20"), "{v}");
            let o = v["output"].as_str().unwrap();
            o[o.find("num=").unwrap() + 4..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    nums.dedup();
    assert_eq!(nums.len(), 8);
}

/// Issue #18: with the HTTP endpoint refusing connections the replay said nothing. Now the
/// failures are on stderr, the loss is in the exit summary, and the exit waits no longer than
/// `outputs.shutdown_timeout`.
#[test]
fn replay_with_a_refused_http_endpoint_reports_the_loss() {
    let dir = Scratch::new("refused");
    let r = rules(&dir, "open.yaml", OPEN_RULE);
    let closed = free_port();
    let t0 = Instant::now();
    let out = saker()
        .args(["replay", "--no-progress", "-r"])
        .arg(&r)
        .args([
            "-o",
            "stdout_output.enabled=false",
            "-o",
            "json_output=true",
        ])
        .args([
            "-o",
            "http_output.enabled=true",
            "-o",
            "outputs.shutdown_timeout=2",
        ])
        .arg("-o")
        .arg(format!("http_output.url=http://127.0.0.1:{closed}/"))
        .arg(capture("cat_write.scap"))
        .output()
        .unwrap();
    let took = t0.elapsed();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(took < Duration::from_secs(6), "took {took:?}:\n{err}");
    assert!(
        err.lines().any(
            |l| l.contains("http output: delivery failing") && l.contains("Connection refused")
        ),
        "{err}"
    );
    assert!(
        err.lines().any(|l| l.contains("http output: ")
            && l.contains("dropped (not delivered by the shutdown deadline)")
            && l.contains("outputs.shutdown_timeout is 2.0 s")),
        "{err}"
    );
    let s = summary_line(&err, "http");
    assert!(
        s.starts_with("saker: output http: 0 delivered, 8 dropped ("),
        "{s}"
    );
}

/// Issue #18: alerts in the disk spool survive SIGKILL and are delivered, in order, by the
/// next run once the endpoint is back.
#[test]
fn spooled_alerts_survive_sigkill() {
    let dir = Scratch::new("spool");
    let r = rules(&dir, "open.yaml", OPEN_RULE);
    let none = rules(&dir, "none.yaml", NONE_RULE);
    let spool = dir.0.join("spool");
    let port = free_port();
    let common = |c: &mut Command| {
        c.args(["replay", "--no-progress"])
            .args([
                "-o",
                "stdout_output.enabled=false",
                "-o",
                "json_output=true",
            ])
            .args([
                "-o",
                "http_output.enabled=true",
                "-o",
                "http_output.backoff_ms=50",
            ])
            .arg("-o")
            .arg(format!("http_output.url=http://127.0.0.1:{port}/"))
            .arg("-o")
            .arg(format!("outputs_queue.spool_dir={}", spool.display()));
    };
    // Endpoint down, a long deadline: saker waits at exit with the 8 alerts spooled.
    let mut c = saker();
    common(&mut c);
    let mut child = c
        .args(["-o", "outputs.shutdown_timeout=300", "-r"])
        .arg(&r)
        .arg(capture("cat_write.scap"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let l2 = lines.clone();
    let reader = std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            l2.lock().unwrap().push(l);
        }
    });
    // The first failed attempt comes after the replay has spooled its 8 alerts (a few ms).
    let t0 = Instant::now();
    while !lines
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("http output: delivery failing"))
    {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{:?}",
            lines.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "saker exited before SIGKILL"
    );
    child.kill().unwrap();
    let _ = child.wait();
    let _ = reader.join();

    let hook = Webhook::start(port);
    let mut c = saker();
    common(&mut c);
    let out: Output = c
        .args(["-o", "outputs.shutdown_timeout=30", "-r"])
        .arg(&none)
        .arg(capture("cat_write.scap"))
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.lines().any(|l| l.contains("http output: 8 alerts (")
            && l.contains("left in the spool")
            && l.contains("by a previous run")),
        "{err}"
    );
    assert_eq!(
        summary_line(&err, "http"),
        "saker: output http: 8 delivered, 0 dropped"
    );
    let nums = hook.nums();
    assert_eq!(nums.len(), 8, "{nums:?}");
    assert!(
        nums.windows(2).all(|w| w[0] < w[1]),
        "out of order: {nums:?}"
    );
}

/// Issue #18: a stdout consumer that stops reading. Detection goes on (the replay ends), the
/// overflow is counted and logged, and the exit comes at `outputs.shutdown_timeout`.
#[test]
fn a_stdout_reader_that_stops_reading_cannot_hold_saker() {
    let dir = Scratch::new("stdout");
    let r = rules(&dir, "all.yaml", ALL_RULE);
    let t0 = Instant::now();
    let mut child = saker()
        .args(["replay", "--no-progress", "-r"])
        .arg(&r)
        .args([
            "-o",
            "outputs_queue.capacity=50",
            "-o",
            "outputs.shutdown_timeout=2",
        ])
        .arg(capture("ping_sendto.scap"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Nobody reads stdout until saker has exited.
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "saker is stuck on stdout"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = err_reader.join().unwrap();
    assert!(status.success(), "{err}");
    let mut printed = String::new();
    BufReader::new(stdout).read_to_string(&mut printed).unwrap();
    let raised: u64 = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("Reliab every event: "))
        .unwrap_or_else(|| panic!("no rule count:\n{err}"))
        .parse()
        .unwrap();
    assert!(raised > 1000, "{raised}");
    let s = summary_line(&err, "stdout");
    let nums: Vec<u64> = s
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let (delivered, dropped) = (nums[0], nums[1]);
    assert_eq!(delivered + dropped, raised, "{s}");
    assert!(dropped > 0, "{s}");
    // Every alert counted as delivered is a whole line on stdout.
    assert_eq!(printed.lines().count() as u64, delivered, "{s}");
    assert!(
        err.lines()
            .any(|l| l.contains("stdout output: ") && l.contains("dropped (queue full)")),
        "{err}"
    );
}
