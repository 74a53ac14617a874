//! The attach stream: what flows over a control connection after
//! `GET /v1/attach` upgraded it (`reins attach`).
//!
//! Host to viewer: the agent's terminal output, raw (the first bytes redraw
//! the current screen). Viewer to host: frames of one kind byte, a
//! big-endian `u32` length and the payload — keystrokes, or a new terminal
//! size — so the two never mix.

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::store::registry::Size;

/// The `Upgrade` protocol name of the attach stream.
pub(crate) const PROTOCOL: &str = "reins-attach";

/// The header of the `101` answer that carries the host's reply (JSON):
/// after `101` the connection belongs to the stream, so there is no body.
pub(crate) const REPLY_HEADER: &str = "x-reins-attach";

/// Largest frame accepted (a big paste).
const MAX_FRAME: usize = 1 << 20;

const KIND_INPUT: u8 = 0;
const KIND_RESIZE: u8 = 1;

/// One frame from a viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    Input(Vec<u8>),
    Resize(Size),
}

impl Frame {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let (kind, payload) = match self {
            Frame::Input(bytes) => (KIND_INPUT, bytes.clone()),
            Frame::Resize(size) => {
                let mut p = size.cols.to_be_bytes().to_vec();
                p.extend_from_slice(&size.rows.to_be_bytes());
                (KIND_RESIZE, p)
            }
        };
        let mut out = Vec::with_capacity(5 + payload.len());
        out.push(kind);
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&payload);
        out
    }

    /// Reads the next frame; `Ok(None)` at a clean end of the stream.
    pub(crate) async fn read(
        reader: &mut (impl AsyncRead + Unpin),
    ) -> std::io::Result<Option<Frame>> {
        let mut header = [0u8; 5];
        match reader.read_exact(&mut header).await {
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(err) => return Err(err),
        }
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        if len > MAX_FRAME {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("an attach frame of {len} bytes"),
            ));
        }
        let mut payload = vec![0u8; len];
        reader.read_exact(&mut payload).await?;
        match (header[0], payload.as_slice()) {
            (KIND_INPUT, _) => Ok(Some(Frame::Input(payload))),
            (KIND_RESIZE, [c0, c1, r0, r1]) => Ok(Some(Frame::Resize(Size {
                cols: u16::from_be_bytes([*c0, *c1]),
                rows: u16::from_be_bytes([*r0, *r1]),
            }))),
            (kind, _) => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("an attach frame of unknown kind {kind}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn frames_round_trip_and_end_cleanly() {
        let frames = [
            Frame::Input(b"hello\r".to_vec()),
            Frame::Resize(Size { cols: 132, rows: 43 }),
            Frame::Input(Vec::new()),
        ];
        let bytes: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        let mut reader = bytes.as_slice();
        for want in &frames {
            assert_eq!(Frame::read(&mut reader).await.unwrap().as_ref(), Some(want));
        }
        assert_eq!(Frame::read(&mut reader).await.unwrap(), None);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn bad_frames_are_errors() {
        let mut unknown: &[u8] = &[9, 0, 0, 0, 0];
        assert!(Frame::read(&mut unknown).await.is_err());
        let mut huge: &[u8] = &[0, 0xff, 0xff, 0xff, 0xff];
        assert!(Frame::read(&mut huge).await.is_err());
        let mut short_resize: &[u8] = &[1, 0, 0, 0, 2, 0, 80];
        assert!(Frame::read(&mut short_resize).await.is_err());
    }
}
