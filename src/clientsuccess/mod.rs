//! Everything that knows ClientSuccess: routes, bodies, status codes, auth, retries, lookups,
//! which of the three write surfaces an account offers, the v1 translation, and the defaults a
//! created client gets. The write pipeline sees only [`ClientSuccessWriter`], a
//! [`engine::write::Writer`].

pub mod custom;
pub mod http;
pub mod surface;
pub mod v1;
pub mod writer;

pub use http::ApiClient;
pub use surface::SurfacePlan;
pub use writer::ClientSuccessWriter;
