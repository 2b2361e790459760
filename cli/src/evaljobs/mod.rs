//! `nixvm eval-jobs`: nix-eval-jobs's command. The jobs are the
//! derivations under an expression: its top-level attributes, and the
//! attributes of every set whose `recurseForDerivations` is true (of every
//! set with `--force-recurse`). Each is evaluated by one of `--workers`
//! processes (see `worker`) and printed as one JSON line as soon as it is
//! done (`attr`, `attrPath`, `name`, `system`, `drvPath`, `outputs`, and
//! `meta`, `extraValue`, `constituents` when asked), or as a line with its
//! `error`; a failing job never stops the run.
//!
//! Memory: a worker whose peak passes `--max-memory-size` (MiB) is replaced
//! after the job it is on; when the workers together pass
//! `--max-total-memory`, the largest is killed and its job reported as an
//! error. A worker that dies costs its job an error line, and is replaced.

mod cache;
mod worker;

use crate::args::InstArgs;
use crate::config::pid_status_kib;
use clap::Args;
use serde_json::{json, Value as J};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::sync::{Condvar, Mutex};

#[derive(Args, Clone, Default)]
pub struct JobArgs {
    /// The file (or, with --expr, the expression) whose jobs to evaluate.
    pub target: String,
    /// Treat the argument as a Nix expression.
    #[arg(long)]
    pub expr: bool,
    /// Evaluation worker processes.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// A worker whose peak memory passes this many MiB is replaced after its job.
    #[arg(long = "max-memory-size", default_value_t = 4096)]
    pub max_memory_size: u64,
    /// The workers together may use this many MiB; past it the largest is killed.
    #[arg(long = "max-total-memory")]
    pub max_total_memory: Option<u64>,
    /// Recurse into every set, not only those with `recurseForDerivations = true`.
    #[arg(long = "force-recurse")]
    pub force_recurse: bool,
    /// Include each derivation's meta attributes.
    #[arg(long)]
    pub meta: bool,
    /// Hydra's aggregates: list the constituents of `_hydraAggregate` jobs.
    #[arg(long)]
    pub constituents: bool,
    /// A function applied to the root before the walk.
    #[arg(long)]
    pub select: Option<String>,
    /// A function applied to each derivation; its result is `extraValue`.
    #[arg(long)]
    pub apply: Option<String>,
    /// Say whether each job's outputs are in the store (`cacheStatus`,
    /// `isCached`) and which derivations would be built (`neededBuilds`).
    #[arg(long = "check-cache-status")]
    pub check_cache_status: bool,
    /// Show each derivation's input derivations (`inputDrvs`: path → outputs).
    #[arg(long = "show-input-drvs")]
    pub show_input_drvs: bool,
    /// Make a GC root to each derivation in DIR.
    #[arg(long = "gc-roots-dir", value_name = "DIR")]
    pub gc_roots_dir: Option<String>,
    /// Print a stack trace with errors.
    #[arg(long = "show-trace")]
    pub show_trace: bool,
    /// Accepted: evaluation here is impure already.
    #[arg(long)]
    pub impure: bool,
    /// Add a search path entry.
    #[arg(short = 'I', long = "include")]
    pub include: Vec<String>,
    /// Pass NAME = EXPR to the function the root is.
    #[arg(long = "arg", num_args = 2, value_names = ["NAME", "EXPR"], allow_hyphen_values = true)]
    pub arg: Vec<String>,
    /// Pass NAME = STRING to the function the root is.
    #[arg(long = "argstr", num_args = 2, value_names = ["NAME", "STRING"], allow_hyphen_values = true)]
    pub argstr: Vec<String>,
    /// Set the setting NAME.
    #[arg(long = "option", num_args = 2, value_names = ["NAME", "VALUE"], allow_hyphen_values = true)]
    pub option: Vec<String>,
    /// The store (a directory: a chroot store; `daemon`).
    #[arg(long = "store", value_name = "URL")]
    pub store: Option<String>,
    /// This process is a worker (started by the coordinator).
    #[arg(long = "worker-protocol", hide = true)]
    pub worker: bool,
}

