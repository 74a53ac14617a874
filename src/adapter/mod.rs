//! Adapters: how reins drives one kind of agent. Screen-driven adapters are
//! data (TOML profiles in `adapters/`), read by one rule engine.

pub(crate) mod answer;
mod auth;
pub(crate) mod probe;
mod profile;
mod rate_limit;
mod rules;

pub(crate) use profile::{
    ContextMode, EndpointLaunch, Evidence, InputSpec, Profile, ProfileSource, Step, StopSpec,
    SubmitMode, SubmitSpec, TermMode, Transport, TurnSpec, find, list,
};
pub(crate) use rules::{RuleReport, TurnStatus, UsageWhen, read_usage, turn_status};
