//! A real moto server (the AWS emulator) on loopback, stoppable and restartable on its port.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Option<Child>,
    pub port: u16,
}

impl Moto {
    /// Starts moto on a free port.
    pub fn start() -> Moto {
        Moto::start_on(crate::free_port())
    }

    pub fn start_on(port: u16) -> Moto {
        let p = port.to_string();
        // The console script if it is on PATH, else the module (pip may put scripts elsewhere).
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
        let m = Moto {
            child: Some(child),
            port,
        };
        crate::wait_for_port(port, "moto", Duration::from_secs(90));
        m
    }

    /// Kills the server (its state is lost, as with a real endpoint that was replaced).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(t0.elapsed() < Duration::from_secs(10), "moto did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The messages of one log stream, read back with boto3 (installed with moto).
    pub fn messages(&self, group: &str, stream: &str) -> Vec<String> {
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
            .expect("python3");
        assert!(
            out.status.success(),
            "boto3: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("boto3 output is a JSON list")
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let mut m = Moto::start_on(self.port);
        self.child = m.child.take();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn dummy_credentials() {
    // Every test sets the same values, so concurrent setting is harmless.
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
}
