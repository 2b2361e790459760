//! The differential tester's generator: seeded, well-formed, terminating Nix
//! programs over most of the language and its builtins, typed so that most
//! cases evaluate (and a few planted errors), as trees so that a mismatch
//! can be shrunk (`reduce`).
//!
//! A program is a `Node`: a template whose `{}` holes are filled by its
//! children, and the type of the value it yields. Generation picks, for the
//! type it needs, one of the forms that make such a value; a depth budget
//! keeps programs small and terminating (there is no recursion to generate).

/// What a node's value is, so that a replacement keeps the program typed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Ty {
    Int,
    Float,
    Bool,
    Str,
    List,
    Set,
    Fun,
}

const TYS: [Ty; 6] = [Ty::Int, Ty::Float, Ty::Bool, Ty::Str, Ty::List, Ty::Set];

#[derive(Clone, Debug)]
pub struct Node {
    pub ty: Ty,
    pub tmpl: String,
    pub kids: Vec<Node>,
}

impl Node {
    fn leaf(ty: Ty, text: impl Into<String>) -> Node {
        Node {
            ty,
            tmpl: text.into(),
            kids: Vec::new(),
        }
    }

    /// The program text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut kids = self.kids.iter();
        let mut rest = self.tmpl.as_str();
        while let Some(i) = rest.find("{}") {
            out.push_str(&rest[..i]);
            match kids.next() {
                Some(k) => out.push_str(&k.render()),
                None => out.push_str("{}"),
            }
            rest = &rest[i + 2..];
        }
        out.push_str(rest);
        out
    }

    /// Every node, depth first, as paths of child indices.
    pub fn paths(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new()];
        for (i, k) in self.kids.iter().enumerate() {
            for mut p in k.paths() {
                p.insert(0, i);
                out.push(p);
            }
        }
        out
    }

    pub fn at(&self, path: &[usize]) -> &Node {
        match path.split_first() {
            None => self,
            Some((i, rest)) => self.kids[*i].at(rest),
        }
    }

    pub fn replace(&self, path: &[usize], with: Node) -> Node {
        match path.split_first() {
            None => with,
            Some((i, rest)) => {
                let mut n = self.clone();
                n.kids[*i] = self.kids[*i].replace(rest, with);
                n
            }
        }
    }

    /// Smaller programs of the same type in place of this node: a child of
    /// the same type, or a literal.
    pub fn simpler(&self) -> Vec<Node> {
        let mut out: Vec<Node> = self
            .kids
            .iter()
            .filter(|k| k.ty == self.ty)
            .cloned()
            .collect();
        let lit = simplest(self.ty);
        if lit.tmpl != self.tmpl {
            out.push(lit);
        }
        out
    }

    pub fn size(&self) -> usize {
        1 + self.kids.iter().map(Node::size).sum::<usize>()
    }
}

fn simplest(ty: Ty) -> Node {
    Node::leaf(
        ty,
        match ty {
            Ty::Int => "0",
            Ty::Float => "0.0",
            Ty::Bool => "true",
            Ty::Str => "\"\"",
            Ty::List => "[ ]",
            Ty::Set => "{ }",
            Ty::Fun => "(x: x)",
        },
    )
}

