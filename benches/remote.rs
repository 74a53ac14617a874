//! `--host` against local, measured on the release binary: one private
//! sshd on 127.0.0.2 logs into a "machine" of its own (its own home and
//! reins state), reached with a generated key; the client shares one ssh
//! connection per host (ControlMaster), as `--host` always does.
//!
//! - `status --json` with one session: local, remote over the shared
//!   connection, and remote on a new connection each time (the master
//!   closed before each call: what a first command costs);
//! - `send` (verified delivery) of a message, local and remote.
//!
//! `cargo bench --bench remote`; results go to
//! `benches/results/<date>-remote.md`. Needs OpenSSH's server and client
//! (`scripts/install-test-deps`).

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Row, World, median, ms, p99, report};

const STATUS_RUNS: usize = 200;
const SEND_RUNS: usize = 40;
const COLD_RUNS: usize = 20;

fn main() {
    let Some(sshd) =
        ["/usr/sbin/sshd", "/usr/local/sbin/sshd"].iter().find(|p| Path::new(p).is_file())
    else {
        panic!("sshd is not installed: scripts/install-test-deps installs openssh-server");
    };
    let client = World::new();
    let machine = World::new();
    let keys = tempfile::Builder::new().prefix("rbs").tempdir_in("/tmp").unwrap();
    let server = Server::start(Path::new(sshd), keys.path(), &machine);
    client.write_config(&format!(
        "[hosts.far]\nssh_options = [\"-F\", \"{}\"]\nreins = \"{}\"\n",
        server.ssh_config.display(),
        env!("CARGO_BIN_EXE_reins")
    ));

    client.start("here", &["--work", "0.05"]);
    client.wait_ready("here");
    client.json(&[
        "run", "mock", "--id", "there", "--detach", "--host", "far", "--", "--work", "0.05",
    ]);
    client.json(&[
        "wait",
        "--id",
        "there",
        "--until",
        "ready",
        "--timeout",
        "60s",
        "--host",
        "far",
    ]);

    // Warm: the shared connection is up before the first timed call.
    client.json(&["status", "--json", "--host", "far"]);
    let time = |args: &[&str], runs: usize| -> Vec<Duration> {
        (0..runs).map(|_| client.timed(args).0).collect()
    };
    let local_status = time(&["status", "--json", "--all"], STATUS_RUNS);
    let remote_status = time(&["status", "--json", "--all", "--host", "far"], STATUS_RUNS);

    // A new connection each time: close the master first.
    let control = client.runtime_dir().join("reins/ssh");
    let mut cold = Vec::new();
    for _ in 0..COLD_RUNS {
        close_masters(&control, &server.ssh_config);
        cold.push(client.timed(&["status", "--json", "--all", "--host", "far"]).0);
    }
    client.json(&["status", "--json", "--host", "far"]);

    let mut local_send = Vec::new();
    let mut remote_send = Vec::new();
    for i in 0..SEND_RUNS {
        let text = format!("task {i}");
        local_send.push(client.timed(&["send", "--id", "here", &text]).0);
        client.json(&["wait", "--id", "here", "--until", "task_complete", "--timeout", "30s"]);
        remote_send.push(client.timed(&["send", "--id", "there", &text, "--host", "far"]).0);
        client.json(&[
            "wait",
            "--id",
            "there",
            "--until",
            "task_complete",
            "--timeout",
            "30s",
            "--host",
            "far",
        ]);
    }
    client.json(&["stop", "--id", "there", "--host", "far"]);
    client.json(&["stop", "--id", "here"]);
    close_masters(&control, &server.ssh_config);

    let figure =
        |v: &[Duration]| format!("median {}, p99 {}", ms(median(v.to_vec())), ms(p99(v.to_vec())));
    let overhead = median(remote_status.clone()).saturating_sub(median(local_status.clone()));
    let rows = vec![
        Row::measured(format!("status --json, local ({STATUS_RUNS} runs)"), figure(&local_status)),
        Row::checked(
            format!("status --json --host, shared connection ({STATUS_RUNS} runs)"),
            figure(&remote_status),
            "median < 50 ms over local (one round trip)",
            overhead < Duration::from_millis(50),
        ),
        Row::measured(
            format!("status --json --host, new connection each time ({COLD_RUNS} runs)"),
            figure(&cold),
        ),
        Row::measured(
            format!("send (verified delivery), local ({SEND_RUNS} runs)"),
            figure(&local_send),
        ),
        Row::measured(
            format!("send (verified delivery) --host, shared connection ({SEND_RUNS} runs)"),
            figure(&remote_send),
        ),
    ];
    report("remote", &rows);
}

/// Asks every master under `dir` to exit (and waits until its socket is gone).
fn close_masters(dir: &Path, ssh_config: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let _ = Command::new("ssh")
            .arg("-F")
            .arg(ssh_config)
            .arg("-o")
            .arg(format!("ControlPath={}", path.display()))
            .args(["-O", "exit", "far"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while path.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// One sshd on 127.0.0.2 whose logins get `machine`'s environment.
struct Server {
    child: Child,
    ssh_config: PathBuf,
}

impl Server {
    fn start(sshd: &Path, keys: &Path, machine: &World) -> Server {
        let keygen = |name: &str| {
            let ok = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(keys.join(name))
                .status()
                .unwrap();
            assert!(ok.success());
        };
        keygen("host_key");
        keygen("client_key");
        let _ = std::fs::create_dir_all("/run/sshd");
        let probe = TcpListener::bind(("127.0.0.2", 0)).unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let set_env: Vec<String> = machine
            .env
            .iter()
            .filter(|(k, _)| k != "PATH")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let config = format!(
            "ListenAddress 127.0.0.2:{port}\nHostKey {k}/host_key\nPidFile {k}/sshd.pid\n\
             AuthorizedKeysFile {k}/client_key.pub\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
             PermitRootLogin prohibit-password\nSetEnv {}\nLogLevel ERROR\nMaxSessions 100\n",
            set_env.join(" "),
            k = keys.display()
        );
        std::fs::write(keys.join("sshd_config"), config).unwrap();
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(keys.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.2", port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let public = std::fs::read_to_string(keys.join("host_key.pub")).unwrap();
        std::fs::write(keys.join("known_hosts"), format!("[127.0.0.2]:{port} {public}")).unwrap();
        let user =
            String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
        let ssh_config = keys.join("ssh_config");
        std::fs::write(
            &ssh_config,
            format!(
                "Host far\n  HostName 127.0.0.2\n  Port {port}\n  User {}\n  IdentityFile {k}/client_key\n  \
                 IdentitiesOnly yes\n  UserKnownHostsFile {k}/known_hosts\n  LogLevel ERROR\n",
                user.trim(),
                k = keys.display()
            ),
        )
        .unwrap();
        Server { child, ssh_config }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
