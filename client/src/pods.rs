//! The pod subresources that are not plain object writes: bindings (in
//! batches, for the scheduler) and container logs (streamed through the
//! apiserver from the pod's kubelet).

use bytes::Bytes;
use capstan_proto::rpc::pods_client::PodsClient;
use capstan_proto::rpc::{BindRequest, Binding, LogsRequest};
use futures::{Stream, StreamExt};

use crate::{CallKind, Client, Error};

/// A log stream: chunks of bytes in order, ending with the log (or the
/// container, when following) or with the first error.
pub type LogStream = std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>;

/// Binds each pod to its node. The outcome of each binding comes back in
/// order: the pod's new resourceVersion, or why it failed (`Conflict` when
/// already bound, `NotFound`, `Forbidden`). The outer error means the call
/// as a whole failed (no replica, a timeout: some bindings may be applied).
pub async fn bind(
    client: &Client,
    bindings: Vec<Binding>,
) -> Result<Vec<Result<String, Error>>, Error> {
    let req = BindRequest { bindings };
    let resp = client
        .call(CallKind::Write, |ch| {
            let req = req.clone();
            async move { PodsClient::new(ch).bind(req).await }
        })
        .await?;
    Ok(resp
        .results
        .into_iter()
        .map(|r| match r.error {
            None => Ok(r.resource_version),
            Some(status) => Err(Error::from_api_status(status)),
        })
        .collect())
}

/// Streams a container's log.
pub async fn logs(client: &Client, request: LogsRequest) -> Result<LogStream, Error> {
    let stream = client
        .call(CallKind::Read, |ch| {
            let req = request.clone();
            async move { PodsClient::new(ch).logs(req).await }
        })
        .await?;
    Ok(Box::pin(stream.map(|item| {
        item.map(|chunk| Bytes::from(chunk.data))
            .map_err(|s| Error::from_status(&s))
    })))
}
