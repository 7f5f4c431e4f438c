//! The kernel's 64-bit time interfaces, on every target.
//!
//! Rust's `libc` crate gives 32-bit targets (glibc and musl alike) a 32-bit `time_t`, and its
//! `clock_gettime`/`clock_adjtime` bind the C library's old 32-bit entry points, which fail with
//! `EOVERFLOW` (or wrap) after 2038-01-19. A time server on a 32-bit Raspberry Pi must read and
//! steer the clock past that date, so the clock is read through the C library's time64 entry
//! point (`__clock_gettime64`: glibc ≥ 2.34 and musl ≥ 1.2 export it; it keeps the vDSO fast
//! path) and steered through the `clock_adjtime64` system call, whose `struct __kernel_timex`
//! has the same all-64-bit layout on every architecture. On 64-bit targets these are the plain
//! calls.

use crate::vocab::Time;

/// `struct __kernel_timespec` (and, on 64-bit targets, `struct timespec`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Timespec64 {
    pub(crate) tv_sec: i64,
    /// Only the low 32 bits are meaningful: the C libraries' time64 `timespec` on 32-bit
    /// little-endian targets keeps `long tv_nsec` there and padding above it.
    pub(crate) tv_nsec: i64,
}

impl Timespec64 {
    pub(crate) fn to_time(self) -> Time {
        // Truncation keeps the low half, which holds tv_nsec whatever the padding says.
        Time::from_secs_nanos(self.tv_sec, self.tv_nsec as u32)
    }
}

#[cfg(target_pointer_width = "32")]
unsafe extern "C" {
    // The time64 twin of clock_gettime (glibc 2.34+, musl 1.2+); its timespec is Timespec64.
    fn __clock_gettime64(clock: libc::clockid_t, ts: *mut Timespec64) -> libc::c_int;
}

/// Reads `clock` with 64-bit seconds. `Err` only for a clock the kernel does not have.
pub(crate) fn clock_gettime(clock: libc::clockid_t) -> std::io::Result<Time> {
    let mut ts = Timespec64::default();
    #[cfg(target_pointer_width = "32")]
    // SAFETY: __clock_gettime64 writes one time64 timespec into `ts`, which we own.
    let rc = unsafe { __clock_gettime64(clock, &mut ts) };
    #[cfg(target_pointer_width = "64")]
    // SAFETY: on 64-bit targets `struct timespec` is two 64-bit fields, the layout of `ts`.
    let rc = unsafe { libc::clock_gettime(clock, (&mut ts as *mut Timespec64).cast()) };
    if rc == 0 { Ok(ts.to_time()) } else { Err(std::io::Error::last_os_error()) }
}

/// `struct __kernel_timex_timeval`: microseconds, or nanoseconds with `ADJ_NANO`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct KernelTimeval {
    pub(crate) tv_sec: i64,
    pub(crate) tv_usec: i64,
}

/// `struct __kernel_timex` (`include/uapi/linux/timex.h`): every field 64 bits wide on every
/// architecture, which `clock_adjtime64` takes on 32-bit targets and which is `struct timex` on
/// 64-bit ones.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct KernelTimex {
    pub(crate) modes: u32,
    _pad0: i32,
    pub(crate) offset: i64,
    pub(crate) freq: i64,
    pub(crate) maxerror: i64,
    pub(crate) esterror: i64,
    pub(crate) status: i32,
    _pad1: i32,
    pub(crate) constant: i64,
    pub(crate) precision: i64,
    pub(crate) tolerance: i64,
    pub(crate) time: KernelTimeval,
    pub(crate) tick: i64,
    pub(crate) ppsfreq: i64,
    pub(crate) jitter: i64,
    pub(crate) shift: i32,
    _pad2: i32,
    pub(crate) stabil: i64,
    pub(crate) jitcnt: i64,
    pub(crate) calcnt: i64,
    pub(crate) errcnt: i64,
    pub(crate) stbcnt: i64,
    pub(crate) tai: i32,
    _reserved: [i32; 11],
}

/// The `clock_adjtime64` system call number: the time64 calls (403…) are numbered alike on all
/// 32-bit architectures since Linux 5.1.
#[cfg(target_pointer_width = "32")]
const SYS_CLOCK_ADJTIME64: libc::c_long = 405;

/// `clock_adjtime(clock, tx)`: reads (modes 0) or adjusts the clock; returns the clock state
/// (`TIME_OK`, `TIME_INS`…). Steering the host clock is production only (see `system.rs`).
pub(crate) fn clock_adjtime(clock: libc::clockid_t, tx: &mut KernelTimex) -> std::io::Result<i32> {
    #[cfg(target_pointer_width = "32")]
    // SAFETY: clock_adjtime64 reads and writes one `struct __kernel_timex`, the layout of `tx`
    // (checked in the tests), which lives for the call.
    let rc = unsafe { libc::syscall(SYS_CLOCK_ADJTIME64, clock, tx as *mut KernelTimex) } as i32;
    #[cfg(target_pointer_width = "64")]
    // SAFETY: on 64-bit targets `struct timex` is `struct __kernel_timex` (checked in the tests).
    let rc = unsafe { libc::clock_adjtime(clock, (tx as *mut KernelTimex).cast()) };
    if rc < 0 { Err(std::io::Error::last_os_error()) } else { Ok(rc) }
}

