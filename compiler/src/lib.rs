//! nixvm-compiler: Nix source text to bytecode.
//!
//! The pipeline is lexer (logos, moded) -> parser (lalrpop) -> AST ->
//! scope resolution and code generation -> [`chunk::Chunk`]s. This crate
//! knows nothing about runtime values or the store; constants it emits are
//! plain literals that the VM turns into values.

pub mod ast;
pub mod lexer;
pub mod parser;
pub mod printer;
pub mod rawsrc;
pub mod symbol;

pub use parser::{parse, ParseErr, ParseOptions};
pub use symbol::Symbol;
pub mod bytecode;
pub mod chunk;
pub mod compile;
pub mod disasm;
pub mod varint;

pub use chunk::{Chunk, Const, Op};
pub use compile::compile_file;

/// Stack left when a recursive walk over source nesting (compiling, merging
/// nested attribute definitions, printing) moves to a new segment, and the size of that
/// segment: how deep the source nests must never decide whether we crash.
pub const RED_ZONE: usize = 128 * 1024;
pub const STACK_SEGMENT: usize = 4 * 1024 * 1024;

/// Whether a source's name is a file's path rather than a marker such as
/// `«string»` (an `-E` expression) or `«stdin»`. CppNix 2.34 gives positions in
/// such sources no value: `__curPos` and `unsafeGetAttrPos` are `null` there.
pub fn origin_is_file(origin: &str) -> bool {
    !(origin.starts_with('«') && origin.ends_with('»'))
}
