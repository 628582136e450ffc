// Gives libwsc.so a soname, so programs linked against it record
// `libwsc.so.0` and an installed library can be upgraded in place.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libwsc.so.0");
}
