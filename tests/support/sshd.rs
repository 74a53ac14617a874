//! Private sshd servers on loopback addresses (127.0.0.2, 127.0.0.3, ...),
//! each a "machine" of its own: its own home, reins state, runtime and
//! config directories and tmux server (a `TestEnv` whose drop kills what
//! ran there), reached with a generated key through an ssh config file
//! only the test's client uses. No password, no agent, no system config.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{TestEnv, reins_bin, skip};

/// One sshd and the machine it logs into.
pub struct SshHost {
    pub name: String,
    pub addr: String,
    pub port: u16,
    /// The machine: `env.reins(..)` runs reins there directly, and its
    /// state directory is the one the remote commands use.
    pub env: TestEnv,
    sshd: Child,
    program: PathBuf,
    dir: PathBuf,
}

impl SshHost {
    /// Kills the sshd process tree (the listener and every connection's
    /// child): the shared connection of a client drops at once.
    pub fn kill_connections(&self) {
        let out = Command::new("pgrep").args(["-P", &self.sshd.id().to_string()]).output();
        for pid in String::from_utf8_lossy(&out.map(|o| o.stdout).unwrap_or_default()).lines() {
            crate::common::signal(pid.trim().parse().unwrap_or(0), 9);
        }
    }

    /// Freezes the server and every connection's process (SIGSTOP): the
    /// host stops answering and nothing is closed or refused, as when the
    /// network holds the packets. They go on when the guard drops.
    pub fn stall(&self) -> Stalled {
        let listener = self.sshd.id();
        let mut stalled = descendants(listener);
        stalled.push(listener);
        for pid in &stalled {
            crate::common::signal(*pid as i32, libc::SIGSTOP);
        }
        Stalled(stalled)
    }

    /// Takes the machine off the network: the server and every
    /// connection to it end; connecting is refused until `resume`.
    pub fn pause(&mut self) {
        self.kill_connections();
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
    }

