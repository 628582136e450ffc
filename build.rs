//! Gives libwsc.so a soname, so programs linked against it record
//! `libwsc.so.<major>` (`libwsc.so.0`) and an installed library can be
//! upgraded in place; and puts a `libwsc.so.0` link beside the built library,
//! so programs linked straight against `target/<profile>`
//! (`-Ltarget/release -lwsc`) also run from there.

use std::path::PathBuf;

fn main() {
    // The soname carries the major version: the ABI contract (README, "ABI policy").
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libwsc.so.{major}");
    println!("cargo:rerun-if-changed=build.rs");
    // OUT_DIR is <target>/<profile>/build/wsc-<hash>/out.
    let Some(out_dir) = std::env::var_os("OUT_DIR").map(PathBuf::from) else { return };
    let Some(profile_dir) = out_dir.ancestors().nth(3) else { return };
    let link = profile_dir.join(format!("libwsc.so.{major}"));
    if std::fs::symlink_metadata(&link).is_err() {
        let _ = std::os::unix::fs::symlink("libwsc.so", &link);
    }
}
