//! The agent's screen: a vt100 emulator fed with every byte the agent
//! writes, and the host-side rules that make reading it reliable
//! (`reference/screen-emulation-spike.md`).

mod emulator;
mod fixup;
mod render;
mod text;

pub(crate) use emulator::Screen;
pub(crate) use render::{Renderer, SizeMark};
pub(crate) use text::{ScreenText, normalise_row};
