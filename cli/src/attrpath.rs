//! Attribute paths as CppNix's `-A` takes them: components split at dots,
//! double quotes protecting dots (`a."b.c"`), a number selecting a list
//! element, the function at each step called with the `--arg`s first.

use crate::instantiate::auto_call;
use nixvm::value::{Value, View};
use nixvm::{ErrorKind, EvalError, Evaluator};
use nixvm_compiler::Symbol;

/// The value at `path` under `v`, forced.
pub fn select(
    ev: &mut Evaluator,
    mut v: Value,
    path: &str,
    args: &[(Symbol, Value)],
) -> Result<Value, Box<EvalError>> {
    let fail = |kind, msg: String| EvalError::new(kind, msg);
    for comp in nixvm::split_attr_path(path)? {
        v = auto_call(ev, v, args)?;
        v = ev.vm.force(v)?;
        if let Ok(i) = comp.parse::<u32>() {
            let View::List(l) = &v.view() else {
                return Err(fail(
                    ErrorKind::Type,
                    format!(
                        "the expression selected by the selection path '{path}' should be a list but is {}",
                        v.show_type()
                    ),
                ));
            };
            let Some(x) = l.get(i as usize) else {
                return Err(fail(
                    ErrorKind::MissingAttr,
                    format!("list index {i} in selection path '{path}' is out of range"),
                ));
            };
            v = x.clone();
            continue;
        }
        let View::Attrs(s) = &v.view() else {
            return Err(fail(
                ErrorKind::Type,
                format!(
                    "the expression selected by the selection path '{path}' should be a set but is {}",
                    v.show_type()
                ),
            ));
        };
        if comp.is_empty() {
            return Err(fail(
                ErrorKind::Other,
                format!("empty attribute name in selection path '{path}'"),
            ));
        }
        match s.get(Symbol::intern(&comp)) {
            Some(x) => v = x.clone(),
            None => {
                let mut e = fail(
                    ErrorKind::MissingAttr,
                    format!("attribute '{comp}' in selection path '{path}' not found"),
                );
                e.suggestions =
                    nixvm::report::best_matches(s.iter().map(|(k, _)| k.to_string()), &comp);
                return Err(e);
            }
        }
    }
    ev.vm.force(v)
}
