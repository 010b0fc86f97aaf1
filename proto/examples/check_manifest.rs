//! Decodes manifest files as the apiserver will and prints each object's
//! kind/name, or every problem found with its field path.
//!
//! `cargo run -p capstan-proto --example check_manifest -- FILE...`

fn main() {
    let mut failed = false;
    for path in std::env::args().skip(1) {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{path}: {e}");
                failed = true;
                continue;
            }
        };
        match capstan_proto::decode(&bytes) {
            Ok(objects) => {
                for o in objects {
                    println!("{path}: ok {}/{}", o.info().kind, o.name());
                }
            }
            Err(e) => {
                failed = true;
                println!("{path}: refused\n{e}");
            }
        }
    }
    std::process::exit(i32::from(failed));
}
