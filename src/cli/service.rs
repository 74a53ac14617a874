//! `reins service`: install, remove and inspect the service that keeps
//! `reins supervise` running (see `crate::service`).

use serde::Serialize;

use crate::error::{CliError, CliResult, code};
use crate::service::{self, Manager, ManagerState, Step};
use crate::store::paths::StateRoot;
use crate::supervise;

/// Let the machine's service manager keep `reins supervise` running: a
/// systemd user unit (Linux) or a launchd agent (macOS).
///
/// The unit runs this reins binary's `supervise` with this shell's state,
/// runtime and config directories and PATH (so it finds the sessions, and
/// a restarted agent finds its program). Keys for model endpoints are not
/// copied: put them in ~/.config/reins/service.env (NAME=VALUE lines),
/// which the unit reads if it exists. Stopping the service stops the
/// supervisor only; sessions go on. When config.toml has an [advisor] on
/// this machine, the unit starts after the model server's unit: [service]
/// after = ["ollama.service"], else the first usual one found (ollama,
/// llama-swap, llama-server, vllm, litellm, localai).
///
/// For the supervisor to run with nobody logged in, systemd needs
/// `loginctl enable-linger $USER` once.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins service install                      write the unit, enable and start it
  reins service install --print              show the unit, change nothing
  reins service install --after ollama.service
  reins service status --json                the unit, the manager, the supervisor
  reins service uninstall
  reins service install --host gpu           on another machine, over ssh

Exit codes: install and uninstall: 0 done, 1 the unit could not be written
or the service manager failed (what it said is shown), 2 bad input.
status: 0 the supervisor runs, 3 it does not, 1 cannot tell.")]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
    /// Do it on another machine: a [hosts.NAME] of config.toml or an ssh
    /// destination (the reins there installs or reports its own service).
    #[arg(long, value_name = "NAME", global = true)]
    pub(crate) host: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    Install(Install),
    Uninstall(Uninstall),
    Status(Status),
}

/// Write the unit, then enable and (re)start it.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins service install
  reins service install --print > reins-supervise.service
  reins service install --no-start           write it; start it yourself
  reins service install --manager launchd --print

Exit codes: 0 written (and started), 1 it could not be written or the
service manager failed (the unit stays written; what it said is shown),
2 bad input.")]
struct Install {
    /// systemd or launchd (default: this machine's).
    #[arg(long, value_enum)]
    manager: Option<Manager>,
    /// Start after this unit (repeatable; default: [service] after in
    /// config.toml, else a local model server's unit when an advisor runs
    /// here).
    #[arg(long, value_name = "UNIT")]
    after: Vec<String>,
    /// Print the unit and change nothing.
    #[arg(long)]
    print: bool,
    /// Write the unit but do not tell the service manager.
    #[arg(long, conflicts_with = "print")]
    no_start: bool,
    /// Print the result as JSON.
    #[arg(long, conflicts_with = "print")]
    json: bool,
}

/// Stop the service, then remove its unit.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins service uninstall
  reins service uninstall --json

