//! What `capstan up` writes before starting anything: the PKI, one
//! configuration per daemon, one kubeconfig per identity, and the image
//! catalogue of the nodes. Existing files are kept, so a second `capstan up`
//! on the same directory reuses ports, certificates and data.
//!
//! Addresses, all on loopback: apiserver replica N at `127.0.0.1:API+N-1`
//! (peer port `PEER+N-1`); node N at `127.L.0.N` (L = `--loopback-net`),
//! its kubelet on port `--kubelet-port`, its pods in `127.L.N.0/24`, its
//! proxy's cluster DNS on `127.L.0.N:53` (10053 when not root). Services
//! get ClusterIPs in the apiservers' default range, `127.96.0.0/16`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;

use super::UpArgs;

/// The layout of one worker node.
pub struct NodeLayout {
    /// `node-N`.
    pub name: String,
    /// Its InternalIP.
    pub ip: String,
    /// Its pods' addresses.
    pub pod_cidr: String,
}

/// Node `n` (1-based) of a cluster on loopback network `net`.
pub fn node_layout(net: u8, n: u64) -> NodeLayout {
    NodeLayout {
        name: format!("node-{n}"),
        ip: format!("127.{net}.0.{n}"),
        pod_cidr: format!("127.{net}.{n}.0/24"),
    }
}

/// The client address of apiserver replica `id`.
pub fn replica_address(args: &UpArgs, id: u64) -> String {
    format!("127.0.0.1:{}", args.api_port + (id - 1) as u16)
}

/// Writes `path` unless it exists (the operator may have edited it).
fn write_once(path: &Path, text: &str) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// PKI and every configuration file.
pub fn write_all(args: &UpArgs) -> anyhow::Result<()> {
    let dir = &args.data_dir;
    for sub in ["logs", "run", "images", "nodes"] {
        std::fs::create_dir_all(dir.join(sub))
            .with_context(|| format!("creating {}", dir.join(sub).display()))?;
    }
    let nodes: Vec<NodeLayout> = (1..=args.nodes)
        .map(|n| node_layout(args.loopback_net, n))
        .collect();
    capstan_pki::bootstrap::init(
        &dir.join("pki"),
        &capstan_pki::bootstrap::InitSpec {
            replicas: (1..=args.replicas).collect(),
            nodes: nodes.iter().map(|n| n.name.clone()).collect(),
            hosts: nodes.iter().map(|n| n.ip.clone()).collect(),
            ..Default::default()
        },
    )
    .context("issuing certificates")?;
    apiservers(args)?;
    write_admin_kubeconfig(args)?;
    write_kubeconfig(args, "scheduler", "scheduler")?;
    write_once(
        &dir.join("scheduler.yaml"),
        "# Written by `capstan up`; see deploy/scheduler.example.yaml.\n\
         kubeconfig: scheduler.kubeconfig\n",
    )?;
    write_kubeconfig(args, "controller-manager", "controller-manager")?;
    write_once(
        &dir.join("controller-manager.yaml"),
        "# Written by `capstan up`; see deploy/controller-manager.example.yaml.\n\
         kubeconfig: controller-manager.kubeconfig\n",
    )?;
    write_kubeconfig(args, "proxy", "proxy")?;
    let dns_port = dns_port();
    for node in &nodes {
        write_once(
            &dir.join(format!("proxy-{}.yaml", node.name)),
            &format!(
                "# Written by `capstan up`; see deploy/proxy.example.yaml.\n\
                 kubeconfig: proxy.kubeconfig\n\
                 nodeName: {node_name}\n\
                 nodeIP: {ip}\n\
                 dns:\n  listen: \"{ip}:{dns_port}\"\n",
                node_name = node.name,
                ip = node.ip,
            ),
        )?;
    }
    for node in &nodes {
        let name = format!("kubelet-{}", node.name);
        write_kubeconfig(args, &name, &format!("node-{}", node.name))?;
        let root = dir.join("nodes").join(&node.name);
        std::fs::create_dir_all(root.join("manifests"))
            .with_context(|| format!("creating {}", root.display()))?;
        write_once(
            &dir.join(format!("{name}.yaml")),
            &format!(
                "# Written by `capstan up`; see deploy/kubelet.example.yaml.\n\
                 kubeconfig: {name}.kubeconfig\n\
                 nodeName: {node_name}\n\
                 nodeIP: {ip}\n\
                 port: {port}\n\
                 tls:\n  caFile: pki/ca.crt\n  certFile: pki/node-{node_name}.crt\n  keyFile: pki/node-{node_name}.key\n\
                 rootDir: nodes/{node_name}\n\
                 podCIDR: {cidr}\n\
                 imageDir: images\n\
                 staticPodPath: nodes/{node_name}/manifests\n\
                 clusterDNS: [\"{ip}:{dns_port}\"]\n",
                node_name = node.name,
                ip = node.ip,
                port = args.kubelet_port,
                cidr = node.pod_cidr,
            ),
        )?;
    }
    images(dir)?;
    Ok(())
}

/// The cluster DNS port: 53 when running as root (it is privileged),
/// else 10053. The effective uid is the owner of `/proc/self`.
pub fn dns_port() -> u16 {
    use std::os::unix::fs::MetadataExt as _;
    match std::fs::metadata("/proc/self") {
        Ok(m) if m.uid() == 0 => 53,
        _ => 10053,
    }
}

