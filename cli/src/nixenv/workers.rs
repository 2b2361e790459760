//! `nix-env -qa -j N`: the walk spread over N worker processes.
//!
//! Each worker is this program (`nixvm env --worker-protocol` and the same
//! command line); it evaluates the expression once and then answers
//! requests on its stdin with JSON lines on its stdout. A request names an
//! attribute path; the worker looks at that one attribute as the walk
//! would (`drvs::Walk`) and answers with the package it is, or with the
//! children to walk next if it is a set to recurse into. The coordinator
//! keeps one queue of paths, hands them to whichever worker is free, and
//! puts the answers in the walk's order (attribute paths compared component
//! by component) before filtering, sorting and printing as the one-process
//! query does.
//!
//! Duplicates: the walk takes a set reached twice once, at its first path,
//! and "the same set" is a question of identity, which only one heap can
//! answer. A worker numbers the sets it finds, so two answers from one
//! worker with one number are one set. Answers from different workers
//! whose names are equal (no two different names are one set) are asked
//! again, all of them, of one worker, which evaluates those paths in its
//! own heap and says which are one set. The result is the one-process
//! walk's, whatever the schedule.

use super::drvs::{is_attr_path_component, Walk};
use super::{compute_row, Columns, Found, Query, QueryArgs, Row};
use crate::args::InstArgs;
use crate::config::pid_status_kib;
use crate::instantiate::auto_call;
use nixvm::value::{Attrs, Value, View};
use nixvm::{EvalError, Evaluator, Pos};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Condvar, Mutex};

type Res<T> = Result<T, Box<EvalError>>;
/// A set's children to look at: (name, walk it whole).
type Children = Vec<(String, bool)>;
/// Names of a set's children to look at (`true`: walk it whole).
type Names = VecDeque<(String, bool)>;

/// One step of an attribute path below the walked value.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
#[serde(untagged)]
pub enum Comp {
    Index(u32),
    Name(String),
}