Exit codes: 0 removed (or nothing was installed), 1 it could not be
removed, 2 bad input. A service manager that cannot be reached is reported,
and the unit is removed anyway.")]
struct Uninstall {
    /// systemd or launchd (default: this machine's).
    #[arg(long, value_enum)]
    manager: Option<Manager>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Show the unit, what the service manager says of it, and the running
/// supervisor with the sessions it watches.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins service status
  reins service status --json | jq '.supervisor.watching'

Exit codes: 0 the supervisor runs, 3 it does not (installed or not), 1
cannot tell (the state directory cannot be used), 2 bad input.")]
struct Status {
    /// systemd or launchd (default: this machine's).
    #[arg(long, value_enum)]
    manager: Option<Manager>,
    /// Print it as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> CliResult {
    match args.command {
        Command::Install(args) => install(args),
        Command::Uninstall(args) => uninstall(args),
        Command::Status(args) => status(args),
    }
}

#[derive(Serialize)]
struct Installed {
    ok: bool,
    #[serde(flatten)]
    unit: service::Unit,
    /// The unit file was there already, saying something else.
    replaced: bool,
    steps: Vec<Step>,
}

fn install(args: Install) -> CliResult {
    let unit = service::unit(args.manager.unwrap_or_else(Manager::native), &args.after)?;
    if args.print {
        print!("{}", unit.text);
        return Ok(code::OK);
    }
    let previous = std::fs::read_to_string(&unit.path).ok();
    let replaced = previous.as_deref().is_some_and(|text| text != unit.text);
    write_unit(&unit)?;
    let mut steps = Vec::new();
    if !args.no_start {
        steps = crate::cli::runtime().block_on(service::make_calls(service::load_calls(&unit)));
    }
    let failed = steps
        .iter()
        .find(|s| !s.ok)
        .map(|s| format!("{}: {}", s.command, s.error.as_deref().unwrap_or("failed")));
    let ok = failed.is_none();
    let path = unit.path.clone();
    let manager = unit.manager;
    let report = Installed { ok, unit, replaced, steps };
    if args.json {
        crate::cli::print_json(&report)?;
    } else {
        println!(
            "wrote {}{}",
            path.display(),
            if replaced { " (replacing an older one)" } else { "" }
        );
        if !report.unit.after.is_empty() {
            println!("it starts after {}", report.unit.after.join(", "));
        }
        for note in &report.unit.notes {
            println!("note: {note}");
        }
        for step in &report.steps {
            println!("{} {}", if step.ok { "ran" } else { "FAILED" }, step.command);
        }
        if args.no_start {
            println!("not started (--no-start): {}", start_hint(manager));
        } else if ok {
            println!("the supervisor runs; `reins service status` shows what it watches");
        }
    }
    match failed {
        None => Ok(code::OK),
        // The JSON result already says what failed.
        Some(_) if args.json => Ok(code::FAILURE),
        Some(failed) => Err(CliError::failure(format!(
            "the unit is written, but the service manager failed: {failed}"
        ))
        .hint(manager_hint(manager))),
    }
}

fn write_unit(unit: &service::Unit) -> Result<(), CliError> {
    let dir = unit.path.parent().expect("a unit path has a directory");
    let cannot = |err: std::io::Error| {
        CliError::failure(format!("cannot write {}: {err}", unit.path.display()))
    };
    crate::store::fsutil::create_private_dir_all(dir).map_err(cannot)?;
    crate::store::fsutil::write_atomic(&unit.path, unit.text.as_bytes()).map_err(cannot)
}

fn start_hint(manager: Manager) -> String {
    match manager {
        Manager::Systemd => format!(
            "`systemctl --user daemon-reload && systemctl --user enable --now {}`",
            service::SYSTEMD_UNIT
        ),
        Manager::Launchd => "`launchctl bootstrap gui/$(id -u) PATH` with the path above".into(),
    }
}

fn manager_hint(manager: Manager) -> String {
    match manager {
        Manager::Systemd => "is there a systemd user manager for you? (`systemctl --user status`; \
                             over ssh, `loginctl enable-linger $USER`); or run `reins supervise` \
                             yourself"
            .into(),
        Manager::Launchd => {
            "see `launchctl print gui/$(id -u)`; or run `reins supervise` yourself".into()
        }
    }
}

#[derive(Serialize)]
struct Uninstalled {
    ok: bool,
    manager: Manager,
    path: std::path::PathBuf,
    /// A unit file was there and is gone now.
    removed: bool,
    steps: Vec<Step>,
}

fn uninstall(args: Uninstall) -> CliResult {
    let manager = args.manager.unwrap_or_else(Manager::native);
    let path = service::unit_path(manager)?;
    let installed = path.exists();
    let mut steps = Vec::new();
    if installed {
        steps = crate::cli::runtime().block_on(service::make_calls(service::unload_calls(manager)));
    }
    let removed = match std::fs::remove_file(&path) {
        Ok(()) => true,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => false,
        Err(err) => {
            return Err(CliError::failure(format!("cannot remove {}: {err}", path.display())));
        }
    };
    if removed {
        let calls = service::removed_calls(manager);
        steps.extend(crate::cli::runtime().block_on(service::make_calls(calls)));
    }
    let report = Uninstalled { ok: true, manager, path, removed, steps };
    if args.json {
        crate::cli::print_json(&report)?;
    } else {
        if report.removed {
            println!("removed {}", report.path.display());
        } else {
            println!("nothing to remove: {} is not there", report.path.display());
        }
        for step in &report.steps {
            match &step.error {
                None => println!("ran {}", step.command),
                Some(err) => println!("could not run {}: {err}", step.command),
            }
        }
    }
    Ok(code::OK)
}

#[derive(Serialize)]
struct Shown {
    manager: Manager,
    unit: UnitState,
    service_manager: ManagerState,
    supervisor: Supervisor,
}

#[derive(Serialize)]
struct UnitState {
    path: std::path::PathBuf,
    installed: bool,
    /// It says what `install` would write now (same binary, environment
    /// and order); `false` means install again.
    current: bool,
    /// Why install could not write it now (config.toml is broken, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct Supervisor {
    running: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    report: Option<supervise::Report>,
}

fn status(args: Status) -> CliResult {
    let manager = args.manager.unwrap_or_else(Manager::native);
    let state = StateRoot::from_env()?;
    let path = service::unit_path(manager)?;
    let written = std::fs::read_to_string(&path).ok();
    let now = service::unit(manager, &[]);
    let unit_state = UnitState {
        installed: written.is_some(),
        current: now.as_ref().is_ok_and(|now| written.as_deref() == Some(now.text.as_str())),
        error: now.err().map(|err| err.to_string()),
        path,
    };
    let service_manager = if unit_state.installed {
        crate::cli::runtime().block_on(service::manager_state(manager))
    } else {
        ManagerState { enabled: None, active: None, error: None }
    };
    let pid = supervise::running(&state);
    let report = pid.and_then(|_| supervise::report(&state));
    let supervisor = Supervisor { running: pid.is_some(), pid: pid.filter(|p| *p != 0), report };
    let exit = if supervisor.running { code::OK } else { code::NOT_RUNNING };
    let shown = Shown { manager, unit: unit_state, service_manager, supervisor };
    if args.json {
        crate::cli::print_json(&shown)?;
        return Ok(exit);
    }
    let unit_words = match (shown.unit.installed, shown.unit.current) {
        (false, _) => "not installed (`reins service install`)",
        (true, true) => "installed, up to date",
        (true, false) => "installed, but install would write it differently now (install again)",
    };
    println!("unit        {} ({unit_words})", shown.unit.path.display());
    if let Some(err) = &shown.unit.error {
        println!("            install cannot write it now: {err}");
    }
    if shown.unit.installed {
        let m = &shown.service_manager;
        let words: Vec<&str> =
            [m.enabled.as_deref(), m.active.as_deref()].into_iter().flatten().collect();
        match &m.error {
            Some(err) if words.is_empty() => println!("manager     cannot tell: {err}"),
            _ => println!("manager     {}", words.join(", ")),
        }
    }
    match (&shown.supervisor.report, shown.supervisor.running) {
        (_, false) => println!("supervisor  not running for {}", state.root().display()),
        (None, true) => println!("supervisor  running (pid {})", pid.unwrap_or(0)),
        (Some(r), true) => {
            println!(
                "supervisor  running, pid {} since {} (reins {})",
                r.pid, r.started_at, r.version
            );
            let ids: Vec<&str> = r.watching.iter().map(|w| w.id.as_str()).collect();
            println!(
                "watching    {}",
                if ids.is_empty() { "nothing".to_string() } else { ids.join(", ") }
            );
            if let Some(last) = r.ended.last() {
                println!("last ended  {}: {} ({})", last.id, last.outcome, last.reason);
            }
            if r.retired > 0 {
                println!("retired     {}", r.retired);
            }
            if let Some(err) = &r.last_error {
                println!("last error  {err}");
            }
        }
    }
    Ok(exit)
}
