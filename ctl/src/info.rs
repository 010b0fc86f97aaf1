//! Commands about the API and the cluster rather than objects:
//! `api-resources` (from [`capstan_proto::KINDS`]), `version`, and
//! `cluster members` (the `Cluster.Members` RPC).

use capstan_client::CallKind;
use capstan_proto::KINDS;
use capstan_proto::rpc::cluster_client::ClusterClient;
use capstan_proto::rpc::{MembersRequest, WhoAmIRequest};
use clap::Args;
use serde_json::json;

use crate::{Cli, Context, Error, OutputArgs, table};

/// `capctl api-resources`.
#[derive(Debug, Args)]
pub struct ApiResourcesArgs {
    /// Only namespaced (`true`) or cluster-wide (`false`) kinds.
    #[arg(long)]
    pub namespaced: Option<bool>,
    /// `name` prints only the resource names.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Prints the served kinds: NAME, SHORTNAMES, APIVERSION, NAMESPACED, KIND.
pub fn api_resources(args: &ApiResourcesArgs) -> Result<(), Error> {
    let kinds = KINDS
        .iter()
        .filter(|k| args.namespaced.is_none_or(|n| n == k.namespaced));
    match args.output.output.as_deref() {
        None | Some("wide") => {
            let header: Vec<String> = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
                .map(String::from)
                .to_vec();
            let rows: Vec<Vec<String>> = kinds
                .map(|k| {
                    vec![
                        k.plural.to_owned(),
                        k.short_names.join(","),
                        k.api_version.to_owned(),
                        k.namespaced.to_string(),
                        k.kind.to_owned(),
                    ]
                })
                .collect();
            print!("{}", table::render(&header, &rows));
        }
        Some("name") => {
            for k in kinds {
                if k.group.is_empty() {
                    println!("{}", k.plural);
                } else {
                    println!("{}.{}", k.plural, k.group);
                }
            }
        }
        Some(other) => {
            return Err(Error::Usage(format!(
                "unknown output format {other:?}: expected name or wide"
            )));
        }
    }
    Ok(())
}

/// Prints the client version, then (when a kubeconfig is found and a
/// replica answers) the server it reached and the identity it sees.
pub async fn version(cli: &Cli) -> Result<(), Error> {
    println!("Client Version: capctl {}", env!("CARGO_PKG_VERSION"));
    let Ok(ctx) = Context::connect(cli) else {
        return Ok(());
    };
    let who = ctx
        .client
        .call(CallKind::Read, |ch| async move {
            ClusterClient::new(ch).who_am_i(WhoAmIRequest {}).await
        })
        .await;
    match who {
        Ok(w) => println!(
            "Server: {} (you are {}, groups {})",
            ctx.client.preferred_server(),
            w.user,
            w.groups.join(",")
        ),
        Err(e) => eprintln!("{}", crate::error::api_message(&e)),
    }
    Ok(())
}

/// `capctl cluster members`.
#[derive(Debug, Args)]
pub struct MembersArgs {
    /// `json` for machine-readable output (default: a table).
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Prints every replica: ID, ROLE, CLIENT, PEER, TERM, COMMIT, APPLIED,
/// HEALTHY — as the leader sees them when it can be reached (a follower
/// that answers first knows only its own figures), else as the answering
/// replica does.
pub async fn members(ctx: &Context, args: &MembersArgs) -> Result<(), Error> {
    let ask = |client: capstan_client::Client| async move {
        client
            .call(CallKind::Read, |ch| async move {
                ClusterClient::new(ch).members(MembersRequest {}).await
            })
            .await
    };
    let mut resp = ask(ctx.client.clone()).await?;
    // A follower knows only its own figures; ask the leader for everyone's.
    if resp.leader != 0 && resp.answered_by != resp.leader {
        let leader = resp
            .members
            .iter()
            .find(|m| m.id == resp.leader)
            .map(|m| m.client_address.clone());
        if let Some(addr) = leader {
            let mut conn = ctx.connection.clone();
            conn.servers = vec![addr];
            if let Ok(client) = capstan_client::Client::from_connection(&conn)
                && let Ok(from_leader) = ask(client).await
            {
                resp = from_leader;
            }
        }
    }
    match args.output.output.as_deref() {
        Some("json") => {
            let members: Vec<_> = resp
                .members
                .iter()
                .map(|m| {
                    json!({
                        "id": m.id,
                        "role": m.role,
                        "clientAddress": m.client_address,
                        "peerAddress": m.peer_address,
                        "term": m.term,
                        "commitIndex": m.commit_index,
                        "appliedIndex": m.applied_index,
                        "healthy": m.healthy,
                    })
                })
                .collect();
            let doc = json!({
                "members": members,
                "answeredBy": resp.answered_by,
                "leader": resp.leader,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&doc).expect("JSON values always encode")
            );
        }
        None | Some("wide") => {
            let header: Vec<String> = [
                "ID", "ROLE", "CLIENT", "PEER", "TERM", "COMMIT", "APPLIED", "HEALTHY",
            ]
            .map(String::from)
            .to_vec();
            let rows: Vec<Vec<String>> = resp
                .members
                .iter()
                .map(|m| {
                    vec![
                        m.id.to_string(),
                        m.role.clone(),
                        m.client_address.clone(),
                        m.peer_address.clone(),
                        m.term.to_string(),
                        m.commit_index.to_string(),
                        m.applied_index.to_string(),
                        m.healthy.to_string(),
                    ]
                })
                .collect();
            print!("{}", table::render(&header, &rows));
        }
        Some(other) => {
            return Err(Error::Usage(format!(
                "unknown output format {other:?}: expected json"
            )));
        }
    }
    Ok(())
}