/// `apiserver-N.yaml` for every replica.
fn apiservers(args: &UpArgs) -> anyhow::Result<()> {
    let dir = &args.data_dir;
    let existing = (1..=5)
        .filter(|id| dir.join(format!("apiserver-{id}.yaml")).exists())
        .count() as u64;
    if existing != 0 && existing != args.replicas {
        anyhow::bail!(
            "{} was set up with {existing} replica(s); run with --replicas {existing} or use another --data-dir",
            dir.display()
        );
    }
    let peer = |id: u64| args.peer_port + (id - 1) as u16;
    let members: String = (1..=args.replicas)
        .map(|id| {
            format!(
                "  - {{ id: {id}, clientAddress: \"{}\", peerAddress: \"127.0.0.1:{}\" }}\n",
                replica_address(args, id),
                peer(id)
            )
        })
        .collect();
    for id in 1..=args.replicas {
        let text = format!(
            "# Written by `capstan up`; see deploy/apiserver.example.yaml.\n\
             id: {id}\n\
             dataDir: data/apiserver-{id}\n\
             clientAddress: {client}\n\
             peerAddress: 127.0.0.1:{peer}\n\
             auditLog: logs/audit-{id}.jsonl\n\
             members:\n{members}\
             tls:\n  caFile: pki/ca.crt\n  certFile: pki/apiserver.crt\n  keyFile: pki/apiserver.key\n  \
             peerCertFile: pki/peer-{id}.crt\n  peerKeyFile: pki/peer-{id}.key\n",
            client = replica_address(args, id),
            peer = peer(id),
        );
        write_once(&dir.join(format!("apiserver-{id}.yaml")), &text)?;
    }
    Ok(())
}

/// The `clusters:` entry listing every replica.
fn cluster_entry(args: &UpArgs, ca: &str) -> String {
    let mut list = String::new();
    for id in 1..=args.replicas {
        let _ = writeln!(list, "    - https://{}", replica_address(args, id));
    }
    format!(
        "clusters:\n- name: capstan-local\n  cluster:\n    server: https://{first}\n    servers:\n{list}    {ca}\n",
        first = replica_address(args, 1)
    )
}

/// `NAME.kubeconfig` for a component, with its certificate files by path
/// (`pki/CERT.crt`), relative to the data directory.
fn write_kubeconfig(args: &UpArgs, name: &str, cert: &str) -> anyhow::Result<()> {
    let text = format!(
        "# Written by `capstan up`.\napiVersion: v1\nkind: Config\n{clusters}\
         users:\n- name: {name}\n  user:\n    client-certificate: pki/{cert}.crt\n    client-key: pki/{cert}.key\n\
         contexts:\n- name: capstan-local\n  context:\n    cluster: capstan-local\n    user: {name}\n    namespace: default\n\
         current-context: capstan-local\n",
        clusters = cluster_entry(args, "certificate-authority: pki/ca.crt"),
    );
    std::fs::write(args.data_dir.join(format!("{name}.kubeconfig")), text)
        .with_context(|| format!("writing {name}.kubeconfig"))
}

/// `DIR/admin.kubeconfig`: every replica's URL, CA and admin certificate
/// inline (so it can be copied elsewhere), mode 0600.
fn write_admin_kubeconfig(args: &UpArgs) -> anyhow::Result<()> {
    let dir = &args.data_dir;
    let b64 = |name: &str| -> anyhow::Result<String> {
        let bytes = std::fs::read(dir.join("pki").join(name))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    };
    let text = format!(
        "# Written by `capstan up`. `servers` lists every replica (a Capstan\n\
         # extension; `server` is the first, for other kubeconfig readers).\n\
         apiVersion: v1\n\
         kind: Config\n\
         {clusters}\
         users:\n\
         - name: capstan-admin\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n\
         contexts:\n\
         - name: capstan-local\n  context:\n    cluster: capstan-local\n    user: capstan-admin\n    namespace: default\n\
         current-context: capstan-local\n",
        clusters = cluster_entry(
            args,
            &format!("certificate-authority-data: {}", b64("ca.crt")?)
        ),
        cert = b64("admin.crt")?,
        key = b64("admin.key")?,
    );
    let path = dir.join("admin.kubeconfig");
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

/// The nodes' image catalogue (see `kubelet::runtime::process::image`):
/// small images built from what every Debian machine has, so the usual
/// example manifests run without a registry. Each process gets its pod's
/// address in `CAPSTAN_POD_IP` from the process runtime.
fn images(dir: &Path) -> anyhow::Result<()> {
    let images = dir.join("images");
    let www = images.join("www");
    std::fs::create_dir_all(&www).with_context(|| format!("creating {}", www.display()))?;
    write_once(
        &www.join("index.html"),
        "<!DOCTYPE html>\n<html><body><h1>Welcome to nginx!</h1>\n<p>Served by Capstan's process runtime.</p></body></html>\n",
    )?;
    // nginx: an HTTP server on port 80 of the pod's address, serving www/.
    for tag in ["latest", "1.14.2", "1.25", "1.27"] {
        write_once(
            &images.join(format!("nginx-{tag}.yaml")),
            &format!(
                "# Written by `capstan up`: stands in for nginx with python3's http.server.\n\
                 name: nginx\n\
                 tag: \"{tag}\"\n\
                 entrypoint: [sh, -c, 'exec python3 -m http.server \"${{NGINX_PORT:-80}}\" --bind \"$CAPSTAN_POD_IP\" --directory \"$0\"', {www:?}]\n",
                www = www.display().to_string()
            ),
        )?;
    }
    // busybox: the host's shell and tools (run `command:` as given).
    write_once(
        &images.join("busybox-latest.yaml"),
        "# Written by `capstan up`: the host's shell.\nname: busybox\ntag: latest\nentrypoint: [sh]\n",
    )?;
    Ok(())
}
