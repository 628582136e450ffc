//! The C side of wsc, driven from `cargo test`: what a C programmer does —
//! build `c-examples/` with the system C compiler against `include/wsc.h`
//! and the shared or static library, run each program against loopback
//! servers, check what it prints; install into a prefix and build an app
//! with `pkg-config` and with CMake's `find_package(wsc)`; compile the C++
//! header with g++ and clang++; check what libwsc.so exports.
//!
//! The library comes from `cargo build --release` (run here first, so it is
//! never stale); `WSC_C_PROFILE=debug` uses the debug build instead.

mod common;
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
    assert_lines(&out, &["state after wait: finished", "send after close: WSC_ERR_UNKNOWN_ID: no such connection"]);
}

#[test]
fn cpp_wrapper_contract_tests_pass() {
    let servers = Servers::start().unwrap();
    let out = run_example("cpp_api_test", &[&servers.echo_url(), &servers.extra_base()], "");
    let summary = out.lines().last().unwrap_or_default();
    assert!(summary.starts_with("# ") && summary.contains(" tests, 0 failed"), "{out}");
    assert!(!out.contains("not ok"), "{out}");
}

/// wsc.hpp (and the programs on it) compile without a warning under
/// `-std=c++17 -Wall -Wextra -pedantic -Werror` with g++ and clang++, and the
/// clang++ builds pass the same runs as the g++ ones from the Makefile.
#[test]
fn cpp_header_is_warning_free_with_gcc_and_clang() {
    built();
    let servers = Servers::start().unwrap();
    let out_dir = build_dir().join("clang");
    std::fs::create_dir_all(&out_dir).unwrap();
    for compiler in ["g++", "clang++"] {
        let have = Command::new(compiler).arg("--version").output().is_ok_and(|o| o.status.success());
        assert!(have, "{compiler} is not installed (scripts/test.sh installs it)");
        let strict = ["-std=c++17", "-Wall", "-Wextra", "-pedantic", "-Werror"];
        let include = format!("-I{}", root().join("include").display());
        // The header alone, as the first include of a translation unit.
        let mut alone = Command::new(compiler);
        alone.args(strict).arg(&include).args(["-fsyntax-only", "-x", "c++"]).arg(root().join("include/wsc.hpp"));
        run_checked(&mut alone, &format!("{compiler} -fsyntax-only wsc.hpp"));
        for program in ["cpp_client", "cpp_api_test"] {
            let exe = out_dir.join(format!("{program}-{compiler}"));
            let mut compile = Command::new(compiler);
            compile
                .args(strict)
                .args(["-O1", "-g"])
                .arg(&include)
                .arg(root().join(format!("c-examples/{program}.cpp")))
                .arg("-o")
                .arg(&exe)
                .arg(format!("-L{}", built().join("lib").display()))
                .arg("-lwsc")
                .arg(format!("-Wl,-rpath,{}", built().join("lib").display()))
                .arg("-lpthread");
            run_checked(&mut compile, &format!("{compiler} {program}.cpp"));
        }
        let out = run_program(&out_dir.join(format!("cpp_client-{compiler}")), &[&servers.echo_url()], "");
        assert_lines(&String::from_utf8_lossy(&out.stdout), &["text echo, 25 bytes, NUL kept", "shutdown: WSC_OK"]);
        let out = run_program(
            &out_dir.join(format!("cpp_api_test-{compiler}")),
            &[&servers.echo_url(), &servers.extra_base()],
            "",
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.lines().last().unwrap_or_default().contains(" tests, 0 failed"), "{stdout}");
    }
}

