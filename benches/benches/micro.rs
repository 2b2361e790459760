//! `cargo bench -p nixvm-benches [-- FILTER]`: the micro workloads of
//! `nixvm_benches::standard()`, each evaluated and deeply forced by a fresh
//! `Evaluator` per iteration (builder set-up included: it is part of what an
//! embedder pays, and small). The first run of each checks the answer.
//!
//! Each iteration takes 0.05–0.5 s, so samples are few and single: the
//! whole suite finishes in about a minute on a 2-core machine.

use nixvm_benches::{run, standard, Workload};

fn main() {
    divan::main();
}

fn bench(bencher: divan::Bencher, w: Workload) {
    assert_eq!(
        run(&w.src).as_deref(),
        Ok(w.expected.as_str()),
        "{} computes a wrong answer",
        w.name
    );
    bencher.bench_local(|| run(divan::black_box(&w.src)));
}

fn workload(name: &str) -> Workload {
    standard()
        .into_iter()
        .find(|w| w.name == name)
        .expect("a standard workload")
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn fib_25(b: divan::Bencher) {
    bench(b, workload("fib"));
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn foldl_sum_genlist_1e6(b: divan::Bencher) {
    bench(b, workload("foldl_sum"));
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn list_to_attrs_1e5_attr_names(b: divan::Bencher) {
    bench(b, workload("list_to_attrs"));
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn map_filter_2e5(b: divan::Bencher) {
    bench(b, workload("map_filter"));
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn sort_3000_reversed(b: divan::Bencher) {
    bench(b, workload("sort_reversed"));
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn string_concat_fold_1e4(b: divan::Bencher) {
    bench(b, workload("string_concat_fold"));
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn deep_update_2e4(b: divan::Bencher) {
    bench(b, workload("deep_update"));
}
