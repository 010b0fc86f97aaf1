//! The one Capstan binary, installed on every machine.
//!
//! `capstan pki init`, `capstan apiserver|scheduler|controller-manager|kubelet|proxy
//! --config FILE` and `capstan up`.
//! A usage error or an invalid configuration exits with status 64 (EX_USAGE).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod up;

/// Capstan: a Kubernetes-shaped control plane whose apiservers share a Raft log.
#[derive(Parser)]
#[command(name = "capstan", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a local cluster on loopback: PKI, apiserver replicas, a
    /// scheduler, a controller-manager and a kubelet per node, each its own
    /// process; DIR/admin.kubeconfig. Ctrl-C stops it; running it again
    /// reuses the data.
    Up {
        /// Where the certificates, configurations, data and logs live.
        #[arg(long, default_value_os_t = default_up_dir())]
        data_dir: PathBuf,
        /// Apiserver replicas (1, 3 or 5).
        #[arg(long, default_value_t = 3)]
        replicas: u64,
        /// Worker nodes, each with its own kubelet and loopback address.
        #[arg(long, default_value_t = 0)]
        nodes: u64,
        /// Client API port of replica 1 (replica N: this + N - 1).
        #[arg(long, default_value_t = 6443)]
        api_port: u16,
        /// Raft peer port of replica 1 (replica N: this + N - 1).
        #[arg(long, default_value_t = 2380)]
        peer_port: u16,
        /// The kubelets' port (on each node's own address).
        #[arg(long, default_value_t = 10250)]
        kubelet_port: u16,
        /// Node N gets address 127.NET.0.N and pod addresses 127.NET.N.0/24.
        #[arg(long, default_value_t = 64)]
        loopback_net: u8,
        /// Write the certificates and configuration files, then exit (edit
        /// them, then run `capstan up` again with the same flags).
        #[arg(long)]
        configure_only: bool,
    },
    /// Run one apiserver replica (client API and Raft peer port).
    Apiserver {
        /// The replica's configuration file (YAML; see deploy/).
        #[arg(long)]
        config: PathBuf,
    },
    /// Run the scheduler (leader-elected; several may run).
    Scheduler {
        /// The scheduler's configuration file (YAML; see deploy/).
        #[arg(long)]
        config: PathBuf,
    },
    /// Run the controller-manager (leader-elected; several may run).
    ControllerManager {
        /// The controller-manager's configuration file (YAML; see deploy/).
        #[arg(long)]
        config: PathBuf,
    },
    /// Run a node's kubelet.
    Kubelet {
        /// The kubelet's configuration file (YAML; see deploy/).
        #[arg(long)]
        config: PathBuf,
    },
    /// Run a node's service proxy and cluster DNS.
    Proxy {
        /// The proxy's configuration file (YAML; see deploy/).
        #[arg(long)]
        config: PathBuf,
    },
    /// The process runtime's per-container shim (started by the kubelet).
    #[command(hide = true)]
    ContainerShim {
        /// `start DIR` or `run DIR`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Certificates: the cluster CA and one certificate per identity.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Create (or complete) a PKI directory: CA, apiserver serving
    /// certificate, a peer certificate per replica, and client certificates
    /// for the admin, scheduler, controller-manager, proxy and each node.
    /// An existing CA is reused; existing certificates are kept.
    Init {
        /// Directory to write into (created if missing).
        #[arg(long)]
        dir: PathBuf,
        /// DNS names or IP addresses of the replicas (comma-separated);
        /// localhost, 127.0.0.1 and ::1 are always included.
        #[arg(long, value_delimiter = ',')]
        hosts: Vec<String>,
        /// Replica ids that get a peer certificate (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
        replicas: Vec<u64>,
        /// Node names that get a kubelet certificate (comma-separated).
        #[arg(long, value_delimiter = ',')]
        nodes: Vec<String>,
    },
}

/// mimalloc instead of glibc's allocator: under the apiserver's load glibc
/// malloc/free took ~10% of the CPU (perf, `api_bench` at 100 clients).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// EX_USAGE from sysexits.h: the command line or configuration is wrong.
const EXIT_USAGE: u8 = 64;

/// `$HOME/.capstan/up`, or `./capstan-up` without a home.
fn default_up_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".capstan/up"))
        .unwrap_or_else(|| PathBuf::from("capstan-up"))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let usage = e.use_stderr();
            let _ = e.print();
            return if usage {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::ContainerShim { args } => capstan_kubelet::runtime::process::shim_main(args),
        Command::Apiserver { config } => apiserver(&config),
        Command::Scheduler { config } => daemon(
            "scheduler",
            capstan_scheduler::Config::load(&config),
            capstan_scheduler::run,
        ),
        Command::ControllerManager { config } => daemon(
            "controller-manager",
            capstan_controller_manager::Config::load(&config),
            capstan_controller_manager::run,
        ),
        Command::Proxy { config } => daemon(
            "proxy",
            capstan_proxy::Config::load(&config),
            capstan_proxy::run,
        ),
        Command::Kubelet { config } => daemon(
            "kubelet",
            capstan_kubelet::Config::load(&config),
            capstan_kubelet::run,
        ),
        Command::Up {
            data_dir,
            replicas,
            nodes,
            api_port,
            peer_port,
            kubelet_port,
            loopback_net,
            configure_only,
        } => up::run(up::UpArgs {
            data_dir,
            replicas,
            nodes,
            api_port,
            peer_port,
            kubelet_port,
            loopback_net,
            configure_only,
        }),
        Command::Pki {
            command:
                PkiCommand::Init {
                    dir,
                    hosts,
                    replicas,
                    nodes,
                },
        } => {
            let spec = capstan_pki::bootstrap::InitSpec {
                hosts,
                replicas,
                nodes,
                ..Default::default()
            };
            match capstan_pki::bootstrap::init(&dir, &spec) {
                Ok(written) if written.is_empty() => {
                    println!("{}: every certificate already present", dir.display());
                    ExitCode::SUCCESS
                }
                Ok(written) => {
                    for f in written {
                        println!("wrote {}", f.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("capstan pki init: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `capstan apiserver --config FILE`: runs until SIGINT or SIGTERM.
fn apiserver(path: &std::path::Path) -> ExitCode {
    init_tracing();
    let config = match capstan_apiserver::Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("capstan apiserver: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("capstan apiserver: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(capstan_apiserver::run(config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("capstan apiserver: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `capstan NAME --config FILE` for a daemon other than the apiserver: a
/// bad configuration exits 64, a failure 1; runs until SIGINT or SIGTERM.
fn daemon<C, E, F, Fut>(name: &str, config: Result<C, E>, run: F) -> ExitCode
where
    E: std::fmt::Display,
    F: FnOnce(C, ShutdownSignal) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    init_tracing();
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("capstan {name}: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("capstan {name}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config, Box::pin(shutdown_signal()))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("capstan {name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// [`shutdown_signal`] as a nameable type.
type ShutdownSignal = std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Completes on the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers, run until killed.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
