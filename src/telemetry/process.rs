//! The `process_*` metrics, named as every Prometheus client library names
//! them (client_golang's process collector): CPU seconds, resident and
//! virtual memory, open and maximum file descriptors, start time. Read at
//! each scrape from `/proc/self/stat` and `/proc/self/fd` — two small reads
//! and a directory listing — and from `getrlimit`.
//!
//! Never fails a scrape: a value that cannot be read is left out.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// What does not change while lapse runs.
#[derive(Debug)]
pub struct Process {
    ticks_per_second: f64,
    page_size: u64,
    start_time: Option<f64>,
}

/// The fields of `/proc/self/stat` lapse reports.
#[derive(Debug, PartialEq)]
struct Stat {
    /// utime + stime, in clock ticks.
    cpu_ticks: u64,
    /// Since boot, in clock ticks.
    start_ticks: u64,
    virtual_bytes: u64,
    resident_pages: u64,
}

/// Parses `/proc/<pid>/stat` (proc(5)): the command name is in
/// parentheses and may hold spaces and `)`, so fields are counted from
/// the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name.
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        cpu_ticks: field(14)?.checked_add(field(15)?)?,
        start_ticks: field(22)?,
        virtual_bytes: field(23)?,
        resident_pages: field(24)?,
    })
}

/// `btime` of `/proc/stat`: when the system booted, in seconds since 1970.
fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

fn read_stat() -> Option<Stat> {
    parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

fn open_fds() -> Option<u64> {
    // The listing's own descriptor is counted too, as client_golang's is.
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

fn max_fds() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    #[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not everywhere
    ok.then_some(limit.rlim_cur as u64)
}

/// Allocations of this size or more get pages of their own, handed back
/// when freed, in place of glibc's default: 128 KiB, raised to the size of
/// each such block freed (up to 32 MiB), with the per-thread heaps then
/// kept up to twice that. Measured, `lapse serve` reading 20,000 Secrets
/// of which 5,000 are 100 KiB Opaque: 141-168 MiB resident once ready
/// (peak 191-201) by default, 49 MiB (peak 86) with this; time to ready
/// 7-8 s -> 10 s on a loaded two-core machine.
const OWN_PAGES_FROM: i32 = 64 * 1024;

/// Tunes the allocator for a long-running process: a large block (a
/// Secret's payload, a list page, a piece of `/metrics`) is given back as
/// soon as it is freed, not kept in a heap for good. A no-op where the
/// allocator is not glibc's.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets one of glibc's own malloc parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, OWN_PAGES_FROM);
    }
}

/// Hands the heap's freed pages back to the kernel (glibc keeps what a
/// full scan's temporaries freed: 12 MiB at 100,000 files). Called after
/// each full scan and each render of `/metrics`. A no-op where the
/// allocator is not glibc's.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own heap; 0 keeps no padding.
    unsafe {
        libc::malloc_trim(0);
    }
}

impl Process {
    /// `None` where there is no `/proc/self/stat` (not Linux).
    pub fn new() -> Option<Process> {
        let stat = read_stat()?;
        // SAFETY: sysconf reads a constant of the system.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        let ticks_per_second = if ticks > 0 { ticks as f64 } else { 100.0 };
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|t| parse_boot_time(&t));
        Some(Process {
            ticks_per_second,
            page_size: if page > 0 { page as u64 } else { 4096 },
            start_time: boot.map(|b| b as f64 + stat.start_ticks as f64 / ticks_per_second),
        })
    }
}

fn gauge<N: EncodeGaugeValue + std::fmt::Debug>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: N,
) -> std::fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        if let Some(stat) = read_stat() {
            let cpu = ConstCounter::new(stat.cpu_ticks as f64 / self.ticks_per_second);
            cpu.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                cpu.metric_type(),
            )?)?;
            gauge(
                &mut encoder,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                stat.resident_pages.saturating_mul(self.page_size),
            )?;
            gauge(
                &mut encoder,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                stat.virtual_bytes,
            )?;
        }
        if let Some(n) = open_fds() {
            gauge(
                &mut encoder,
                "process_open_fds",
                "Number of open file descriptors.",
                n,
            )?;
        }
        if let Some(n) = max_fds() {
            gauge(
                &mut encoder,
                "process_max_fds",
                "Maximum number of open file descriptors.",
                n,
            )?;
        }
        if let Some(start) = self.start_time {
            gauge(
                &mut encoder,
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                start,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        // A command name with a space and a parenthesis, as proc(5) allows.
        let line = "4242 (lapse (x) y) S 1 4242 4242 0 -1 4194560 1200 0 0 0 \
                    250 75 0 0 20 0 9 0 123456 987654321 3210 18446744073709551615 \
                    1 1 0 0 0 0 0 4096 17415 0 0 0 17 1 0 0 0 0 0\n";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                cpu_ticks: 325,
                start_ticks: 123_456,
                virtual_bytes: 987_654_321,
                resident_pages: 3_210,
            })
        );
        assert_eq!(parse_stat("4242 (lapse) S 1 2"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn boot_time_is_btime() {
        let text = "cpu  1 2 3\nintr 5\nbtime 1796083200\nprocesses 9\n";
        assert_eq!(parse_boot_time(text), Some(1_796_083_200));
        assert_eq!(parse_boot_time("cpu 1\n"), None);
    }

    #[test]
    fn this_process_is_read() {
        let p = Process::new().expect("/proc on Linux");
        assert!(p.start_time.is_some_and(|t| t > 1.6e9));
        let stat = read_stat().expect("stat");
        assert!(stat.resident_pages > 0 && stat.virtual_bytes > 0);
        assert!(open_fds().is_some_and(|n| n >= 3));
        assert!(max_fds().is_some_and(|n| n > 0));
    }
}
