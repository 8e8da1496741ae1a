//! Who holds a reservation: a process on a host, and whether it still lives.
//!
//! A reservation whose owner died would hold its concurrency slot forever;
//! knowing the owner lets any process on the same host give the slot back.
//! The process start time (Linux `/proc`) tells a recycled PID from the
//! original owner. An owner may also name a process group (what `run`
//! started): the slot stays held while any process of that group lives.
//!
//! [`calling_owner`] picks the owner of a reservation taken by a short-lived
//! command such as `acquire`: its caller, walking past processes that end
//! before the caller's work does (see its documentation for the rule).

use serde::{Deserialize, Serialize};

/// The process that holds a reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// Host name of the machine the process runs on.
    pub host: String,
    /// Process id on that host.
    pub pid: u32,
    /// The process start time in clock ticks since boot (Linux), to survive
    /// PID reuse; `None` where the platform does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<u64>,
    /// A process group doing the owner's work (the command `run` started):
    /// while any process of it lives, the owner counts as alive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_group: Option<ProcessGroup>,
}

/// A process group that keeps a reservation held while any member lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessGroup {
    /// The group id (the PID of the process that leads it).
    pub id: u32,
    /// The leader's start time in clock ticks since boot (Linux): members
    /// started before it belong to an older group with a recycled id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<u64>,
}

impl ProcessGroup {
    /// The group led by process `pid` (a child started in a group of its own).
    pub fn led_by(pid: u32) -> Self {
        Self {
            id: pid,
            start_time: process_start_time(pid),
        }
    }
}

impl Owner {
    /// The process `pid` on this host, with its start time when readable.
    pub fn process(pid: u32) -> Self {
        Self {
            host: host_name(),
            pid,
            start_time: process_start_time(pid),
            process_group: None,
        }
    }

    /// The calling process (looked up once per process: every write names
    /// its writer).
    pub fn current() -> Self {
        static CURRENT: std::sync::OnceLock<Owner> = std::sync::OnceLock::new();
        let pid = std::process::id();
        match CURRENT.get_or_init(|| Self::process(pid)) {
            // A forked child has a PID of its own.
            current if current.pid == pid => current.clone(),
            _ => Self::process(pid),
        }
    }
}

/// Whether an owner is known to be alive, known to be dead, or unknowable here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// The process runs (or this host cannot tell it is gone).
    Alive,
    /// The process is gone, or its PID now belongs to another process.
    Dead,
    /// The owner is on another host; only its lease can free its slot.
    Unknown,
}

/// Checks `owner` against the processes of this host (`this_host`): alive
/// while its process, or any process of its process group, lives.
pub fn liveness(owner: &Owner, this_host: &str) -> Liveness {
    if owner.host != this_host {
        return Liveness::Unknown;
    }
    if process_alive(owner.pid, owner.start_time) {
        return Liveness::Alive;
    }
    match owner.process_group {
        Some(group) if group_alive(group) => Liveness::Alive,
        _ => Liveness::Dead,
    }
}

fn process_alive(pid: u32, expected_start: Option<u64>) -> bool {
    if !process_table_readable() {
        return true;
    }
    match read_stat(pid) {
        None => false,
        Some(stat) if stat.zombie => false,
        Some(stat) => !matches!(
            (expected_start, stat.start_time),
            (Some(expected), Some(actual)) if expected != actual
        ),
    }
}

/// Most `/proc` entries looked at for one group: a bound on the scan.
const MAX_PROCESSES_SCANNED: usize = 1 << 20;

/// True while a process of `group` lives (Linux: a scan of `/proc`, zombies
/// and processes older than the group's leader left out; other Unix:
/// `kill(-group, 0)`; elsewhere the lease alone decides, so alive).
fn group_alive(group: ProcessGroup) -> bool {
    if process_table_readable() {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return true;
        };
        return entries
            .take(MAX_PROCESSES_SCANNED)
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter_map(read_stat)
            .any(|stat| {
                stat.process_group == Some(group.id)
                    && !stat.zombie
                    && match (group.start_time, stat.start_time) {
                        (Some(leader), Some(member)) => member >= leader,
                        _ => true,
                    }
            });
    }
    #[cfg(unix)]
    {
        let Ok(id) = libc::pid_t::try_from(group.id) else {
            return false;
        };
        if id <= 1 {
            return false;
        }
        // SAFETY: signal 0 only checks that the group exists; nothing is sent.
        let result = unsafe { libc::kill(-id, 0) };
        result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    true
}

