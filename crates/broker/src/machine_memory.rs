//! How much memory Warren may use: the machine's, or its control group's
//! limit when that is lower (in a container the machine's figure is not
//! what the kernel enforces; RabbitMQ itself reads the machine's).

use std::path::{Path, PathBuf};

/// The memory Warren may use, in bytes: the lower of the machine's total
/// and the cgroup (v2 or v1) memory limit, if there is one.
pub fn available() -> usize {
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| mem_total(&info))
        .unwrap_or(4 << 30);
    let cgroup = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|own| {
            limit_files(Path::new("/sys/fs/cgroup"), &own)
                .iter()
                .find_map(|file| std::fs::read_to_string(file).ok())
        })
        .and_then(|text| parse_limit(&text));
    cgroup.map_or(machine, |limit| limit.min(machine))
}

fn mem_total(meminfo: &str) -> Option<usize> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Where this process's memory limit may be, most specific first, from
/// `/proc/self/cgroup`: the v2 `memory.max` of its group, the v1
/// `memory.limit_in_bytes` of its memory group, and each at the root of
/// the mount (what a container sees of its own group).
fn limit_files(root: &Path, own_cgroups: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for line in own_cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let path = path.trim_start_matches('/');
        if controllers.is_empty() {
            files.push(root.join(path).join("memory.max"));
            files.push(root.join("memory.max"));
        } else if controllers.split(',').any(|c| c == "memory") {
            files.push(root.join("memory").join(path).join("memory.limit_in_bytes"));
            files.push(root.join("memory/memory.limit_in_bytes"));
        }
    }
    files
}

/// A limit file's value; `None` for no limit (`max` in v2, a value near
/// 2^63 in v1).
fn parse_limit(text: &str) -> Option<usize> {
    let value: u64 = text.trim().parse().ok()?;
    (value < 1 << 60).then_some(value as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_read_as_the_kernel_writes_them() {
        assert_eq!(parse_limit("536870912\n"), Some(512 << 20));
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None);
        assert_eq!(
            mem_total("MemTotal:       2048 kB\nMemFree: 1 kB\n"),
            Some(2 << 20)
        );
    }

    #[test]
    fn the_process_cgroup_names_where_its_limit_is() {
        let root = Path::new("/cg");
        assert_eq!(
            limit_files(root, "0::/system.slice/warren.service\n"),
            [
                PathBuf::from("/cg/system.slice/warren.service/memory.max"),
                PathBuf::from("/cg/memory.max"),
            ]
        );
        let v1 = limit_files(root, "5:cpu:/\n4:memory:/docker/abc\n0::/\n");
        assert_eq!(
            v1[0],
            PathBuf::from("/cg/memory/docker/abc/memory.limit_in_bytes")
        );
        assert_eq!(v1[1], PathBuf::from("/cg/memory/memory.limit_in_bytes"));
    }

    #[test]
    fn what_this_machine_gives_is_positive() {
        assert!(available() > 0);
    }
}
