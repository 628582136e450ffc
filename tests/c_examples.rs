//! The C side of wsc, driven from `cargo test`: what a C programmer does —
//! build `c-examples/` with the system C compiler against `include/wsc.h`
//! and the shared or static library, run each program against loopback
//! servers, check what it prints; install into a prefix and build an app
//! with `pkg-config`.
//!
//! The library comes from `cargo build --release` (run here first, so it is
//! never stale); `WSC_C_PROFILE=debug` uses the debug build instead.

#[path = "../c-examples/servers.rs"]
mod servers;

use servers::Servers;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

const TIMEOUT: &str = "300"; // seconds; coreutils `timeout` guards every child

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn profile() -> String {
    std::env::var("WSC_C_PROFILE").unwrap_or_else(|_| "release".into())
}

/// `target/`, wherever cargo put it (CARGO_TARGET_DIR included): this test
/// binary lives in `<target>/<profile>/deps/`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.ancestors().nth(3).expect("<target>/<profile>/deps/<exe>").to_path_buf()
}

fn lib_dir() -> PathBuf {
    target_dir().join(profile())
}

fn build_dir() -> PathBuf {
    lib_dir().join("c-examples")
}

fn run_checked(cmd: &mut Command, what: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Builds the library and every C program once for all tests in this file.
fn built() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.current_dir(root()).args(["build", "--lib"]);
        if profile() == "release" {
            build.arg("--release");
        }
        run_checked(&mut build, "cargo build of libwsc");
        run_checked(make().arg("all"), "make -C c-examples");
        build_dir()
    })
}

fn make() -> Command {
    let mut cmd = Command::new("make");
    cmd.arg("-s")
        .arg("-C")
        .arg(root().join("c-examples"))
        .arg(format!("LIBDIR={}", lib_dir().display()))
        .arg(format!("BUILD={}", build_dir().display()));
    cmd
}

