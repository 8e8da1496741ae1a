//! Who holds a reservation: a process on a host, and whether it still lives.
//!
//! A reservation whose owner died would hold its concurrency slot forever;
//! knowing the owner lets any process on the same host give the slot back.
//! The process start time (Linux `/proc`) tells a recycled PID from the
//! original owner.

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
}

impl Owner {
    /// The process `pid` on this host, with its start time when readable.
    pub fn process(pid: u32) -> Self {
        Self {
            host: host_name(),
            pid,
            start_time: process_start_time(pid),
        }
    }

    /// The calling process.
    pub fn current() -> Self {
        Self::process(std::process::id())
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

/// Checks `owner` against the processes of this host (`this_host`).
pub fn liveness(owner: &Owner, this_host: &str) -> Liveness {
    if owner.host != this_host {
        return Liveness::Unknown;
    }
    if !process_table_readable() {
        return Liveness::Alive;
    }
    match read_stat(owner.pid) {
        None => Liveness::Dead,
        Some(stat) if stat.zombie => Liveness::Dead,
        Some(stat) => match (owner.start_time, stat.start_time) {
            (Some(expected), Some(actual)) if expected != actual => Liveness::Dead,
            _ => Liveness::Alive,
        },
    }
}

/// This machine's host name, or `localhost` when it cannot be read.
pub fn host_name() -> String {
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
    start_time: Option<u64>,
}

fn process_table_readable() -> bool {
    cfg!(target_os = "linux") && std::path::Path::new("/proc/self/stat").exists()
}

fn read_stat(pid: u32) -> Option<ProcessStat> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or
    // parentheses itself, so fields are counted from the last `)`.
    let after_name = &text[text.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    let state = fields.next()?;
    // Field 3 is the state; field 22 is the start time: 19 further on.
    let start_time = fields.nth(18).and_then(|value| value.parse().ok());
    Some(ProcessStat {
        zombie: state == "Z" || state == "X",
        start_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
