//! The control API: HTTP/1.1 with JSON bodies over the session's Unix
//! socket (0600, peers checked to be the same user). `curl --unix-socket`
//! works for debugging.

pub(crate) mod api;
pub(crate) mod attach;
mod client;
pub(crate) mod server;

pub(crate) use api::{
    ApproveReply, ApproveRequest, AttachReply, ControlRequest, Decision, DropReply, GrownReply,
    InboxReply, InputReport, MAX_MESSAGE, PendingApproval, PendingMessage, ScreenReply, SendReply,
    SendRequest, StatusReply, StopReply, StopRequest,
};
pub(crate) use client::{Client, ClientError, connect};
pub(crate) use server::{Incoming, Peer, bind, serve};
