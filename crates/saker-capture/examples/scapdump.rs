//! Prints the events of a capture as `num type dir nparams`, and a snapshot summary.
use saker_capture::Reader;
use saker_event::Event;

fn main() {
    let path = std::env::args().nth(1).expect("usage: scapdump FILE");
    let raw = std::env::args().any(|a| a == "--raw");
    let args_style = std::env::args().any(|a| a == "--args");
    let mut r = match Reader::open(&path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    r.set_convert(!raw);
    let s = r.snapshot();
    eprintln!(
        "host={:?} procs={} fds={} users={} groups={} ifaces={}",
        s.hostname,
        s.procs.len(),
        s.fds.len(),
        s.users.len(),
        s.groups.len(),
        s.interfaces.len()
    );
    if std::env::args().any(|a| a == "--snap") {
        for p in &s.procs {
            println!(
                "proc tid={} pid={} ptid={} comm={} exe={} args={:?} cwd={} uid={} loginuid={}",
                p.tid,
                p.pid,
                p.ptid,
                String::from_utf8_lossy(&p.comm),
                String::from_utf8_lossy(&p.exe),
                p.args
                    .iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect::<Vec<_>>(),
                String::from_utf8_lossy(&p.cwd),
                p.uid,
                p.loginuid
            );
        }
        for (tid, f) in &s.fds {
            println!(
                "fd tid={tid} fd={} ty={:?} name={} sock={:?}",
                f.fd,
                f.ty,
                String::from_utf8_lossy(&f.name),
                f.sock
            );
        }
        for u in &s.users {
            println!("user {} {}", u.uid, String::from_utf8_lossy(&u.name));
        }
        for i in &s.interfaces {
            println!("iface {} {}", String::from_utf8_lossy(&i.name), i.addr);
        }
        return;
    }
    let mut ev = Event::default();
    loop {
        match r.next_event(&mut ev) {
            Ok(true) => {
                let mut args = String::new();
                for i in 0..ev.nparams() {
                    let name = ev
                        .info()
                        .and_then(|x| x.params.get(i))
                        .map_or("?", |p| p.name);
                    args.push_str(name);
                    args.push('=');
                    if args_style {
                        if let Some(b) = ev.param(i) {
                            saker_event::render::render_param_styled(
                                ev.etype,
                                i,
                                b,
                                saker_event::Style::Args,
                                &mut args,
                            );
                        }
                    } else {
                        ev.render_param(i, &mut args);
                    }
                    args.push(' ');
                }
                println!(
                    "{} {} {} {} {}",
                    ev.num,
                    ev.type_name(),
                    if ev.is_enter() { '>' } else { '<' },
                    ev.tid,
                    args
                );
            }
            Ok(false) => break,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    }
}