/// libwsc.so exports the C API and nothing else: no Rust, std or OpenSSL
/// symbol an application could bind to by accident.
#[test]
fn the_shared_library_exports_only_wsc_symbols() {
    built();
    let lib = lib_dir().join("libwsc.so");
    let out = run_checked(Command::new("nm").args(["-D", "--defined-only"]).arg(&lib), "nm -D");
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(str::to_owned))
        .collect();
    let foreign: Vec<&String> = names.iter().filter(|n| !n.starts_with("wsc_")).collect();
    assert!(foreign.is_empty(), "libwsc.so exports more than wsc_*: {foreign:?}");
    // Every function declared in wsc.h is there, and nothing undeclared.
    let header = std::fs::read_to_string(root().join("include/wsc.h")).unwrap();
    let declared: Vec<&str> = header
        .lines()
        .filter(|l| !l.starts_with([' ', '#']) && !l.starts_with("typedef") && l.ends_with(");"))
        .filter_map(|l| l.split('(').next()?.rsplit([' ', '*']).next())
        .collect();
    assert!(declared.len() > 40, "parsed too few declarations: {declared:?}");
    let mut exported: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut declared_sorted = declared.clone();
    exported.sort_unstable();
    declared_sorted.sort_unstable();
    assert_eq!(exported, declared_sorted, "exports and wsc.h declarations differ");
}

/// wscat trusts a CA file with `--ca` and skips verification with `-k`;
/// without either, an untrusted certificate is refused.
#[test]
fn wscat_connects_over_tls_with_ca_or_insecure() {
    let cert = std::fs::read(common::test_cert("good.pem")).unwrap();
    let key = std::fs::read(common::test_cert("good.key")).unwrap();
    let acceptor = native_tls::TlsAcceptor::new(native_tls::Identity::from_pkcs8(&cert, &key).unwrap()).unwrap();
    let server = common::TcpServer::local(move |tcp| {
        let Ok(tls) = acceptor.accept(tcp) else { return };
        if let Ok(ws) = tungstenite::accept(tls) {
            common::echo(ws)
        }
    });
    let url = server.wss_url();
    let wscat = built().join("wscat");
    let ca = common::test_cert("ca.pem");
    for args in [vec!["--ca", ca.as_str()], vec!["-k"]] {
        let mut all = args.clone();
        all.extend(["-n", "1", url.as_str()]);
        let out = run_program(&wscat, &all, "secure\n");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "< secure\n", "wscat {args:?}");
    }
    let refused = Command::new("timeout").arg(TIMEOUT).arg(&wscat).args(["-n", "1", &url]).output().unwrap();
    assert!(!refused.status.success(), "an untrusted certificate must be refused");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not trusted"), "{refused:?}");
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

