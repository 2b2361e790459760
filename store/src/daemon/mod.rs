//! A client of the Nix daemon's worker protocol: how an evaluator puts
//! `.drv` files and sources into a store it cannot write itself, and asks
//! for builds, on a machine with a Nix installation.
//!
//! Written here because no permissively licensed crate speaks the protocol
//! versions in use (1.34 for Debian's Nix 2.8, 1.38 for Nix 2.34). We speak
//! every version from 1.32 (Nix 2.4) to 1.38, choosing each message's form
//! from the version the handshake settled on, as CppNix's client does
//! (`remote-store.cc`, `worker-protocol-connection.cc`).
//!
//! A [`Connection`] is one daemon worker: its temporary roots (what we
//! added, or asked it to pin) last as long as the connection, which is how
//! an evaluation keeps the daemon's garbage collector off what it wrote.
//! Messages the daemon sends while it works (log lines, activities, build
//! logs) go to the connection's logger; an error it reports ends the
//! operation with [`Error::Msg`] carrying the daemon's text.

pub mod wire;

use crate::db::PathInfo;
use crate::hash::{Hash, HashAlgo, HashFormat};
use crate::Error;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use wire::{WireReader, WireWriter};

const WORKER_MAGIC_1: u64 = 0x6e69_7863;
const WORKER_MAGIC_2: u64 = 0x6478_696f;
const STDERR_NEXT: u64 = 0x6f6c_6d67;
const STDERR_READ: u64 = 0x6461_7461;
const STDERR_WRITE: u64 = 0x6461_7416;
const STDERR_LAST: u64 = 0x616c_7473;
const STDERR_ERROR: u64 = 0x6378_7470;
const STDERR_START_ACTIVITY: u64 = 0x5354_5254;
const STDERR_STOP_ACTIVITY: u64 = 0x5354_4f50;
const STDERR_RESULT: u64 = 0x5253_4c54;

/// The newest protocol we speak (Nix 2.34's), as `major << 8 | minor`.
pub const PROTOCOL_VERSION: u64 = 1 << 8 | 38;
/// The oldest daemon we talk to: Nix 2.4's protocol. Nix 2.3 (1.21) would
/// need NARs sent on request (`STDERR_READ`) and derivation outputs read
/// from the `.drv`; with no 2.3 daemon to test against, we refuse it.
pub const MINIMUM_VERSION: u64 = 1 << 8 | 32;

/// The operations we send (CppNix's `WorkerProto::Op`).
#[derive(Clone, Copy)]
#[repr(u64)]
enum Op {
    IsValidPath = 1,
    AddToStore = 7,
    AddTextToStore = 8,
    BuildPaths = 9,
    EnsurePath = 10,
    AddTempRoot = 11,
    AddIndirectRoot = 12,
    SetOptions = 19,
    QueryPathInfo = 26,
    QueryValidPaths = 31,
    QueryValidDerivers = 33,
    AddToStoreNar = 39,
    QueryMissing = 40,
    QueryDerivationOutputMap = 41,
    AddMultipleToStore = 44,
}