/// Programs that start a command and wait for it, so their process ends
/// with that command, not with the work of whoever called them. `env`,
/// `nice`, `nohup` and `stdbuf` usually replace themselves by the command;
/// they are here for the forms that do not.
pub const WRAPPERS: &[&str] = &[
    "timeout", "env", "nice", "nohup", "stdbuf", "setsid", "xargs", "ionice", "taskset", "chrt",
    "flock",
];

/// Shells and interpreters: as PID 1 (a container's entry script) they may
/// be the caller; any other PID 1 is an init or supervisor adopting orphans.
const SCRIPT_HOSTS: &[&str] = &[
    "sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "fish", "busybox", "node", "ruby", "perl",
];

fn is_script_host(info: &ProcessInfo) -> bool {
    let name = info.program_name();
    SCRIPT_HOSTS.iter().any(|host| host.as_bytes() == name) || name.starts_with(b"python")
}

/// How many processes the owner walk looks at above the caller, at most.
pub const MAX_OWNER_WALK: usize = 16;

/// Why a process was walked past when choosing an owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// It is one of the [`WRAPPERS`] (named).
    Wrapper(String),
    /// It is a copy of its parent (same executable and command line): a
    /// subshell forked for `$(…)`, a pipeline or a redirection.
    Subshell,
}

/// Why the chosen owner may end before the work does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShortLived {
    /// The caller has already exited (the parent is an init, PID 1).
    CallerGone,
    /// The owner is a wrapper or subshell with nothing to walk up to.
    NothingAbove(SkipReason),
    /// The walk stopped at [`MAX_OWNER_WALK`] processes.
    WalkTooLong,
}

/// The owner [`calling_owner`] chose and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerChoice {
    /// The owner.
    pub owner: Owner,
    /// The processes walked past, nearest first, with why.
    pub skipped: Vec<(u32, SkipReason)>,
    /// Set when the owner looks like it may end before the work does.
    pub short_lived: Option<ShortLived>,
}

/// What the owner walk needs to know about one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Its parent's PID.
    pub parent: u32,
    /// Its command line, NUL-separated as `/proc/PID/cmdline` holds it.
    pub command_line: Vec<u8>,
    /// Its executable, when readable.
    pub executable: Option<std::path::PathBuf>,
}

impl ProcessInfo {
    /// The file name of `argv[0]`.
    fn program_name(&self) -> &[u8] {
        let first = self
            .command_line
            .split(|byte| *byte == 0)
            .next()
            .unwrap_or(&[]);
        first.rsplit(|byte| *byte == b'/').next().unwrap_or(first)
    }
}

/// Chooses the owner of a reservation taken by a short-lived command whose
/// parent is `parent`: the parent, unless it ends with the command rather
/// than with the caller's work. Walking up from the parent, a process is
/// passed over when it is one of the [`WRAPPERS`] (`timeout 30 specsmith-rs
/// … acquire` → the shell that ran `timeout`), or a copy of its own parent,
/// same executable and command line (`id=$(specsmith-rs … acquire 2>>log)`
/// → bash forks a subshell for the redirection; the script is the owner).
/// The walk stops at PID 1 (the owner only when it is a shell or an
/// interpreter, as a container's entry script is; any other PID 1 is an
/// init adopting orphans) and after [`MAX_OWNER_WALK`] processes.
///
/// Linux only (it reads `/proc`); elsewhere the parent is the owner and its
/// lease bounds a slot whose owner died.
pub fn calling_owner(parent: u32) -> OwnerChoice {
    if !process_table_readable() {
        return OwnerChoice {
            owner: Owner::process(parent),
            skipped: Vec::new(),
            short_lived: None,
        };
    }
    let (pid, skipped, short_lived) = walk_to_owner(parent, read_process_info);
    OwnerChoice {
        owner: Owner::process(pid),
        skipped,
        short_lived,
    }
}

type Walk = (u32, Vec<(u32, SkipReason)>, Option<ShortLived>);