/// A small, fast, seeded generator (xorshift64*), so that a seed names the
/// same programs on every machine.
pub struct Gen {
    state: u64,
    /// Names bound by enclosing `let`s and lambdas, with their types.
    scope: Vec<(String, Ty)>,
    fresh: u32,
}

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            scope: Vec::new(),
            fresh: 0,
        }
    }

    fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// One program: a value of a random type, 4 levels deep at most.
    pub fn program(&mut self) -> Node {
        self.scope.clear();
        let ty = *self.pick(&TYS);
        self.expr(ty, 4)
    }

    fn node(&self, ty: Ty, tmpl: &str, kids: Vec<Node>) -> Node {
        Node {
            ty,
            tmpl: tmpl.to_string(),
            kids,
        }
    }

    fn name(&mut self) -> String {
        self.fresh += 1;
        format!("v{}", self.fresh)
    }

    pub fn expr(&mut self, ty: Ty, depth: u32) -> Node {
        // A variable in scope of the right type, sometimes.
        if self.chance(20) {
            let vars: Vec<String> = self
                .scope
                .iter()
                .filter(|(_, t)| *t == ty)
                .map(|(n, _)| n.clone())
                .collect();
            if !vars.is_empty() {
                let v = self.pick(&vars).clone();
                return Node::leaf(ty, v);
            }
        }
        if depth == 0 || self.chance(25) {
            return self.literal(ty);
        }
        let d = depth - 1;
        // Forms that give any type.
        match self.below(12) {
            0 => {
                let v = self.name();
                let t = *self.pick(&TYS);
                let val = self.expr(t, d);
                self.scope.push((v.clone(), t));
                let body = self.expr(ty, d);
                self.scope.pop();
                return self.node(ty, &format!("(let {v} = {{}}; in {{}})"), vec![val, body]);
            }
            1 => {
                let c = self.expr(Ty::Bool, d);
                let a = self.expr(ty, d);
                let b = self.expr(ty, d);
                return self.node(ty, "(if {} then {} else {})", vec![c, a, b]);
            }
            2 => {
                // A lambda applied at once, sometimes with formals.
                let v = self.name();
                let t = *self.pick(&TYS);
                let arg = self.expr(t, d);
                self.scope.push((v.clone(), t));
                let body = self.expr(ty, d);
                self.scope.pop();
                if self.chance(50) {
                    let dflt = self.literal(t);
                    return self.node(
                        ty,
                        &format!("(({{ {v} ? {{}}, ... }}: {{}}) {{ {v} = {{}}; }})"),
                        vec![dflt, body, arg],
                    );
                }
                return self.node(ty, &format!("(({v}: {{}}) {{}})"), vec![body, arg]);
            }
            3 => {
                // Selection from a set literal, with a default.
                let a = self.expr(ty, d);
                let b = self.expr(ty, d);
                let key = *self.pick(&["a", "b", "c"]);
                return self.node(ty, &format!("({{ a = {{}}; }}.{key} or {{}})"), vec![a, b]);
            }
            4 if self.chance(30) => {
                // A planted error, caught or not.
                let msg = self.pick(&["\"boom\"", "\"x\"", "\"\""]).to_string();
                if self.chance(60) {
                    let a = self.expr(ty, d);
                    return self.node(
                        ty,
                        &format!("(let r = builtins.tryEval (throw {msg}); in if r.success then {{}} else {{}})"),
                        vec![a.clone(), a],
                    );
                }
                return self.node(ty, &format!("(throw {msg})"), vec![]);
            }
            5 => {
                let a = self.expr(ty, d);
                let bt = *self.pick(&TYS);
                let b = self.expr(bt, d);
                return self.node(ty, "(builtins.seq {} {})", vec![b, a]);
            }
            _ => {}
        }
        match ty {
            Ty::Int => self.int(d),
            Ty::Float => self.float(d),
            Ty::Bool => self.bool(d),
            Ty::Str => self.string(d),
            Ty::List => self.list(d),
            Ty::Set => self.set(d),
            Ty::Fun => simplest(Ty::Fun),
        }
    }

    fn literal(&mut self, ty: Ty) -> Node {
        let text = match ty {
            Ty::Int => {
                let n: i64 = match self.below(6) {
                    0 => 0,
                    1 => -(self.below(100) as i64),
                    2 => 9223372036854775807,
                    3 => self.below(1_000_000) as i64,
                    _ => self.below(20) as i64,
                };
                if n < 0 {
                    format!("({n})")
                } else {
                    n.to_string()
                }
            }
            Ty::Float => self
                .pick(&[
                    "0.5",
                    "1.0",
                    "2.5",
                    "1.0e3",
                    "0.1",
                    "3.14159",
                    "1.0e-5",
                    "123456.789",
                    ".5",
                    "100.0",
                ])
                .to_string(),
            Ty::Bool => self.pick(&["true", "false"]).to_string(),
            Ty::Str => self
                .pick(&[
                    "\"\"",
                    "\"a\"",
                    "\"hello world\"",
                    "\"a\\nb\"",
                    "\"tab\\there\"",
                    "\"q\\\"uote\"",
                    "\"$${x}\"",
                    "\"é\"",
                    "''\n  indented\n    more\n''",
                    "''a''${b}''",
                    "\"1.2.3\"",
                    "\"foo-bar_baz\"",
                ])
                .to_string(),
            Ty::List => self
                .pick(&[
                    "[ ]",
                    "[ 1 2 3 ]",
                    "[ \"b\" \"a\" ]",
                    "[ 3 1 2 ]",
                    "[ [ 1 ] [ ] ]",
                    "[ true false ]",
                ])
                .to_string(),
            Ty::Set => self
                .pick(&[
                    "{ }",
                    "{ a = 1; }",
                    "{ a = 1; b = \"x\"; }",
                    "{ b = { c = 2; }; }",
                    "{ \"a b\" = 1; }",
                ])
                .to_string(),
            Ty::Fun => "(x: x)".to_string(),
        };
        Node::leaf(ty, text)
    }

    fn int(&mut self, d: u32) -> Node {
        let forms: &[(&str, &[Ty])] = &[
            ("({} + {})", &[Ty::Int, Ty::Int]),
            ("({} - {})", &[Ty::Int, Ty::Int]),
            ("({} * {})", &[Ty::Int, Ty::Int]),
            ("({} / {})", &[Ty::Int, Ty::Int]),
            ("(-{})", &[Ty::Int]),
            ("(builtins.length {})", &[Ty::List]),
            ("(builtins.stringLength {})", &[Ty::Str]),
            ("(builtins.bitAnd {} {})", &[Ty::Int, Ty::Int]),
            ("(builtins.bitOr {} {})", &[Ty::Int, Ty::Int]),
            ("(builtins.bitXor {} {})", &[Ty::Int, Ty::Int]),
            ("(builtins.ceil {})", &[Ty::Float]),
            ("(builtins.floor {})", &[Ty::Float]),
            ("(builtins.compareVersions {} {})", &[Ty::Str, Ty::Str]),
            (
                "(builtins.foldl' (a: b: a + b) 0 (builtins.filter builtins.isInt {}))",
                &[Ty::List],
            ),
            ("(builtins.length (builtins.attrNames {}))", &[Ty::Set]),
            ("(builtins.elemAt {} 0)", &[Ty::List]),
            ("({}.a or 7)", &[Ty::Set]),
            ("(builtins.fromJSON (builtins.toJSON {}))", &[Ty::Int]),
            ("(builtins.length (builtins.genericClosure { startSet = [ { key = 1; } ]; operator = x: if x.key < builtins.bitAnd {} 15 then [ { key = x.key + 1; } ] else [ ]; }))", &[Ty::Int]),
            ("(builtins.foldl' builtins.add 0 [ {} {} ])", &[Ty::Int, Ty::Int]),
            ("({} / 0)", &[Ty::Int]),
            ("(builtins.stringLength (toString {}))", &[Ty::Float]),
            ("(builtins.elemAt [ 1 2 ] {})", &[Ty::Int]),
        ];
        self.form(Ty::Int, forms, d)
    }

    fn float(&mut self, d: u32) -> Node {
        let forms: &[(&str, &[Ty])] = &[
            ("({} + {})", &[Ty::Float, Ty::Float]),
            ("({} * {})", &[Ty::Float, Ty::Int]),
            ("({} / {})", &[Ty::Float, Ty::Float]),
            ("({} - {})", &[Ty::Int, Ty::Float]),
            ("(builtins.fromJSON (builtins.toJSON {}))", &[Ty::Float]),
            ("({} / 3.0)", &[Ty::Int]),
            ("({} * 1.0e10)", &[Ty::Float]),
            ("(1.0 / {})", &[Ty::Float]),
            ("({} * 0.001)", &[Ty::Int]),
        ];
        self.form(Ty::Float, forms, d)
    }

    fn bool(&mut self, d: u32) -> Node {
        let forms: &[(&str, &[Ty])] = &[
            ("({} == {})", &[Ty::Int, Ty::Int]),
            ("({} == {})", &[Ty::List, Ty::List]),
            ("({} == {})", &[Ty::Set, Ty::Set]),
            ("({} != {})", &[Ty::Str, Ty::Str]),
            ("({} < {})", &[Ty::Int, Ty::Float]),
            ("({} <= {})", &[Ty::Str, Ty::Str]),
            ("({} > {})", &[Ty::List, Ty::List]),
            ("({} && {})", &[Ty::Bool, Ty::Bool]),
            ("({} || {})", &[Ty::Bool, Ty::Bool]),
            ("({} -> {})", &[Ty::Bool, Ty::Bool]),
            ("(!{})", &[Ty::Bool]),
            ("({} ? a)", &[Ty::Set]),
            ("({} ? b.c)", &[Ty::Set]),
            ("(builtins.elem 1 {})", &[Ty::List]),
            ("(builtins.isString {})", &[Ty::Str]),
            ("(builtins.hasAttr \"a\" {})", &[Ty::Set]),
            ("(builtins.all builtins.isInt {})", &[Ty::List]),
            ("(builtins.any (x: x == \"a\") {})", &[Ty::List]),
            ("((builtins.tryEval {}).success)", &[Ty::Int]),
            ("(builtins.isFloat {})", &[Ty::Float]),
            ("(builtins.lessThan {} {})", &[Ty::Int, Ty::Int]),
            ("({} == {})", &[Ty::Float, Ty::Int]),
            ("(builtins.isAttrs {})", &[Ty::Set]),
            ("(builtins.isList {})", &[Ty::List]),
            ("(builtins.fromJSON \"[1,2,3]\" == {})", &[Ty::List]),
            ("({} == {})", &[Ty::Str, Ty::Str]),
        ];
        self.form(Ty::Bool, forms, d)
    }

    fn string(&mut self, d: u32) -> Node {
        let forms: &[(&str, &[Ty])] = &[
            ("({} + {})", &[Ty::Str, Ty::Str]),
            ("\"x${ {} }y\"", &[Ty::Str]),
            ("''${ {} }-${ {} }''", &[Ty::Str, Ty::Str]),
            ("(toString {})", &[Ty::Int]),
            ("(toString {})", &[Ty::Float]),
            ("(toString {})", &[Ty::Bool]),
            ("(toString {})", &[Ty::List]),
            ("(builtins.toJSON {})", &[Ty::Set]),
            ("(builtins.toJSON {})", &[Ty::List]),
            ("(builtins.toJSON {})", &[Ty::Float]),
            ("(builtins.substring 1 2 {})", &[Ty::Str]),
            (
                "(builtins.concatStringsSep \",\" (builtins.filter builtins.isString {}))",
                &[Ty::List],
            ),
            (
                "(builtins.replaceStrings [ \"a\" ] [ \"A\" ] {})",
                &[Ty::Str],
            ),
            ("(builtins.typeOf {})", &[Ty::Set]),
            ("(builtins.typeOf {})", &[Ty::Float]),
            ("(builtins.hashString \"sha256\" {})", &[Ty::Str]),
            (
                "(builtins.concatStringsSep \"/\" (builtins.attrNames {}))",
                &[Ty::Set],
            ),
            ("(builtins.toXML {})", &[Ty::List]),
            ("(builtins.unsafeDiscardStringContext {})", &[Ty::Str]),
            (
                "(builtins.head (builtins.splitVersion {} ++ [ \"\" ]))",
                &[Ty::Str],
            ),
        ];
        self.form(Ty::Str, forms, d)
    }

    fn list(&mut self, d: u32) -> Node {
        let forms: &[(&str, &[Ty])] = &[
            ("[ {} {} ]", &[Ty::Int, Ty::Str]),
            ("[ {} {} {} ]", &[Ty::Float, Ty::Bool, Ty::Set]),
            ("({} ++ {})", &[Ty::List, Ty::List]),
            ("(builtins.map (x: [ x ]) {})", &[Ty::List]),
            ("(builtins.filter builtins.isInt {})", &[Ty::List]),
            (
                "(builtins.sort builtins.lessThan (builtins.filter builtins.isInt {}))",
                &[Ty::List],
            ),
            ("(builtins.sort (a: b: false) {})", &[Ty::List]),
            ("(builtins.tail ({} ++ [ 0 ]))", &[Ty::List]),
            ("(builtins.attrValues {})", &[Ty::Set]),
            ("(builtins.attrNames {})", &[Ty::Set]),
            ("(builtins.genList (x: x * {}) 3)", &[Ty::Int]),
            ("(builtins.concatMap (x: [ x x ]) {})", &[Ty::List]),
            ("(builtins.split \"(a)\" {})", &[Ty::Str]),
            ("(builtins.match \"(.)(.*)\" {})", &[Ty::Str]),
            ("(builtins.splitVersion {})", &[Ty::Str]),
            ("(builtins.catAttrs \"a\" [ {} {} ])", &[Ty::Set, Ty::Set]),
            ("(builtins.partition builtins.isInt {}).right", &[Ty::List]),
            (
                "(builtins.groupBy builtins.typeOf {}).int or [ ]",
                &[Ty::List],
            ),
        ];
        self.form(Ty::List, forms, d)
    }

    fn set(&mut self, d: u32) -> Node {
        let forms: &[(&str, &[Ty])] = &[
            ("{ a = {}; b = {}; }", &[Ty::Int, Ty::Str]),
            ("{ a = {}; c.d = {}; }", &[Ty::List, Ty::Bool]),
            ("(rec { a = {}; b = a; })", &[Ty::Float]),
            ("({} // {})", &[Ty::Set, Ty::Set]),
            ("(builtins.removeAttrs {} [ \"a\" ])", &[Ty::Set]),
            ("(builtins.mapAttrs (n: v: n) {})", &[Ty::Set]),
            ("(builtins.intersectAttrs {} {})", &[Ty::Set, Ty::Set]),
            (
                "(builtins.listToAttrs [ {{ name = {}; value = {}; }} ])",
                &[Ty::Str, Ty::Int],
            ),
            ("(with {}; {{ x = a or 1; }})", &[Ty::Set]),
            ("(let s = {}; in {{ inherit (s) a; }})", &[Ty::Set]),
            ("(builtins.fromJSON (builtins.toJSON {}))", &[Ty::Set]),
            ("{ ${ {} } = 1; }", &[Ty::Str]),
            (
                "(builtins.zipAttrsWith (n: vs: vs) [ {} {} ])",
                &[Ty::Set, Ty::Set],
            ),
            ("(builtins.functionArgs ({{ a, b ? {} }}: a))", &[Ty::Int]),
            ("(builtins.parseDrvName {})", &[Ty::Str]),
            ("(builtins.listToAttrs (builtins.map (n: {{ name = n; value = 1; }}) (builtins.filter builtins.isString {})))", &[Ty::List]),
            ("(builtins.fromJSON \"{\\\"a\\\": {\\\"b\\\": [ ]}, \\\"c\\\": 1.0}\")", &[]),
            ("({} // {{ a = {}; }})", &[Ty::Set, Ty::Int]),
        ];
        self.form(Ty::Set, forms, d)
    }

    fn form(&mut self, ty: Ty, forms: &[(&str, &[Ty])], d: u32) -> Node {
        let (tmpl, kids) = *self.pick(forms);
        let kids = kids.iter().map(|&t| self.expr(t, d)).collect();
        // `{{` in a template is a literal brace: the holes are `{}` alone.
        Node {
            ty,
            tmpl: tmpl
                .replace("{{", "\u{1}")
                .replace("}}", "\u{2}")
                .replace("\u{1}", "{")
                .replace("\u{2}", "}"),
            kids,
        }
    }
}

