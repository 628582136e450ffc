//! include/wsc.h is generated from src/ffi and committed; this test fails
//! when the two differ. Regenerate with `WSC_REGENERATE_HEADER=1 cargo test --test header`.

use std::path::Path;

#[test]
fn header_is_up_to_date() {
    let root = env!("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(Path::new(root).join("cbindgen.toml")).expect("cbindgen.toml");
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
