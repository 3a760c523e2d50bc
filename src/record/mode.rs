//! How the layer hands bodies on: the body mode of [`StatsLayer`](super::StatsLayer).

/// How [`StatsService`](super::StatsService) hands the request body to the inner service and
/// the response body back: [`AxumBodies`] (the default) or [`GenericBodies`].
///
/// The mode only chooses the body types; what is recorded is the same.
pub trait BodyMode: sealed::Sealed {}

/// The default body mode: the inner service receives axum's [`Body`](super::Body) and the
/// response leaves as one, whatever body types come in and out.
///
/// Under axum, which uses that type everywhere, a body is passed along as it is and boxed
/// only where the layer must watch it (a request body with bytes to count, a response body to
/// time and count): the layer then allocates nothing of its own for a request without a
/// body. Any inner service that accepts any request body type (axum's `Router`, tonic's
/// `Routes` and generated servers, tower-http's services) works in this mode.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct AxumBodies;

/// The body mode of tower-http's layers: the inner service receives
/// [`RequestBody<B>`](super::RequestBody) for a request whose body is a `B`, and the response
/// leaves as a [`ResponseBody<B>`](super::ResponseBody) around the inner service's body `B`;
/// nothing is boxed.
///
/// For services that take a body type of their own (a hyper `service_fn` taking
/// `Request<hyper::body::Incoming>`), and for servers that are not axum (tonic's `Server`,
/// hyper's connection builders), whose response bodies it then need not box. Set with
/// [`StatsLayer::generic_bodies`](super::StatsLayer::generic_bodies). Under axum, keep the
/// default: axum boxes every request body that is not its own `Body`.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct GenericBodies;

impl BodyMode for AxumBodies {}
impl BodyMode for GenericBodies {}

mod sealed {
    #[allow(unreachable_pub)]
    pub trait Sealed {}
    impl Sealed for super::AxumBodies {}
    impl Sealed for super::GenericBodies {}
}