/// What the daemon says while it works.
#[derive(Debug, Clone)]
pub enum LogEvent {
    /// A message line (printed as CppNix's `printError` prints).
    Line(String),
    StartActivity {
        id: u64,
        level: u64,
        kind: u64,
        text: String,
        parent: u64,
    },
    StopActivity {
        id: u64,
    },
    /// A result of an activity; `fields` are its string and number fields.
    Result {
        id: u64,
        kind: u64,
        fields: Vec<Field>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Int(u64),
    Str(String),
}

/// CppNix's activity result type for a line of a build log.
pub const RES_BUILD_LOG_LINE: u64 = 101;
/// ... and for a line of a post-build hook's output.
pub const RES_POST_BUILD_LOG_LINE: u64 = 107;
/// CppNix's verbosity `info`, the default.
pub const LVL_INFO: u64 = 3;

pub type Logger = Box<dyn FnMut(&LogEvent)>;

/// The line CppNix's simple logger (the legacy commands') prints for an
/// event: message lines; activities at or above `verbosity` as "TEXT...";
/// build log lines when `print_build_logs`.
pub fn log_line(e: &LogEvent, verbosity: u64, print_build_logs: bool) -> Option<String> {
    match e {
        LogEvent::Line(s) => Some(s.trim_end_matches('\n').to_string()),
        LogEvent::StartActivity { level, text, .. } if *level <= verbosity && !text.is_empty() => {
            Some(format!("{text}..."))
        }
        LogEvent::Result { kind, fields, .. } if print_build_logs => match (kind, fields.first()) {
            (&RES_BUILD_LOG_LINE, Some(Field::Str(s))) => Some(s.clone()),
            (&RES_POST_BUILD_LOG_LINE, Some(Field::Str(s))) => {
                Some(format!("post-build-hook: {s}"))
            }
            _ => None,
        },
        _ => None,
    }
}

/// [`log_line`]s written to stderr as they are.
pub fn stderr_logger(verbosity: u64, print_build_logs: bool) -> Logger {
    Box::new(move |e| {
        if let Some(l) = log_line(e, verbosity, print_build_logs) {
            let mut err = io::stderr().lock();
            let _ = err.write_all(l.as_bytes());
            let _ = err.write_all(b"\n");
        }
    })
}

/// A derivation's outputs to build (`drv!out1,out2`; no outputs means all),
/// or an opaque store path to make valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DerivedPath {
    Opaque(String),
    Built { drv: String, outputs: Vec<String> },
}

impl DerivedPath {
    fn wire(&self) -> String {
        match self {
            DerivedPath::Opaque(p) => p.clone(),
            DerivedPath::Built { drv, outputs } if outputs.is_empty() => format!("{drv}!*"),
            DerivedPath::Built { drv, outputs } => format!("{drv}!{}", outputs.join(",")),
        }
    }
}

/// How a build is done (CppNix's `BuildMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildMode {
    Normal = 0,
    Repair = 1,
    Check = 2,
}

/// What `QueryMissing` answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Missing {
    pub will_build: BTreeSet<String>,
    pub will_substitute: BTreeSet<String>,
    pub unknown: BTreeSet<String>,
    pub download_size: u64,
    pub nar_size: u64,
}

/// The settings a client passes to the daemon (`SetOptions`).
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub keep_failed: bool,
    pub keep_going: bool,
    pub try_fallback: bool,
    pub verbosity: u64,
    pub max_build_jobs: u64,
    pub max_silent_time: u64,
    pub verbose_build: bool,
    pub build_cores: u64,
    pub use_substitutes: bool,
    /// Other settings by name, as given on the command line or in files.
    pub overrides: BTreeMap<String, String>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            keep_failed: false,
            keep_going: false,
            try_fallback: false,
            verbosity: LVL_INFO,
            max_build_jobs: 1,
            max_silent_time: 0,
            verbose_build: true,
            build_cores: 0,
            use_substitutes: true,
            overrides: BTreeMap::new(),
        }
    }
}

/// One open connection to a daemon.
pub struct Connection {
    r: WireReader<io::BufReader<UnixStream>>,
    w: WireWriter<UnixStream>,
    /// The negotiated protocol version (`major << 8 | minor`).
    pub version: u64,
    /// The daemon's Nix version, from protocol 1.33.
    pub daemon_nix_version: Option<String>,
    /// Whether the daemon trusts us, from protocol 1.35.
    pub trusted: Option<bool>,
    /// Paths already pinned with a temporary root on this connection.
    pinned: BTreeSet<String>,
    log: Logger,
    socket: PathBuf,
    /// Set when the stream may be out of step with the daemon (an I/O or
    /// protocol failure, not an error the daemon reported): the connection
    /// must not be used again.
    pub broken: bool,
    /// Whether the last failure was an error the daemon sent (the stream is
    /// then in step).
    daemon_error: bool,
}

fn io_error(socket: &Path, e: io::Error) -> Error {
    Error::Msg(format!(
        "reading from or writing to the Nix daemon at '{}': {e}",
        socket.display()
    ))
}