/// Issue 14 from C: wsc_ping / on_pong, wsc_get_stats, response headers,
/// error kinds and a log callback that calls back into wsc.
#[test]
fn observability_from_c() {
    let servers = Servers::start().unwrap();
    let out = run_example("observe_test", &[&servers.echo_url()], "");
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

#[test]
fn reconnect_from_c() {
    let out = run_example("reconnect_test", &[], "");
    assert!(out.lines().any(|l| l.starts_with("# ") && l.contains(" tests, 0 failed")), "{out}");
    assert!(!out.contains("not ok"), "{out}");
}

#[test]
fn event_loop_examples_serve_many_connections_from_one_thread() {
    // Against Node ws (tests/interop/setup.sh), as a PBX host would talk to an outside server.
    if let Some(why) = common::peers::missing() {
        common::peers::unavailable("Node ws", &why);
        return;
    }
    let node = common::peers::start_node();
    let url = node.ws("/echo");
    let out = run_example("loop_poll", &[&url, "300"], "");
    assert_lines(
        &out,
        &["loop_poll: 300 connections, 300 ended, 0 out of order, 0 callbacks on another thread, 0 bad ends"],
    );
    let out = run_example("loop_libuv", &[&url, "200"], "");
    assert_lines(&out, &["loop_libuv: 200 connections, 200 echoes, 200 ended"]);
    let out = run_example("loop_glib", &[&url, "200"], "");
    assert_lines(&out, &["loop_glib: 200 connections, 200 echoes, 200 ended"]);
}

/// A fresh, empty directory under the system temp dir.
fn temp_prefix(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wsc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `sh -c script` with the prefix's pkg-config directory on PKG_CONFIG_PATH.
fn shell(script: &str, pkgconfig: &Path) -> Output {
    run_checked(
        Command::new("sh").arg("-c").arg(script).env("PKG_CONFIG_PATH", pkgconfig).env_remove("LD_LIBRARY_PATH"),
        script,
    )
}

/// `make install` into a fresh prefix with `INSTALL_LIBDIR=libdir` (None: the
/// default, `lib`); checks the files and links; returns the prefix.
fn install(name: &str, libdir: Option<&str>) -> PathBuf {
    built();
    let prefix = temp_prefix(name);
    let mut make = make();
    make.arg("install").arg(format!("PREFIX={}", prefix.display()));
    if let Some(dir) = libdir {
        make.arg(format!("INSTALL_LIBDIR={dir}"));
    }
    run_checked(&mut make, "make install");
    let lib = prefix.join(libdir.unwrap_or("lib"));
    let version = env!("CARGO_PKG_VERSION");
    let real = format!("libwsc.so.{version}");
    for file in ["include/wsc.h", "include/wsc.hpp"] {
        assert!(prefix.join(file).is_file(), "{file} not installed");
    }
    for file in
        [real.as_str(), "libwsc.a", "pkgconfig/wsc.pc", "cmake/wsc/wscConfig.cmake", "cmake/wsc/wscConfigVersion.cmake"]
    {
        assert!(lib.join(file).is_file(), "{file} not installed in {}", lib.display());
    }
    assert!(!lib.join(&real).is_symlink(), "{real} must be the real file");
    assert_eq!(std::fs::read_link(lib.join("libwsc.so.0")).unwrap(), Path::new(&real));
    assert_eq!(std::fs::read_link(lib.join("libwsc.so")).unwrap(), Path::new("libwsc.so.0"));
    let dynamic = run_checked(Command::new("readelf").arg("-d").arg(lib.join(&real)), "readelf -d");
    assert!(String::from_utf8_lossy(&dynamic.stdout).contains("Library soname: [libwsc.so.0]"));
    let pc = std::fs::read_to_string(lib.join("pkgconfig/wsc.pc")).unwrap();
    assert!(pc.lines().any(|l| l == "Requires.private: openssl"), "{pc}");
    assert!(pc.lines().any(|l| l == format!("Version: {version}")), "{pc}");
    prefix
}

/// Runs `program` (in `dir`) against the echo server; checks it closed cleanly.
fn run_installed(dir: &Path, program: &str, url: &str, lib: Option<&Path>, expect: &str) {
    let mut cmd = Command::new("timeout");
    cmd.args([TIMEOUT, program, url]).current_dir(dir).env_remove("LD_LIBRARY_PATH");
    if let Some(lib) = lib {
        cmd.env("LD_LIBRARY_PATH", lib);
    }
    let out = run_checked(&mut cmd, &format!("installed {program}"));
    assert_lines(&String::from_utf8_lossy(&out.stdout), &[expect]);
}

#[test]
fn install_then_build_an_app_with_pkg_config() {
    for libdir in [None, Some("lib/x86_64-linux-gnu")] {
        let prefix = install(if libdir.is_some() { "install-multiarch" } else { "install" }, libdir);
        let lib = prefix.join(libdir.unwrap_or("lib"));
        let pkgconfig = lib.join("pkgconfig");
        std::fs::copy(root().join("c-examples/echo_client.c"), prefix.join("app.c")).unwrap();
        let cd = format!("cd {} && ", prefix.display());
        shell(&format!("{cd}cc app.c $(pkg-config --cflags --libs wsc) -o app"), &pkgconfig);
        // static: libwsc.a plus Libs.private and what Requires.private (openssl) adds
        let libs = shell("pkg-config --static --libs wsc", &pkgconfig);
        let libs = String::from_utf8_lossy(&libs.stdout);
        assert!(libs.contains("-lssl") && libs.contains("-lcrypto"), "{libs}");
        shell(
            &format!(
                "{cd}cc app.c $(pkg-config --cflags wsc) \
                 $(pkg-config --static --libs wsc | sed 's/-lwsc/-l:libwsc.a/') -o app-static"
            ),
            &pkgconfig,
        );
        let needed = run_checked(Command::new("readelf").arg("-d").arg(prefix.join("app")), "readelf -d app");
        assert!(String::from_utf8_lossy(&needed.stdout).contains("Shared library: [libwsc.so.0]"));

        let servers = Servers::start().unwrap();
        let url = servers.echo_url();
        run_installed(&prefix, "./app", &url, Some(&lib), "closed: 1000 \"\"");
        run_installed(&prefix, "./app-static", &url, None, "closed: 1000 \"\"");
        let _ = std::fs::remove_dir_all(&prefix);
    }
}

/// A user's CMake project: `find_package(wsc 0.1 REQUIRED)`, a C program on
/// `wsc::wsc`, the same on `wsc::wsc_static`, and a C++ program on wsc.hpp;
/// built against both install layouts and run against the echo server.
#[test]
fn install_then_build_an_app_with_cmake_find_package() {
    let have = Command::new("cmake").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(have, "cmake is not installed (scripts/test.sh installs it)");
    for libdir in [None, Some("lib/x86_64-linux-gnu")] {
        let prefix = install(if libdir.is_some() { "cmake-multiarch" } else { "cmake" }, libdir);
        let project = prefix.join("project");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::copy(root().join("c-examples/echo_client.c"), project.join("app.c")).unwrap();
        std::fs::copy(root().join("c-examples/cpp_client.cpp"), project.join("app.cpp")).unwrap();
        std::fs::write(
            project.join("CMakeLists.txt"),
            "cmake_minimum_required(VERSION 3.16)\n\
             project(wsc_user C CXX)\n\
             find_package(wsc 0.1 REQUIRED)\n\
             message(STATUS \"found wsc ${wsc_VERSION}\")\n\
             add_executable(app app.c)\n\
             target_link_libraries(app PRIVATE wsc::wsc)\n\
             add_executable(app_static app.c)\n\
             target_link_libraries(app_static PRIVATE wsc::wsc_static)\n\
             add_executable(app_cpp app.cpp)\n\
             set_target_properties(app_cpp PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)\n\
             target_link_libraries(app_cpp PRIVATE wsc::wsc)\n",
        )
        .unwrap();
        let build = project.join("build");
        let mut configure = Command::new("cmake");
        configure
            .arg("-S")
            .arg(&project)
            .arg("-B")
            .arg(&build)
            .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
            .env_remove("LD_LIBRARY_PATH");
        let out = run_checked(&mut configure, "cmake configure");
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(log.contains(&format!("found wsc {}", env!("CARGO_PKG_VERSION"))), "{log}");
        run_checked(Command::new("cmake").arg("--build").arg(&build), "cmake --build");

        // wscConfigVersion.cmake: a newer minor or another major is not this wsc.
        for (wanted, found) in [("0.1", "1"), (env!("CARGO_PKG_VERSION"), "1"), ("0.99", "0"), ("1.0", "0")] {
            let probe = prefix.join(format!("probe-{wanted}"));
            std::fs::create_dir_all(&probe).unwrap();
            std::fs::write(
                probe.join("CMakeLists.txt"),
                format!(
                    "cmake_minimum_required(VERSION 3.16)\nproject(probe C)\nfind_package(wsc {wanted} QUIET)\n\
                     message(STATUS \"wsc_FOUND=${{wsc_FOUND}}\")\n"
                ),
            )
            .unwrap();
            let mut configure = Command::new("cmake");
            configure.arg("-S").arg(&probe).arg("-B").arg(probe.join("build"));
            let out = run_checked(configure.arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display())), "cmake probe");
            let log = String::from_utf8_lossy(&out.stdout);
            assert!(log.contains(&format!("wsc_FOUND={found}")), "find_package(wsc {wanted}):\n{log}");
        }

        let statics = run_checked(Command::new("readelf").arg("-d").arg(build.join("app_static")), "readelf");
        assert!(!String::from_utf8_lossy(&statics.stdout).contains("libwsc"), "app_static must not need libwsc.so");
        let servers = Servers::start().unwrap();
        let url = servers.echo_url();
        // CMake's build-tree rpath finds the installed library: no LD_LIBRARY_PATH.
        run_installed(&build, "./app", &url, None, "closed: 1000 \"\"");
        run_installed(&build, "./app_static", &url, None, "closed: 1000 \"\"");
        run_installed(&build, "./app_cpp", &url, None, "text echo, 25 bytes, NUL kept");
        let _ = std::fs::remove_dir_all(&prefix);
    }
}
