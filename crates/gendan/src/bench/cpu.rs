//! CPU time spent during a run, per group of processes, from `/proc`: this
//! process (every service, the simulators and the bench itself run in it),
//! PostgreSQL (every process whose name or command line starts with
//! `postgres`: the postmaster, its backends and workers) and nats-server
//! (name `nats-server`).
//!
//! A process's user plus system time (`/proc/<pid>/stat`, fields 14 and 15,
//! its threads included) is read before and after the run. A group's figure
//! is the sum, over the processes present at the end, of their time at the
//! end less their time at the start; a process that started during the run
//! counts from zero, and a pid is told apart from an earlier process of the
//! same number by its start time. A process that ended before the end is
//! missed: PostgreSQL backends of connections closed during the run (pool
//! connections that idled out) are not counted. Times are in clock ticks,
//! `AT_CLKTCK` from `/proc/self/auxv` (what `sysconf(_SC_CLK_TCK)` answers)
//! or, when that cannot be read, the usual 100 a second. PostgreSQL or
//! nats-server out of sight (another host, another PID namespace) shows as
//! no process found.

use std::collections::HashMap;

/// Processes counted together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Group {
    /// This process.
    Gendan,
    Postgres,
    Nats,
}

impl Group {
    pub(super) const ALL: [Group; 3] = [Group::Gendan, Group::Postgres, Group::Nats];

    pub(super) fn name(self) -> &'static str {
        match self {
            Group::Gendan => "gendan",
            Group::Postgres => "postgres",
            Group::Nats => "nats-server",
        }
    }
}

/// A process: its pid and its start time (ticks after boot).
type ProcessKey = (u32, u64);

/// The CPU ticks of every counted process at one moment.
#[derive(Debug, Clone, Default)]
pub(super) struct Sample {
    processes: HashMap<ProcessKey, (Group, u64)>,
}

/// Reads every counted process's CPU time now; empty without `/proc`.
pub(super) fn sample() -> Sample {
    let mut processes = HashMap::new();
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Sample { processes };
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        // Gone between the listing and the read: it ended, so it is missed.
        let Some(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .as_deref()
            .and_then(parse_stat)
        else {
            continue;
        };
        let group = if pid == own {
            Group::Gendan
        } else if stat.comm == "nats-server" {
            Group::Nats
        } else if stat.comm.starts_with("postgres") || command_line_starts_with(pid, "postgres") {
            Group::Postgres
        } else {
            continue;
        };
        processes.insert((pid, stat.start), (group, stat.cpu_ticks));
    }
    Sample { processes }
}

fn command_line_starts_with(pid: u32, prefix: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| cmdline.starts_with(prefix.as_bytes()))
}

/// The fields of `/proc/<pid>/stat` the bench uses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stat {
    comm: String,
    /// utime + stime.
    cpu_ticks: u64,
    /// starttime.
    start: u64,
}

/// Parses one `/proc/<pid>/stat` line. The name sits in parentheses and
/// may hold spaces and parentheses itself, so the fields are counted from
/// the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // fields[0] is field 3 (state): utime is field 14, stime 15, starttime 22.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let start: u64 = fields.get(19)?.parse().ok()?;
    Some(Stat {
        comm,
        cpu_ticks: utime + stime,
        start,
    })
}

/// One group's CPU time over a run.
#[derive(Debug, Clone, Copy)]
pub(super) struct GroupUsage {
    pub(super) group: Group,
    /// Processes of the group present at the end.
    pub(super) processes: usize,
    pub(super) ticks: u64,
}

/// Every group's CPU time over a run.
#[derive(Debug, Clone)]
pub(super) struct Usage {
    pub(super) groups: Vec<GroupUsage>,
    pub(super) ticks_per_second: u64,
    /// Whether the tick rate was read from the kernel, not assumed.
    pub(super) tick_rate_read: bool,
}

