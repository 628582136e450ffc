//! include/wsc.h is generated from src/ffi and committed; this test fails
//! when the two differ. Regenerate with `WSC_REGENERATE_HEADER=1 cargo test --test header`.
//!
//! The version macros (`WSC_VERSION_MAJOR` ... `WSC_VERSION_NUM`) come from
//! Cargo.toml's version through cbindgen's `after_includes`, so a version
//! bump without a regenerated header fails here too.

use std::path::Path;

/// The version block placed right after the `#include`s of wsc.h.
fn version_macros() -> String {
    let part = |s: &str| -> u32 { s.parse().expect("numeric version part") };
    let (major, minor, patch) = (
        part(env!("CARGO_PKG_VERSION_MAJOR")),
        part(env!("CARGO_PKG_VERSION_MINOR")),
        part(env!("CARGO_PKG_VERSION_PATCH")),
    );
    assert!(major < 256 && minor < 256 && patch < 256, "WSC_VERSION_NUM keeps 8 bits a part");
    format!(
        "\n/*\n * The version of this header (from Cargo.toml). The library's own: wsc_version()\n \
         * and wsc_version_num(); a program loading it with dlopen() compares both.\n \
         * WSC_VERSION_NUM is (major << 16) | (minor << 8) | patch, for #if tests.\n */\n\
         #define WSC_VERSION_MAJOR {major}\n\
         #define WSC_VERSION_MINOR {minor}\n\
         #define WSC_VERSION_PATCH {patch}\n\
         #define WSC_VERSION \"{}\"\n\
         #define WSC_VERSION_NUM 0x{:06x}",
        env!("CARGO_PKG_VERSION"),
        (major << 16) | (minor << 8) | patch
    )
}

#[test]
fn header_is_up_to_date() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut config = cbindgen::Config::from_file(Path::new(root).join("cbindgen.toml")).expect("cbindgen.toml");
    config.after_includes = Some(version_macros());
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen failed")
        .write(&mut generated);
    let path = Path::new(root).join("include/wsc.h");
    if std::env::var_os("WSC_REGENERATE_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("write include/wsc.h");
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/wsc.h is out of date: run `WSC_REGENERATE_HEADER=1 cargo test --test header` and commit it"
    );
}

#[test]
fn header_carries_the_cargo_version() {
    let header = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/wsc.h")).unwrap();
    let expected = format!("#define WSC_VERSION \"{}\"", env!("CARGO_PKG_VERSION"));
    assert!(header.contains(&expected), "wsc.h lacks {expected}");
    assert!(header.contains("uint32_t wsc_version_num(void);"));
}