    /// Starts the server again on the same address and port.
    pub fn resume(&mut self) {
        let log = std::fs::OpenOptions::new().append(true).open(self.dir.join("sshd.log")).unwrap();
        self.sshd = Command::new(&self.program)
            .args(["-D", "-e", "-f"])
            .arg(self.dir.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((self.addr.as_str(), self.port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not start again");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The directory of session `id` on this machine.
    pub fn session_dir(&self, id: &str) -> PathBuf {
        self.env.session_dir(id)
    }
}

impl Drop for SshHost {
    fn drop(&mut self) {
        self.kill_connections();
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
    }
}

/// The servers, their keys and the client's ssh config.
pub struct Sshd {
    pub hosts: Vec<SshHost>,
    pub ssh_config: PathBuf,
    _keys: tempfile::TempDir,
}

fn sshd_program() -> Option<PathBuf> {
    ["/usr/sbin/sshd", "/usr/local/sbin/sshd", "/usr/bin/sshd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("run ssh-keygen");
    assert!(status.success(), "ssh-keygen failed");
}

impl Sshd {
    /// Starts one sshd per name, on 127.0.0.2, 127.0.0.3, ...; `None`
    /// (after saying so through `skip`) when OpenSSH is not installed.
    pub fn start(names: &[&str]) -> Option<Sshd> {
        let Some(sshd) = sshd_program() else {
            skip("sshd is not installed (scripts/install-test-deps installs openssh-server)");
            return None;
        };
        for tool in ["ssh", "ssh-keygen"] {
            if Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .map_or(true, |s| !s.success())
            {
                skip(&format!("{tool} is not installed (openssh-client)"));
                return None;
            }
        }
        // sshd running as root wants its privilege separation directory.
        if rustix_is_root() {
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        let keys = tempfile::Builder::new().prefix("ssh").tempdir_in("/tmp").unwrap();
        let client_key = keys.path().join("client_key");
        keygen(&client_key);
        let authorized = keys.path().join("authorized_keys");
        std::fs::copy(keys.path().join("client_key.pub"), &authorized).unwrap();
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        let mut hosts = Vec::new();
        let mut client_config = String::new();
        let mut known_hosts = String::new();
        for (i, name) in names.iter().enumerate() {
            let env = TestEnv::new();
            let dir = env.path().join("sshd");
            std::fs::create_dir_all(&dir).unwrap();
            let host_key = dir.join("host_key");
            keygen(&host_key);
            let preferred = format!("127.0.0.{}", i + 2);
            let (addr, port, child) =
                start_one(&sshd, &dir, &env, &host_key, &authorized, &preferred);
            let public = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
            known_hosts.push_str(&format!("[{addr}]:{port} {public}"));
            client_config.push_str(&format!(
                "Host {name}\n  HostName {addr}\n  Port {port}\n  User {user}\n  IdentityFile {}\n  \
                 IdentitiesOnly yes\n  UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n  \
                 LogLevel ERROR\n\n",
                client_key.display(),
                keys.path().join("known_hosts").display()
            ));
            hosts.push(SshHost {
                name: name.to_string(),
                addr,
                port,
                env,
                sshd: child,
                program: sshd.clone(),
                dir,
            });
        }
        std::fs::write(keys.path().join("known_hosts"), known_hosts).unwrap();
        let ssh_config = keys.path().join("ssh_config");
        std::fs::write(&ssh_config, client_config).unwrap();
        Some(Sshd { hosts, ssh_config, _keys: keys })
    }

    pub fn host(&self, name: &str) -> &SshHost {
        self.hosts.iter().find(|h| h.name == name).unwrap()
    }

    pub fn host_mut(&mut self, name: &str) -> &mut SshHost {
        self.hosts.iter_mut().find(|h| h.name == name).unwrap()
    }

    /// `[hosts.NAME]` tables for every server; with `reins`, each names
    /// the binary under test as its remote reins.
    pub fn config_toml(&self, reins: bool) -> String {
        let mut out = String::new();
        for h in &self.hosts {
            out.push_str(&format!(
                "[hosts.{}]\nssh_options = [\"-F\", \"{}\"]\n",
                h.name,
                self.ssh_config.display()
            ));
            if reins {
                out.push_str(&format!("reins = \"{}\"\n", reins_bin().display()));
            }
            out.push('\n');
        }
        out
    }
}

fn rustix_is_root() -> bool {
    String::from_utf8_lossy(&Command::new("id").arg("-u").output().unwrap().stdout).trim() == "0"
}

/// Starts sshd on `preferred` (falling back to 127.0.0.1, where another
/// loopback address cannot be bound) on a free port.
fn start_one(
    sshd: &Path,
    dir: &Path,
    env: &TestEnv,
    host_key: &Path,
    authorized: &Path,
    preferred: &str,
) -> (String, u16, Child) {
    for attempt in 0..5 {
        let addr = if attempt < 3 { preferred } else { "127.0.0.1" };
        let Ok(probe) = TcpListener::bind((addr, 0)) else { continue };
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let vars = env.env_vars();
        let set_env: Vec<String> = [
            "HOME",
            "REINS_STATE_DIR",
            "XDG_RUNTIME_DIR",
            "XDG_CONFIG_HOME",
            "REINS_TMUX_SERVER",
            "LANG",
            "TERM",
        ]
        .iter()
        .filter_map(|k| vars.get(*k).map(|v| format!("{k}={v}")))
        .collect();
        let config = format!(
            "ListenAddress {addr}:{port}\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nSetEnv {}\n\
             Subsystem sftp internal-sftp\nLogLevel ERROR\nMaxSessions 100\nMaxStartups 100\n",
            host_key.display(),
            dir.join("sshd.pid").display(),
            authorized.display(),
            set_env.join(" ")
        );
        let config_path = dir.join("sshd_config");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.join("sshd.log")).unwrap();
        let mut child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect((addr, port)).is_ok() {
                return (addr.to_string(), port, child);
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!(
        "sshd did not start on {preferred}: {}",
        std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
    );
}

/// Frozen sshd processes ([`SshHost::stall`]), let go on drop.
pub struct Stalled(Vec<u32>);

impl Drop for Stalled {
    fn drop(&mut self) {
        for pid in &self.0 {
            crate::common::signal(*pid as i32, libc::SIGCONT);
        }
    }
}

/// Every process below `pid`.
fn descendants(pid: u32) -> Vec<u32> {
    let out = Command::new("pgrep").args(["-P", &pid.to_string()]).output();
    let children: Vec<u32> = String::from_utf8_lossy(&out.map(|o| o.stdout).unwrap_or_default())
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let mut all = children.clone();
    for child in children {
        all.extend(descendants(child));
    }
    all
}
