//! Endpoint overrides of the cloud APIs pushgate calls (emulators and fakes in tests).

use super::layers::Layers;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudEndpoints {
    /// The AWS SNS API (`ConfirmSubscription`, canary `Publish`); `None`: AWS itself.
    pub aws: Option<String>,
    /// The Pub/Sub API (canary `Publish`, subscription check); `None`: Google itself.
    pub pubsub: Option<String>,
}

impl CloudEndpoints {
    pub(super) fn read(layers: &mut Layers) -> CloudEndpoints {
        CloudEndpoints { aws: layers.http_url("aws_endpoint_url"), pubsub: layers.http_url("pubsub_endpoint") }
    }
}