impl Ord for Comp {
    fn cmp(&self, o: &Comp) -> Ordering {
        match (self, o) {
            (Comp::Index(a), Comp::Index(b)) => a.cmp(b),
            (Comp::Name(a), Comp::Name(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Comp::Index(_), Comp::Name(_)) => Ordering::Less,
            (Comp::Name(_), Comp::Index(_)) => Ordering::Greater,
        }
    }
}
impl PartialOrd for Comp {
    fn partial_cmp(&self, o: &Comp) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

#[derive(Serialize, Deserialize)]
enum Request {
    /// The walk's first step.
    Top,
    /// Look at these children of the set at `parent`, in order (`true`:
    /// walk the child whole here).
    Chunk {
        parent: Vec<Comp>,
        names: Vec<(String, bool)>,
    },
    /// Which of these paths are one set: the worker's number for each.
    Verify { paths: Vec<Vec<Comp>> },
}

#[derive(Serialize, Deserialize)]
struct Entry {
    path: Vec<Comp>,
    attr_path: String,
    name: String,
    id: u32,
    system: Option<Result<String, String>>,
    row: WireRow,
}

/// `Row` as it crosses the pipe: errors already rendered.
#[derive(Serialize, Deserialize)]
enum WireRow {
    Cells(Vec<String>),
    Json(serde_json::Map<String, serde_json::Value>),
    Skip,
    Fatal(String),
}

#[derive(Serialize, Deserialize)]
enum Reply {
    Unit {
        entries: Vec<Entry>,
        /// Children to look at next: (name, walk it whole here).
        children: Children,
        fatal: Option<String>,
    },
    Chunk {
        entries: Vec<Entry>,
        /// Children that are sets to walk into, with their children.
        deferred: Vec<(String, Children)>,
        /// The first error, and the path it was met at.
        fatal: Option<(Vec<Comp>, String)>,
    },
    Verify {
        ids: Vec<Option<u32>>,
    },
}

/// The worker's side: evaluate, then answer until stdin ends.
pub fn serve(
    ev: &mut Evaluator,
    inst: &InstArgs,
    q: &QueryArgs,
    c: &Columns,
    file: &str,
) -> Res<()> {
    let show_trace = crate::diag::show_trace_of(inst);
    let setup = (|| -> Res<(Value, Vec<(nixvm::Symbol, Value)>)> {
        let root = super::load_source(ev, file)?;
        let auto_args = crate::instantiate::auto_args(inst, ev)?;
        let v = crate::attrpath::select(ev, root, &c.attr, &auto_args)?;
        // The walk's first step, once: a function (nixpkgs) is called here,
        // and every request reads the one result.
        let top = auto_call(ev, v, &auto_args)?;
        Ok((top, auto_args))
    })();
    let mut w = Worker {
        ids: FxHashMap::default(),
        held: Vec::new(),
        filter: q.system_filter != "*",
        show_trace,
    };
    let stdin = std::io::stdin().lock();
    let mut out = std::io::stdout().lock();
    for line in stdin.lines() {
        let Ok(line) = line else { break };
        let Ok(req) = serde_json::from_str::<Request>(&line) else {
            break;
        };
        let reply = match (&setup, req) {
            (Err(e), _) => Reply::Unit {
                entries: Vec::new(),
                children: Vec::new(),
                fatal: Some(nixvm::report::render(&ev.vm, e, show_trace)),
            },
            (Ok((v, args)), Request::Top) => match w.top(ev, v, args, c) {
                Ok((entries, children)) => Reply::Unit {
                    entries,
                    children,
                    fatal: None,
                },
                Err(e) => Reply::Unit {
                    entries: Vec::new(),
                    children: Vec::new(),
                    fatal: Some(nixvm::report::render(&ev.vm, &e, show_trace)),
                },
            },
            (Ok((v, args)), Request::Chunk { parent, names }) => {
                w.chunk(ev, v, args, c, &parent, &names)
            }
            (Ok((v, _)), Request::Verify { paths }) => Reply::Verify {
                ids: paths.iter().map(|p| w.identify(ev, v, p)).collect(),
            },
        };
        let text = serde_json::to_string(&reply).unwrap_or_default();
        if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    Ok(())
}

struct Worker {
    /// The number of each set found (by address: `held` keeps them alive).
    ids: FxHashMap<*const (), u32>,
    held: Vec<Attrs>,
    filter: bool,
    show_trace: bool,
}

impl Worker {
    fn id(&mut self, a: &Attrs) -> u32 {
        let n = self.held.len() as u32;
        *self.ids.entry(a.as_ptr()).or_insert_with(|| {
            self.held.push(a.clone());
            n
        })
    }

    /// The value at `path` (not forced), and the frames an error below it
    /// gets: "while evaluating the attribute 'x'" per step, innermost first.
    fn at(
        ev: &mut Evaluator,
        top: &Value,
        path: &[Comp],
        frames: &mut Vec<(String, Option<Pos>)>,
    ) -> Res<Value> {
        let mut cur = top.clone();
        for c in path {
            let v = ev.vm.force(cur)?;
            cur = match (c, v.view()) {
                (Comp::Name(n), View::Attrs(a)) => {
                    let at = a
                        .get_attr(nixvm::Symbol::intern(n))
                        .ok_or_else(|| EvalError::new(nixvm::ErrorKind::Other, "walk lost"))?;
                    frames.push((
                        format!("while evaluating the attribute '{n}'"),
                        ev.vm.pos(at.pos),
                    ));
                    at.value.clone()
                }
                (Comp::Index(i), View::List(l)) => l
                    .get(*i as usize)
                    .cloned()
                    .ok_or_else(|| EvalError::new(nixvm::ErrorKind::Other, "walk lost"))?,
                _ => return Err(EvalError::new(nixvm::ErrorKind::Other, "walk lost")),
            };
        }
        frames.reverse();
        Ok(cur)
    }

    /// The walk's first step: the top taken if it is a derivation, walked
    /// here if it is a list (or an error), else its children to share out.
    fn top(
        &mut self,
        ev: &mut Evaluator,
        top: &Value,
        args: &[(nixvm::Symbol, Value)],
        c: &Columns,
    ) -> Res<(Vec<Entry>, Children)> {
        let mut walk = Walk::new(ev, args);
        let mut children = Vec::new();
        if walk.take_pub(top, &c.attr)? {
            if let View::Attrs(a) = top.view() {
                children = child_names(&a);
            } else {
                walk.walk(top, &c.attr)?;
            }
        }
        let found = walk.out;
        Ok((self.entries(ev, c, found), children))
    }

    /// Children of the set at `parent`: a derivation is taken, a set to
    /// walk into is deferred (its children go back to the coordinator, to
    /// be shared out), a combined channel is walked whole here. The chunk
    /// stops at its first error (what follows comes after it in the walk).
    fn chunk(
        &mut self,
        ev: &mut Evaluator,
        top: &Value,
        args: &[(nixvm::Symbol, Value)],
        c: &Columns,
        parent: &[Comp],
        names: &[(String, bool)],
    ) -> Reply {
        let mut frames = Vec::new();
        let set = Self::at(ev, top, parent, &mut frames).and_then(|v| ev.vm.force(v));
        let a = match set.as_ref().map(|v| v.view()) {
            Ok(View::Attrs(a)) => a.clone(),
            Ok(_) => Attrs::new(),
            Err(e) => {
                let text = nixvm::report::render(&ev.vm, e, self.show_trace);
                return Reply::Chunk {
                    entries: Vec::new(),
                    deferred: Vec::new(),
                    fatal: Some((parent.to_vec(), text)),
                };
            }
        };
        let prefix = join(&c.attr, parent);
        let mut walk = Walk::new(ev, args);
        let (mut fatal, mut deferred) = (None, Vec::new());
        for (name, combine) in names {
            let Some(at) = a.get_attr(nixvm::Symbol::intern(name)) else {
                continue;
            };
            let (value, pos) = (at.value.clone(), at.pos);
            let r = if *combine {
                walk.walk_attr(name, &value, &prefix, true)
            } else {
                let path = join(&prefix, &[Comp::Name(name.clone())]);
                walk.attr_to_recurse(&value, &path).map(|s| {
                    if let Some(s) = s {
                        deferred.push((name.clone(), child_names(&s)));
                    }
                })
            };
            if let Err(mut e) = r {
                let pos = walk.ev.vm.pos(pos);
                e.add_trace(format!("while evaluating the attribute '{name}'"), pos);
                for (msg, pos) in &frames {
                    e.add_trace(msg.clone(), *pos);
                }
                let mut at = parent.to_vec();
                at.push(Comp::Name(name.clone()));
                fatal = Some((at, nixvm::report::render(&walk.ev.vm, &e, self.show_trace)));
                break;
            }
        }
        let found = walk.out;
        Reply::Chunk {
            entries: self.entries(ev, c, found),
            deferred,
            fatal,
        }
    }

    fn entries(
        &mut self,
        ev: &mut Evaluator,
        c: &Columns,
        found: Vec<super::drvs::PackageInfo>,
    ) -> Vec<Entry> {
        let mut entries = Vec::with_capacity(found.len());
        for p in found {
            let id = self.id(&p.attrs);
            let system = self.filter.then(|| {
                Query { ev: &mut *ev }
                    .system(&p.attrs)
                    .map_err(|e| nixvm::report::render(&ev.vm, &e, true))
            });
            let row = match compute_row(ev, &p, c) {
                Row::Cells(x) => WireRow::Cells(x),
                Row::Json(x) => WireRow::Json(x),
                Row::Skip => WireRow::Skip,
                Row::Fatal(e) => WireRow::Fatal(nixvm::report::render(&ev.vm, &e, self.show_trace)),
                Row::FatalText(t) => WireRow::Fatal(t),
            };
            let rel = p.attr_path.strip_prefix(&c.attr).unwrap_or(&p.attr_path);
            let rel = rel.strip_prefix('.').unwrap_or(rel);
            entries.push(Entry {
                path: split_rel(rel),
                attr_path: p.attr_path,
                name: p.name,
                id,
                system,
                row,
            });
        }
        entries
    }

    fn identify(&mut self, ev: &mut Evaluator, v0: &Value, path: &[Comp]) -> Option<u32> {
        let v = Self::at(ev, v0, path, &mut Vec::new()).ok()?;
        let v = ev.vm.force(v).ok()?;
        let View::Attrs(a) = v.view() else {
            return None;
        };
        Some(self.id(&a))
    }
}

/// A set's children as the walk takes them: names that are attribute-path
/// components, in byte order; walked whole when the set combines channels.
fn child_names(a: &Attrs) -> Children {
    let combine = a.get(nixvm::Symbol::intern("_combineChannels")).is_some();
    let mut names: Vec<&str> = a
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|n| is_attr_path_component(n))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| (n.to_string(), combine))
        .collect()
}

fn join(prefix: &str, path: &[Comp]) -> String {
    let mut s = prefix.to_string();
    for c in path {
        if !s.is_empty() {
            s.push('.');
        }
        match c {
            Comp::Name(n) => s.push_str(n),
            Comp::Index(i) => s.push_str(&i.to_string()),
        }
    }
    s
}

/// A path the walk printed, back into components (names are components,
/// so no quoting; digits are list indices).
fn split_rel(rel: &str) -> Vec<Comp> {
    if rel.is_empty() {
        return Vec::new();
    }
    rel.split('.')
        .map(|c| match c.parse::<u32>() {
            Ok(i) if c.bytes().all(|b| b.is_ascii_digit()) => Comp::Index(i),
            _ => Comp::Name(c.to_string()),
        })
        .collect()
}

struct Proc {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Proc {
    fn ask(&mut self, req: &Request) -> Option<Reply> {
        let text = serde_json::to_string(req).ok()?;
        writeln!(self.stdin, "{text}").ok()?;
        self.stdin.flush().ok()?;
        let mut line = String::new();
        if self.stdout.read_line(&mut line).ok()? == 0 {
            return None;
        }
        serde_json::from_str(&line).ok()
    }
}

#[derive(Default)]
struct Sched {
    /// The first step is still to be taken.
    top: bool,
    /// Children of sets to look at (parent, names), handed out in runs;
    /// the newest set first, so that its finder, warm, takes the first run.
    lists: VecDeque<(Vec<Comp>, Names)>,
    /// How many names `lists` holds.
    pending: usize,
    busy: usize,
    entries: Vec<(usize, Entry)>,
    fatals: Vec<(Vec<Comp>, String)>,
    /// Worker threads still running (all may end early if workers die).
    alive: usize,
}

/// The coordinator: the walk's packages, in its order, found by `n` workers.
pub fn run(q: &QueryArgs, n: usize) -> Result<Vec<Found>, super::Fatal> {
    use super::Fatal;
    let exe = std::env::current_exe()
        .map_err(|e| Fatal::Text(format!("error: cannot find this program's path: {e}\n")))?;
    let mut procs = Vec::new();
    for _ in 0..n {
        let mut child = Command::new(&exe)
            .arg("env")
            .arg("--worker-protocol")
            .args(&q.argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| Fatal::Text(format!("error: starting a worker: {e}\n")))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        procs.push(Mutex::new(Proc {
            child,
            stdin,
            stdout,
        }));
    }
    let sched = Mutex::new(Sched {
        top: true,
        alive: n,
        ..Default::default()
    });
    let cv = Condvar::new();
    let pids: Vec<u32> = procs.iter().map(|p| p.lock().unwrap().child.id()).collect();
    let finished = std::sync::atomic::AtomicBool::new(false);
    let mem = Mutex::new(Memory::default());
    std::thread::scope(|s| {
        s.spawn(|| monitor(&pids, &sched, &finished, &mem));
        for (wi, p) in procs.iter().enumerate() {
            let (sched, cv) = (&sched, &cv);
            s.spawn(move || loop {
                let mut st = sched.lock().unwrap();
                while !st.top && st.pending == 0 && st.busy > 0 {
                    st = cv.wait(st).unwrap();
                }
                let (path, req) = if st.top {
                    st.top = false;
                    (Vec::new(), Request::Top)
                } else if st.pending > 0 {
                    // Guided runs: long ones while much is left (a worker
                    // keeps what it evaluated for its neighbours), short ones
                    // at the end so that both finish together.
                    let take = (st.pending / (4 * n)).clamp(1, 256);
                    let (parent, list) = st.lists.front_mut().expect("pending");
                    let parent = parent.clone();
                    let take = take.min(list.len());
                    let names: Vec<(String, bool)> = list.drain(..take).collect();
                    if list.is_empty() {
                        st.lists.pop_front();
                    }
                    st.pending -= take;
                    (parent.clone(), Request::Chunk { parent, names })
                } else {
                    st.alive -= 1;
                    cv.notify_all();
                    return;
                };
                st.busy += 1;
                drop(st);
                let reply = p.lock().unwrap().ask(&req);
                let mut st = sched.lock().unwrap();
                st.busy -= 1;
                match reply {
                    Some(Reply::Unit {
                        entries,
                        children,
                        fatal,
                    }) => {
                        st.entries.extend(entries.into_iter().map(|e| (wi, e)));
                        if let Some(f) = fatal {
                            st.fatals.push((path.clone(), f));
                        }
                        if !children.is_empty() {
                            st.pending += children.len();
                            st.lists.push_front((Vec::new(), children.into()));
                        }
                    }
                    Some(Reply::Chunk {
                        entries,
                        deferred,
                        fatal,
                    }) => {
                        st.entries.extend(entries.into_iter().map(|e| (wi, e)));
                        if let Some(f) = fatal {
                            st.fatals.push(f);
                        }
                        // In reverse, so that the first set's list is first.
                        for (name, kids) in deferred.into_iter().rev() {
                            if kids.is_empty() {
                                continue;
                            }
                            let mut p2 = path.clone();
                            p2.push(Comp::Name(name));
                            st.pending += kids.len();
                            st.lists.push_front((p2, kids.into()));
                        }
                    }
                    _ => {
                        st.fatals.push((
                            path.clone(),
                            format!(
                                "error: a worker died while evaluating '{}'\n",
                                join("", &path)
                            ),
                        ));
                        st.alive -= 1;
                        cv.notify_all();
                        return;
                    }
                }
                cv.notify_all();
            });
        }
        // The monitor stops when the walk has: the last worker thread to
        // find nothing left says so.
        s.spawn(|| {
            let mut st = sched.lock().unwrap();
            while st.alive > 0 {
                st = cv.wait(st).unwrap();
            }
            finished.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    });
    let mut st = sched.into_inner().unwrap();
    if let Some((_, text)) = st.fatals.iter().min_by(|a, b| a.0.cmp(&b.0)) {
        return Err(Fatal::Text(text.clone()));
    }
    st.entries.sort_by(|a, b| a.1.path.cmp(&b.1.path));
    // One worker's number: one set.
    let mut seen = FxHashSet::default();
    let mut entries: Vec<(usize, Entry)> = st
        .entries
        .into_iter()
        .filter(|(w, e)| seen.insert((*w, e.id)))
        .collect();
    // Equal names from different workers: one worker says which are one.
    let mut by_name: FxHashMap<&str, Vec<usize>> = FxHashMap::default();
    for (i, (_, e)) in entries.iter().enumerate() {
        by_name.entry(e.name.as_str()).or_default().push(i);
    }
    let mut asks: Vec<Vec<usize>> = vec![Vec::new(); n];
    for group in by_name.values() {
        let first = entries[group[0]].0;
        if group.iter().any(|i| entries[*i].0 != first) {
            asks[first].extend(group.iter().copied());
        }
    }
    let mut drop_set = FxHashSet::default();
    for (wi, idx) in asks.iter().enumerate() {
        if idx.is_empty() {
            continue;
        }
        let paths = idx.iter().map(|i| entries[*i].1.path.clone()).collect();
        let ids = match procs[wi].lock().unwrap().ask(&Request::Verify { paths }) {
            Some(Reply::Verify { ids }) => ids,
            _ => return Err(Fatal::Text("error: a worker died while comparing\n".into())),
        };
        // `idx` is in walk order within each name group.
        let mut first_of: FxHashMap<(String, u32), usize> = FxHashMap::default();
        for (i, id) in idx.iter().zip(ids) {
            let Some(id) = id else { continue };
            let key = (entries[*i].1.name.clone(), id);
            match first_of.get(&key) {
                Some(_) => {
                    drop_set.insert(*i);
                }
                None => {
                    first_of.insert(key, *i);
                }
            }
        }
    }
    let mut peaks = Vec::new();
    for p in procs {
        let p = p.into_inner().unwrap();
        drop(p.stdin);
        peaks.push(wait_peak_kib(p.child));
    }
    let mem = mem.into_inner().unwrap();
    if std::env::var("NIX_SHOW_STATS").is_ok_and(|v| !v.is_empty() && v != "0") {
        let each: Vec<String> = peaks.iter().map(|k| format!("{} MB", k / 1024)).collect();
        nixvm::report::stderr_line(&format!(
            "workers: {n}; peak RSS each: {}; peak total (sampled every 0.1 s): {} MB",
            each.join(", "),
            mem.peak_total_kib / 1024
        ));
    }
    let mut i = 0;
    entries.retain(|_| {
        i += 1;
        !drop_set.contains(&(i - 1))
    });
    Ok(entries
        .into_iter()
        .map(|(_, e)| Found {
            attr_path: e.attr_path,
            name: e.name,
            system: e.system.map(|r| r.map_err(Fatal::Text)),
            row: match e.row {
                WireRow::Cells(x) => Row::Cells(x),
                WireRow::Json(x) => Row::Json(x),
                WireRow::Skip => Row::Skip,
                WireRow::Fatal(t) => Row::FatalText(t),
            },
        })
        .collect())
}

#[derive(Default)]
struct Memory {
    peak_total_kib: u64,
}

/// Samples the workers' memory (for the total's peak) and, when stderr is
/// a terminal, shows the walk's progress there: packages found, packages
/// per second, memory.
fn monitor(
    pids: &[u32],
    sched: &Mutex<Sched>,
    finished: &std::sync::atomic::AtomicBool,
    mem: &Mutex<Memory>,
) {
    use std::io::IsTerminal;
    let tty = std::io::stderr().is_terminal();
    let start = std::time::Instant::now();
    let mut last_shown = start;
    let mut tick = 0u32;
    while !finished.load(std::sync::atomic::Ordering::Relaxed) {
        // Short sleeps, so that a short walk does not wait for the monitor.
        std::thread::sleep(std::time::Duration::from_millis(10));
        tick += 1;
        if !tick.is_multiple_of(10) {
            continue;
        }
        let total: u64 = pids
            .iter()
            .map(|p| pid_status_kib(&p.to_string(), "VmRSS:"))
            .sum();
        let mut m = mem.lock().unwrap();
        m.peak_total_kib = m.peak_total_kib.max(total);
        drop(m);
        if tty && last_shown.elapsed().as_millis() >= 500 {
            last_shown = std::time::Instant::now();
            let found = sched.lock().unwrap().entries.len();
            let secs = start.elapsed().as_secs_f64().max(0.001);
            let _ = write!(
                std::io::stderr(),
                "\r\x1b[K[{found} packages, {:.0}/s, {} MB in {} workers]",
                found as f64 / secs,
                total / 1024,
                pids.len()
            );
        }
    }
    if tty {
        let _ = write!(std::io::stderr(), "\r\x1b[K");
    }
}

/// Wait for a worker; its peak resident memory (the kernel's count).
fn wait_peak_kib(child: Child) -> u64 {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet waited for (`child` is consumed).
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    std::mem::forget(child);
    if r == pid {
        ru.ru_maxrss as u64
    } else {
        0
    }
}