/// The owner walk over any process table (`lookup`), for [`calling_owner`].
pub fn walk_to_owner(parent: u32, lookup: impl Fn(u32) -> Option<ProcessInfo>) -> Walk {
    let mut skipped = Vec::new();
    // PID 1 may be a container's own script (a fine owner) or an init or
    // supervisor that adopts orphans: then the caller is gone.
    let adopts_orphans =
        |pid: u32| pid == 0 || (pid == 1 && !lookup(1).is_some_and(|first| is_script_host(&first)));
    if adopts_orphans(parent) {
        return (parent, skipped, Some(ShortLived::CallerGone));
    }
    let mut pid = parent;
    for _ in 0..MAX_OWNER_WALK {
        let Some(info) = lookup(pid) else {
            return (pid, skipped, None);
        };
        let name = info.program_name();
        let reason = match WRAPPERS.iter().find(|wrapper| wrapper.as_bytes() == name) {
            Some(wrapper) => SkipReason::Wrapper((*wrapper).to_owned()),
            None => match lookup(info.parent) {
                Some(above) if is_copy_of(&info, &above) => SkipReason::Subshell,
                _ => return (pid, skipped, None),
            },
        };
        if adopts_orphans(info.parent) {
            return (pid, skipped, Some(ShortLived::NothingAbove(reason)));
        }
        skipped.push((pid, reason));
        pid = info.parent;
    }
    (pid, skipped, Some(ShortLived::WalkTooLong))
}

fn is_copy_of(child: &ProcessInfo, parent: &ProcessInfo) -> bool {
    !child.command_line.is_empty()
        && child.command_line == parent.command_line
        && child.executable == parent.executable
}

fn read_process_info(pid: u32) -> Option<ProcessInfo> {
    let stat = read_stat(pid)?;
    let command_line = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(ProcessInfo {
        parent: stat.parent?,
        command_line,
        executable: std::fs::read_link(format!("/proc/{pid}/exe")).ok(),
    })
}

/// This machine's host name, or `localhost` when it cannot be read. Read
/// once per process: each command asks several times.
pub fn host_name() -> String {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(read_host_name).clone()
}

fn read_host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| {
            std::env::var("HOSTNAME")
                .ok()
                .filter(|name| !name.is_empty())
        })
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The start time of process `pid` in clock ticks since boot (Linux only).
pub fn process_start_time(pid: u32) -> Option<u64> {
    read_stat(pid).and_then(|stat| stat.start_time)
}

struct ProcessStat {
    zombie: bool,
    parent: Option<u32>,
    process_group: Option<u32>,
    start_time: Option<u64>,
}

/// Whether `/proc` can be read here; looked at once per process.
fn process_table_readable() -> bool {
    static READABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *READABLE.get_or_init(|| {
        cfg!(target_os = "linux") && std::path::Path::new("/proc/self/stat").exists()
    })
}

fn read_stat(pid: u32) -> Option<ProcessStat> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    // One read where `read_to_string` would probe in growing steps: a
    // `/proc` file has no size, and a stat line is well under 1 KiB.
    let mut bytes = Vec::with_capacity(1024);
    std::io::Read::read_to_end(
        &mut std::fs::File::open(format!("/proc/{pid}/stat")).ok()?,
        &mut bytes,
    )
    .ok()?;
    parse_stat(&bytes)
}

