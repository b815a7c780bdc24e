//! `gardien.support.v1.SupportService`. Tickets come with their own
//! capability; until then every RPC answers `UNIMPLEMENTED`.

use crate::proto::support::v1::support_service_server::SupportService;

#[derive(Debug, Default)]
pub struct Support;

#[tonic::async_trait]
impl SupportService for Support {}
