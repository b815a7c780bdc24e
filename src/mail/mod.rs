//! E-mail: a transactional outbox (the message commits with the state change
//! it reports), templates in English and French, and the transports that
//! deliver it.

pub mod outbox;
pub mod templates;
pub mod transport;

pub use templates::Mail;