/// The fields [`ProcessStat`] keeps from a `/proc/<pid>/stat` line.
fn parse_stat(bytes: &[u8]) -> Option<ProcessStat> {
    // The command name (field 2) is in parentheses and may hold spaces or
    // parentheses itself, so fields are counted from the last `)`. The
    // fields after it are ASCII numbers and a state letter, one space apart:
    // split on bytes, not on Unicode white space (which cost an `acquire`
    // more than its own /proc reads).
    let after_name = &bytes[bytes.iter().rposition(|&byte| byte == b')')? + 1..];
    let mut fields = after_name
        .split(|byte| byte.is_ascii_whitespace())
        .filter(|field| !field.is_empty());
    let number = |field: Option<&[u8]>| {
        std::str::from_utf8(field?)
            .ok()
            .and_then(|text| text.parse().ok())
    };
    // Fields 3 (state), 4 (parent), 5 (process group) and 22 (start time).
    let state = fields.next()?;
    let parent = number(fields.next());
    let process_group = number(fields.next());
    let start_time = number(fields.nth(22 - 6));
    Some(ProcessStat {
        zombie: state == b"Z" || state == b"X",
        parent: parent.and_then(|value| u32::try_from(value).ok()),
        process_group: process_group.and_then(|value| u32::try_from(value).ok()),
        start_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_is_read_past_a_command_name_with_spaces_and_parentheses() {
        let line = b"4242 (my (odd) name) S 17 4242 4242 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 190306 1000 50 18446744073709551615\n";
        let stat = parse_stat(line).unwrap();
        assert!(!stat.zombie);
        assert_eq!(stat.parent, Some(17));
        assert_eq!(stat.process_group, Some(4242));
        assert_eq!(stat.start_time, Some(190_306));
        let zombie = parse_stat(b"9 (z) Z 1 9").unwrap();
        assert!(zombie.zombie);
        assert_eq!(zombie.start_time, None);
        assert!(parse_stat(b"9 no name S 1").is_none());
    }

    #[test]
    fn this_process_is_alive_and_others_hosts_are_unknown() {
        let me = Owner::current();
        assert_eq!(liveness(&me, &host_name()), Liveness::Alive);
        assert_eq!(liveness(&me, "some-other-host"), Liveness::Unknown);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_reaped_child_is_dead_and_a_recycled_pid_is_not_its_owner() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let owner = Owner::process(child.id());
        child.wait().unwrap();
        assert_eq!(liveness(&owner, &host_name()), Liveness::Dead);
        let mut impostor = Owner::current();
        impostor.start_time = impostor.start_time.map(|time| time + 1);
        assert_eq!(liveness(&impostor, &host_name()), Liveness::Dead);
    }

    #[cfg(unix)]
    #[test]
    fn a_dead_owner_lives_on_while_its_process_group_does() {
        use std::os::unix::process::CommandExt;
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let mut owner = Owner::process(gone.id());
        gone.wait().unwrap();
        let mut group = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        owner.process_group = Some(ProcessGroup::led_by(group.id()));
        assert_eq!(liveness(&owner, &host_name()), Liveness::Alive);
        group.kill().unwrap();
        group.wait().unwrap();
        assert_eq!(liveness(&owner, &host_name()), Liveness::Dead);
    }

    fn table<'a>(rows: &'a [(u32, u32, &'a str)]) -> impl Fn(u32) -> Option<ProcessInfo> + 'a {
        move |pid| {
            rows.iter()
                .find(|(row_pid, _, _)| *row_pid == pid)
                .map(|(_, parent, command)| ProcessInfo {
                    parent: *parent,
                    command_line: command.replace(' ', "\0").into_bytes(),
                    executable: Some(command.split(' ').next().unwrap().into()),
                })
        }
    }

    #[test]
    fn the_walk_passes_wrappers_and_forked_subshells_and_stops_at_the_script() {
        let rows = [
            (50, 40, "/usr/bin/timeout 30 specsmith-rs"),
            (40, 30, "/bin/bash ./agent.sh"),
            (30, 20, "/bin/bash ./agent.sh"),
            (20, 1, "/bin/bash -l"),
        ];
        let (pid, skipped, short_lived) = walk_to_owner(50, table(&rows));
        assert_eq!(pid, 30);
        assert_eq!(
            skipped,
            vec![
                (50, SkipReason::Wrapper("timeout".into())),
                (40, SkipReason::Subshell)
            ]
        );
        assert_eq!(short_lived, None);
        assert_eq!(
            walk_to_owner(20, table(&rows)).0,
            20,
            "a plain parent is the owner"
        );
    }

    #[test]
    fn an_owner_that_looks_short_lived_is_flagged() {
        let rows = [
            (50, 1, "/usr/bin/xargs -n1 specsmith-rs"),
            (1, 0, "/sbin/init splash"),
        ];
        let (pid, skipped, short_lived) = walk_to_owner(50, table(&rows));
        assert_eq!((pid, skipped.len()), (50, 0));
        assert_eq!(
            short_lived,
            Some(ShortLived::NothingAbove(SkipReason::Wrapper(
                "xargs".into()
            )))
        );
        assert_eq!(
            walk_to_owner(1, table(&rows)).2,
            Some(ShortLived::CallerGone)
        );
        let container = [(50, 1, "/usr/bin/timeout 9 x"), (1, 0, "/bin/sh ./job.sh")];
        assert_eq!(
            walk_to_owner(50, table(&container)),
            (1, vec![(50, SkipReason::Wrapper("timeout".into()))], None),
            "a container's script as PID 1 owns what it starts"
        );
        let chain: Vec<(u32, u32, &str)> = (2..40)
            .map(|pid| (pid, pid + 1, "/usr/bin/env x"))
            .collect();
        assert_eq!(
            walk_to_owner(2, table(&chain)).2,
            Some(ShortLived::WalkTooLong)
        );
    }
}
