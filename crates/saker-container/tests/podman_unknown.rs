//! A container id that no runtime knows is answered as such right away (the event loop stops
//! holding its alerts), cached, and asked about again only after the retry period.
//! Needs root and podman (its Docker-compatible API on a private socket).

use std::time::{Duration, Instant};

use saker_container::{Answer, Watcher, WatcherConfig};
use saker_testkit::podman::Service;
use saker_testkit::Scratch;

/// Waits (up to 5 s) for the "unknown" answer about `id`; metadata answers are skipped.
fn unknown_answer(w: &mut Watcher, id: &str) -> Duration {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        match w.try_answer() {
            Some(Answer::Unknown(got)) if got == id => return t0.elapsed(),
            Some(_) => {}
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    panic!("no 'unknown' answer about {id} within 5 s");
}

#[test]
#[ignore = "needs root"]
fn unknown_containers_are_answered_and_cached() {
    let test = "unknown_containers_are_answered_and_cached";
    saker_testkit::require_root(test);
    if saker_testkit::skip_without_tools(test, &["podman"]) {
        return;
    }
    let scratch = Scratch::new(&saker_testkit::token("unknown"));
    let dir = scratch.path.clone();
    let _service = Service::start(&scratch.file("podman.sock"));
    let mut w = Watcher::start(WatcherConfig {
        docker_sockets: vec![dir.clone()],
        containerd_sockets: vec![],
        cri_sockets: vec![],
        rescan: Duration::from_secs(600),
        unknown_retry: Duration::from_millis(400),
        ..WatcherConfig::default()
    })
    .expect("watcher");
    let id = format!("{:064x}", 0x5a4e5f_u64 + u64::from(std::process::id()));
    assert!(w.request(&id), "the first request starts a lookup");
    assert!(w.in_flight(id.as_bytes()));
    assert!(!w.request(&id), "a lookup in flight is not started twice");
    let took = unknown_answer(&mut w, &id);
    eprintln!("'unknown' answer after {} ms", took.as_millis());
    assert!(took < Duration::from_secs(1), "answered in {took:?}");
    assert!(!w.in_flight(id.as_bytes()));
    // Cached: not asked again within the retry period...
    assert!(!w.request(&id));
    std::thread::sleep(Duration::from_millis(450));
    // ...and asked again after it.
    assert!(w.request(&id));
    assert!(w.in_flight(id.as_bytes()));
    unknown_answer(&mut w, &id);
}