impl JobArgs {
    fn inst(&self) -> InstArgs {
        let mut option = self.option.clone();
        if self.show_trace {
            option.extend(["show-trace".into(), "true".into()]);
        }
        InstArgs {
            include: self.include.clone(),
            arg: self.arg.clone(),
            argstr: self.argstr.clone(),
            option,
            store: self.store.clone(),
            ..Default::default()
        }
    }
}

pub fn main(a: JobArgs, argv: Vec<String>) -> ExitCode {
    let inst = match crate::with_config(a.inst()) {
        Ok(i) => i,
        Err(code) => return code,
    };
    if a.worker {
        let store = match crate::config::make_store(&inst, true) {
            Ok(s) => s,
            Err(msg) => {
                nixvm::report::stderr_line(&format!("error: {msg}"));
                return ExitCode::from(1);
            }
        };
        if let Some(crate::storeuri::Store::Local(l)) = &store {
            l.set_batching(false);
        }
        let mut ev = crate::config::build_evaluator_with(&inst, store);
        let _ = worker::serve(&mut ev, &inst, &a);
        let _ = ev.flush_store();
        std::mem::forget(ev);
        return ExitCode::SUCCESS;
    }
    coordinate(&a, &argv)
}

struct Proc {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

fn spawn(argv: &[String]) -> Option<Proc> {
    let exe = std::env::current_exe().ok()?;
    let mut child = Command::new(exe)
        .arg("eval-jobs")
        .arg("--worker-protocol")
        .args(argv)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .ok()?;
    let stdin = child.stdin.take()?;
    let stdout = BufReader::new(child.stdout.take()?);
    Some(Proc {
        child,
        stdin,
        stdout,
    })
}

#[derive(Default)]
struct Sched {
    queue: VecDeque<Vec<String>>,
    busy: usize,
    /// Worker pids (0: none) for the memory monitor.
    pids: Vec<u32>,
    /// Workers killed by the monitor (their job's error says why).
    killed: Vec<bool>,
    done: bool,
}

fn coordinate(a: &JobArgs, argv: &[String]) -> ExitCode {
    let n = a.workers.max(1);
    let sched = Mutex::new(Sched {
        queue: VecDeque::from([Vec::new()]),
        pids: vec![0; n],
        killed: vec![false; n],
        ..Default::default()
    });
    let cv = Condvar::new();
    let out = Mutex::new(std::io::stdout());
    let stats = Mutex::new((0usize, 0usize)); // (jobs, restarts)
    let start = std::time::Instant::now();
    std::thread::scope(|s| {
        for wi in 0..n {
            let (sched, cv, out, stats) = (&sched, &cv, &out, &stats);
            s.spawn(move || {
                let mut proc: Option<Proc> = None;
                loop {
                    let mut st = sched.lock().unwrap();
                    while st.queue.is_empty() && st.busy > 0 {
                        st = cv.wait(st).unwrap();
                    }
                    let Some(path) = st.queue.pop_front() else {
                        st.done = true;
                        cv.notify_all();
                        break;
                    };
                    st.busy += 1;
                    drop(st);
                    if proc.is_none() {
                        proc = spawn(argv);
                        let mut st = sched.lock().unwrap();
                        st.pids[wi] = proc.as_ref().map_or(0, |p| p.child.id());
                        st.killed[wi] = false;
                    }
                    let reply = proc.as_mut().and_then(|p| ask(p, &path));
                    let mut st = sched.lock().unwrap();
                    st.busy -= 1;
                    let mut line = match reply {
                        Some(J::Object(o)) => o,
                        _ => {
                            let why = if st.killed[wi] {
                                "the workers' memory passed --max-total-memory; the largest worker was killed"
                            } else {
                                "the worker evaluating it died"
                            };
                            if let Some(mut p) = proc.take() {
                                let _ = p.child.kill();
                                let _ = p.child.wait();
                            }
                            st.pids[wi] = 0;
                            let mut o = serde_json::Map::new();
                            o.insert("attr".into(), J::from(worker::join(&path)));
                            o.insert("attrPath".into(), json!(path));
                            o.insert("error".into(), J::from(format!("error: {why}")));
                            o
                        }
                    };
                    if line.remove("restart").is_some() {
                        if let Some(mut p) = proc.take() {
                            drop(p.stdin);
                            let _ = p.child.wait();
                        }
                        st.pids[wi] = 0;
                        stats.lock().unwrap().1 += 1;
                    }
                    match line.remove("attrs") {
                        Some(J::Array(names)) => {
                            for name in names {
                                if let J::String(name) = name {
                                    let mut p2 = path.clone();
                                    p2.push(name);
                                    st.queue.push_back(p2);
                                }
                            }
                        }
                        _ => {
                            let text = serde_json::to_string(&J::Object(line)).unwrap_or_default();
                            let mut o = out.lock().unwrap();
                            let _ = writeln!(o, "{text}");
                            let _ = o.flush();
                            stats.lock().unwrap().0 += 1;
                        }
                    }
                    cv.notify_all();
                }
                if let Some(p) = proc {
                    drop(p.stdin);
                    let mut c = p.child;
                    let _ = c.wait();
                }
            });
        }
        s.spawn(|| monitor(a, &sched, &cv, &stats, start));
    });
    if std::env::var("NIX_SHOW_STATS").is_ok_and(|v| !v.is_empty() && v != "0") {
        let (jobs, restarts) = *stats.lock().unwrap();
        nixvm::report::stderr_line(&format!(
            "jobs: {jobs}; workers replaced past --max-memory-size: {restarts}; {:.2} s",
            start.elapsed().as_secs_f64()
        ));
    }
    ExitCode::SUCCESS
}

/// One job: the path out, the reply back (`None`: the worker is gone).
fn ask(p: &mut Proc, path: &[String]) -> Option<J> {
    writeln!(p.stdin, "{}", serde_json::to_string(path).ok()?).ok()?;
    p.stdin.flush().ok()?;
    let mut line = String::new();
    if p.stdout.read_line(&mut line).ok()? == 0 {
        return None;
    }
    serde_json::from_str(&line).ok()
}

/// Every 50 ms: the total budget (the largest worker killed when the
/// workers pass it), and on a terminal the progress line.
fn monitor(
    a: &JobArgs,
    sched: &Mutex<Sched>,
    cv: &Condvar,
    stats: &Mutex<(usize, usize)>,
    start: std::time::Instant,
) {
    use std::io::IsTerminal;
    let tty = std::io::stderr().is_terminal();
    let mut tick = 0u32;
    loop {
        {
            let st = sched.lock().unwrap();
            let (st, _) = cv
                .wait_timeout(st, std::time::Duration::from_millis(50))
                .unwrap();
            if st.done && st.busy == 0 {
                break;
            }
        }
        tick += 1;
        let pids: Vec<u32> = sched.lock().unwrap().pids.clone();
        let rss: Vec<u64> = pids
            .iter()
            .map(|p| {
                if *p == 0 {
                    0
                } else {
                    pid_status_kib(&p.to_string(), "VmRSS:")
                }
            })
            .collect();
        let total: u64 = rss.iter().sum();
        if let Some(limit) = a.max_total_memory {
            if total > limit * 1024 {
                if let Some((wi, _)) = rss.iter().enumerate().max_by_key(|(_, r)| **r) {
                    let mut st = sched.lock().unwrap();
                    if st.pids[wi] != 0 {
                        st.killed[wi] = true;
                        // SAFETY: a signal to our own child's pid.
                        unsafe { libc::kill(st.pids[wi] as libc::pid_t, libc::SIGKILL) };
                        st.pids[wi] = 0;
                    }
                }
            }
        }
        if tty && tick.is_multiple_of(10) {
            let (jobs, restarts) = *stats.lock().unwrap();
            let secs = start.elapsed().as_secs_f64().max(0.001);
            let _ = write!(
                std::io::stderr(),
                "\r\x1b[K[{jobs} jobs, {:.1}/s, {} MB in workers, {restarts} restarts]",
                jobs as f64 / secs,
                total / 1024
            );
        }
    }
    if tty {
        let _ = write!(std::io::stderr(), "\r\x1b[K");
    }
}
