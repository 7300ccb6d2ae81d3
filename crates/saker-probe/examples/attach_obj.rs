//! Experiment helper (root): loads a BPF object file and attaches the named
//! programs until stdin closes. Used to measure hook dispatch costs:
//!   attach_obj OBJ PROG[,PROG...]
use libbpf_rs::ObjectBuilder;
use std::io::Read;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (path, names) = (&args[1], &args[2]);
    let want: Vec<&str> = names.split(',').collect();
    let mut open = ObjectBuilder::default().open_file(path).expect("open");
    for mut p in open.progs_mut() {
        let n = p.name().to_string_lossy().into_owned();
        p.set_autoload(want.contains(&n.as_str()));
    }
    let obj = open.load().expect("load");
    let mut links = Vec::new();
    for p in obj.progs_mut() {
        let n = p.name().to_string_lossy().into_owned();
        if want.contains(&n.as_str()) {
            links.push(p.attach().expect("attach"));
        }
    }
    eprintln!("attached {}", links.len());
    let mut s = String::new();
    let _ = std::io::stdin().read_to_string(&mut s);
}
