//! The examples in `vm/examples/` run here and their results are checked,
//! so they stay true (issue 17, item 7).

#[path = "../examples/ci_walk.rs"]
mod ci_walk;
#[path = "../examples/config_reader.rs"]
mod config_reader;
#[path = "../examples/hover.rs"]
mod hover;

#[test]
fn the_config_reader_reads_only_what_its_struct_has() {
    let c = config_reader::run().unwrap();
    assert_eq!(c.name, "shop");
    assert!(!c.debug);
    let web = &c.services["web"];
    assert_eq!((web.port, web.replicas), (8080, 3));
    let api = &c.services["api"];
    assert_eq!(api.env["MODE"], "api");
    assert_eq!(api.env["LOG"], "info");
}

#[test]
fn a_hover_is_lazy_and_a_slow_one_times_out() {
    let got = hover::run();
    let text = |a: &str| got.iter().find(|(k, _)| k == a).unwrap().1.clone();
    assert_eq!(text("greeting"), "\"hello, world\"");
    assert_eq!(text("numbers"), "[ <CODE> <CODE> <CODE> <CODE> <CODE> ]");
    assert_eq!(text("nested"), "{ a = <CODE>; c = <CODE>; }");
    assert_eq!(text("nested.c"), "error: not forced by a hover");
    assert_eq!(text("slow"), "timed out");
}

#[test]
fn the_ci_walk_collects_each_job_s_path_or_error() {
    let jobs = ci_walk::run();
    let names: Vec<&str> = jobs.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(names, ["broken", "hello", "tools.grep", "tools.missing"]);
    let get = |a: &str| jobs.iter().find(|(k, _)| k == a).unwrap().1.clone();
    // CppNix's path for the same derivation.
    assert_eq!(
        get("hello").unwrap(),
        "/nix/store/80rgxpw0brmf6dvyzlsrgzsqg4n8bdy2-hello-2.12.drv"
    );
    assert!(get("broken").unwrap_err().contains("is not equal to"));
    assert_eq!(
        get("tools.missing").unwrap_err(),
        "tools.missing was removed"
    );
}
