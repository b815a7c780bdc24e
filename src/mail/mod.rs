//! E-mail: a transactional outbox (the message commits with the state change
//! it reports), templates in English and French, the transports that
//! deliver it, the operator's queue commands and the delivery metrics.

pub mod metrics;
pub mod outbox;
pub mod queue;
pub mod templates;
pub mod transport;

pub use templates::Mail;