impl Connection {
    /// Connect to the daemon listening on `socket` and agree on a version.
    pub fn open(socket: &Path, log: Logger) -> Result<Connection, Error> {
        let stream = UnixStream::connect(socket).map_err(|e| {
            Error::Msg(format!(
                "cannot connect to socket at '{}': {}",
                socket.display(),
                crate::io_message(&e)
            ))
        })?;
        let reader = stream.try_clone().map_err(|e| io_error(socket, e))?;
        let mut c = Connection {
            r: WireReader::new(io::BufReader::with_capacity(64 * 1024, reader)),
            w: WireWriter::new(stream),
            version: PROTOCOL_VERSION,
            daemon_nix_version: None,
            trusted: None,
            pinned: BTreeSet::new(),
            log,
            socket: socket.to_path_buf(),
            broken: false,
            daemon_error: false,
        };
        c.handshake().map_err(|e| {
            Error::Msg(format!(
                "cannot open connection to remote store 'daemon': {}",
                e
            ))
        })?;
        Ok(c)
    }

    fn io(&self, e: io::Error) -> Error {
        io_error(&self.socket, e)
    }

    /// Run one operation; any failure but the daemon's own error report
    /// marks the connection broken.
    pub fn run<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, Error>) -> Result<T, Error> {
        self.daemon_error = false;
        let r = f(self);
        if r.is_err() && !self.daemon_error {
            self.broken = true;
        }
        r
    }

    fn minor(&self) -> u64 {
        self.version & 0xff
    }

    fn handshake(&mut self) -> Result<(), Error> {
        let socket = self.socket.clone();
        let io = |e| io_error(&socket, e);
        self.w.u64(WORKER_MAGIC_1).map_err(io)?;
        self.w.u64(PROTOCOL_VERSION).map_err(io)?;
        self.w.flush().map_err(io)?;
        let magic = self.r.u64().map_err(io)?;
        if magic != WORKER_MAGIC_2 {
            return Err(Error::Msg("nix-daemon protocol mismatch".into()));
        }
        let daemon = self.r.u64().map_err(io)?;
        if daemon & 0xff00 != PROTOCOL_VERSION & 0xff00 {
            return Err(Error::Msg(
                "Nix daemon protocol version not supported".into(),
            ));
        }
        if daemon < MINIMUM_VERSION {
            return Err(Error::Msg(format!(
                "the Nix daemon version is too old (protocol 1.{}; nixvm needs 1.32, Nix 2.4, or newer)",
                daemon & 0xff
            )));
        }
        self.version = daemon.min(PROTOCOL_VERSION);
        if self.minor() >= 38 {
            // Protocol features: we ask for none.
            self.w.strings(std::iter::empty()).map_err(io)?;
            self.w.flush().map_err(io)?;
            let _theirs = self.r.strings().map_err(io)?;
        }
        if self.minor() >= 14 {
            self.w.u64(0).map_err(io)?; // obsolete CPU affinity
        }
        if self.minor() >= 11 {
            self.w.bool(false).map_err(io)?; // obsolete reserveSpace
        }
        self.w.flush().map_err(io)?;
        if self.minor() >= 33 {
            self.daemon_nix_version = Some(self.r.text().map_err(io)?);
        }
        if self.minor() >= 35 {
            self.trusted = match self.r.u64().map_err(io)? {
                1 => Some(true),
                2 => Some(false),
                _ => None,
            };
        }
        self.process_stderr()?;
        self.set_options(&ClientOptions::default())
    }

    /// Read what the daemon sends until it has finished the operation.
    fn process_stderr(&mut self) -> Result<(), Error> {
        self.send(|w| w.flush().map(drop))?;
        loop {
            let msg = self.r.u64().map_err(|e| self.io(e))?;
            match msg {
                STDERR_LAST => return Ok(()),
                STDERR_NEXT => {
                    let s = self.r.text().map_err(|e| self.io(e))?;
                    (self.log)(&LogEvent::Line(s));
                }
                STDERR_ERROR => {
                    let e = self.read_error()?;
                    self.daemon_error = true;
                    return Err(e);
                }
                STDERR_START_ACTIVITY => {
                    let id = self.r.u64().map_err(|e| self.io(e))?;
                    let level = self.r.u64().map_err(|e| self.io(e))?;
                    let kind = self.r.u64().map_err(|e| self.io(e))?;
                    let text = self.r.text().map_err(|e| self.io(e))?;
                    let _fields = self.fields()?;
                    let parent = self.r.u64().map_err(|e| self.io(e))?;
                    (self.log)(&LogEvent::StartActivity {
                        id,
                        level,
                        kind,
                        text,
                        parent,
                    });
                }
                STDERR_STOP_ACTIVITY => {
                    let id = self.r.u64().map_err(|e| self.io(e))?;
                    (self.log)(&LogEvent::StopActivity { id });
                }
                STDERR_RESULT => {
                    let id = self.r.u64().map_err(|e| self.io(e))?;
                    let kind = self.r.u64().map_err(|e| self.io(e))?;
                    let fields = self.fields()?;
                    (self.log)(&LogEvent::Result { id, kind, fields });
                }
                STDERR_READ | STDERR_WRITE => {
                    return Err(Error::Msg(format!(
                        "the Nix daemon asked for data we never offer (message {msg:x})"
                    )))
                }
                _ => {
                    return Err(Error::Msg(format!(
                        "got unknown message type {msg:x} from Nix daemon"
                    )))
                }
            }
        }
    }

    fn fields(&mut self) -> Result<Vec<Field>, Error> {
        let n = self.r.u64().map_err(|e| self.io(e))?;
        let mut out = Vec::new();
        for _ in 0..n {
            match self.r.u64().map_err(|e| self.io(e))? {
                0 => out.push(Field::Int(self.r.u64().map_err(|e| self.io(e))?)),
                1 => out.push(Field::Str(self.r.text().map_err(|e| self.io(e))?)),
                t => {
                    return Err(Error::Msg(format!(
                        "got unsupported field type {t:x} from Nix daemon"
                    )))
                }
            }
        }
        Ok(out)
    }

    /// An error the daemon reports, as CppNix shows it: the message, then
    /// its traces.
    fn read_error(&mut self) -> Result<Error, Error> {
        let io = |c: &Self, e| c.io(e);
        if self.minor() < 26 {
            let msg = self.r.text().map_err(|e| io(self, e))?;
            let _status = self.r.u64().map_err(|e| io(self, e))?;
            return Ok(Error::Msg(msg));
        }
        let kind = self.r.string().map_err(|e| io(self, e))?;
        if kind != "Error" {
            return Err(Error::Msg(format!("unexpected error type '{kind}'")));
        }
        let _level = self.r.u64().map_err(|e| io(self, e))?;
        let _name = self.r.text().map_err(|e| io(self, e))?;
        let mut msg = self.r.text().map_err(|e| io(self, e))?;
        let _have_pos = self.r.u64().map_err(|e| io(self, e))?;
        let traces = self.r.u64().map_err(|e| io(self, e))?;
        for _ in 0..traces {
            let _have_pos = self.r.u64().map_err(|e| io(self, e))?;
            let t = self.r.text().map_err(|e| io(self, e))?;
            msg.push_str(&format!("\n… {t}"));
        }
        Ok(Error::Msg(msg))
    }

    /// Send the client's settings (done once after the handshake with the
    /// defaults; again whenever the caller's differ).
    pub fn set_options(&mut self, o: &ClientOptions) -> Result<(), Error> {
        let r = (|| -> io::Result<()> {
            let w = &mut self.w;
            w.u64(Op::SetOptions as u64)?
                .bool(o.keep_failed)?
                .bool(o.keep_going)?
                .bool(o.try_fallback)?
                .u64(o.verbosity)?
                .u64(o.max_build_jobs)?
                .u64(o.max_silent_time)?
                .bool(true)? // obsolete useBuildHook
                .u64(if o.verbose_build { 0 } else { 7 })?
                .u64(0)? // obsolete log type
                .u64(0)? // obsolete print build trace
                .u64(o.build_cores)?
                .bool(o.use_substitutes)?;
            w.u64(o.overrides.len() as u64)?;
            for (k, v) in &o.overrides {
                w.str(k)?.str(v)?;
            }
            Ok(())
        })();
        r.map_err(|e| self.io(e))?;
        self.process_stderr()
    }

    fn op(&mut self, op: Op) -> Result<&mut WireWriter<UnixStream>, Error> {
        let socket = self.socket.clone();
        self.w.u64(op as u64).map_err(|e| io_error(&socket, e))?;
        Ok(&mut self.w)
    }

    fn send(
        &mut self,
        f: impl FnOnce(&mut WireWriter<UnixStream>) -> io::Result<()>,
    ) -> Result<(), Error> {
        f(&mut self.w).map_err(|e| io_error(&self.socket, e))
    }

    fn send_str(&mut self, s: &str) -> Result<(), Error> {
        self.w.str(s).map(|_| ()).map_err(|e| self.io(e))
    }

    fn send_strings<'a>(
        &mut self,
        items: impl ExactSizeIterator<Item = &'a str>,
    ) -> Result<(), Error> {
        self.w.strings(items).map(|_| ()).map_err(|e| self.io(e))
    }

    fn read_u64(&mut self) -> Result<u64, Error> {
        self.r.u64().map_err(|e| self.io(e))
    }

    fn read_string(&mut self) -> Result<String, Error> {
        self.r.string().map_err(|e| self.io(e))
    }

    fn read_set(&mut self) -> Result<BTreeSet<String>, Error> {
        Ok(self
            .r
            .strings()
            .map_err(|e| self.io(e))?
            .into_iter()
            .collect())
    }

    pub fn is_valid_path(&mut self, path: &str) -> Result<bool, Error> {
        self.op(Op::IsValidPath)?;
        self.send_str(path)?;
        self.process_stderr()?;
        Ok(self.read_u64()? != 0)
    }

    /// Which of `paths` are valid (without substituting).
    pub fn query_valid_paths(
        &mut self,
        paths: &BTreeSet<String>,
    ) -> Result<BTreeSet<String>, Error> {
        self.op(Op::QueryValidPaths)?;
        self.send_strings(paths.iter().map(String::as_str))?;
        if self.minor() >= 27 {
            self.send(|w| w.bool(false).map(drop))?;
        }
        self.process_stderr()?;
        self.read_set()
    }

    /// A valid path's metadata; `None` when it is not valid.
    pub fn query_path_info(&mut self, path: &str) -> Result<Option<PathInfo>, Error> {
        self.op(Op::QueryPathInfo)?;
        self.send_str(path)?;
        match self.process_stderr() {
            Err(Error::Msg(m)) if m.contains("is not valid") => return Ok(None),
            r => r?,
        }
        if self.minor() >= 17 && self.read_u64()? == 0 {
            return Ok(None);
        }
        self.read_unkeyed_info(path.to_string()).map(Some)
    }

    fn read_unkeyed_info(&mut self, path: String) -> Result<PathInfo, Error> {
        let deriver = Some(self.read_string()?).filter(|d| !d.is_empty());
        let hash = self.read_string()?;
        let nar_hash = Hash::parse_any(&hash, Some(HashAlgo::Sha256))
            .map_err(|e| Error::Msg(format!("the Nix daemon sent a bad NAR hash: {e}")))?;
        let references = self.read_set()?;
        let registration_time = self.read_u64()? as i64;
        let nar_size = self.read_u64()?;
        let mut ca = None;
        if self.minor() >= 16 {
            let _ultimate = self.read_u64()?;
            let _sigs = self.read_set()?;
            ca = Some(self.read_string()?).filter(|c| !c.is_empty());
        }
        Ok(PathInfo {
            path,
            nar_hash,
            nar_size,
            references,
            deriver,
            ca,
            registration_time,
        })
    }

    /// Add content-addressed data: `ca_method` is `text`, `fixed:r` (a NAR)
    /// or `fixed` (a flat file's bytes), with sha256; `data` is what the
    /// method hashes (the text, the NAR, the file's contents). Returns the
    /// new path's metadata.
    pub fn add_ca(
        &mut self,
        name: &str,
        ca_method: &str,
        references: &BTreeSet<String>,
        data: &mut dyn FnMut(&mut dyn Write) -> Result<(), Error>,
    ) -> Result<PathInfo, Error> {
        if self.minor() >= 25 {
            self.op(Op::AddToStore)?;
            self.send_str(name)?;
            self.send_str(&format!("{ca_method}:sha256"))?;
            self.send_strings(references.iter().map(String::as_str))?;
            self.send(|w| w.bool(false).map(drop))?; // repair
            self.send(|w| w.flush().map(drop))?;
            let socket = self.socket.clone();
            let mut framed = self.w.framed();
            // The data ends with its zero frame even when producing it
            // failed, so that the daemon (which then fails the add) and we
            // stay in step.
            let made = data(&mut framed);
            framed.finish().map_err(|e| io_error(&socket, e))?;
            let answer = self.process_stderr();
            made?;
            answer?;
            let path = self.read_string()?;
            return self.read_unkeyed_info(path);
        }
        let mut buf = Vec::new();
        data(&mut buf)?;
        match ca_method {
            "text" => {
                self.op(Op::AddTextToStore)?;
                self.send_str(name)?;
                self.send(|w| w.bytes(&buf).map(drop))?;
                self.send_strings(references.iter().map(String::as_str))?;
            }
            "fixed:r" | "fixed" => {
                let recursive = ca_method == "fixed:r";
                self.op(Op::AddToStore)?;
                self.send_str(name)?;
                // CppNix's compatibility encoding of (method, sha256), then
                // the NAR unframed (a flat file's as a one-file NAR).
                let nar = if recursive {
                    std::mem::take(&mut buf)
                } else {
                    let mut nar = Vec::new();
                    crate::nar::dump_bytes(&buf, &mut nar).map_err(|e| self.io(e))?;
                    nar
                };
                let r = (|| -> io::Result<()> {
                    self.w
                        .u64(u64::from(!recursive))?
                        .u64(u64::from(recursive))?;
                    self.w.str("sha256")?.raw(&nar)?;
                    Ok(())
                })();
                r.map_err(|e| self.io(e))?;
            }
            _ => {
                return Err(Error::Msg(format!(
                    "unknown content address method '{ca_method}'"
                )))
            }
        }
        self.process_stderr()?;
        let path = self.read_string()?;
        self.query_path_info(&path)?
            .ok_or_else(|| Error::Msg(format!("path '{path}' is not valid")))
    }

    /// Add many paths at once, references before referrers; each with its
    /// metadata (path, NAR hash and size, references, content address) and
    /// its NAR. Falls back to one `AddToStore` per path before 1.32.
    pub fn add_multiple(&mut self, items: &[(PathInfo, Vec<u8>)]) -> Result<(), Error> {
        if items.is_empty() {
            return Ok(());
        }
        if self.minor() < 32 {
            for (info, nar) in items {
                self.add_nar_one(info, nar)?;
            }
            return Ok(());
        }
        self.op(Op::AddMultipleToStore)?;
        self.send(|w| w.bool(false).map(drop))?; // repair
        self.send(|w| w.bool(true).map(drop))?; // don't check signatures
        self.send(|w| w.flush().map(drop))?;
        let socket = self.socket.clone();
        let r = (|| -> io::Result<()> {
            let mut f = self.w.framed();
            wire::put_u64(&mut f, items.len() as u64)?;
            for (info, nar) in items {
                put_info_1_16(&mut f, info)?;
                f.write_all(nar)?;
            }
            f.finish()
        })();
        r.map_err(|e| io_error(&socket, e))?;
        self.process_stderr()
    }

    /// `AddToStoreNar`: one path with its metadata and NAR.
    fn add_nar_one(&mut self, info: &PathInfo, nar: &[u8]) -> Result<(), Error> {
        self.op(Op::AddToStoreNar)?;
        let socket = self.socket.clone();
        let r = (|| -> io::Result<()> {
            let w = &mut self.w;
            w.str(&info.path)?;
            put_unkeyed_info(w, info)?;
            w.bool(false)?.bool(true)?; // repair, don't check signatures
            w.flush()?;
            if self.version & 0xff >= 23 {
                let mut f = w.framed();
                f.write_all(nar)?;
                f.finish()
            } else {
                Err(io::Error::other(
                    "adding a NAR needs Nix daemon protocol 1.23 or newer",
                ))
            }
        })();
        r.map_err(|e| io_error(&socket, e))?;
        self.process_stderr()
    }

    /// Keep the daemon's collector off `path` while this connection lives.
    pub fn add_temp_root(&mut self, path: &str) -> Result<(), Error> {
        if self.pinned.contains(path) {
            return Ok(());
        }
        self.op(Op::AddTempRoot)?;
        self.send_str(path)?;
        self.process_stderr()?;
        self.read_u64()?;
        self.pinned.insert(path.to_string());
        Ok(())
    }

    /// Register `link` (a symlink into the store, e.g. `./result`) as an
    /// indirect garbage collector root.
    pub fn add_indirect_root(&mut self, link: &str) -> Result<(), Error> {
        self.op(Op::AddIndirectRoot)?;
        self.send_str(link)?;
        self.process_stderr()?;
        self.read_u64()?;
        Ok(())
    }

    /// Make `path` valid, substituting or building it.
    pub fn ensure_path(&mut self, path: &str) -> Result<(), Error> {
        self.op(Op::EnsurePath)?;
        self.send_str(path)?;
        self.process_stderr()?;
        self.read_u64()?;
        Ok(())
    }

    /// Build (or substitute) `paths`; a failure is the daemon's error.
    pub fn build_paths(&mut self, paths: &[DerivedPath], mode: BuildMode) -> Result<(), Error> {
        self.op(Op::BuildPaths)?;
        let wire: Vec<String> = paths.iter().map(DerivedPath::wire).collect();
        self.send_strings(wire.iter().map(String::as_str))?;
        if self.minor() >= 15 {
            self.send(|w| w.u64(mode as u64).map(drop))?;
        } else if mode != BuildMode::Normal {
            return Err(Error::Msg(
                "repairing or checking is not supported when building through the Nix daemon"
                    .into(),
            ));
        }
        self.process_stderr()?;
        self.read_u64()?;
        Ok(())
    }

    /// What building `paths` would take.
    pub fn query_missing(&mut self, paths: &[DerivedPath]) -> Result<Missing, Error> {
        self.op(Op::QueryMissing)?;
        let wire: Vec<String> = paths.iter().map(DerivedPath::wire).collect();
        self.send_strings(wire.iter().map(String::as_str))?;
        self.process_stderr()?;
        Ok(Missing {
            will_build: self.read_set()?,
            will_substitute: self.read_set()?,
            unknown: self.read_set()?,
            download_size: self.read_u64()?,
            nar_size: self.read_u64()?,
        })
    }

    /// A derivation's outputs and their paths (`None` when not known yet).
    pub fn query_derivation_output_map(
        &mut self,
        drv: &str,
    ) -> Result<BTreeMap<String, Option<String>>, Error> {
        self.op(Op::QueryDerivationOutputMap)?;
        self.send_str(drv)?;
        self.process_stderr()?;
        let n = self.read_u64()?;
        let mut out = BTreeMap::new();
        for _ in 0..n {
            let name = self.read_string()?;
            let path = self.read_string()?;
            out.insert(name, Some(path).filter(|p| !p.is_empty()));
        }
        Ok(out)
    }

    /// Valid derivations that have `path` as an output.
    pub fn query_valid_derivers(&mut self, path: &str) -> Result<BTreeSet<String>, Error> {
        self.op(Op::QueryValidDerivers)?;
        self.send_str(path)?;
        self.process_stderr()?;
        self.read_set()
    }
}

