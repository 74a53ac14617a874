//! Everything reins keeps on disk: the state directory, the registry,
//! events, exit records, locks, and following files as they grow.

pub(crate) mod dispatch;
pub(crate) mod events;
pub(crate) mod exit_record;
pub(crate) mod follow;
pub(crate) mod fsutil;
pub(crate) mod inbox;
pub(crate) mod lock;
pub(crate) mod outcomes;
pub(crate) mod paths;
pub(crate) mod registry;
pub(crate) mod scope;
pub(crate) mod stream;
pub(crate) mod transcript;
