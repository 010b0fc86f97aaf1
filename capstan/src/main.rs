//! The one Capstan binary. Its subcommands (apiserver, scheduler,
//! controller-manager, kubelet, proxy, pki, up) are not built yet; today it
//! only reports its version, so that the workspace has its binary crate.

fn main() {
    println!("capstan {}", env!("CARGO_PKG_VERSION"));
}