impl Usage {
    pub(super) fn between(before: &Sample, after: &Sample) -> Self {
        let groups = Group::ALL
            .iter()
            .map(|&group| {
                let mut usage = GroupUsage {
                    group,
                    processes: 0,
                    ticks: 0,
                };
                for (key, (_, end)) in after.processes.iter().filter(|(_, (g, _))| *g == group) {
                    let start = before.processes.get(key).map_or(0, |(_, ticks)| *ticks);
                    usage.processes += 1;
                    usage.ticks += end.saturating_sub(start);
                }
                usage
            })
            .collect();
        let read = clock_ticks_per_second();
        Usage {
            groups,
            ticks_per_second: read.unwrap_or(ASSUMED_TICKS_PER_SECOND),
            tick_rate_read: read.is_some(),
        }
    }

    /// Milliseconds of CPU of `usage` divided by `count`; `None` when no
    /// process of its group was there to count.
    pub(super) fn ms_per(&self, usage: &GroupUsage, count: f64) -> Option<f64> {
        if usage.processes == 0 {
            return None;
        }
        let ms = usage.ticks as f64 * 1e3 / self.ticks_per_second as f64;
        Some(ms / count)
    }
}

/// The tick rate of nearly every Linux build, when the kernel's cannot be read.
const ASSUMED_TICKS_PER_SECOND: u64 = 100;

/// `AT_CLKTCK` from the auxiliary vector the kernel gave this process: the
/// clock tick rate of `/proc/<pid>/stat`, without a libc call.
fn clock_ticks_per_second() -> Option<u64> {
    const AT_CLKTCK: u64 = 17;
    let auxv = std::fs::read("/proc/self/auxv").ok()?;
    // Pairs of native words: a key and its value.
    let word = std::mem::size_of::<usize>();
    auxv.chunks_exact(word * 2)
        .find_map(|pair| {
            let (key, value) = pair.split_at(word);
            (native_word(key) == AT_CLKTCK).then(|| native_word(value))
        })
        .filter(|ticks| *ticks > 0)
}

fn native_word(bytes: &[u8]) -> u64 {
    let mut buffer = [0u8; 8];
    if cfg!(target_endian = "little") {
        buffer[..bytes.len()].copy_from_slice(bytes);
        u64::from_le_bytes(buffer)
    } else {
        buffer[8 - bytes.len()..].copy_from_slice(bytes);
        u64::from_be_bytes(buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let line = "4242 (postgres: a (b) c) S 1 4242 4242 0 -1 4194560 1200 0 0 0 \
                    37 12 0 0 20 0 1 0 987654 123456789 2000 18446744073709551615";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.comm, "postgres: a (b) c");
        assert_eq!(stat.cpu_ticks, 49);
        assert_eq!(stat.start, 987654);
        assert_eq!(parse_stat("4242 (short) S 1"), None);
    }

    #[test]
    fn a_group_counts_what_its_processes_did_during_the_run() {
        let sample = |entries: &[(ProcessKey, Group, u64)]| Sample {
            processes: entries
                .iter()
                .map(|(key, group, ticks)| (*key, (*group, *ticks)))
                .collect(),
        };
        let before = sample(&[
            ((1, 10), Group::Postgres, 100),
            ((2, 20), Group::Postgres, 50),
            ((3, 30), Group::Gendan, 7),
        ]);
        let after = sample(&[
            // Went on running.
            ((1, 10), Group::Postgres, 130),
            // Pid 2 again, but a new process: counted from zero.
            ((2, 25), Group::Postgres, 5),
            // Started during the run.
            ((4, 40), Group::Postgres, 3),
            ((3, 30), Group::Gendan, 17),
        ]);
        let usage = Usage::between(&before, &after);
        let of = |group| *usage.groups.iter().find(|u| u.group == group).unwrap();
        assert_eq!(
            (of(Group::Postgres).processes, of(Group::Postgres).ticks),
            (3, 38)
        );
        assert_eq!(of(Group::Gendan).ticks, 10);
        assert_eq!(of(Group::Nats).processes, 0);
        assert_eq!(usage.ms_per(&of(Group::Nats), 1.0), None);
    }

    #[test]
    fn the_tick_rate_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(clock_ticks_per_second().is_some_and(|ticks| ticks >= 100));
        }
    }
}