/// Runs a program with a deadline, feeding `stdin`; returns its output.
fn run_program(program: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new("timeout")
        .arg(TIMEOUT)
        .arg(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let mut input = child.stdin.take().expect("piped stdin");
    input.write_all(stdin.as_bytes()).expect("write stdin");
    drop(input); // end of input
    let out = child.wait_with_output().expect("wait for program");
    assert!(
        out.status.success(),
        "{} {args:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        program.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs one of the built programs against the servers; returns stdout.
fn run_example(name: &str, args: &[&str], stdin: &str) -> String {
    let out = run_program(&built().join(name), args, stdin);
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn assert_lines(output: &str, expected: &[&str]) {
    for line in expected {
        assert!(output.lines().any(|l| l == *line), "missing line {line:?} in output:\n{output}");
    }
}

#[test]
fn echo_client_exchanges_text_and_binary_then_closes() {
    let servers = Servers::start().unwrap();
    let out = run_example("echo_client", &[&servers.echo_url()], "");
    assert_lines(
        &out,
        &["text echo: hello, echo", "binary echo (5 bytes): 00 01 02 fe ff", "closed: 1000 \"\"", "shutdown: WSC_OK"],
    );
}

#[test]
fn echo_client_links_the_static_library() {
    let servers = Servers::start().unwrap();
    let out = run_example("echo_client_static", &[&servers.echo_url()], "");
    assert_lines(&out, &["text echo: hello, echo", "closed: 1000 \"\""]);
}

#[test]
fn flow_control_delivers_nothing_before_the_previous_message_is_completed() {
    let servers = Servers::start().unwrap();
    let out = run_example("flow_control", &[&servers.echo_url()], "");
    let steps: Vec<&str> = out.lines().filter(|l| l.starts_with("received") || l.starts_with("completing")).collect();
    let expected: Vec<String> =
        (1..=5).flat_map(|i| [format!("received message {i}"), format!("completing message {i}")]).collect();
    assert_eq!(steps, expected, "full output:\n{out}");
    assert_lines(&out, &["5 messages, 0 delivered early: flow control held"]);
}

#[test]
fn cpp_client_uses_the_header_from_cpp17() {
    let servers = Servers::start().unwrap();
    let out = run_example("cpp_client", &[&servers.echo_url()], "");
    assert_lines(&out, &["text echo, 25 bytes, NUL kept", "binary echo, 4 bytes", "closed: 1000", "shutdown: WSC_OK"]);
}

#[test]
fn handler_example_follows_the_dirigible_seed() {
    let servers = Servers::start().unwrap();
    let out = run_example("handler", &[&servers.echo_url()], "");
    let id = out
        .lines()
        .find_map(|l| l.strip_suffix("] onopen")?.strip_prefix('['))
        .unwrap_or_else(|| panic!("no onopen line in:\n{out}"));
    assert_lines(
        &out,
        &[
            &format!("[{id}] onmessage: hello"),
            "client by handler: found",
            &format!("[{id}] onclose: code 1000"),
            "client by handler after close: 0",
        ],
    );
}

#[test]
fn handler_example_serves_its_own_endpoint_with_the_same_handler() {
    let out = run_example("handler", &[], "");
    let client = out
        .lines()
        .filter(|l| !l.contains('@'))
        .find_map(|l| l.strip_suffix("] onopen")?.strip_prefix('['))
        .unwrap_or_else(|| panic!("no client onopen line in:\n{out}"));
    let server = out
        .lines()
        .find_map(|l| l.strip_suffix(" @my-endpoint] onopen")?.strip_prefix('['))
        .unwrap_or_else(|| panic!("no server onopen line in:\n{out}"));
    assert_lines(
        &out,
        &[
            &format!("[{server} @my-endpoint] onmessage: hello"),
            &format!("[{client}] onmessage: hello"),
            "client by handler: found",
            &format!("[{client}] onclose: code 1000"),
            &format!("[{server} @my-endpoint] onclose"),
            "client by handler after close: 0",
        ],
    );
}

#[test]
fn wscat_sends_stdin_lines_and_prints_messages() {
    let servers = Servers::start().unwrap();
    let program = built().join("wscat");
    let url = servers.echo_url();
    let out = run_program(&program, &["-n", "3", &url], "one\ntwo\nno newline at the end");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout, "< one\n< two\n< no newline at the end\n");
    assert_lines(&stderr, &["connected", "closed: 1000"]);
}

#[test]
fn wscat_reports_the_negotiated_subprotocol() {
    let servers = Servers::start().unwrap();
    let url = format!("{}/proto", servers.extra_base());
    let out = run_program(&built().join("wscat"), &["-p", "chat.v1", "-n", "1", &url], "hi\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "< hi\n");
    assert_lines(&String::from_utf8_lossy(&out.stderr), &["connected (subprotocol chat.v1)"]);
}

#[test]
fn dlopen_client_reloads_the_library_and_leaves_no_thread() {
    let servers = Servers::start().unwrap();
    let program = built().join("dlopen_client");
    let needed = run_checked(Command::new("readelf").arg("-d").arg(&program), "readelf");
    assert!(!String::from_utf8_lossy(&needed.stdout).contains("libwsc"), "dlopen_client must not link libwsc");
    let lib = lib_dir().join("libwsc.so");
    let out = run_example("dlopen_client", &[&servers.echo_url(), lib.to_str().unwrap(), "4"], "");
    for round in 1..=4 {
        assert_lines(
            &out,
            &[&format!("  echo: hello from round {round}"), &format!("round {round}: shutdown WSC_OK, 1 thread(s)")],
        );
    }
    assert_lines(&out, &["4 reloads done, 1 thread(s) left: only main"]);
}

#[test]
fn c_api_contract_tests_pass() {
    let servers = Servers::start().unwrap();
    let out = run_example("c_api_test", &[&servers.echo_url(), &servers.extra_base()], "");
    let summary = out.lines().last().unwrap_or_default();
    assert!(summary.starts_with("# ") && summary.contains(" tests, 0 failed"), "{out}");
    assert!(!out.contains("not ok"), "{out}");
}

#[test]
fn shutdown_racing_every_call_from_c_leaves_nothing_running() {
    let servers = Servers::start().unwrap();
    let out = run_example("race_test", &[&servers.echo_url(), "1500"], "");
    assert_lines(&out, &["race_test: 1500 rounds, 0 failures"]);
}

#[test]
fn every_entry_point_works_from_thread_exit_destructors() {
    let servers = Servers::start().unwrap();
    let out = run_example("exit_test", &[&servers.echo_url()], "");
    assert!(out.lines().any(|l| l.starts_with("exit_test: ") && l.ends_with(" checks, 0 failed")), "{out}");
}

#[test]
fn an_idle_connection_keeps_none_of_wsc_s_buffers_after_large_messages() {
    let servers = Servers::start().unwrap();
    let out = run_example("memory_test", &[&servers.echo_url()], "");
    assert!(out.starts_with("memory_test: heap in use "), "{out}");
}

#[test]
fn the_endpoint_server_from_c() {
    let out = run_example("server_test", &[], "");
    assert!(out.lines().any(|l| l.starts_with("# ") && l.contains(" tests, 0 failed")), "{out}");
    assert!(!out.contains("not ok"), "{out}");
}

/// A fresh, empty directory under the system temp dir.
fn temp_prefix(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wsc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `sh -c script` with the prefix's pkg-config directory on PKG_CONFIG_PATH.
fn shell(script: &str, prefix: &Path) -> Output {
    run_checked(
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
            .env_remove("LD_LIBRARY_PATH"),
        script,
    )
}

#[test]
fn install_then_build_an_app_with_pkg_config() {
    built();
    let prefix = temp_prefix("install");
    run_checked(make().arg("install").arg(format!("PREFIX={}", prefix.display())), "make install");
    for file in ["include/wsc.h", "lib/libwsc.so.0", "lib/libwsc.so", "lib/libwsc.a", "lib/pkgconfig/wsc.pc"] {
        assert!(prefix.join(file).exists(), "{file} not installed");
    }
    let link = std::fs::read_link(prefix.join("lib/libwsc.so")).unwrap();
    assert_eq!(link, Path::new("libwsc.so.0"));
    let dynamic = shell(&format!("readelf -d {}/lib/libwsc.so.0", prefix.display()), &prefix);
    assert!(String::from_utf8_lossy(&dynamic.stdout).contains("Library soname: [libwsc.so.0]"));

    std::fs::copy(root().join("c-examples/echo_client.c"), prefix.join("app.c")).unwrap();
    let cd = format!("cd {} && ", prefix.display());
    shell(&format!("{cd}cc app.c $(pkg-config --cflags --libs wsc) -o app"), &prefix);
    // static: libwsc.a plus what Libs.private lists
    shell(
        &format!(
            "{cd}cc app.c $(pkg-config --cflags wsc) \
             $(pkg-config --static --libs wsc | sed 's/-lwsc/-l:libwsc.a/') -o app-static"
        ),
        &prefix,
    );

    let servers = Servers::start().unwrap();
    let url = servers.echo_url();
    let mut shared_app = Command::new("timeout");
    shared_app.args([TIMEOUT, "./app", &url]).current_dir(&prefix).env("LD_LIBRARY_PATH", prefix.join("lib"));
    let out = run_checked(&mut shared_app, "installed app (shared)");
    assert_lines(&String::from_utf8_lossy(&out.stdout), &["closed: 1000 \"\""]);
    let mut static_app = Command::new("timeout");
    static_app.args([TIMEOUT, "./app-static", &url]).current_dir(&prefix);
    let out = run_checked(&mut static_app, "installed app (static)");
    assert_lines(&String::from_utf8_lossy(&out.stdout), &["closed: 1000 \"\""]);
    let _ = std::fs::remove_dir_all(&prefix);
}