/// A path's metadata as protocol 1.16 and later write it (what
/// `AddMultipleToStore` always uses inside its framed stream).
fn put_info_1_16<W: Write + ?Sized>(w: &mut W, info: &PathInfo) -> io::Result<()> {
    wire::put_bytes(w, info.path.as_bytes())?;
    put_unkeyed_fields(w, info)
}

fn put_unkeyed_fields<W: Write + ?Sized>(w: &mut W, info: &PathInfo) -> io::Result<()> {
    wire::put_bytes(w, info.deriver.as_deref().unwrap_or("").as_bytes())?;
    wire::put_bytes(
        w,
        info.nar_hash
            .to_string(HashFormat::Base16, false)
            .as_bytes(),
    )?;
    wire::put_strings(w, info.references.iter().map(String::as_str))?;
    wire::put_u64(w, info.registration_time as u64)?;
    wire::put_u64(w, info.nar_size)?;
    wire::put_u64(w, 0)?; // ultimate
    wire::put_strings(w, std::iter::empty())?; // signatures
    wire::put_bytes(w, info.ca.as_deref().unwrap_or("").as_bytes())
}

fn put_unkeyed_info(w: &mut WireWriter<UnixStream>, info: &PathInfo) -> io::Result<()> {
    let mut buf = Vec::new();
    put_unkeyed_fields(&mut buf, info)?;
    w.raw(&buf)?;
    Ok(())
}