#[cfg(test)]
mod tests {
    use std::mem::{offset_of, size_of};

    use super::*;

    #[test]
    fn kernel_timex_has_the_kernel_layout() {
        // include/uapi/linux/timex.h, the same on every architecture.
        assert_eq!(size_of::<KernelTimex>(), 208);
        assert_eq!(offset_of!(KernelTimex, freq), 16);
        assert_eq!(offset_of!(KernelTimex, esterror), 32);
        assert_eq!(offset_of!(KernelTimex, status), 40);
        assert_eq!(offset_of!(KernelTimex, constant), 48);
        assert_eq!(offset_of!(KernelTimex, time), 72);
        assert_eq!(offset_of!(KernelTimex, tick), 88);
        assert_eq!(offset_of!(KernelTimex, shift), 112);
        assert_eq!(offset_of!(KernelTimex, stabil), 120);
        assert_eq!(offset_of!(KernelTimex, tai), 160);
        assert_eq!(size_of::<Timespec64>(), 16);
    }

    /// On 64-bit targets the C library's `struct timex` is the kernel's: same offsets.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn kernel_timex_is_libc_timex_on_64_bit() {
        assert_eq!(size_of::<KernelTimex>(), size_of::<libc::timex>());
        assert_eq!(offset_of!(KernelTimex, freq), offset_of!(libc::timex, freq));
        assert_eq!(offset_of!(KernelTimex, status), offset_of!(libc::timex, status));
        assert_eq!(offset_of!(KernelTimex, time), offset_of!(libc::timex, time));
        assert_eq!(offset_of!(KernelTimex, tai), offset_of!(libc::timex, tai));
        assert_eq!(size_of::<Timespec64>(), size_of::<libc::timespec>());
    }

    #[test]
    fn timespec_past_2038_converts_exactly() {
        // 2040-02-29T12:00:00.5Z does not fit a 32-bit time_t.
        let t = Timespec64 { tv_sec: 2_214_129_600, tv_nsec: 500_000_000 }.to_time();
        assert_eq!(t, Time::from_utc(2040, 2, 29, 12, 0, 0, 500_000_000));
        // Garbage in the padding above a 32-bit tv_nsec is ignored.
        let t = Timespec64 { tv_sec: 2_214_129_600, tv_nsec: (7 << 32) | 42 }.to_time();
        assert_eq!(t.subsec_nanos(), 42);
    }

    #[test]
    fn reads_the_clocks() {
        let a = clock_gettime(libc::CLOCK_REALTIME).unwrap();
        assert!(a > Time::from_utc(2020, 1, 1, 0, 0, 0, 0), "{a}");
        let m1 = clock_gettime(libc::CLOCK_MONOTONIC).unwrap();
        let m2 = clock_gettime(libc::CLOCK_MONOTONIC).unwrap();
        assert!(m2 >= m1);
        assert!(clock_gettime(-1_000).is_err());
    }

    /// The read path carries seconds beyond 2^31. CI runs this inside a time namespace whose
    /// CLOCK_BOOTTIME is offset by 3e9 s (`unshare --time --boottime 3000000000`, the only way
    /// to show a kernel clock past a 32-bit time_t without moving the host's) and says so in
    /// STRATUM1_TEST_BOOTTIME_MIN_S; elsewhere it checks only that boottime reads.
    #[test]
    fn reads_a_clock_beyond_32_bit_seconds() {
        let boot = clock_gettime(libc::CLOCK_BOOTTIME).unwrap();
        if let Some(min) =
            std::env::var("STRATUM1_TEST_BOOTTIME_MIN_S").ok().and_then(|v| v.parse::<i64>().ok())
        {
            assert!(boot.unix_secs() >= min, "CLOCK_BOOTTIME read {} s, expected ≥ {min}", boot.unix_secs());
            assert!(boot.unix_secs() > i64::from(i32::MAX));
        }
    }

    #[test]
    fn reads_the_kernel_clock_state_without_changing_it() {
        // modes = 0 is a pure read; it needs no privilege and changes nothing.
        let mut tx = KernelTimex::default();
        let state = clock_adjtime(libc::CLOCK_REALTIME, &mut tx).unwrap();
        assert!((0..=5).contains(&state), "clock state {state}");
        assert!(tx.tick > 0, "{tx:?}");
        assert!(tx.time.tv_sec > 1_500_000_000, "{tx:?}");
    }
}
