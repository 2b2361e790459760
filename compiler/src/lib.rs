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
pub mod chunk;
pub mod compile;
pub mod disasm;

pub use chunk::{Chunk, Const, Op};
pub use compile::compile_file;
