//! A language server's hover: evaluate one attribute of a file lazily, with
//! a time limit, and show what it is without forcing what is inside it.
//! The file is an unsaved buffer (an `Overlay` over the real file system).
//!
//!     cargo run --release -p nixvm --example hover

use nixvm::io::{Overlay, RealFs};
use nixvm::{ErrorKind, Evaluator};
use std::path::Path;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

const BUFFER: &str = r#"{
  greeting = "hello, " + "world";
  numbers = builtins.genList (i: i * i) 5;
  nested = { a.b = 1; c = throw "not forced by a hover"; };
  slow = let l = builtins.genList (x: x) 100000; in
    builtins.foldl' (a: _: builtins.foldl' (b: _: b + 1) a l) 0 l;
}"#;

/// The hover text of `attr` in the buffer: its value to weak head normal
/// form, printed as `nix-instantiate --eval` prints it (what is not
/// evaluated yet is `<CODE>`), "timed out" past `limit`, or the error.
pub fn hover(ev: &mut Evaluator, file: &Path, attr: &str, limit: Duration) -> String {
    let stop = ev.interrupt_handle();
    let (done, wait) = mpsc::channel::<()>();
    let timer = std::thread::spawn(move || {
        if wait.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
            stop.interrupt();
        }
    });
    let r = ev.eval_file(file).and_then(|v| ev.get(&v, attr));
    let _ = done.send(());
    let _ = timer.join();
    ev.interrupt_handle().reset();
    match r {
        Ok(v) => ev.print(&v),
        Err(e) if e.kind == ErrorKind::Interrupted => "timed out".to_string(),
        Err(e) => format!("error: {}", e.msg),
    }
}

/// Hover over each attribute of the buffer.
pub fn run() -> Vec<(String, String)> {
    let file = Path::new("/nixvm-example/unsaved.nix");
    let fs = Rc::new(Overlay::new(Rc::new(RealFs)));
    fs.set(file, BUFFER);
    let mut ev = Evaluator::builder().filesystem(fs).build();
    ["greeting", "numbers", "nested", "nested.c", "slow"]
        .iter()
        .map(|a| {
            (
                a.to_string(),
                hover(&mut ev, file, a, Duration::from_millis(200)),
            )
        })
        .collect()
}

#[allow(dead_code)]
fn main() {
    for (attr, text) in run() {
        println!("{attr}: {text}");
    }
}