/// What a run printed, as the corpus records it: stdout on success, else
/// the text of the last `error:` line (CppNix's final message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Value(String),
    Error(String),
}

impl Answer {
    pub fn of(status_ok: bool, stdout: &str, stderr: &str) -> Answer {
        if status_ok {
            return Answer::Value(stdout.to_string());
        }
        let last = stderr
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("error: "))
            .next_back()
            .unwrap_or("")
            .to_string();
        Answer::Error(last)
    }
}

/// Run one case as `PROG… --eval --strict -E SRC` (cwd `/`, no NIX_PATH).
pub fn run_case(prog: &[String], src: &str) -> Answer {
    let out = std::process::Command::new(&prog[0])
        .args(&prog[1..])
        .args(["--eval", "--strict", "-E", src])
        .current_dir("/")
        .env_remove("NIX_PATH")
        .output()
        .expect("running the evaluator");
    Answer::of(
        out.status.success(),
        &String::from_utf8_lossy(&out.stdout),
        &String::from_utf8_lossy(&out.stderr),
    )
}

/// The recorded cases of a corpus file: (program, CppNix's answer).
pub fn load(text: &str) -> Vec<(String, Answer)> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let case: serde_json::Value = serde_json::from_str(line).expect("a JSON case");
            let src = case["src"].as_str().expect("src").to_string();
            let want = match (case["stdout"].as_str(), case["error"].as_str()) {
                (Some(o), _) => Answer::Value(o.to_string()),
                (None, Some(e)) => Answer::Error(e.to_string()),
                _ => panic!("a case without an answer: {line}"),
            };
            (src, want)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_names_the_same_programs() {
        let a: Vec<String> = (0..50).map(|_| Gen::new(7).program().render()).collect();
        let mut g = Gen::new(7);
        let first = g.program().render();
        assert_eq!(first, a[0]);
        let many: Vec<String> = (0..200).map(|_| g.program().render()).collect();
        assert!(many.iter().all(|p| !p.contains("{}") || p.contains("{ }")));
    }

    #[test]
    fn templates_fill_their_holes() {
        let n = Node {
            ty: Ty::Int,
            tmpl: "({} + {})".into(),
            kids: vec![Node::leaf(Ty::Int, "1"), Node::leaf(Ty::Int, "2")],
        };
        assert_eq!(n.render(), "(1 + 2)");
        assert_eq!(n.paths().len(), 3);
        assert_eq!(
            n.replace(&[1], Node::leaf(Ty::Int, "5")).render(),
            "(1 + 5)"
        );
    }
}
