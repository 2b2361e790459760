//! `nixvm eval`: CppNix's `nix eval`. The value of an installable — an
//! attribute path into `--file`'s or `--expr`'s value (flake references come
//! with the flakes work) — optionally passed through `--apply`, printed as
//! `nix eval` prints (forced, derivations as `«derivation DRV»`), as JSON, or
//! raw. `--expr` evaluates purely unless `--impure`, as CppNix.

use crate::args::InstArgs;
use crate::config::{build_evaluator_with, make_store};
use crate::diag::report;
use clap::Args;
use nixvm::{ErrCtx, EvalError, Evaluator};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

#[derive(Args, Default)]
pub struct EvalArgs {
    /// An attribute path into the value of --file or --expr (`hello.name`).
    pub installable: Option<String>,
    /// Evaluate FILE (a path, `-` for stdin, `<nixpkgs>`); the installable selects in it.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<String>,
    /// Evaluate EXPR; the installable selects in it.
    #[arg(long = "expr", value_name = "EXPR")]
    pub expr: Option<String>,
    /// Apply the function EXPR to the value before printing it.
    #[arg(long = "apply", value_name = "EXPR")]
    pub apply: Option<String>,
    /// Print the value as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the value, which must be a string, without quotes or a newline.
    #[arg(long)]
    pub raw: bool,
    /// Write no derivations to the store.
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Evaluate --expr impurely (files are evaluated impurely already).
    #[arg(long)]
    pub impure: bool,
    /// Search path entries (`-I nixpkgs=…`).
    #[arg(short = 'I', long = "include")]
    pub include: Vec<String>,
    /// An argument for the function the file or expression is (with an attribute path).
    #[arg(long = "arg", num_args = 2, value_names = ["NAME", "EXPR"], allow_hyphen_values = true)]
    pub arg: Vec<String>,
    /// A string argument for that function.
    #[arg(long = "argstr", num_args = 2, value_names = ["NAME", "STRING"], allow_hyphen_values = true)]
    pub argstr: Vec<String>,
    /// A setting (`--option pure-eval true`); every setting is also `--NAME VALUE`.
    #[arg(long = "option", num_args = 2, value_names = ["NAME", "VALUE"], allow_hyphen_values = true)]
    pub option: Vec<String>,
    /// The store (a chroot store directory), as for `nixvm instantiate`.
    #[arg(long = "store", value_name = "DIR")]
    pub store: Option<String>,
    /// The store to evaluate against (the same as --store here).
    #[arg(long = "eval-store", value_name = "URL")]
    pub eval_store: Option<String>,
    /// More output (repeatable).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less output (repeatable).
    #[arg(long = "quiet", action = clap::ArgAction::Count)]
    pub quiet_level: u8,
    /// CppNix's log formats: accepted; nixvm writes plain lines.
    #[arg(long = "log-format", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// CppNix's debugger (refused: nixvm has none).
    #[arg(long = "debugger")]
    pub debugger: bool,
    /// Consider every cached download out of date (`tarball-ttl = 0`).
    #[arg(long = "refresh")]
    pub refresh: bool,
}

impl EvalArgs {
    /// The evaluator's settings and inputs as `nixvm instantiate --eval`'s.
    pub fn inst_args(&self) -> InstArgs {
        let mut option = Vec::new();
        if self.expr.is_some() && !self.impure {
            option.extend(["pure-eval".to_string(), "true".to_string()]);
        }
        option.extend(self.option.iter().cloned());
        InstArgs {
            codespan: true,
            eval: true,
            strict: true,
            read_write: !self.read_only,
            include: self.include.clone(),
            arg: self.arg.clone(),
            argstr: self.argstr.clone(),
            option,
            impure: self.impure,
            store: self.store.clone(),
            eval_store: self.eval_store.clone(),
            verbose: self.verbose,
            quiet_level: self.quiet_level,
            log_format: self.log_format.clone(),
            debugger: self.debugger,
            refresh: self.refresh,
            ..Default::default()
        }
    }
}

pub fn eval(e: EvalArgs, a: InstArgs) -> ExitCode {
    let store = match make_store(&a, a.read_write) {
        Ok(s) => s,
        Err(err) => {
            nixvm::report::stderr_line(&format!("error: {err}"));
            return ExitCode::from(1);
        }
    };
    let mut ev = build_evaluator_with(&a, store);
    let r = eval_inner(&e, &a, &mut ev).and_then(|out| {
        ev.flush_store()?;
        Ok(out)
    });
    match r {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(&out);
            let _ = stdout.flush();
            ExitCode::SUCCESS
        }
        Err(err) => {
            report(&ev, &a, &err);
            ExitCode::from(1)
        }
    }
}

fn eval_inner(e: &EvalArgs, a: &InstArgs, ev: &mut Evaluator) -> Result<Vec<u8>, Box<EvalError>> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let root = match (&e.expr, &e.file) {
        (Some(x), _) => ev.eval_str(x, &cwd)?,
        (None, Some(f)) => crate::instantiate::eval_input(ev, f)?,
        (None, None) => {
            let what = e.installable.as_deref().unwrap_or(".");
            return Err(EvalError::new(
                nixvm::ErrorKind::Usage,
                format!(
                    "'{what}' is a flake reference, and nixvm does not evaluate flakes yet: give --file FILE or --expr EXPR (the installable is then an attribute path)"
                ),
            ));
        }
    };
    let auto_args = crate::instantiate::auto_args(a, ev)?;
    let path = e.installable.as_deref().unwrap_or("");
    let mut v = crate::attrpath::select(ev, root, path, &auto_args)?;
    if let Some(f) = &e.apply {
        let f = ev.eval_str(f, &cwd)?;
        v = ev.call(f, v)?;
    }
    let mut out = Vec::new();
    if e.raw {
        let s = ev
            .coerce_to_string(&v)
            .ctx("while generating the eval command output")?;
        out.extend_from_slice(&s);
    } else if e.json {
        out.extend_from_slice(ev.to_json(v, true)?.as_bytes());
        out.push(b'\n');
    } else {
        out.extend_from_slice(ev.print_forced(&v)?.as_bytes());
        out.push(b'\n');
    }
    let _ = Path::new("");
    Ok(out)
}
